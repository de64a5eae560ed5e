"""The pool member's side: the container's init receives its process from the manager.

Runs after pivot_root, so everything it uses is imported with this module, before
(process_setup.forbid_imports).

The member's end of the manager's socket stays open until execve closes it
(close-on-exec): its end-of-file tells the manager that the process runs. Whatever
fails before that (the program, the request's cwd, the seccomp filter, a
startContainer hook) goes back to the manager as {"error": ...}, which the client gets.
"""

import os

import _socket

from slruntime import jsonlite, process, process_setup, spec as specmod
from slruntime.errors import SlrError
from slruntime.pool import wire


def serve_request(pool_fd, configured, run_until_exec):
    """Wait for {"args", "env", "cwd", "terminal"} (+ stdio fds), then call
    run_until_exec(proc, executable), which does not return (it execs); its errors,
    and those of the request, go to the manager, which answers them to the client."""
    sock = _socket.socket(fileno=pool_fd)  # kept referenced until execve: see above
    os.set_inheritable(pool_fd, False)
    base_env = _env_dict(configured.env)  # while nothing waits for us
    _warm_up(configured, base_env)
    request, fds = wire.recv(sock)
    if request is None:
        raise SlrError("pool member: the manager went away")
    try:
        proc = _merge(configured, base_env, request)
        executable = process.find_executable(proc.args[0], proc.env, proc.cwd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            if fd > 2:
                os.close(fd)
        if proc.terminal:
            process_setup.attach_terminal(proc.console_size, lambda master: _send_pty(sock, master))
        run_until_exec(proc, executable)
    except (SlrError, OSError) as exc:
        try:
            wire.send(sock, {"error": str(exc)})
        except OSError:  # the manager is gone, or the seccomp filter denies sendmsg
            raise exc from None  # the init reports it on stderr (the manager sees end-of-file)
        os._exit(1)  # the client gets it from the manager, not also on the stderr it passed


def _warm_up(configured, base_env):
    """Run the request's Python path once on the configured process, while nothing
    waits: this process is a fork of the manager, and the first touch of each object
    on that path (reference counts) copies its page, ~20 page faults that the request
    then no longer pays."""
    try:
        proc = _merge(configured, base_env, jsonlite.loads(jsonlite.dumps({"args": configured.args})))
        process.find_executable(proc.args[0], proc.env, proc.cwd)
    except SlrError:
        pass  # the configured args need not name a program: requests bring theirs


def _send_pty(sock, master):
    wire.send(sock, {"pty": True}, [master])
    os.close(master)


def _merge(configured, base_env, request):
    """The configured process with the request's args, env, cwd and terminal."""
    raw = {"args": request.get("args"), "cwd": request.get("cwd") or configured.cwd,
           "terminal": bool(request.get("terminal")),
           "env": _merge_env(base_env, request.get("env") or []),
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


def _env_dict(entries):
    env = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def _merge_env(base_env, extra):
    if not extra:
        return [f"{k}={v}" for k, v in base_env.items()]
    if not isinstance(extra, list):
        return extra  # parse_process names the problem
    env = dict(base_env)
    for entry in extra:
        if not isinstance(entry, str):
            return extra  # likewise
        key, _, value = entry.partition("=")
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]
