"""Reading and writing files with plain system calls: kernel interface files (/proc,
/sys/fs/cgroup), where open() would add a buffered, decoding file object and three more
system calls (fstat, the isatty ioctl, lseek) to each of the dozens of reads of a
container start; and files named by a bundle or a caller (open_regular, read_regular)."""

import os
import stat


def write_once(path, data, extra_flags=0):
    """Write `data` (str or bytes) in a single write(2); raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | extra_flags)
    try:
        os.write(fd, data if isinstance(data, bytes) else str(data).encode())
    finally:
        os.close(fd)


def read(path):
    """The whole file as bytes; raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:  # until end of file: a short read does not tell it in /proc
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def open_regular(path):
    """A read-only descriptor of `path`, which must be a regular file (ValueError if it
    is not; OSError if it cannot be opened). A bundle or a config may name anything: a
    FIFO blocks its reader forever, /dev/zero or /proc/kmsg never ends, and merely
    opening some devices acts (a watchdog starts). So the path is opened with O_PATH,
    which opens nothing, and only a regular file is then opened for reading.
    (Namespace files of /proc/PID/ns and their bind mounts are regular files too.)"""
    handle = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise ValueError("is not a regular file")
        return os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        os.close(handle)


def read_regular(path, max_size):
    """The bytes of `path`, which must be a regular file (see open_regular) of at most
    `max_size` bytes; raises OSError, or ValueError naming the problem."""
    fd = open_regular(path)
    try:
        chunks = []
        left = max_size + 1  # bounded by what is read, not by st_size: /proc files say 0
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    if left <= 0:
        raise ValueError(f"is larger than {max_size >> 20} MiB" if max_size >= 1 << 20 else
                         f"is larger than {max_size} bytes")
    return b"".join(chunks)
