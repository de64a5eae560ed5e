"""Who may start processes in a pool, and which descriptors they may hand in as stdio.

A request gets a process run as the pool's config user (host root without a user
namespace) inside a container: the socket's mode is the first gate, the peer's
credentials (SO_PEERCRED, checked at accept) the second. Allowed: root, the pool's
owner (who ran `slr pool create`) and, with `--socket-group`, that group's members
(primary or supplementary group).

The stdio descriptors of a request become the container's. A container reaches any of
them as /proc/self/fd/N, and opening that magic link reopens the *file* with the
container's credentials, not with the access the client had: a client's read-only
descriptor of /etc/passwd becomes writable for a container running as root, a
directory or an O_PATH descriptor opens the host's tree, a pidfd or another anonymous
inode acts on host processes. So a descriptor is accepted only when it is an anonymous
pipe or a socket (nothing to reopen beyond their own data), or a file, device or named
FIFO that the client owns, or the harmless /dev/null, /dev/zero and /dev/full. Root
and the pool's owner may pass any file: the container has no rights they lack (a
pool's containers run with at most its owner's). Directories, O_PATH descriptors and
anonymous inodes are refused to everyone.
"""

import fcntl
import os
import stat
import struct

import _socket

_SO_PEERGROUPS = 59  # asm-generic/socket.h (Linux 4.13)
_MAX_GROUPS = 256  # what getsockopt's 1024-byte buffer holds: beyond, only the primary group counts
_O_PATH = 0o10000000
_HARMLESS_DEVICES = ((1, 3), (1, 5), (1, 7))  # null, zero, full
_STDIO_NAMES = ("stdin", "stdout", "stderr")


class Refused(Exception):
    """One line saying why a peer or descriptor is not accepted."""


class Peer:
    __slots__ = ("pid", "uid", "gid", "groups")

    def __init__(self, sock):
        self.pid, self.uid, self.gid = struct.unpack(
            "3i", sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))
        try:
            raw = sock.getsockopt(_socket.SOL_SOCKET, _SO_PEERGROUPS, _MAX_GROUPS * 4)
            self.groups = struct.unpack(f"{len(raw) // 4}I", raw[:len(raw) - len(raw) % 4])
        except OSError:  # ERANGE (more groups than that) or an old kernel
            self.groups = ()


class AllowList:
    """root, the pool's owner, and members of the socket's group (if any)."""

    __slots__ = ("owner", "group")

    def __init__(self, owner, group=None):
        self.owner = owner
        self.group = group

    def check(self, peer):
        if peer.uid in (0, self.owner):
            return
        if self.group is not None and (peer.gid == self.group or self.group in peer.groups):
            return
        raise Refused(f"uid {peer.uid} may not start processes in this pool")


def check_stdio(fds, peer, allowed):
    """Raise Refused naming the first descriptor a container must not get (see above);
    allowed: the pool's AllowList."""
    for index, fd in enumerate(fds):
        why = _why_not(fd, peer, allowed.owner)
        if why:
            raise Refused(f"request: {_STDIO_NAMES[index]}: {why}")


def _why_not(fd, peer, owner):
    if fcntl.fcntl(fd, fcntl.F_GETFL) & _O_PATH:
        return "an O_PATH descriptor cannot be a container's stdio"
    st = os.fstat(fd)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a directory cannot be a container's stdio"
    if stat.S_ISSOCK(mode):
        return None
    if stat.S_ISFIFO(mode) and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:["):
        return None  # anonymous: reopening it gives only the pipe itself
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
        return "only pipes, sockets, files and devices can be a container's stdio"
    if peer.uid in (0, owner) or st.st_uid == peer.uid:
        return None
    if stat.S_ISCHR(mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) in _HARMLESS_DEVICES:
        return None
    return (f"the container could reopen it with its own rights: pass a pipe, or a file "
            f"of uid {peer.uid} (this one is uid {st.st_uid}'s)")
