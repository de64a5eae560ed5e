"""Reading an image nobody vetted and writing into its bundle, as root on a build host.

Every file `slr profile` reads from an image (config.json, ELF files, ld.so.conf,
ld-musl-*.path, Python sources) is opened here: never through a symlink (paths are
resolved inside the rootfs first, see rootfs.Rootfs), without blocking (a FIFO opens
at once and is then refused), and only if it is a regular file of bounded size. A FIFO
would hang the analysis, a device (/dev/zero) would be read without end.

Every file it writes (the profile, the report, config.json) is created under a new,
unpredictable name with O_EXCL|O_NOFOLLOW in the directory it belongs to (held open as a
descriptor) and renamed over the final name, which must be absent or a regular file: a
symlink or device the bundle carries in its place is never written through.
"""

import os
import stat

_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class RefusedFile(ValueError):
    """A file the analyser will not read or write; the message is one line naming it."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def describe(mode):
    """What a file of this mode is, for messages."""
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _limit(size):
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size} bytes"


def open_regular(path, max_size):
    """A descriptor of the regular file `path` (not followed if a symlink) and its stat.

    OSError if it cannot be opened; RefusedFile if it is not a regular file or is larger
    than `max_size` bytes. The caller closes the descriptor.
    """
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):      # checked before open(): opening a device can act
        raise RefusedFile(path, f"{describe(info.st_mode)}, not a regular file")
    fd = os.open(path, _READ_FLAGS)
    try:
        info = os.fstat(fd)                 # the file opened, whatever was swapped in meanwhile
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile(path, f"{describe(info.st_mode)}, not a regular file")
        if info.st_size > max_size:
            raise RefusedFile(path, f"larger than the limit of {_limit(max_size)}")
        return fd, info
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, max_size):
    """The contents of the regular file `path` (see open_regular)."""
    fd, info = open_regular(path, max_size)
    try:
        return read_at(fd, 0, info.st_size)
    finally:
        os.close(fd)


def read_header(path, size):
    """The first `size` bytes of `path` if it is a regular file, else None (any error)."""
    try:
        fd, _ = open_regular(path, float("inf"))
    except (OSError, RefusedFile):
        return None
    try:
        return os.pread(fd, size, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_at(fd, offset, size):
    """`size` bytes at `offset` (fewer at the end of the file)."""
    chunks = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_file(path, data, keep_mode=True):
    """Write `data` (bytes) to `path`: a new file renamed into place.

    The final name must be absent or a regular file (replaced; its permission bits are
    kept when `keep_mode`). RefusedFile for a symlink, directory, device or FIFO there;
    OSError if the directory cannot be written. Nothing is left behind on failure.
    """
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            existing = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise RefusedFile(path, f"{describe(existing.st_mode)}, not replaced")
        temporary = f".{name}.{os.urandom(8).hex()}.tmp"
        fd = os.open(temporary, _CREATE_FLAGS, 0o666, dir_fd=dir_fd)
        try:
            try:
                if existing is not None and keep_mode:
                    os.fchmod(fd, stat.S_IMODE(existing.st_mode) & 0o777)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            # rename() replaces the name itself: were a link put there meanwhile, the link
            # is replaced, never followed.
            os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    finally:
        os.close(dir_fd)


def walk(top):
    """(directory, subdirectory names, file names) of the tree under `top`, like os.walk
    but without recursion (an image may nest directories thousands deep) and without
    following symlinked directories. OSError if a directory cannot be listed."""
    pending = [top]
    while pending:
        directory = pending.pop()
        subdirs, files = [], []
        with os.scandir(directory) as entries:
            for entry in entries:
                (subdirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
        yield directory, subdirs, files
        pending.extend(os.path.join(directory, name) for name in reversed(subdirs))
