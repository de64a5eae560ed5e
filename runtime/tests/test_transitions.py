"""The lifecycle state machine (slruntime/transitions.py) on real containers: the commands
that had their own status checks before it (the table itself: unit/test_transitions_table.py)."""

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
