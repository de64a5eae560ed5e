"""Messages with descriptors over SOCK_SEQPACKET unix sockets (one JSON object each).

Imported by every `slr pool run`: only built-in modules and jsonlite (descriptors are
packed with int.to_bytes, not the array module).
"""

import errno
import sys

import _socket

from slruntime import jsonlite

MAX_MESSAGE = 65536
MAX_FDS = 3
_INT = 4  # bytes of a C int in SCM_RIGHTS


def send(sock, message, fds=()):
    """OSError(EMSGSIZE) for a message larger than MAX_MESSAGE: the receiver would get it cut
    (or the kernel refuse it) and read garbage."""
    payload = jsonlite.dumps(message).encode()
    if len(payload) > MAX_MESSAGE:
        raise OSError(errno.EMSGSIZE, f"message too long: a pool message holds at most {MAX_MESSAGE} bytes")
    if fds:
        packed = b"".join(fd.to_bytes(_INT, sys.byteorder, signed=True) for fd in fds)
        sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, packed)])
    else:
        sock.sendmsg([payload])


def recv(sock):
    """-> (message or None at end-of-file, [fds])"""
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(MAX_FDS * _INT))
    fds = []
    for level, kind, blob in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.extend(int.from_bytes(blob[i:i + _INT], sys.byteorder, signed=True)
                       for i in range(0, len(blob) - len(blob) % _INT, _INT))
    if not data:
        return None, fds
    return jsonlite.loads(data), fds


def seqpacket_pair():
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def connect(path):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    sock.connect(path)
    return sock
