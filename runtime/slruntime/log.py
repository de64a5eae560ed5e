"""runc-style logging: --log FILE (default stderr), --log-format text|json, --debug.

containerd's shim reads the JSON lines ({"level","msg","time"}) from --log.
"""

import os
import time

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}
_logger = None


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.fmt = fmt
        self.threshold = 0 if debug else 1

    def _emit(self, level, message):
        if _LEVELS[level] < self.threshold:
            return
        # Here, not at the top: `slr pool run` sets up logging and usually logs nothing,
        # and jsonlite loads the _json extension.
        from slruntime import jsonlite

        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
        if self.fmt == "json":
            line = jsonlite.dumps({"level": level, "msg": message, "time": stamp})
        else:
            line = f'time="{stamp}" level={level} msg={jsonlite.dumps(message)}'
        data = (line + "\n").encode()
        if self.path:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
                return
            except OSError:
                pass
        try:
            os.write(2, data)
        except OSError:
            pass

    def debug(self, message):
        self._emit("debug", message)

    def info(self, message):
        self._emit("info", message)

    def warning(self, message):
        self._emit("warning", message)

    def error(self, message):
        self._emit("error", message)


def setup(path=None, fmt="text", debug=False):
    global _logger
    _logger = Logger(path, fmt, debug)
    return _logger


def get():
    return _logger or setup()
