"""A console socket of our own for `slr run`/`exec` in the foreground with a terminal:
receive the pty master the container sends, and copy between it and our stdio."""

import os
import select
import struct
import tempfile

import _socket

SCM_RIGHTS = _socket.SCM_RIGHTS


class ConsoleProxy:
    def __init__(self, listen=True):
        self.master = None
        self._saved_tty = None
        self._dir = self.socket_path = self._listener = None
        if listen:
            self._dir = tempfile.mkdtemp(prefix="slr-console-")
            self.socket_path = os.path.join(self._dir, "console.sock")
            self._listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            self._listener.bind(self.socket_path)
            self._listener.listen(1)

    @classmethod
    def for_master(cls, master):
        """Proxy a pty master received some other way (e.g. from a pool)."""
        proxy = cls(listen=False)
        proxy.master = master
        return proxy

    def accept_console(self):
        fd, _ = self._listener._accept()  # _socket has no accept(): socket.py adds it
        conn = _socket.socket(fileno=fd)
        try:
            self.master = receive_pty(conn)
        finally:
            conn.close()

    def copy_until_exit(self, pid):
        """Copy stdin -> pty and pty -> stdout until the pty closes (the process exited)."""
        import termios
        import tty

        if os.isatty(0):
            import _signal

            self._saved_tty = termios.tcgetattr(0)
            tty.setraw(0)
            self._copy_window_size()
            # The caller's terminal resized: the pty gets its size (runc's console does
            # the same; forwarding SIGWINCH alone left the pty's size as it was), then
            # the signal goes on as before (forward_signals), as the C client does.
            forward = _signal.getsignal(_signal.SIGWINCH)

            def resized(signum, frame):
                self._copy_window_size()
                if callable(forward):
                    forward(signum, frame)
            _signal.signal(_signal.SIGWINCH, resized)
        sources = [self.master, 0]
        while True:
            try:
                readable, _, _ = select.select(sources, [], [])
            except InterruptedError:
                continue
            if self.master in readable:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: every slave descriptor closed
                    data = b""
                if not data:
                    break
                _write_all(1, data)
            if 0 in readable:
                data = os.read(0, 65536)
                if data:
                    _write_all(self.master, data)
                else:
                    sources.remove(0)

    def _copy_window_size(self):
        import fcntl
        import termios

        try:
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass  # the pty closed meanwhile (the process exited), or stdin is no terminal now

    def close(self):
        if self._saved_tty is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self._saved_tty)
        if self.master is not None:
            os.close(self.master)
        if self._listener is not None:
            self._listener.close()
            os.unlink(self.socket_path)
            os.rmdir(self._dir)


def caller_window_size():
    """(rows, columns) of our own terminal, for a pty that should start the same size."""
    if not os.isatty(0):
        return None
    import fcntl
    import termios

    rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    return (rows, cols) if rows and cols else None


def receive_pty(conn):
    _, ancillary, _, _ = conn.recvmsg(1024, _socket.CMSG_SPACE(4))
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == SCM_RIGHTS:
            return struct.unpack("i", data[:4])[0]
    raise OSError("the console socket received no pty")


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
