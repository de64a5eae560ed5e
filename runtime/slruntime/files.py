"""Writing kernel interface files (/proc, /sys/fs/cgroup): one open, one write."""

import os


def write_once(path, data, extra_flags=0):
    """Write `data` (str or bytes) in a single write(2); raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | extra_flags)
    try:
        os.write(fd, data if isinstance(data, bytes) else str(data).encode())
    finally:
        os.close(fd)
