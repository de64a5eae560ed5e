"""The process that made a notified syscall, seen from the server.

Everything is opened through /proc/PID, then the caller confirms the notification is
still valid (notify.id_valid): that proves the PID was not recycled in between, so
the descriptors below belong to the real caller.

Which container a process belongs to, as far as the server acts for it: its mount,
user and pid namespaces (namespace_ids). A container is registered with those of the
process the runtime names (container_identity), and each notification is served only
for a thread in exactly those namespaces: a trusted client that hands the server the
listener of a filter on some other process (a plain host process, one in a namespace
of its own) gets nothing done in that process's namespaces.
"""

import os

NAMESPACES = ("mnt", "user", "pid")

_PAGE = os.sysconf("SC_PAGE_SIZE")
PATH_MAX = 4096


class Target:
    """The calling thread (the notification's pid is a thread id)."""

    def __init__(self, pid):
        self.pid = pid
        # /proc/PID/ns/mnt rather than a pidfd: the notification names the calling
        # *thread*, and pidfd_open refuses thread ids before Linux 6.9; every file
        # below is per thread too (root, credentials and umask can differ per thread).
        self.mount_ns_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        self.mem_fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        # The caller's root directory: its pivot_root/chroot view of the filesystem.
        self.root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.umask, self.fsuid, self.fsgid = _read_status(pid)
        self.namespaces = namespace_ids(pid)

    def read_string(self, address, limit=PATH_MAX):
        """A NUL-terminated string from the target's memory, read page by page so an
        unmapped page after a short string does not fail the read. Returns None for a
        NULL pointer; raises OSError(EFAULT) for unreadable memory and
        OSError(ENAMETOOLONG) past `limit` bytes (the kernel's own limit for paths)."""
        if address == 0:
            return None
        out = bytearray()
        while len(out) < limit:
            chunk_len = min(_PAGE - (address % _PAGE), limit - len(out))
            try:
                chunk = os.pread(self.mem_fd, chunk_len, address)
            except OSError as exc:
                raise OSError(14, "bad address") from exc
            if not chunk:
                raise OSError(14, "bad address")
            end = chunk.find(b"\0")
            if end >= 0:
                out += chunk[:end]
                return os.fsdecode(bytes(out))
            out += chunk
            address += len(chunk)
        raise OSError(36, "string too long")

    def close(self):
        for fd in (self.mount_ns_fd, self.mem_fd, self.root_fd):
            os.close(fd)


def namespace_ids(pid):
    """(device, inode) of each of the NAMESPACES of process or thread `pid`."""
    ids = []
    for name in NAMESPACES:
        st = os.stat(f"/proc/{pid}/ns/{name}")
        ids.append((st.st_dev, st.st_ino))
    return tuple(ids)


class NotAContainer(Exception):
    """The process a client names is not one the server may act for."""


def container_identity(pid):
    """The namespace_ids of the container process `pid` a client registers, refused
    when it is not in a container: the server's own mount namespace or root directory
    would make every allowed call an operation on the host."""
    try:
        ids = namespace_ids(pid)
        root = os.stat(f"/proc/{pid}/root")
    except OSError as exc:
        raise NotAContainer(f"pid {pid}: {exc.strerror}") from None
    own_root = os.stat("/")
    if ids[0] == namespace_ids("self")[0]:
        raise NotAContainer(f"pid {pid} is not in a container: it shares the server's mount namespace")
    if (root.st_dev, root.st_ino) == (own_root.st_dev, own_root.st_ino):
        raise NotAContainer(f"pid {pid} is not in a container: its root directory is the server's")
    return ids


def foreign_namespace(caller, identity):
    """The name of the first namespace in which `caller` (namespace_ids of a thread)
    differs from the registered container's `identity`; None if it is a thread of it."""
    for name, theirs, ours in zip(NAMESPACES, caller, identity):
        if theirs != ours:
            return name
    return None


def _read_status(pid):
    """umask and filesystem uid/gid (as host ids) of the caller: mknod creates the node
    the way the kernel would have for the caller itself."""
    umask, fsuid, fsgid = 0o022, 0, 0
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                umask = int(line.split()[1], 8)
            elif line.startswith(b"Uid:"):
                fsuid = int(line.split()[4])
            elif line.startswith(b"Gid:"):
                fsgid = int(line.split()[4])
    return umask, fsuid, fsgid
