"""Container lifecycle through the CLI: real containers, observed from outside and inside."""

import concurrent.futures
import json
import os
import time

import pytest


def test_run_foreground_returns_exit_code_and_output(slr, bundle):
    b = bundle(["sh", "-c", "echo hello from $(hostname); exit 3"])
    result = slr("run", "--bundle", b, "c1")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from slr\n"
    assert slr.ids() == []  # a foreground run deletes its container


def test_run_killed_by_signal_reports_128_plus_signal(slr, bundle):
    # Without a pid namespace: a namespace's pid 1 cannot be killed from inside.
    no_pidns = lambda c: c["linux"].update(namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "pid"])
    result = slr("run", "-b", bundle(["sh", "-c", "kill -9 $$"], edit=no_pidns), "c1")
    assert result.returncode == 128 + 9


def test_create_start_state_kill_delete(slr, bundle, tmp_path):
    b = bundle(["sleep", "1000"])
    pid_file = tmp_path / "pid"
    slr("create", "--bundle", b, "--pid-file", str(pid_file), "c1", check=True)
    state = slr.state("c1")
    assert state["status"] == "created"
    assert state["id"] == "c1" and state["bundle"] == b
    assert int(pid_file.read_text()) == state["pid"]
    with open(f"/proc/{state['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()  # not started yet: still our init
    slr("start", "c1", check=True)
    assert slr.state("c1")["status"] == "running"
    with open(f"/proc/{state['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    assert slr("start", "c1").returncode == 1  # only a created container starts
    slr("kill", "c1", "KILL", check=True)
    _wait_status(slr, "c1", "stopped")
    assert slr.state("c1")["pid"] == 0
    slr("delete", "c1", check=True)
    assert slr.ids() == []
    assert slr("state", "c1").returncode == 1


def _wait_status(slr, container_id, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if slr.state(container_id)["status"] == status:
            return
        time.sleep(0.02)
    raise AssertionError(f"{container_id} never became {status}: {slr.state(container_id)}")


def test_state_is_stopped_after_the_process_dies_on_its_own(slr, bundle):
    slr("run", "-d", "-b", bundle(["sh", "-c", "sleep 0.2"]), "c1", check=True)
    assert slr.state("c1")["status"] == "running"
    _wait_status(slr, "c1", "stopped")
    slr("delete", "c1", check=True)


def test_delete_running_needs_force(slr, bundle):
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    pid = slr.state("c1")["pid"]
    result = slr("delete", "c1")
    assert result.returncode == 1
    assert "not stopped: running" in result.stderr
    slr("delete", "--force", "c1", check=True)
    assert not _alive(pid)
    assert slr.ids() == []


def test_delete_created_container_kills_its_init(slr, bundle):
    slr("create", "-b", bundle(["true"]), "c1", check=True)
    pid = slr.state("c1")["pid"]
    slr("delete", "c1", check=True)
    assert not _alive(pid)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_duplicate_and_unknown_ids(slr, bundle):
    b = bundle(["sleep", "1000"])
    slr("create", "-b", b, "dup", check=True)
    again = slr("create", "-b", b, "dup")
    assert again.returncode == 1 and "container with id exists: dup" in again.stderr
    for command in ("state", "start", "kill", "delete", "pause", "ps"):
        result = slr(command, "nope")
        assert result.returncode == 1 and "container does not exist: nope" in result.stderr, command
    assert slr("delete", "--force", "nope").returncode == 0
    bad = slr("create", "-b", b, "../escape")
    assert bad.returncode == 1 and "invalid container id" in bad.stderr
    slr("delete", "-f", "dup", check=True)


def test_kill_signal_names_numbers_and_all(slr, bundle):
    b = bundle(["sh", "-c", "trap 'echo got-usr1 > /tmp/sig' USR1; while true; do sleep 0.05; done"],
               edit=lambda c: c["root"].update(readonly=False))
    slr("run", "-d", "-b", b, "c1", check=True)
    time.sleep(0.3)
    slr("kill", "c1", "SIGUSR1", check=True)
    deadline = time.monotonic() + 5
    while not os.path.exists(os.path.join(b, "rootfs/tmp/sig")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open(os.path.join(b, "rootfs/tmp/sig")).read() == "got-usr1\n"
    assert slr("kill", "c1", "NOSUCHSIG").returncode == 1
    slr("kill", "--all", "c1", "9", check=True)
    _wait_status(slr, "c1", "stopped")
    assert slr("kill", "c1", "TERM").returncode == 1  # stopped: runc says "container not running"
    slr("delete", "c1", check=True)


def test_list_formats_and_ps(slr, bundle):
    b = bundle(["sleep", "1000"])
    slr("run", "-d", "-b", b, "c1", check=True)
    slr("create", "-b", b, "c2", check=True)
    import json

    listed = json.loads(slr("list", "--format", "json", check=True).stdout)
    assert {c["id"]: c["status"] for c in listed} == {"c1": "running", "c2": "created"}
    table = slr("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    pids = json.loads(slr("ps", "--format", "json", "c1", check=True).stdout)
    assert pids == [slr.state("c1")["pid"]]
    for cid in ("c1", "c2"):
        slr("delete", "-f", cid, check=True)


def test_twenty_containers_created_concurrently(slr, bundle):
    b = bundle(["sleep", "1000"])
    ids = [f"par{i}" for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda cid: slr("create", "-b", b, cid), ids))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
    assert sorted(slr.ids()) == sorted(ids)
    pids = {slr.state(cid)["pid"] for cid in ids}
    assert len(pids) == 20
    for cid in ids:
        slr("start", cid, check=True)
        assert slr.state(cid)["status"] == "running"
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda cid: slr("delete", "--force", cid), ids))
    assert all(r.returncode == 0 for r in results)
    assert slr.ids() == []


def test_exec_joins_the_container(slr, bundle):
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    out = slr("exec", "c1", "sh", "-c", "hostname; echo FOO=$FOO; pwd; id -u", check=True).stdout.split()
    assert out == ["slr", "FOO=", "/", "0"]
    result = slr("exec", "-e", "FOO=bar", "--cwd", "/tmp", "--user", "65534:65534", "c1",
                 "sh", "-c", "echo $FOO; pwd; id -u; id -g")
    assert result.stdout.split() == ["bar", "/tmp", "65534", "65534"], result.stderr
    assert slr("exec", "c1", "sh", "-c", "exit 5").returncode == 5
    missing = slr("exec", "c1", "no-such-binary")
    assert missing.returncode == 1 and 'executable file not found' in missing.stderr
    slr("delete", "-f", "c1", check=True)


def test_exec_with_process_json_and_detach(slr, bundle, tmp_path):
    import json

    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    process = {"args": ["sh", "-c", "sleep 1000"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "env": ["PATH=/bin"]}
    (tmp_path / "p.json").write_text(json.dumps(process))
    pid_file = tmp_path / "exec.pid"
    slr("exec", "-d", "--pid-file", str(pid_file), "-p", str(tmp_path / "p.json"), "c1", check=True)
    pid = int(pid_file.read_text())
    assert pid in json.loads(slr("ps", "--format", "json", "c1").stdout)
    slr("delete", "-f", "c1", check=True)
    assert not _alive(pid)


def test_pause_and_resume_freeze_the_container(slr, bundle):
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    pid = slr.state("c1")["pid"]
    slr("pause", "c1", check=True)
    assert slr.state("c1")["status"] == "paused"
    deadline = time.monotonic() + 5
    while _proc_state(pid) != "D" and time.monotonic() < deadline:  # v1 freezer parks tasks in D
        time.sleep(0.02)
    assert _proc_state(pid) in ("D", "T")
    assert slr("pause", "c1").returncode == 1
    slr("resume", "c1", check=True)
    assert slr.state("c1")["status"] == "running"
    slr("delete", "-f", "c1", check=True)


def _proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[1].split()[0]


def test_terminal_through_console_socket(slr, bundle, tmp_path):
    import array
    import socket

    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    b = bundle(["sh", "-c", "tty; stty size; sleep 1000"],
               edit=lambda c: c["process"].update(terminal=True, consoleSize={"height": 30, "width": 100}))
    slr("create", "-b", b, "--console-socket", path, "c1", check=True)
    conn, _ = listener.accept()
    msg, ancdata, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4))
    fds = array.array("i")
    fds.frombytes(ancdata[0][2])
    master = fds[0]
    slr("start", "c1", check=True)
    output = b""
    deadline = time.monotonic() + 10
    while b"30 100" not in output and time.monotonic() < deadline:
        output += os.read(master, 1024)
    assert b"/dev/pts/0" in output and b"30 100" in output
    slr("delete", "-f", "c1", check=True)
    os.close(master)


def test_no_pivot(slr, bundle):
    result = slr("run", "--no-pivot", "-b", bundle(["sh", "-c", "cat /proc/self/mountinfo | head -1"]), "c1")
    assert result.returncode == 0, result.stderr
    fields = result.stdout.split()
    assert fields[3].endswith("/bundle1/rootfs") and fields[4] == "/"  # MS_MOVE'd bind of the rootfs


def test_run_keep_leaves_the_stopped_container_until_delete(slr, bundle, state_root, tmp_path):
    """runc's `run --keep`: the container outlives its process (status "stopped") until
    `slr delete`, which is when its cgroup goes and its poststop hooks run."""
    marker = tmp_path / "poststop"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran > {marker}"]}
    b = bundle(["sh", "-c", "exit 3"], edit=lambda c: c.update(hooks={"poststop": [hook]}))
    result = slr("run", "--keep", "-b", b, "c1")
    assert result.returncode == 3, result.stderr
    assert slr.state("c1")["status"] == "stopped"
    with open(os.path.join(state_root, "c1", "state.json")) as f:
        cgroup_dirs = list(json.load(f)["cgroup"]["paths"].values())
    assert cgroup_dirs and all(os.path.isdir(d) for d in cgroup_dirs)
    assert not marker.exists()
    slr("delete", "c1", check=True)
    assert marker.read_text() == "ran\n"
    assert not [d for d in cgroup_dirs if os.path.exists(d)]
    assert slr.ids() == []
