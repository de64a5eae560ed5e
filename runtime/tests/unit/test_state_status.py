"""A container's status as `slr state` derives it from its state record and the live
system (state.py: never trusted from the file alone), in process: the records are
written in the state.json format of today's runtime (a newer runtime still reads them),
and the container's init is a plain `sleep` of this user, not a container."""

import json
import os
import signal
import subprocess

import pytest

from slruntime import cli, state

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_CONFIG", "")  # no /etc/slr/slr.conf
    path = tmp_path / "state"
    path.mkdir(mode=0o711)
    return path


@pytest.fixture
def init():
    """A live process standing for the container's init."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def write_record(root, container_id, status, pid=0, start_time=None, creator=0, cgroup=None,
                 creator_start_time=None):
    directory = root / container_id
    directory.mkdir(mode=0o711)
    record = {"ociVersion": "1.2.0", "id": container_id, "status": status, "pid": pid,
              "bundle": "/bundles/" + container_id, "annotations": {},
              "created": "2026-01-01T00:00:00.000000000Z", "owner": "", "creator_pid": creator,
              "creator_start_time": creator_start_time,
              "init_start_time": start_time, "cgroup": cgroup, "rootfs": ""}
    (directory / "state.json").write_text(json.dumps(record))
    return directory


def slr_state(root, container_id, capsys):
    assert cli.main(["--root", str(root), "state", container_id]) == 0
    return json.loads(capsys.readouterr().out)


def test_created_until_the_fifo_goes_then_running(root, init, capsys):
    directory = write_record(root, "c1", "created", init.pid, state.process_start_time(init.pid))
    (directory / "exec.fifo").touch()
    shown = slr_state(root, "c1", capsys)
    assert (shown["status"], shown["pid"]) == ("created", init.pid)
    (directory / "exec.fifo").unlink()
    assert slr_state(root, "c1", capsys)["status"] == "running"


def test_paused_while_its_cgroup_is_frozen(root, init, tmp_path, capsys):
    group = tmp_path / "cgroup"
    group.mkdir()
    (group / "cgroup.freeze").write_text("1\n")
    write_record(root, "c1", "running", init.pid, state.process_start_time(init.pid),
                 cgroup={"version": 2, "paths": {"": str(group)}})
    assert slr_state(root, "c1", capsys)["status"] == "paused"
    (group / "cgroup.freeze").write_text("0\n")
    assert slr_state(root, "c1", capsys)["status"] == "running"


def test_stopped_once_the_init_is_gone_whatever_the_record_says(root, init, capsys):
    write_record(root, "c1", "running", init.pid, state.process_start_time(init.pid))
    init.send_signal(signal.SIGKILL)
    init.wait()
    shown = slr_state(root, "c1", capsys)
    assert (shown["status"], shown["pid"]) == ("stopped", 0)


def test_a_reused_pid_is_not_the_init(root, init, capsys):
    """Same pid, another start time: another process got the dead init's pid."""
    write_record(root, "c1", "running", init.pid, state.process_start_time(init.pid) - 1)
    assert slr_state(root, "c1", capsys)["status"] == "stopped"


def test_creating_while_the_creating_runtime_lives(root, capsys):
    write_record(root, "c1", "creating", creator=os.getpid())
    assert slr_state(root, "c1", capsys)["status"] == "creating"


def test_a_create_whose_runtime_died_is_stopped(root, capsys):
    creator = subprocess.Popen(["true"])
    creator.wait()
    write_record(root, "c1", "creating", creator=creator.pid)
    assert slr_state(root, "c1", capsys)["status"] == "stopped"


def test_a_killed_creates_pid_taken_by_another_process_is_stopped(root, init, capsys):
    """The creating runtime was killed and its pid reused: nothing creates the container."""
    write_record(root, "c1", "creating", creator=init.pid,
                 creator_start_time=state.process_start_time(init.pid) - 1)
    assert slr_state(root, "c1", capsys)["status"] == "stopped"
    write_record(root, "c2", "creating", creator=init.pid, creator_start_time=state.process_start_time(init.pid))
    assert slr_state(root, "c2", capsys)["status"] == "creating"


def test_an_unknown_container_is_one_line(root, capsys):
    assert cli.main(["--root", str(root), "state", "nope"]) == 1
    assert capsys.readouterr().err == "slr: container does not exist: nope\n"


@pytest.mark.parametrize("config", [None, "{not json"], ids=["missing", "corrupt"])
def test_a_missing_or_corrupt_saved_config_is_one_line(root, init, capsys, config):
    directory = write_record(root, "c1", "running", pid=init.pid, start_time=state.process_start_time(init.pid))
    if config is not None:
        (directory / "config.json").write_text(config)
    assert cli.main(["--root", str(root), "exec", "c1", "true"]) == 1
    what = "no saved config" if config is None else "unreadable saved config: "
    err = capsys.readouterr().err
    assert err.startswith(f"slr: container c1: {what}") and err.count("\n") == 1, err
