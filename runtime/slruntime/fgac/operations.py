"""The privileged operations, performed for the container by a forked helper.

Mounts must be made from inside the container's mount namespace (the kernel only
attaches a mount to a mount point in the caller's own namespace), so the helper joins
it with setns on the calling thread's /proc/TID/ns/mnt. setns moves the helper's root
to that namespace's root; the helper then goes back to the host root it held open,
so that:
  - the target is the descriptor the careful walk (resolve.py) ended on (named as
    /proc/self/fd/N, or passed to move_mount), never a path the container could change;
  - a device source such as /dev/mmcblk0p3 names the host's device, as written in
    the policy, not whatever the container put at that path.
The server itself never calls setns: its own namespaces stay intact.
"""

import ctypes
import errno
import os

from slruntime import libc

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
# The new mount API (Linux 5.2; mount_setattr 5.12): numbers shared by all machines.
_SYSCALL_NUMBERS = {"open_tree": 428, "move_mount": 429, "mount_setattr": 442}
_OPEN_TREE_CLONE, _AT_EMPTY_PATH, _AT_RECURSIVE = 0x1, 0x1000, 0x8000
_MOVE_MOUNT_F_EMPTY_PATH, _MOVE_MOUNT_T_EMPTY_PATH = 0x4, 0x40
_MOUNT_ATTR_ATIME_MASK = 0x70
_MOUNT_ATTRS = (
    (libc.MS_RDONLY, 0x1),
    (libc.MS_NOSUID, 0x2),
    (libc.MS_NODEV, 0x4),
    (libc.MS_NOEXEC, 0x8),
    (libc.MS_NOATIME, 0x10),
    (libc.MS_STRICTATIME, 0x20),
    (libc.MS_NODIRATIME, 0x80),
    (libc.MS_NOSYMFOLLOW, 0x200000),
)


def _syscall_fd(name, *args):
    result = _libc.syscall(ctypes.c_long(_SYSCALL_NUMBERS[name]), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return result


def _enter_mount_namespace(mount_ns_fd):
    host_root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    libc.setns(mount_ns_fd, libc.CLONE_NEWNS)
    os.fchdir(host_root)
    os.chroot(".")
    os.close(host_root)


def _use_filesystem_ids(uid, gid):
    """Take the caller's filesystem uid/gid. A filesystem created at mount time (tmpfs,
    ramfs) then has its root owned by the caller, as if it had mounted it itself;
    CAP_SYS_ADMIN stays, the file-access capabilities go (kernel rule for fsuid != 0)."""
    _libc.setfsgid(gid)
    _libc.setfsuid(uid)
    # set*fsid report nothing but the previous value: a second call reads it back.
    if _libc.setfsgid(gid) != gid or _libc.setfsuid(uid) != uid:
        raise OSError(errno.EPERM, "cannot take the caller's filesystem ids")


def mount(mount_ns_fd, source, target_fd, fstype, flags, data, uid, gid):
    _enter_mount_namespace(mount_ns_fd)
    _use_filesystem_ids(uid, gid)
    libc.mount(source, f"/proc/self/fd/{target_fd}", fstype, flags, data)


def bind_mount(mount_ns_fd, source_fd, target_fd, flags):
    """Bind with the new mount API: mount(2) ignores ro/nosuid/nodev/noexec on a
    bind and needs a second remount call; here the copy gets its attributes before it
    is attached, so it is never visible without them."""
    _enter_mount_namespace(mount_ns_fd)
    recursive = _AT_RECURSIVE if flags & libc.MS_REC else 0
    tree = _syscall_fd("open_tree", source_fd, b"", _OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_EMPTY_PATH | recursive)
    attr_set, attr_clr = 0, 0
    for ms_flag, attr in _MOUNT_ATTRS:
        if flags & ms_flag:
            attr_set |= attr
    if flags & (libc.MS_NOATIME | libc.MS_STRICTATIME | libc.MS_RELATIME):
        attr_clr |= _MOUNT_ATTR_ATIME_MASK
    if attr_set or attr_clr:
        attrs = (ctypes.c_uint64 * 4)(attr_set, attr_clr, 0, 0)
        _syscall_fd("mount_setattr", tree, b"", _AT_EMPTY_PATH | recursive, ctypes.byref(attrs), ctypes.sizeof(attrs))
    _syscall_fd("move_mount", tree, b"", target_fd, b"", _MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH)


def umount(mount_ns_fd, target_fd, flags):
    _enter_mount_namespace(mount_ns_fd)
    libc.umount2(f"/proc/self/fd/{target_fd}", flags)


def mknod(parent_fd, name, mode, major, minor, uid, gid):
    """Create the node as the kernel would have for the caller: its umask is already
    applied to `mode` and the node belongs to its filesystem uid/gid."""
    os.umask(0)
    os.mknod(name, mode, os.makedev(major, minor), dir_fd=parent_fd)
    try:
        os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        os.unlink(name, dir_fd=parent_fd)
        raise
