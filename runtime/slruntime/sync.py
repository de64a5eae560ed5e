"""The pipe pair between the runtime and the container's init during setup.

Messages are one JSON object per line, their types and order in `protocol`. An
{"error": ...} message carries the one-line reason a child failed; end-of-file means
it died without saying why.
"""

import os

from slruntime import jsonlite, protocol
from slruntime.errors import SlrError


class Channel:
    def __init__(self, read_fd, write_fd, peer=None):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.peer = peer  # the runtime side names the child, to report its death in one line
        self.late_error_fd = None  # the child side: where to report once the channel is closed
        self._buffer = b""

    @classmethod
    def pair(cls):
        """Two connected channels: (runtime side, child side)."""
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        return cls(up_r, down_w, "the container's init"), cls(down_r, up_w)

    def send(self, message):
        try:
            os.write(self.write_fd, jsonlite.dumps(message).encode() + b"\n")
        except BrokenPipeError:
            if self.peer is None:
                raise  # the child side: its callers handle OSError
            self.recv()  # raises the child's last word, the error that ended it, if it left one
            raise SlrError(f"{self.peer} exited during setup") from None

    def recv(self, what="the container's init"):
        while b"\n" not in self._buffer:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                raise SlrError(f"{what} exited during setup")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = jsonlite.loads(line)
        if "error" in message:
            raise SlrError(message["error"])
        return message

    def expect(self, kind, what="the container's init"):
        message = self.recv(what)
        if message.get("type") != kind:
            raise SlrError(f"{what}: expected {kind}, got {message.get('type')}")
        return message

    def close(self):
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except (OSError, TypeError):
                pass
        self.read_fd = self.write_fd = None

    def fail(self, message):
        """A child's last word: on the channel while the runtime listens, else (after
        `create` returned) in late_error_fd, which `start` reports to its caller (the
        container's stderr may be a terminal), else on stderr."""
        try:
            if self.write_fd is not None:
                self.send({"error": message})
            elif self.late_error_fd is not None:
                os.write(self.late_error_fd, message.encode(errors="replace"))
            else:
                os.write(2, f"slr: {message}\n".encode())
        except OSError:
            pass


def run_child(channel, what, body, *args):
    """Run `body(*args)` as the whole life of a forked child: whatever it raises is
    reported in one line, and the child exits; it never returns into the caller."""
    try:
        body(*args)
    except SlrError as exc:
        channel.fail(str(exc))
    except OSError as exc:
        channel.fail(f"{what}: {exc}")
    except BaseException as exc:
        channel.fail(f"{what}: internal error: {exc!r}")
    os._exit(1)


def fork_and_report(channel):
    """Fork; the parent reports the child's pid on `channel` and exits, and the child
    returns only once that report is written, so messages arrive in order."""
    gate_r, gate_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(gate_w)
        os.read(gate_r, 1)
        os.close(gate_r)
        return
    os.close(gate_r)
    channel.send({"type": protocol.PID, "pid": pid})
    os.write(gate_w, b"1")
    os._exit(0)
