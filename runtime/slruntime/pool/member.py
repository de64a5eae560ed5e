"""The pool member's side: the container's init receives its process from the manager.

Runs after pivot_root, so everything it uses is imported with this module, before
(process_setup.forbid_imports).
"""

import os

import _socket

from slruntime import process, process_setup, spec as specmod
from slruntime.errors import SlrError
from slruntime.pool import wire


def receive_process(pool_fd, configured):
    """Wait for {"args", "env", "cwd", "terminal"} (+ stdio fds); returns the process
    to exec and its resolved executable. Errors go back to the manager."""
    sock = _socket.socket(fileno=pool_fd)
    os.set_inheritable(pool_fd, False)  # end-of-file on exec tells the manager it worked
    request, fds = wire.recv(sock)
    if request is None:
        raise SlrError("pool member: the manager went away")
    try:
        proc = _merge(configured, request)
        executable = process.find_executable(proc.args[0], proc.env, proc.cwd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            if fd > 2:
                os.close(fd)
        if proc.terminal:
            process_setup.attach_terminal(proc.console_size, lambda master: _send_pty(sock, master))
    except SlrError as exc:
        wire.send(sock, {"error": str(exc)})
        raise
    return proc, executable


def _send_pty(sock, master):
    wire.send(sock, {"pty": True}, [master])
    os.close(master)


def _merge(configured, request):
    """The configured process with the request's args, env, cwd and terminal."""
    raw = {"args": request.get("args"), "cwd": request.get("cwd") or configured.cwd,
           "terminal": bool(request.get("terminal")),
           "env": _merge_env(configured.env, request.get("env") or []),
           "user": {"uid": configured.uid, "gid": configured.gid}}
    if request.get("consoleSize") is not None:
        raw["consoleSize"] = request["consoleSize"]
    try:
        parsed = specmod.parse_process(raw, "process", False)
    except specmod.SpecError as exc:
        raise SlrError(exc.located("pool request")) from None
    merged = specmod.Process()
    for name in specmod.Process.__slots__:
        setattr(merged, name, getattr(configured, name))
    merged.args, merged.env, merged.cwd, merged.terminal = parsed.args, parsed.env, parsed.cwd, parsed.terminal
    merged.console_size = parsed.console_size or configured.console_size
    return merged


def _merge_env(base, extra):
    env = {}
    for entry in list(base) + list(extra):
        key, _, value = entry.partition("=")
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]
