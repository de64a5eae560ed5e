"""A small client of the pool socket, for app managers and `slr pool run`.

Needs only _socket and _json: a resident Python process can start containers
without starting an interpreter (the protocol is in PROTOCOL.md for other languages).
"""

from slruntime.errors import SlrError
from slruntime.pool import wire


class PoolUnreachable(SlrError):
    """Nothing accepts connections on the socket: no such pool, or its manager is dead."""


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
        finally:
            self.sock.close()
        if message is None or "exit" not in message:
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
    if reply is None or "error" in reply:
        sock.close()
        raise SlrError(reply["error"] if reply else "pool: the manager closed the connection")
    started = Started(sock, reply["id"], reply["pid"], fds[0] if fds else None)
    if not wait:
        sock.close()
    return started
