"""The one message a runtime sends per container (OCI runtime-spec, config-linux.md,
"The Container Process State"): the JSON container process state as the payload,
the descriptors named in its "fds" array as SCM_RIGHTS, then the connection closes.
"""

import os

from slruntime import jsonlite

MAX_MESSAGE = 64 * 1024
MAX_FDS = 16
SECCOMP_FD = "seccompFd"
_SECCOMP_NOTIFY_LINK = "anon_inode:seccomp notify"


class HandshakeError(Exception):
    """The client sent something that is not a container process state."""


def parse(payload, fds):
    """Validate a complete message. Returns (process state, seccomp notify fd); the
    caller owns every fd in `fds` and closes all but the returned one."""
    try:
        message = jsonlite.loads(payload)
    except (jsonlite.JSONError, UnicodeDecodeError) as exc:
        raise HandshakeError(f"payload is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise HandshakeError("payload is not a JSON object")
    _expect(message, "ociVersion", str)
    _expect(message, "pid", int)
    if "metadata" in message:
        _expect(message, "metadata", str)
    names = message.get("fds", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HandshakeError("fds: not an array of strings")
    if len(names) != len(fds):
        raise HandshakeError(f"fds names {len(names)} descriptors, {len(fds)} received")
    if names.count(SECCOMP_FD) != 1:
        raise HandshakeError(f"fds: no single {SECCOMP_FD!r}")
    state = _expect(message, "state", dict)
    if not _expect(state, "id", str, "state."):
        raise HandshakeError("state.id: empty")
    _expect(state, "pid", int, "state.")
    _expect(state, "status", str, "state.")
    state.setdefault("bundle", state.get("bundlePath", ""))
    _expect(state, "bundle", str, "state.")
    annotations = state.setdefault("annotations", {})
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise HandshakeError("state.annotations: not an object of strings")
    seccomp_fd = fds[names.index(SECCOMP_FD)]
    try:
        link = os.readlink(f"/proc/self/fd/{seccomp_fd}")
    except OSError:
        link = ""
    if link != _SECCOMP_NOTIFY_LINK:
        raise HandshakeError(f"{SECCOMP_FD} is not a seccomp notify descriptor ({link or 'unknown'})")
    return message, seccomp_fd


def _expect(obj, key, kind, prefix=""):
    value = obj.get(key)
    if not isinstance(value, kind) or kind is int and isinstance(value, bool):
        raise HandshakeError(f"{prefix}{key}: missing or not {'a string' if kind is str else kind.__name__}")
    return value
