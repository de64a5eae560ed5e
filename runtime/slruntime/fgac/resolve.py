"""Path resolution inside a container's root, the way the container sees it.

A careful walk, one component at a time, each opened O_PATH|O_NOFOLLOW relative to
the descriptor of the directory before it. Symlinks are read and spliced in by hand:
absolute ones restart at the container's root, ".." never climbs above it, and
/proc "magic" links are treated as the plain text they show, never followed by the
kernel. The result is the canonical in-container path (what the policy is checked
against) together with a descriptor of exactly the object that path named during the
walk: the operation is then applied to that descriptor, so the container cannot swap
a component for a symlink between the check and the use.
"""

import errno
import os
import stat

MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)
_OPEN_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class Resolved:
    """An in-container path and an O_PATH descriptor of what it names."""

    __slots__ = ("path", "fd")

    def __init__(self, path, fd):
        self.path, self.fd = path, fd

    def close(self):
        os.close(self.fd)


def resolve(root_fd, path, follow_last=True):
    """Resolve an absolute `path` below `root_fd`. OSError with the errno the kernel
    would give (ENOENT, ENOTDIR, ELOOP) when it cannot be resolved."""
    if not path.startswith("/"):
        raise OSError(errno.EINVAL, "relative path")
    stack = [os.dup(root_fd)]  # descriptors of the directories walked so far
    names = []
    pending = path.split("/")[::-1]  # components still to walk, next one last
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if names:
                    names.pop()
                    os.close(stack.pop())
                continue
            fd = os.open(name, _OPEN_FLAGS, dir_fd=stack[-1])
            mode = os.fstat(fd).st_mode
            is_last = not any(part not in ("", ".") for part in pending)
            if stat.S_ISLNK(mode) and (follow_last or not is_last):
                try:
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many symbolic links")
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    names.clear()
                pending.extend(target.split("/")[::-1])
                continue
            if not is_last and not stat.S_ISDIR(mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, "not a directory")
            stack.append(fd)
            names.append(name)
        return Resolved("/" + "/".join(names), stack.pop())
    finally:
        for fd in stack:
            os.close(fd)


def resolve_parent(root_fd, path):
    """For calls that create `path` (mknod): the resolved parent directory and the
    final name, which is not followed (mknod fails with EEXIST on an existing
    symlink, and so will the real call made here)."""
    head, _, name = path.rstrip("/").rpartition("/")
    if name in ("", ".", ".."):
        raise OSError(errno.EEXIST, "not a creatable name")
    parent = resolve(root_fd, head or "/")
    return parent, name


def join(directory, name):
    return directory.rstrip("/") + "/" + name


def is_within(path, prefix):
    """True if canonical `path` is `prefix` or lies below it, component-wise
    (/mnt/data allows /mnt/data/x, not /mnt/database)."""
    prefix = prefix.rstrip("/") or "/"
    return path == prefix or path.startswith(prefix if prefix == "/" else prefix + "/")
