"""Fast start: pools of pre-created containers, through the CLI and the socket API."""

import json
import os
import signal
import time

import pytest

from slruntime.pool import client


def _wait(predicate, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _members(slr, status=None):
    listed = json.loads(slr("list", "--format", "json", check=True).stdout)
    return {c["id"]: c for c in listed if status is None or c["status"] == status}


@pytest.fixture
def pool(slr, bundle):
    b = bundle(["true"], edit=lambda c: c.update(hostname="pooled"))
    slr("pool", "create", "--bundle", b, "--size", "2", "p1", check=True)
    yield os.path.join(slr.root, "pools", "p1", "pool.sock")
    slr("pool", "delete", "p1")
    assert not os.path.exists(os.path.join(slr.root, "pools", "p1"))


def test_pool_run_replaces_only_the_process(slr, pool):
    _wait(lambda: len(_members(slr, "created")) == 2, what="two ready members")
    result = slr("pool", "run", "-e", "GREETING=hi", "--cwd", "/tmp", "p1", "--",
                 "sh", "-c", "echo $GREETING $(hostname) $(pwd); grep CapEff /proc/self/status; exit 6")
    assert result.returncode == 6, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "hi pooled /tmp"  # args, env, cwd from the request; hostname from config.json
    assert lines[1].split()[1] == "0000000020000420"  # capabilities from config.json


def test_pool_process_gets_the_managers_priority_not_the_refills(slr, pool):
    # Members are created at a lower priority (nice +10) and given the manager's back
    # when ready: the process must not inherit the refill's.
    _wait(lambda: len(_members(slr, "created")) == 2, what="two ready members")
    for _ in range(2):  # the first from the initial fill, the second from a refill
        _wait(lambda: len(_members(slr, "created")) == 2, what="refill")
        result = slr("pool", "run", "p1", "--", "cat", "/proc/self/stat")
        assert result.returncode == 0, result.stderr
        nice = int(result.stdout.rsplit(")", 1)[1].split()[16])
        assert nice == os.getpriority(os.PRIO_PROCESS, 0)


def test_pool_refills_and_never_reuses_a_container(slr, pool):
    first = set(_wait(lambda: len(_members(slr, "created")) == 2 and _members(slr, "created"), what="ready"))
    used = set()
    for _ in range(3):
        started = client.start(pool, ["true"], stdio=())
        used.add(started.id)
        assert started.wait() == 0
    assert len(used) == 3  # three runs, three containers
    assert first & used
    ready = set(_wait(lambda: len(_members(slr, "created")) == 2 and _members(slr, "created"), what="refill"))
    assert not ready & used  # used containers are gone, replaced by new ones
    assert not used & set(_members(slr))


def test_pool_survives_a_killed_member(slr, pool):
    members = _wait(lambda: len(_members(slr, "created")) == 2 and _members(slr, "created"), what="ready")
    victim = sorted(members)[0]
    os.kill(members[victim]["pid"], signal.SIGKILL)
    _wait(lambda: victim not in _members(slr), what="the killed member to be removed")
    _wait(lambda: len(_members(slr, "created")) == 2, what="refill after a kill")
    started = client.start(pool, ["true"], stdio=())
    assert started.id != victim and started.wait() == 0


def test_pool_socket_api_detached_and_errors(slr, pool, tmp_path):
    out = open(tmp_path / "out", "w+")
    started = client.start(pool, ["sh", "-c", "echo detached"], stdio=(0, out.fileno(), 2), wait=False)
    assert started.pid > 0
    _wait(lambda: started.id not in _members(slr), what="the detached run to finish")
    out.seek(0)
    assert out.read() == "detached\n"
    with pytest.raises(Exception, match="executable file not found"):
        client.start(pool, ["no-such-program"], stdio=())
    _wait(lambda: len(_members(slr, "created")) == 2, what="refill after a failed start")


def test_stale_pool_is_cleaned_up(slr, bundle):
    b = bundle(["true"])
    slr("pool", "create", "-b", b, "--size", "1", "p2", check=True)
    record = json.load(open(os.path.join(slr.root, "pools", "p2", "pool.json")))
    _wait(lambda: len(_members(slr, "created")) == 1, what="a ready member")
    os.kill(record["pid"], signal.SIGKILL)  # the manager dies without cleaning up
    _wait(lambda: not os.path.exists(f"/proc/{record['pid']}/status")
          or "Z" in open(f"/proc/{record['pid']}/status").read().split("State:")[1][:4], what="manager exit")
    pools = json.loads(slr("pool", "list", "--format", "json", check=True).stdout)
    assert pools[0]["status"] == "stale"
    slr("pool", "create", "-b", b, "--size", "1", "p2", check=True)  # replaces the stale pool
    new_record = json.load(open(os.path.join(slr.root, "pools", "p2", "pool.json")))
    assert new_record["pid"] != record["pid"]
    slr("pool", "delete", "p2", check=True)
    assert _members(slr) == {}
    assert slr("pool", "run", "p2", "--", "true").returncode == 1


def test_pool_run_with_a_terminal(slr, pool):
    import subprocess

    _wait(lambda: len(_members(slr, "created")) == 2, what="ready members")
    command = " ".join(slr.cmd("pool", "run", "-t", "p1", "--", "sh", "-c", "'tty; stty size; exit 3'"))
    # script(1) gives `slr pool run` a terminal of 33x99, which the container's pty copies.
    result = subprocess.run(["script", "-qec", f"stty rows 33 cols 99; {command}", "/dev/null"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.split() == ["/dev/pts/0", "33", "99"]


def test_pool_cgroups_path_is_the_members_parent(slr, bundle):
    import glob
    import uuid

    parent = f"/slr-pool-test-{uuid.uuid4().hex[:8]}"
    b = bundle(["true"], edit=lambda c: c["linux"].update(cgroupsPath=parent))
    slr("pool", "create", "-b", b, "--size", "2", "p3", check=True)
    try:
        members = _wait(lambda: len(_members(slr, "created")) == 2 and _members(slr, "created"), what="ready")
        for member_id in members:
            assert glob.glob(f"/sys/fs/cgroup/*{parent}/{member_id}")  # one cgroup each
    finally:
        slr("pool", "delete", "p3", check=True)
        for directory in glob.glob(f"/sys/fs/cgroup/*{parent}"):
            os.rmdir(directory)
