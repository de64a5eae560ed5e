"""The lifecycle state machine (slruntime/transitions.py): the table itself, then the
commands that had their own status checks before it, on a real container."""

import subprocess
import time

import pytest

from slruntime import transitions
from slruntime.errors import WrongState

STATUSES = ("creating", "created", "running", "paused", "stopped")


class _Stub:
    """A container as transitions.check sees it: an id and a status (no process: the
    table is pure data)."""

    def __init__(self, status):
        self.id = "c1"
        self._status = status

    def status(self):
        return self._status


@pytest.mark.parametrize("operation", sorted(transitions.TRANSITIONS))
def test_every_status_is_allowed_or_refused_with_a_message(operation):
    allowed = transitions.TRANSITIONS[operation]
    assert set(allowed) <= set(STATUSES)
    assert set(allowed.values()) <= set(STATUSES) | {transitions.DELETED}
    for status in STATUSES:
        if status in allowed:
            assert transitions.check(operation, _Stub(status)) == status
            continue
        with pytest.raises(WrongState) as refused:
            transitions.check(operation, _Stub(status))
        message = str(refused.value)
        assert message and "{" not in message and "\n" not in message, (operation, status, message)


def test_only_start_pause_resume_and_delete_change_the_status():
    changing = {op for op, moves in transitions.TRANSITIONS.items()
                if any(old != new for old, new in moves.items())}
    assert changing == {"start", "pause", "resume", "delete", "delete --force"}


def test_refusals_in_runc_words():
    cases = {("start", "stopped"): "cannot start a container that has stopped",
             ("start", "paused"): "cannot start a container in the paused state",
             ("events", "stopped"): "container with id c1 is not running",
             ("kill", "stopped"): "container not running",
             ("exec", "paused"): "cannot exec in a paused container (use --ignore-paused to override)",
             ("exec --ignore-paused", "stopped"): "cannot exec in a stopped container",
             ("delete", "running"): "cannot delete container c1 that is not stopped: running"}
    for (operation, status), expected in cases.items():
        assert str(transitions.refusal(operation, status, "c1")) == expected


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
