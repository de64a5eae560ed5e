"""The lifecycle state machine (slruntime/transitions.py) on real containers: the commands
that had their own status checks before it (the table itself: unit/test_transitions_table.py)."""

import glob
import os
import subprocess
import time


def test_operations_of_a_running_paused_and_stopped_container(slr, bundle):
    def refused(expected, *argv):
        result = slr(*argv)
        assert (result.returncode, result.stderr) == (1, f"slr: {expected}\n"), argv

    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    slr("pause", "c1", check=True)
    assert slr.state("c1")["status"] == "paused"
    refused("cannot exec in a paused container (use --ignore-paused to override)", "exec", "c1", "true")
    refused("cannot start a container in the paused state", "start", "c1")
    refused("container not running: paused", "pause", "c1")
    refused("cannot delete container c1 that is not stopped: paused", "delete", "c1")
    slr("events", "--stats", "c1", check=True)  # paused: still a container with a cgroup
    slr("resume", "c1", check=True)
    assert slr.state("c1")["status"] == "running"
    slr("kill", "c1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while slr.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    refused("container with id c1 is not running", "events", "--stats", "c1")
    refused("container not running", "update", "--pids-limit", "10", "c1")
    refused("container not paused: stopped", "resume", "c1")
    slr("delete", "c1", check=True)


def test_exec_ignore_paused_runs_once_the_container_resumes(slr, bundle):
    # runc's --ignore-paused (accepted and ignored before): the process joins the frozen
    # cgroup, so it runs when the container is resumed, not before.
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    slr("pause", "c1", check=True)
    process = subprocess.Popen(slr.cmd("exec", "--ignore-paused", "c1", "echo", "ran"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        assert process.poll() is None, process.communicate()
        slr("resume", "c1", check=True)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert (process.returncode, out) == (0, "ran\n"), err
    slr("delete", "--force", "c1", check=True)


def test_delete_force_waits_for_a_create_in_progress(slr, bundle, tmp_path):
    # delete --force of a container still being created forgot it under its create,
    # which went on: a second create of the id then ran beside the first, and a cgroup
    # directory one of them made was left (the CLI fuzzer's race). It now lets the
    # create finish (up to a grace period), then deletes what was created.
    started = tmp_path / "hook-started"
    marker = "slrwait" + str(os.getpid())

    def edit(config):
        config["linux"]["cgroupsPath"] = f"/{marker}/c"
        config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                              "args": ["sh", "-c", f"touch {started}; sleep 2"]}]}

    create = subprocess.Popen(slr.cmd("create", "-b", bundle(["sleep", "1000"], edit=edit), "c1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slr.state("c1")["status"] == "creating"
        slr("delete", "--force", "c1", check=True)
        assert create.poll() is not None, "delete --force returned while the create was still running"
        create.communicate(timeout=30)
    finally:
        create.kill()
        create.wait()
    assert slr("state", "c1").returncode == 1
    assert not [d for d in glob.glob(f"/sys/fs/cgroup/*/{marker}") + glob.glob(f"/sys/fs/cgroup/unified/{marker}")]
