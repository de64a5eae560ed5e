"""OCI hooks: each runs with the container state on stdin, its own args/env, a timeout."""

import os

from slruntime import jsonlite
from slruntime.errors import SlrError


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
            result = subprocess.run(argv, executable=hook.path, input=payload, env=_env(hook.env),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    timeout=hook.timeout, close_fds=True)
        except subprocess.TimeoutExpired:
            message = f"{what} timed out after {hook.timeout}s"
        except OSError as exc:
            message = f"{what}: {exc.strerror}"
        else:
            if result.returncode == 0:
                continue
            detail = result.stderr.decode(errors="replace").strip().splitlines()
            message = f"{what} failed with status {result.returncode}" + (f": {detail[-1]}" if detail else "")
        if warn_only:
            if log:
                log.warning(message)
            continue
        raise SlrError(message)


def _env(entries):
    if entries is None:
        return {}
    return dict(e.split("=", 1) for e in entries)
