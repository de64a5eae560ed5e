"""Seccomp filters from linux.seccomp, through pyseccomp, and the notify hand-off.

pyseccomp looks libseccomp up with ctypes.util.find_library, which runs ldconfig
(~20 ms, and fails on targets without it): we hand it the soname instead.
"""

import os
import sys

from slruntime.errors import SlrError

_FLAG_ATTRS = {  # spec flag -> pyseccomp Attr name
    "SECCOMP_FILTER_FLAG_TSYNC": "CTL_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG": "CTL_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "CTL_SSB",
}
_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


class _SonameFinder:
    """Stands in for ctypes.util while pyseccomp imports."""

    @staticmethod
    def find_library(name):
        return _SONAMES.get(name)


class _AnyType:
    """Subscriptable placeholder for the annotations pyseccomp evaluates at import."""

    def __getitem__(self, _):
        return self


class _TypingStandIn:
    """pyseccomp only uses typing for annotations: importing the real module would
    cost a container start ~9 ms."""

    Any = Collection = Iterable = Union = _AnyType()

    @staticmethod
    def cast(_, value):
        return value

    @staticmethod
    def overload(function):
        return function


def _pyseccomp():
    module = sys.modules.get("pyseccomp")
    if module is not None:
        return module
    import ctypes

    stand_ins = {"ctypes.util": _SonameFinder, "typing": _TypingStandIn}
    saved = {name: sys.modules.get(name) for name in stand_ins}
    for name, stand_in in stand_ins.items():
        if saved[name] is None:
            sys.modules[name] = stand_in
    had_util = hasattr(ctypes, "util")
    if not had_util:
        ctypes.util = _SonameFinder
    try:
        import pyseccomp
    finally:
        for name, real in saved.items():
            if real is None:
                del sys.modules[name]
        if not had_util:
            del ctypes.util
    return pyseccomp


def _action(sc, name, errno_ret):
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(1 if errno_ret is None else errno_ret)  # EPERM, as runc
    if name == "SCMP_ACT_TRACE":
        return sc.TRACE(1 if errno_ret is None else errno_ret)
    return {
        "SCMP_ACT_KILL": sc.KILL_THREAD, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_TRAP": sc.TRAP,
        "SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_LOG": sc.LOG, "SCMP_ACT_NOTIFY": sc.NOTIFY,
    }[name]


_OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}


def build(config):
    """A pyseccomp filter from a validated linux.seccomp object (not loaded yet)."""
    sc = _pyseccomp()
    default = _action(sc, config["defaultAction"], config.get("defaultErrnoRet"))
    try:
        flt = sc.SyscallFilter(default)
        # no_new_privs is the runtime's decision (process.noNewPrivileges), not libseccomp's.
        flt.set_attr(sc.Attr.CTL_NNP, 0)
        for flag in config.get("flags") or ():
            if flag not in _FLAG_ATTRS:
                raise SlrError(f"seccomp: flag {flag} is not supported by this libseccomp")
            flt.set_attr(getattr(sc.Attr, _FLAG_ATTRS[flag]), 1)
        for arch in config.get("architectures") or ():
            arch_id = getattr(sc.Arch, arch[len("SCMP_ARCH_"):])
            if arch_id != sc.system_arch() and not flt.exist_arch(arch_id):
                flt.add_arch(arch_id)
    except OSError as exc:
        raise SlrError(f"seccomp: {exc.strerror}") from None
    for i, rule in enumerate(config.get("syscalls") or ()):
        action = _action(sc, rule["action"], rule.get("errnoRet"))
        if action == default:
            continue  # libseccomp refuses rules that repeat the default action
        args = [sc.Arg(a["index"], getattr(sc, _OPS[a["op"]]), a["value"], a.get("valueTwo", 0))
                for a in rule.get("args") or ()]
        for name in rule["names"]:
            try:
                number = sc.resolve_syscall(sc.Arch.NATIVE, name)
            except (OSError, ValueError):
                continue  # unknown to this kernel/libseccomp: skipped, as runc does
            if number < 0:
                continue
            try:
                _add_rule(flt, action, number, args)
            except FileExistsError:
                pass  # an equivalent rule is already there (engines' profiles repeat some)
            except OSError as exc:
                raise SlrError(f"seccomp: linux.seccomp.syscalls[{i}] ({name}): {exc.strerror}") from None
    return flt


def _add_rule(flt, action, number, args):
    # Several conditions on the same argument are an OR in the spec (as in runc):
    # libseccomp ANDs the conditions of one rule, so such rules are split.
    by_index = {}
    for arg in args:
        by_index.setdefault(arg._arg, []).append(arg)
    if all(len(v) == 1 for v in by_index.values()):
        flt.add_rule(action, number, *args)
        return
    for arg in args:
        flt.add_rule(action, number, arg)


def load(flt):
    try:
        flt.load()
    except OSError as exc:
        raise SlrError(f"seccomp: loading the filter: {exc.strerror}") from None


def notify_fd(flt):
    sc = _pyseccomp()
    fd = sc._libseccomp.seccomp_notify_fd(flt._filter)
    if fd < 0:
        raise SlrError("seccomp: the filter has no notify descriptor")
    return fd


def send_to_listener(sock, fd, state, metadata):
    """Send the container process state and the notify fd (SCM_RIGHTS), as the
    runtime-spec's containerProcessState describes."""
    import _socket

    from slruntime import jsonlite

    message = {"ociVersion": state["ociVersion"], "fds": ["seccompFd"], "pid": state["pid"],
               "metadata": metadata or "", "state": state}
    payload = jsonlite.dumps(message).encode()
    fds = fd.to_bytes(4, sys.byteorder, signed=True)
    sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    os.close(fd)
