"""Run a few commands inside a private subreaper and report what they left running.

    python3 subreaper.py '<JSON: {"commands": [[argv...], ...], "timeout": S, "env": {...}, "cwd": DIR}>'

Every process the commands leave behind (a container init that escaped its runtime,
a hook, a stage-1 child) is re-parented to this process instead of the host's init,
so it is found, reported, killed and reaped here. Prints one JSON object: for each
command its exit code (None: killed after the timeout), stdout and stderr; and the
command lines of the processes that were still alive after the last command.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36


def _children():
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[1]) != me or fields[0] in (b"Z", b"X"):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue
        found.append((int(name), cmdline))
    return found


def _reap_all():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                return
        except ChildProcessError:
            return


def main():
    request = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    env = dict(os.environ, **request.get("env", {}))
    results = []
    for argv in request["commands"]:
        argv = [os.fsencode(a) for a in argv]
        # Files, not pipes: a created container keeps the stdio of `create` open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                code = subprocess.run(argv, stdout=out, stderr=err, timeout=request.get("timeout", 30), env=env,
                                      cwd=request.get("cwd"),
                                      stdin=subprocess.DEVNULL).returncode
            except subprocess.TimeoutExpired:
                code = None
            out.seek(0)
            err.seek(0)
            results.append({"code": code, "stdout": out.read().decode(errors="replace"),
                            "stderr": err.read().decode(errors="replace")})
        _reap_all()
    # What exits on its own (a dying init) gets a moment; what is left was leaked.
    deadline = time.monotonic() + 2
    left = _children()
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap_all()
        left = _children()
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.05)
    _reap_all()
    print(json.dumps({"results": results, "leaked": [cmd for _, cmd in left]}))


if __name__ == "__main__":
    main()
