"""One notification, handled in a helper process forked by the server.

Reads the arguments from the caller's memory, resolves its paths inside its root,
decides from the container's rules and, if allowed, performs the call. Working in a
child keeps the server's loop free while a filesystem is slow, and keeps the
server's own namespaces untouched by setns. The outcome is a dict for the decision
log; outcome["errno"] is the answer the container gets (0 = success).

Arguments are read once into the helper's memory; the check and the operation use
that copy. A thread of the container that rewrites its buffers after the read
changes nothing, and the kernel never re-reads them (no "continue" answers).
"""

import errno
import os

from slruntime.fgac import notify, operations
from slruntime.fgac.policy import (
    NODE_TYPES,
    S_IFMT,
    UMOUNT_FLAGS,
    UMOUNT_NOFOLLOW,
    UNSUPPORTED_MOUNT_FLAGS,
    MOUNT_FLAGS,
    MountRequest,
    flag_names,
    normalise_mount_flags,
)
from slruntime.fgac.resolve import join, resolve, resolve_parent
from slruntime.fgac.target import Target, foreign_namespace

_PAGE = os.sysconf("SC_PAGE_SIZE")


class Denied(Exception):
    """The call is not allowed; the message says why, for the decision log."""


def handle(notify_fd, notif, syscall, rules, identity):
    """identity: the registered container's target.namespace_ids."""
    outcome = {"decision": "deny", "errno": errno.EPERM}
    try:
        target = Target(notif.pid)
    except OSError as exc:
        outcome.update(decision="gone", reason=f"caller vanished: {exc.strerror}")
        return outcome
    foreign = foreign_namespace(target.namespaces, identity)
    if foreign is not None:
        outcome["reason"] = f"pid {notif.pid} is not a thread of the registered container: its {foreign} namespace differs"
        return outcome
    # Handles and checks first, validity second: if the PID had been recycled before
    # the opens, the original caller is dead and its notification no longer valid.
    if not notify.id_valid(notify_fd, notif.id):
        outcome.update(decision="gone", reason="notification no longer valid")
        return outcome
    try:
        _HANDLERS[syscall](Call(notify_fd, notif, target, rules, outcome))
    except Denied as exc:
        outcome["reason"] = str(exc)
    # The helper exits right after this: its descriptors close with it.
    return outcome


class Call:
    __slots__ = ("notify_fd", "notif", "target", "rules", "outcome")

    def __init__(self, notify_fd, notif, target, rules, outcome):
        self.notify_fd, self.notif, self.target = notify_fd, notif, target
        self.rules, self.outcome = rules, outcome

    def string(self, index, what, limit=4096):
        try:
            return self.target.read_string(self.notif.args[index], limit)
        except OSError as exc:
            raise Denied(f"{what}: unreadable argument ({exc.strerror})") from None

    def resolve(self, what, path, follow_last=True):
        if not path or not path.startswith("/"):
            raise Denied(f"{what} {path!r}: only absolute paths are handled")
        try:
            return resolve(self.target.root_fd, path, follow_last)
        except OSError as exc:
            raise Denied(f"{what} {path}: {exc.strerror}") from None

    def allowed_by(self, rules, *request):
        rule, why = self.rules.first_allowing(rules, *request)
        if rule is None:
            raise Denied(why)
        return rule

    def perform(self, rule, operation, *args):
        """Check once more that the caller still waits, then act and report the
        operation's real result."""
        if not notify.id_valid(self.notify_fd, self.notif.id):
            self.outcome.update(decision="gone", reason="caller stopped waiting before the operation")
            return
        self.outcome.update(decision="allow", rule=rule.where)
        try:
            operation(*args)
            self.outcome["errno"] = 0
        except OSError as exc:
            self.outcome["errno"] = exc.errno or errno.EIO


def _mount(call):
    args = call.notif.args
    source = call.string(0, "source")
    target_path = call.string(1, "target")
    fstype = call.string(2, "fstype")
    flags = normalise_mount_flags(args[3])
    data = call.string(4, "data", limit=_PAGE) if not flags & MOUNT_FLAGS["bind"] else None
    call.outcome["args"] = {
        "source": source,
        "target": target_path,
        "fstype": fstype,
        "flags": flag_names(flags, MOUNT_FLAGS),
        "data": data,
    }
    if flags & UNSUPPORTED_MOUNT_FLAGS:
        raise Denied("remount, move and propagation changes are not handled")
    target = call.resolve("target", target_path)
    resolved = call.outcome["resolved"] = {"target": target.path}
    bind_source = None
    if flags & MOUNT_FLAGS["bind"]:
        bind_source = call.resolve("bind source", source)
        resolved["source"] = bind_source.path
    request = MountRequest(bind_source.path if bind_source else source, target.path, fstype or "", flags, data)
    rule = call.allowed_by(call.rules.mounts, request)
    if bind_source:
        call.perform(rule, operations.bind_mount, call.target.mount_ns_fd, bind_source.fd, target.fd, flags)
    else:
        target_ids = call.target.fsuid, call.target.fsgid
        call.perform(
            rule, operations.mount, call.target.mount_ns_fd, source, target.fd, fstype, flags, data, *target_ids
        )


def _umount(call, flags):
    target_path = call.string(0, "target")
    call.outcome["args"] = {"target": target_path, "flags": flag_names(flags, UMOUNT_FLAGS)}
    target = call.resolve("target", target_path, follow_last=not flags & UMOUNT_NOFOLLOW)
    call.outcome["resolved"] = {"target": target.path}
    rule = call.allowed_by(call.rules.umounts, target.path, flags)
    call.perform(rule, operations.umount, call.target.mount_ns_fd, target.fd, flags & ~UMOUNT_NOFOLLOW)


def _mknod_common(call, path, mode, dev):
    # The kernel takes a 16-bit mode and the old 32-bit device encoding.
    mode &= 0xFFFF
    dev &= 0xFFFFFFFF
    major, minor = (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
    node_type = mode & S_IFMT
    effective = node_type | (mode & 0o7777 & ~call.target.umask)
    call.outcome["args"] = {"path": path, "mode": f"{mode:06o}", "dev": f"{major}:{minor}"}
    if node_type not in NODE_TYPES.values():
        raise Denied("only character and block device nodes are handled")
    if not path or not path.startswith("/"):
        raise Denied(f"path {path!r}: only absolute paths are handled")
    try:
        parent, name = resolve_parent(call.target.root_fd, path)
    except OSError as exc:
        raise Denied(f"path {path}: {exc.strerror}") from None
    canonical = join(parent.path, name)
    call.outcome["resolved"] = {"path": canonical, "mode": f"{effective:06o}"}
    rule = call.allowed_by(call.rules.mknods, canonical, effective, major, minor)
    target = call.target
    call.perform(rule, operations.mknod, parent.fd, name, effective, major, minor, target.fsuid, target.fsgid)


def _mknod(call):
    args = call.notif.args
    _mknod_common(call, call.string(0, "path"), args[1], args[2])


def _mknodat(call):
    # dirfd only matters for relative paths, which are refused anyway.
    args = call.notif.args
    _mknod_common(call, call.string(1, "path"), args[2], args[3])


_HANDLERS = {
    "mount": _mount,
    "umount2": lambda call: _umount(call, call.notif.args[1] & 0xFFFFFFFF),
    "umount": lambda call: _umount(call, 0),
    "mknod": _mknod,
    "mknodat": _mknodat,
}
HANDLED = frozenset(_HANDLERS)
