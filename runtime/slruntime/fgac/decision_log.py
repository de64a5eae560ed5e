"""The structured decision log: one JSON object per line.

Written to stderr or to a file on a RAM-backed filesystem only: on an embedded board
a decision log must never wear out or fill the boot medium, so any other filesystem
is refused at start.
"""

import ctypes
import errno
import os
import sys
import time

from slruntime import jsonlite
from slruntime.errors import SlrError

_RAM_FILESYSTEMS = {0x01021994: "tmpfs", 0x858458F6: "ramfs"}


def _filesystem_magic(path):
    # struct statfs starts with the filesystem type, a machine word on Linux.
    buf = ctypes.create_string_buffer(256)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise SlrError(f"--log {path}: {os.strerror(err)}")
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF


class DecisionLog:
    def __init__(self, path=None):
        if path is None:
            self.fd = sys.stderr.fileno()
            return
        directory = os.path.dirname(os.path.abspath(path))
        if _filesystem_magic(directory) not in _RAM_FILESYSTEMS:
            raise SlrError(f"--log {path}: not on tmpfs or ramfs (the log must not go to the boot medium)")
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise SlrError(f"--log {path}: {exc.strerror}") from None

    def write(self, event, **fields):
        record = {"ts": round(time.time(), 6), "event": event}
        record.update(fields)
        if "errno" in record:
            code = record["errno"]
            record["errno"] = errno.errorcode.get(code, str(code)) if code else "OK"
        # One write per line: O_APPEND keeps concurrent writers' lines whole.
        try:
            os.write(self.fd, (jsonlite.dumps(record) + "\n").encode("utf-8", "surrogateescape"))
        except OSError:
            pass  # a full tmpfs must not stop the server from answering containers
