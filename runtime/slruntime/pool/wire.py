"""Messages with descriptors over SOCK_SEQPACKET unix sockets (one JSON object each)."""

import array

import _socket

from slruntime import jsonlite

MAX_MESSAGE = 65536
MAX_FDS = 3


def send(sock, message, fds=()):
    payload = jsonlite.dumps(message).encode()
    if fds:
        sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
    else:
        sock.sendmsg([payload])


def recv(sock):
    """-> (message or None at end-of-file, [fds])"""
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(MAX_FDS * 4))
    fds = array.array("i")
    for level, kind, blob in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(blob[: len(blob) - len(blob) % fds.itemsize])
    if not data:
        return None, list(fds)
    return jsonlite.loads(data), list(fds)


def seqpacket_pair():
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def connect(path):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    sock.connect(path)
    return sock
