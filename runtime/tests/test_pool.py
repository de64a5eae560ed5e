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


def test_pool_reports_what_fails_after_the_program_is_found(slr, pool):
    # The request's cwd is entered (and the seccomp filter loaded) after the program is
    # looked up: a failure there is the request's error, not a silent exit status 1 (the
    # member's socket used to close before that, which the manager took for the exec).
    _wait(lambda: len(_members(slr, "created")) == 2, what="ready members")
    with pytest.raises(Exception, match="process.cwd /no/such/dir: No such file or directory"):
        client.start(pool, ["true"], cwd="/no/such/dir", stdio=())
    result = slr("pool", "run", "--cwd", "/no/such/dir", "p1", "--", "true")
    assert result.returncode == 1
    # One line, from the client: the member, which had the client's stderr by then, is silent.
    assert result.stderr.startswith("slr: p1-") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith(": process.cwd /no/such/dir: No such file or directory\n"), result.stderr
    _wait(lambda: len(_members(slr, "created")) == 2, what="refill after the failed starts")
    with open(os.path.join(slr.root, "pools", "p1", "pool.log")) as log:
        assert "failed in p1-" in log.read()


def _recorded_status(state_file):
    with open(state_file) as f:  # replaced by a rename: opened each time
        return json.load(f)["status"]


def test_pool_state_says_running_once_answered(slr, pool):
    # The answer goes out before state.json is rewritten (slr state, slr list must still
    # say running from then on: the exec fifo is gone before the answer).
    _wait(lambda: len(_members(slr, "created")) == 2, what="ready members")
    started = client.start(pool, ["sleep", "5"], stdio=())
    try:
        state = json.loads(slr("state", started.id, check=True).stdout)
        assert state["status"] == "running" and state["pid"] == started.pid
        assert _members(slr)[started.id]["status"] == "running"
        state_file = os.path.join(slr.root, started.id, "state.json")
        _wait(lambda: _recorded_status(state_file) == "running", what="state.json to record it")
    finally:
        os.kill(started.pid, signal.SIGKILL)
        assert started.wait() == 128 + signal.SIGKILL


def test_pool_hooks_of_start_around_the_answer(slr, bundle, tmp_path):
    # poststart hooks run before the first answer (as `slr start` returns after them);
    # a startContainer hook that fails is the request's error (it runs after the
    # member received the request: it used to be a silent exit status 1).
    log = tmp_path / "hooks"
    log.mkdir()

    def hooks(config):
        config["hooks"] = {
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {log}/poststart"]}],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "test ! -e /hooklog/fail"]}]}
        config["mounts"].append({"destination": "/hooklog", "type": "bind", "source": str(log), "options": ["rbind"]})

    slr("pool", "create", "--bundle", bundle(["true"], edit=hooks), "--size", "1", "hooked", check=True)
    sock = os.path.join(slr.root, "pools", "hooked", "pool.sock")
    try:
        started = client.start(sock, ["sleep", "5"], stdio=())
        try:
            state = json.loads((log / "poststart").read_text())  # there already
            assert state["status"] == "running" and state["id"] == started.id
        finally:
            os.kill(started.pid, signal.SIGKILL)
            started.wait()
        (log / "fail").write_text("")
        _wait(lambda: len(_members(slr, "created")) == 1, what="a ready member")
        with pytest.raises(Exception, match="startContainer hook #0"):
            client.start(sock, ["true"], stdio=())
    finally:
        slr("pool", "delete", "hooked")


def test_pool_survives_a_member_deleted_before_its_state_is_recorded(slr, pool):
    # state.json is written after the answer: a member whose state directory is gone by
    # then (an operator's `slr delete --force`) must not take the manager down.
    import shutil

    _wait(lambda: len(_members(slr, "created")) == 2, what="ready members")
    started = client.start(pool, ["sleep", "5"], stdio=())
    shutil.rmtree(os.path.join(slr.root, started.id))
    os.kill(started.pid, signal.SIGKILL)
    assert started.wait() == 128 + signal.SIGKILL
    _wait(lambda: len(_members(slr, "created")) == 2, what="refill")
    assert client.start(pool, ["true"], stdio=()).wait() == 0


def test_pool_deferred_work_waits_for_quiet_but_not_forever():
    # Deleting used members waits until no hand-off is recent, but a steady stream of
    # hand-offs must not pile them up: the oldest waits at most MAX_DEFERRAL.
    from slruntime.pool import manager as managermod, peer

    pool = managermod.PoolManager("/nonexistent", "p", "/nonexistent", 2, None, peer.AllowList(0))
    now = time.monotonic()
    running = managermod.Member("p-1", None, None)
    running.handed_at = now
    pool.members[running.id] = running
    pool.later.append((now, print))
    assert pool._later_due() == pytest.approx(now + managermod.QUIET_AFTER_HANDOFF)
    pool.later.insert(0, (now - managermod.MAX_DEFERRAL, print))
    assert pool._later_due() <= now
    pool.members.clear()  # the process exited: quiet at once
    assert pool._later_due() <= now


def _mount_namespace_links(pid):
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass  # closed meanwhile
    return [link for link in links if link.startswith("mnt:")]


def test_pool_mount_namespaces_held_by_the_manager_only(slr, pool):
    # The manager holds each member's mount namespace (its exit then skips the
    # unmounting) and releases it once the member is deleted; no member, which forks
    # from the manager, may hold another's.
    manager = json.load(open(os.path.join(slr.root, "pools", "p1", "pool.json")))["pid"]
    for _ in range(4):
        _wait(lambda: len(_members(slr, "created")) == 2, what="ready members")
        assert client.start(pool, ["true"], stdio=()).wait() == 0
    ready = _wait(lambda: len(_members(slr, "created")) == 2 and _members(slr, "created"), what="refill")
    _wait(lambda: len(_members(slr)) == 2, what="the used members to be deleted")
    for member in ready.values():
        assert _mount_namespace_links(member["pid"]) == []
    held = _mount_namespace_links(manager)
    assert sorted(held) == sorted(os.readlink(f"/proc/{m['pid']}/ns/mnt") for m in ready.values())


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


# --- who may use a pool, and what they may hand in -------------------------------------
# A request gets a process run as the config's user (root here) in a container: the
# socket is 0600 (0660 with --socket-group) whatever the creator's umask, peers are
# checked (SO_PEERCRED), and stdio descriptors the container could reopen with its own
# rights (directories, O_PATH, anonymous inodes, other users' files) are refused.

NOBODY = 65534
CLIENT = """
import sys
from slruntime.errors import SlrError
from slruntime.pool import client
stdin = open(sys.argv[2]) if len(sys.argv) > 2 else None
try:
    started = client.start(sys.argv[1], ["sh", "-c", "id -u; cat /proc/self/fd/0"],
                           stdio=(stdin.fileno() if stdin else 0, 1, 2))
except SlrError as exc:
    print(exc)
    sys.exit(1)
sys.exit(started.wait())
"""


@pytest.fixture
def open_pool(slr_bin, open_tmp, bundle):
    """create(name, *options): a pool in a state root every user may traverse, created
    with umask 000; returns its socket path."""
    from helpers import Slr

    runtime = Slr(slr_bin, os.path.join(open_tmp, "state"))
    os.mkdir(runtime.root, 0o711)
    names = []

    def create(name, *options):
        old = os.umask(0)
        try:
            runtime("pool", "create", "-b", bundle(["true"]), "--size", "1", *options, name, check=True)
        finally:
            os.umask(old)
        names.append(name)
        return os.path.join(runtime.root, "pools", name, "pool.sock")

    yield create
    for name in names:
        runtime("pool", "delete", name)


def _as_nobody(sock, stdin=None):
    import subprocess

    python = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          ".venv", "bin", "python")
    args = ["runuser", "-u", "nobody", "--", python, "-c", CLIENT, sock] + ([stdin] if stdin else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/")


def test_pool_socket_is_private_whatever_the_umask(open_pool):
    sock = open_pool("private")
    assert os.stat(sock).st_mode & 0o777 == 0o600
    for directory in (os.path.dirname(sock), os.path.dirname(os.path.dirname(sock))):
        assert not os.stat(directory).st_mode & 0o022, directory
    result = _as_nobody(sock)
    assert result.returncode == 1 and "Permission denied" in result.stdout, result.stdout + result.stderr


def test_pool_refuses_peers_not_on_its_allow_list(open_pool):
    sock = open_pool("widened")
    os.chmod(sock, 0o666)  # the socket's mode is not the only gate
    result = _as_nobody(sock)
    assert result.returncode == 1
    assert result.stdout == f"pool widened: uid {NOBODY} may not start processes in this pool\n", result.stderr


def test_pool_socket_group_lets_its_members_in_with_their_own_files_only(open_pool, open_tmp):
    sock = open_pool("grouped", "--socket-group", "nogroup")
    st = os.stat(sock)
    assert (st.st_mode & 0o777, st.st_gid) == (0o660, NOBODY)
    own = os.path.join(open_tmp, "own")
    with open(own, "w") as f:
        f.write("mine\n")
    os.chown(own, NOBODY, NOBODY)
    result = _as_nobody(sock, own)
    assert (result.returncode, result.stdout) == (0, "0\nmine\n"), result.stderr
    foreign = os.path.join(open_tmp, "foreign")  # root's, readable by all: reopened, writable by the container
    with open(foreign, "w") as f:
        f.write("root's\n")
    os.chmod(foreign, 0o644)
    result = _as_nobody(sock, foreign)
    assert result.returncode == 1
    assert result.stdout == (f"request: stdin: the container could reopen it with its own rights: pass a pipe, "
                             f"or a file of uid {NOBODY} (this one is uid 0's)\n"), result.stderr
    assert _as_nobody(sock, "/dev/null").returncode == 0


@pytest.mark.parametrize("kind,expected", [
    ("directory", "a directory cannot be a container's stdio"),
    ("o_path", "an O_PATH descriptor cannot be a container's stdio"),
    ("pidfd", "only pipes, sockets, files and devices can be a container's stdio"),
])
def test_pool_refuses_stdio_the_container_could_escape_through(slr, pool, tmp_path, kind, expected):
    from slruntime.errors import SlrError

    _wait(lambda: len(_members(slr, "created")) == 2, what="ready members")
    marker = tmp_path / "escaped"
    fd = {"directory": lambda: os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY),
          "o_path": lambda: os.open(tmp_path, os.O_PATH),
          "pidfd": lambda: os.pidfd_open(os.getpid())}[kind]()
    try:
        with pytest.raises(SlrError, match="^request: stdin: " + expected.replace("'", ".")):
            started = client.start(pool, ["sh", "-c", "echo out > /proc/self/fd/0/escaped"], stdio=(fd, 1, 2))
            started.wait()
    finally:
        os.close(fd)
    assert not marker.exists()


def test_a_users_own_pool_takes_any_of_its_files(slr_bin, open_tmp, busybox_rootfs):
    """A pool of an unprivileged user (rootless: its containers have no more rights than
    the user) serves that user with a root-owned file as stdout."""
    import shutil
    import subprocess

    from helpers import default_config

    bundle_dir = os.path.join(open_tmp, "rootless-bundle")
    os.mkdir(bundle_dir)
    shutil.copytree(busybox_rootfs, os.path.join(bundle_dir, "rootfs"), symlinks=True)
    config = default_config(["true"], os.path.join(bundle_dir, "rootfs"), rootless=True)
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": NOBODY, "size": 1}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": NOBODY, "size": 1}]
    with open(os.path.join(bundle_dir, "config.json"), "w") as f:
        json.dump(config, f)
    for directory, dirs, files in os.walk(bundle_dir):
        for name in [directory] + [os.path.join(directory, n) for n in dirs + files]:
            os.lchown(name, NOBODY, NOBODY)
    root = os.path.join(open_tmp, "nobody-state")
    os.mkdir(root, 0o700)
    os.chown(root, NOBODY, NOBODY)
    slr = ["runuser", "-u", "nobody", "--", slr_bin, "--root", root]
    subprocess.run(slr + ["pool", "create", "-b", bundle_dir, "--size", "1", "mine"], check=True, cwd="/",
                   stdout=subprocess.DEVNULL, timeout=60)
    try:
        out = os.path.join(open_tmp, "out")  # root's, as a shell redirection made by root
        with open(out, "w") as stdout:
            result = subprocess.run(slr + ["pool", "run", "mine", "--", "echo", "hello"], stdout=stdout,
                                    stderr=subprocess.PIPE, text=True, timeout=60, cwd="/")
        assert result.returncode == 0, result.stderr
        with open(out) as f:
            assert f.read() == "hello\n"
    finally:
        subprocess.run(slr + ["pool", "delete", "mine"], timeout=60, cwd="/")


@pytest.mark.parametrize("name", ["../..", "..", "a/b", "", "x" * 201])
@pytest.mark.parametrize("command", ["create", "run", "delete"])
def test_a_pool_name_is_one_path_component(slr, command, name):
    """`pool delete ../..` unlinked every file in the state root's parent directory."""
    os.makedirs(os.path.join(slr.root, "pools"), exist_ok=True)  # as after any pool create
    victim = os.path.join(os.path.dirname(slr.root), "victim")
    open(victim, "w").close()
    options = {"create": ["--bundle", "/nonexistent"], "run": [], "delete": []}[command]
    result = slr("pool", command, *options, name, *(["--", "true"] if command == "run" else []))
    assert result.returncode == 1
    assert result.stderr.startswith(f"slr: invalid pool name {name!r}: ") and result.stderr.count("\n") == 1, result.stderr
    assert os.path.exists(victim)
