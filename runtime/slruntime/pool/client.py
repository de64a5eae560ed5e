"""A small client of the pool socket, for app managers and `slr pool run`.

Needs only _socket and _json: a resident Python process can start containers
without starting an interpreter (the protocol is in PROTOCOL.md for other languages).
"""

import os

from slruntime.errors import SlrError
from slruntime.pool import wire


class PoolUnreachable(SlrError):
    """Nothing accepts connections on the socket: no such pool, or its manager is dead."""


MALFORMED = "pool: the manager's answer is not one of the protocol's"
_INT_RANGE = range(-2 ** 31, 2 ** 31)  # a C int: what the C client reads (pool_client.c)


def _is_int(value):
    return type(value) is int and value in _INT_RANGE


class Started:
    __slots__ = ("sock", "id", "pid", "pty")

    def __init__(self, sock, container_id, pid, pty):
        self.sock = sock
        self.id = container_id
        self.pid = pid
        self.pty = pty

    def wait(self):
        """Block until the process exits; returns its exit code (128+N for signal N)."""
        try:
            message, _ = wire.recv(self.sock)
        except ValueError:  # not JSON
            message = None
        finally:
            self.sock.close()
        if not isinstance(message, dict) or not _is_int(message.get("exit")):
            raise SlrError(f"pool: lost the manager while {self.id} ran")
        return message["exit"]


def start(socket_path, args, env=None, cwd=None, terminal=False, stdio=(0, 1, 2), wait=True, console_size=None):
    """Hand `args` to a ready container of the pool; returns a Started.
    console_size: (rows, columns) of the pty when terminal is set."""
    request = {"args": list(args), "wait": wait}
    if terminal and console_size:
        request["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    if env:
        request["env"] = list(env)
    if cwd:
        request["cwd"] = cwd
    if terminal:
        request["terminal"] = True
    try:
        sock = wire.connect(socket_path)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise PoolUnreachable(f"pool socket {socket_path}: {exc.strerror}") from None
    except OSError as exc:  # EACCES: the pool is not this user's to use
        raise SlrError(f"pool socket {socket_path}: {exc.strerror}") from None
    try:
        try:
            wire.send(sock, request, () if terminal else stdio)
            reply, fds = wire.recv(sock)
        except (BrokenPipeError, ConnectionResetError):
            # Refused: the manager answered and closed without reading the request. The
            # kernel reports that reset before the answer queued behind it.
            reply, fds = wire.recv(sock)
    except OSError as exc:
        sock.close()
        raise SlrError(f"pool: {exc.strerror}") from None
    except ValueError:  # not JSON
        reply, fds = (), []
    if reply is None or not _is_answer(reply):
        sock.close()
        for fd in fds:
            os.close(fd)
        raise SlrError(MALFORMED if reply is not None else "pool: the manager closed the connection")
    if "error" in reply:
        sock.close()
        raise SlrError(reply["error"])
    started = Started(sock, reply["id"], reply["pid"], fds[0] if fds else None)
    if not wait:
        sock.close()
    return started


def _is_answer(reply):
    """The first answer: an error, or the started process's id and (positive) pid."""
    if not isinstance(reply, dict):
        return False
    if "error" in reply:
        return isinstance(reply["error"], str)
    return isinstance(reply.get("id"), str) and _is_int(reply.get("pid")) and reply["pid"] > 0
