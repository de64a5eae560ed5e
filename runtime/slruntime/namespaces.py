"""Namespaces: which to create, which to join by path, and user-namespace id maps."""

import os

from slruntime import files, libc
from slruntime.errors import SlrError, SpecError

CLONE_FLAGS = {
    "pid": libc.CLONE_NEWPID, "network": libc.CLONE_NEWNET, "mount": libc.CLONE_NEWNS,
    "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS, "user": libc.CLONE_NEWUSER,
    "cgroup": libc.CLONE_NEWCGROUP, "time": libc.CLONE_NEWTIME,
}
PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
              "user": "user", "cgroup": "cgroup", "time": "time"}
# Joining order: the user namespace first (it grants the rights to join the others),
# the mount namespace last (it changes how the other paths resolve).
JOIN_ORDER = ("user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount")


def open_join_targets(namespaces, settings=None):
    """Open every namespace path up front, in the runtime's own mount namespace, so a
    bad path is an error before anything is created.
    settings: {namespace type: the container's settings written into it}
    (spec.settings_in_namespaces); a namespace given by path that is the runtime's own
    (the host's) must have none: a sysctl or hostname written there would change the
    host's (runc refuses net.* sysctls there too)."""
    opened = []
    for ns_type in JOIN_ORDER:
        for i, ns in enumerate(namespaces):
            if ns.type == ns_type and ns.path:
                try:  # a FIFO there would block the open forever, a device could act
                    fd = files.open_regular(ns.path)
                except (OSError, ValueError) as exc:
                    _close_all(opened)
                    reason = exc.strerror if isinstance(exc, OSError) else f"{exc}, not a namespace"
                    raise SpecError(f"linux.namespaces[{i}].path", f"{ns.path}: {reason}") from None
                opened.append((ns.type, fd))
                if _namespace_type(fd) != CLONE_FLAGS[ns_type]:  # else setns says only "Invalid argument"
                    _close_all(opened)
                    raise SpecError(f"linux.namespaces[{i}].path", f"{ns.path} is not a {ns_type} namespace")
                written = (settings or {}).get(ns_type)
                if written and _is_runtimes_own(fd, ns_type):
                    _close_all(opened)
                    raise SpecError(f"linux.namespaces[{i}].path",
                                    f"{ns.path} is the runtime's own {ns_type} namespace: "
                                    f"{', '.join(written)} would change the host's")
    return opened


def _is_runtimes_own(fd, ns_type):
    """Whether the opened namespace is the one this process is in (the same nsfs inode,
    whatever path named it: /proc/1/ns/net, a bind mount under /run/netns...)."""
    joined = os.fstat(fd)
    own = os.stat(f"/proc/self/ns/{PROC_NAMES[ns_type]}")
    return (joined.st_dev, joined.st_ino) == (own.st_dev, own.st_ino)


_NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), linux/nsfs.h


def _namespace_type(fd):
    """The CLONE_NEW* type of the namespace `fd` refers to; None if it is no namespace."""
    import fcntl

    try:
        return fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError:
        return None


def _close_all(opened):
    for _, fd in opened:  # the pool manager lives on: no fd leaks
        os.close(fd)


def join(opened):
    for ns_type, fd in opened:
        try:
            libc.setns(fd, CLONE_FLAGS[ns_type])
        except OSError as exc:
            raise SlrError(f"namespace {ns_type}: {exc.strerror}") from None  # "setns: ..."
        finally:
            os.close(fd)


def runtime_forks_init(namespaces):
    """Whether the runtime can fork the container's init itself, without a stage 1.
    Creating or joining a pid or time namespace moves only the caller's future
    children; the runtime does that for one fork (fork_into_new_pid_namespace) when
    the pid namespace is a new one owned by its own user namespace. A pid namespace of
    a user namespace the container creates or joins, one given by path, and a time
    namespace need a process that enters them first: stage 1."""
    types = {ns.type: ns for ns in namespaces}
    pid = types.get("pid")
    if "time" in types:
        return False
    return pid is None or (pid.path is None and "user" not in types)


def fork_into_new_pid_namespace():
    """os.fork(), the child being pid 1 of a new pid namespace: the caller enters it for
    its next child only, and returns to its own pid namespace right after the fork."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            libc.unshare(libc.CLONE_NEWPID)
        except OSError as exc:
            raise SlrError(f"namespace pid: {exc.strerror}") from None  # "unshare: ..."
        child = -1
        try:
            child = os.fork()
        finally:
            if child != 0:
                libc.setns(own, libc.CLONE_NEWPID)
    finally:
        os.close(own)
    return child


def new_flags(namespaces, exclude=("user",)):
    flags = 0
    for ns in namespaces:
        if ns.path is None and ns.type not in exclude:
            flags |= CLONE_FLAGS[ns.type]
    return flags


def _format(mappings):
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def write_id_maps(pid, uid_mappings, gid_mappings):
    """Write /proc/PID/{uid,gid}_map. As root directly; unprivileged, a single
    mapping of our own ids is allowed directly, anything else goes through the
    setuid helpers newuidmap/newgidmap (package uidmap) and /etc/sub[ug]id."""
    euid = os.geteuid()
    if euid == 0 or _only_self(uid_mappings, euid):
        _write_map(pid, "uid_map", _format(uid_mappings))
    else:
        _helper("newuidmap", pid, uid_mappings)
    if euid == 0:
        _write_map(pid, "gid_map", _format(gid_mappings))
    elif _only_self(gid_mappings, os.getegid()):
        _write_map(pid, "setgroups", "deny")
        _write_map(pid, "gid_map", _format(gid_mappings))
    else:
        _helper("newgidmap", pid, gid_mappings)


def _only_self(mappings, host_id):
    return len(mappings) == 1 and mappings[0].host_id == host_id and mappings[0].size == 1


def _write_map(pid, name, text):
    try:
        files.write_once(f"/proc/{pid}/{name}", text)
    except OSError as exc:
        raise SlrError(f"user namespace: writing {name} {text.strip()!r}: {exc.strerror}") from None


def _helper(tool, pid, mappings):
    import shutil

    path = shutil.which(tool)
    if path is None:
        raise SlrError(f"user namespace: mapping several ids unprivileged needs {tool} (package uidmap)")
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    child = os.fork()
    if child == 0:
        try:
            os.execv(path, argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise SlrError(f"user namespace: {tool} failed (check /etc/sub{tool[3:6]} for this user)")


def write_time_offsets(offsets):
    """Must happen after unshare(CLONE_NEWTIME) and before any process enters it."""
    lines = "".join(f"{clock} {secs} {nsecs}\n" for clock, (secs, nsecs) in offsets.items())
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)
    except OSError as exc:
        raise SlrError(f"time namespace: writing offsets: {exc.strerror}") from None
