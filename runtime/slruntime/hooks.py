"""OCI hooks: each runs with the container state on stdin, its own args/env, a timeout."""

import os

from slruntime import jsonlite
from slruntime.errors import SlrError

_SIGKILL = 9


def has_runtime_create_hooks(hooks):
    """Whether the runtime runs hooks between the init's rootfs and its pivot_root
    (prestart, createRuntime): only then does the init stop and wait for them."""
    return bool(hooks.get("prestart") or hooks.get("createRuntime"))


def run(hooks, name, state, warn_only=False, log=None):
    """Run the hooks of lifecycle point `name` in order; the first failure stops
    them (an error, or a warning for poststart/poststop as the spec says)."""
    if not hooks.get(name):
        return
    import subprocess

    payload = jsonlite.dumps(state).encode()
    for i, hook in enumerate(hooks[name]):
        argv = hook.args or [hook.path]
        what = f"{name} hook #{i} ({hook.path})"
        try:
            returncode, stderr = _run_one(subprocess, argv, hook, payload)
        except subprocess.TimeoutExpired:
            message = f"{what} timed out after {hook.timeout}s"
        except OSError as exc:
            message = f"{what}: {exc.strerror}"
        except ValueError as exc:  # what subprocess refuses (never a traceback amid `delete`)
            message = f"{what}: {exc}"
        else:
            if returncode == 0:
                continue
            detail = stderr.decode(errors="replace").strip().splitlines()
            status = f"was killed by signal {-returncode}" if returncode < 0 else f"failed with status {returncode}"
            message = f"{what} {status}" + (f": {detail[-1]}" if detail else "")
        if warn_only:
            if log:
                log.warning(message)
            continue
        raise SlrError(message)


def _run_one(subprocess, argv, hook, payload):
    """(exit status, stderr) of one hook. It runs in a process group of its own, so a
    timeout kills everything it started, not only the hook itself: `sh -c "sleep 60;
    x"` would otherwise leave its sleep behind."""
    with subprocess.Popen(argv, executable=hook.path, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=_env(hook.env), close_fds=True,
                          start_new_session=True) as child:
        try:
            _, stderr = child.communicate(payload, timeout=hook.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, _SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
            raise
        return child.returncode, stderr


def _env(entries):
    if entries is None:
        return {}
    return dict(e.split("=", 1) for e in entries)
