"""Builds the C launcher (launcher.c) and runs one measured command through it."""

import json
import os
import subprocess

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")


def build(build_dir):
    """Compiles launcher.c with the system gcc into build_dir (when missing or stale)."""
    binary = os.path.join(build_dir, "launcher")
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(SOURCE):
        return binary
    os.makedirs(build_dir, exist_ok=True)
    tmp = f"{binary}.{os.getpid()}"
    result = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp, SOURCE],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"compiling {SOURCE} failed:\n{result.stderr.strip()}")
    os.replace(tmp, binary)
    return binary


def measure(launcher, argv, output, env, memcg=None, hide_cgroup2=False, trace=False):
    """Runs argv once through the launcher; returns its measurement (see launcher.c).

    The command's stdout and stderr go to the file `output`.
    """
    cmd = [launcher, "--output", output]
    if memcg:
        cmd += ["--memcg", memcg]
    if hide_cgroup2:
        cmd.append("--hide-cgroup2")
    if trace:
        cmd.append("--trace")
    result = subprocess.run(cmd + ["--"] + argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"launcher exited with {result.returncode}")
    return json.loads(result.stdout)
