"""The privileged operations, performed for the container by a forked helper.

Mounts must be made from inside the container's mount namespace (the kernel only
attaches a mount to a mount point in the caller's own namespace), so the helper joins
it with setns(pidfd, CLONE_NEWNS). setns moves the helper's root to that namespace's
root; the helper then goes back to the host root it held open, so that:
  - the target is named through /proc/self/fd/N, the descriptor the careful walk
    (resolve.py) ended on, never through a path the container could change;
  - a device source such as /dev/mmcblk0p3 names the host's device, as written in
    the policy, not whatever the container put at that path.
The server itself never calls setns: its own namespaces stay intact.
"""

import ctypes
import errno
import os

from slruntime import libc

_libc = ctypes.CDLL("libc.so.6")


def _enter_mount_namespace(pidfd):
    host_root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    libc.setns(pidfd, libc.CLONE_NEWNS)
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


def mount(pidfd, source, target_fd, fstype, flags, data, uid, gid, bind_source_fd=None):
    _enter_mount_namespace(pidfd)
    if bind_source_fd is not None:
        source, fstype, data = f"/proc/self/fd/{bind_source_fd}", None, None
    _use_filesystem_ids(uid, gid)
    libc.mount(source, f"/proc/self/fd/{target_fd}", fstype, flags, data)


def umount(pidfd, target_fd, flags):
    _enter_mount_namespace(pidfd)
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
