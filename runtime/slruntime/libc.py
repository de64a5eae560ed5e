"""The few libc functions and raw system calls the standard library does not offer.

Loaded by soname, never through ctypes.util.find_library (which runs ldconfig/gcc and
fails on embedded targets without them).
"""

import ctypes
import errno
import os

_libc = ctypes.CDLL("libc.so.6", use_errno=True)

# Syscalls glibc does not wrap everywhere, by machine (uname -m).
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "ioprio_set": 251, "sched_setattr": 314, "setns": 308},
    "aarch64": {"pivot_root": 41, "ioprio_set": 30, "sched_setattr": 274, "setns": 268},
    "armv7l": {"pivot_root": 218, "ioprio_set": 314, "sched_setattr": 380, "setns": 375},
    "riscv64": {"pivot_root": 41, "ioprio_set": 30, "sched_setattr": 274, "setns": 268},
}
_SYSCALLS["armv8l"] = _SYSCALLS["armv7l"]
# Numbers shared by every architecture (added after the syscall tables were unified).
_COMMON = {"pidfd_open": 434, "close_range": 436, "openat2": 437, "pidfd_getfd": 438}

_nr = dict(_SYSCALLS.get(os.uname().machine, {}))
_nr.update(_COMMON)

_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 1 << 2

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


def _check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(path):
    return None if path is None else os.fsencode(path)


def mount(source, target, fstype, flags=0, data=None):
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
        f"mount {target}",
    )


def umount2(target, flags=0):
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root, put_old):
    _check(_syscall(_nr["pivot_root"], _b(new_root), _b(put_old)), "pivot_root")


def unshare(flags):
    _check(_libc.unshare(flags), "unshare")


def setns(fd, nstype=0):
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name):
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name):
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(
        _libc.prctl(
            option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)
        ),
        "prctl",
    )


def close_range_cloexec(first):
    """Mark every descriptor from `first` on close-on-exec, whatever opened it."""
    if _syscall(_nr["close_range"], first, ctypes.c_uint(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC) == 0:
        return
    if ctypes.get_errno() not in (errno.EPERM, errno.ENOSYS, errno.EINVAL):
        _check(-1, "close_range")
    # A seccomp profile loaded early (no noNewPrivileges) may deny close_range, and old
    # kernels lack it: walk /proc/self/fd instead, as runc does.
    import fcntl

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.fcntl(fd, fcntl.F_GETFD) | fcntl.FD_CLOEXEC)
            except OSError:
                pass  # the directory's own descriptor, already closed


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, resolve, mode=0):
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(
        _syscall(_nr["openat2"], dirfd, _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))),
        f"open {path}",
    )


def pidfd_getfd(pidfd, targetfd):
    return _check(_syscall(_nr["pidfd_getfd"], pidfd, targetfd, 0), "pidfd_getfd")


def ioprio_set(which, who, ioprio):
    _check(_syscall(_nr["ioprio_set"], which, who, ioprio), "ioprio_set")


class _SchedAttr(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    _check(_syscall(_nr["sched_setattr"], pid, ctypes.byref(attr), 0), "sched_setattr")


class _RLimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


def setrlimit(resource, soft, hard):
    """prlimit(2) on ourselves; the `resource` module is an extension that is not
    importable once the process has pivoted into the container."""
    limit = _RLimit(soft, hard)
    _check(_libc.prlimit(0, resource, ctypes.byref(limit), None), f"setrlimit {resource}")
