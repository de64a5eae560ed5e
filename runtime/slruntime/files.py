"""Reading and writing kernel interface files (/proc, /sys/fs/cgroup) with plain system
calls: open() would add a buffered, decoding file object and three more system calls
(fstat, the isatty ioctl, lseek) to each of the dozens of reads of a container start."""

import os


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
