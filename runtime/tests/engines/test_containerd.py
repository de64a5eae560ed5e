"""containerd's runc shim (io.containerd.runc.v2) with BinaryName = runc, then slr."""

import time

import pytest

pytestmark = pytest.mark.engines("containerd", "ctr", "podman")

IMAGE = "localhost/busybox:test"


def _run(containerd, runtime_path, *args):
    return containerd.ctr("run", "--snapshotter", "native", "--runc-binary", runtime_path, *args)


def test_run_foreground(containerd, runtime_path):
    name = f"fg-{runtime_path.rsplit('/', 1)[-1]}"
    result = _run(containerd, runtime_path, "--rm", IMAGE, name, "sh", "-c", "echo hi, pid $$")
    assert result.stdout.strip() == "hi, pid 1"  # in its own pid namespace


def test_detached_exec_kill_delete(containerd, runtime_path):
    name = f"bg-{runtime_path.rsplit('/', 1)[-1]}"
    _run(containerd, runtime_path, "-d", IMAGE, name, "sleep", "1000")
    try:
        tasks = containerd.ctr("tasks", "ls").stdout
        assert name in tasks and "RUNNING" in tasks
        # The shim really drove the binary asked for: slr's state has a creator_pid.
        with open(f"/run/containerd/runc/default/{name}/state.json") as f:
            assert ('"creator_pid"' in f.read()) == runtime_path.endswith("slr")
        out = containerd.ctr("tasks", "exec", "--exec-id", "e1", name, "sh", "-c", "echo exec $(tr '\\0' ' ' < /proc/1/cmdline)")
        assert out.stdout.split() == ["exec", "sleep", "1000"]
        containerd.ctr("tasks", "kill", "-s", "SIGKILL", name)
        deadline = time.monotonic() + 20
        while "STOPPED" not in containerd.ctr("tasks", "ls").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "STOPPED" in containerd.ctr("tasks", "ls").stdout
        containerd.ctr("tasks", "delete", name)
    finally:
        containerd.ctr("tasks", "delete", "--force", name, check=False)
        containerd.ctr("containers", "rm", name, check=False)
    assert name not in containerd.ctr("containers", "ls", "-q").stdout.split()
