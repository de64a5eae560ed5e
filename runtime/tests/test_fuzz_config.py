"""Config fuzzer: valid busybox configs mutated in type, size, depth, encoding, paths
(.., symlinks, FIFOs, devices, /proc) and numbers at and past every kernel limit, with
duplicated and contradictory entries, fed to create/run, exec -p, update -r and pool
requests (fuzzing.py has the mutations and says how to run a long campaign).

The oracle, for every example: exit 0 or the container's own code, or exit 1 with
exactly one line on stderr; never a hang, a traceback or an "internal error"; and
nothing left: no state entry, cgroup, mount or process (every command runs inside a
private subreaper, so a process that escaped its runtime is caught too).
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest
from fuzzing import (ENCODINGS, check_answer, encode, fuzz, json_paths, mutate, mutations,
                     run_in_subreaper)
from helpers import build_busybox_rootfs, default_config
from hypothesis import example, given
from hypothesis import strategies as st
from test_bad_input import Leftovers

MARKER = "{marker}"


@pytest.fixture(scope="module")
def fuzz_rootfs():
    """A busybox rootfs of the fuzzer's own: examples create mount points and device
    nodes in it (a thousand levels deep, say), removed with `rm -rf` (not recursion)."""
    top = tempfile.mkdtemp(prefix="slr-fuzz-")
    build_busybox_rootfs(os.path.join(top, "rootfs"))
    yield os.path.join(top, "rootfs")
    subprocess.run(["rm", "-rf", top], check=False)


@pytest.fixture
def workspace():
    top = tempfile.mkdtemp(prefix="slr-fuzz-ws-")
    os.chmod(top, 0o755)
    yield top
    subprocess.run(["rm", "-rf", top], check=False)


def base_config():
    """A valid config that runs here and sets much of what slr knows: what mutations
    start from ({rootfs} and {marker} are filled in per example)."""
    c = default_config(["true"], "{rootfs}")
    p = c["process"]
    p["env"].append(f"SLR_TEST_MARKER={MARKER}")
    p["user"].update(additionalGids=[5], umask=0o22)
    p["oomScoreAdj"] = 5
    p["consoleSize"] = {"height": 10, "width": 20}
    c["hostname"] = "fuzz"
    c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]})
    c["mounts"].append({"destination": "/opt", "type": "bind", "source": "{bundle}/file", "options": ["rbind", "ro"]})
    lx = c["linux"]
    lx["cgroupsPath"] = f"/{MARKER}/c"
    lx["resources"] = {"memory": {"limit": 1 << 28}, "pids": {"limit": 100}, "cpu": {"shares": 512}}
    lx["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]
    lx["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                     "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    lx["sysctl"] = {"net.ipv4.ip_forward": "0"}
    c["hooks"] = {"poststop": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    c["annotations"] = {"org.example": "x"}
    return c


BASE = base_config()
# Never mutated: hooks run host programs as root, and sysctl keys name host settings
# (spec checks them against the namespaces, but a fuzzer finding a hole there would
# change this machine).
def _safe(operations):
    return [op for op in operations if op[1][:1] != ("hooks",) and op[1][:2] != ("linux", "sysctl")]


def _bundle(workspace, rootfs):
    """A bundle with the special files the paths of fuzzing.PATH_STRINGS name."""
    b = tempfile.mkdtemp(dir=workspace)
    os.chmod(b, 0o755)
    os.mkfifo(os.path.join(b, "fifo"))
    os.symlink("/", os.path.join(b, "to-root"))
    os.symlink("loop", os.path.join(b, "loop"))
    with open(os.path.join(b, "file"), "w") as f:
        f.write("{}")
    return b


def _fill(data, bundle, rootfs, marker):
    return data.replace(b"{bundle}", bundle.encode()).replace(b"{rootfs}", rootfs.encode()).replace(
        b"{marker}", marker.encode())


def _forget(slr_bin, root, container_id, marker):
    """After a failed example: what is left must not fail the next ones too."""
    subprocess.run([slr_bin, "--root", root, "delete", "--force", container_id], capture_output=True, timeout=60)
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hierarchy, marker)
        for d in (os.path.join(top, "c"), top):
            try:
                os.rmdir(d)
            except OSError:
                pass


# Exit codes a container's own process may give: its program's (args may be mutated into
# any busybox applet), or 128+N when its seccomp filter or a signal kills it. A runtime
# error is exit 1 with one line; these come without a line of slr's.
CONTAINER_CODES = tuple(range(2, 256))
MODES = ("run", "run", "create-delete", "create-start-delete")


def _check_container_answer(result, what):
    if result["code"] not in (0, 1, None):
        assert "slr: " not in result["stderr"], f"{what}: exit {result['code']} with {result['stderr']!r}"
    check_answer(result, what, CONTAINER_CODES)


def _config_example(slr_bin, workspace, rootfs, mode, operations, encoding):
    marker = "slrfuzz" + uuid.uuid4().hex[:12]
    bundle = _bundle(workspace, rootfs)
    root = os.path.join(workspace, "state-" + marker)
    os.mkdir(root, 0o700)
    document = mutate(BASE, _safe(operations))
    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(_fill(encode(document, encoding), bundle, rootfs, marker))
    slr = [slr_bin, "--root", root]
    container_id = "fz"
    commands = {"run": [slr + ["run", "--bundle", bundle, container_id]],
                "create-delete": [slr + ["create", "--bundle", bundle, container_id],
                                  slr + ["delete", "--force", container_id]],
                "create-start-delete": [slr + ["create", "--bundle", bundle, container_id],
                                        slr + ["start", container_id], slr + ["delete", "--force", container_id]]}[mode]
    leftovers = Leftovers(root, workspace, marker, f"/{marker}/c")
    try:
        results, leaked = run_in_subreaper(commands, timeout=30, env={"SLR_TEST_MARKER": marker})
        what = f"{mode} with {operations!r} ({encoding})"
        _check_container_answer(results[0], what)
        if mode != "run" and results[0]["code"] == 0:
            for result in results[1:-1]:
                _check_container_answer(result, what + ": start")
            assert results[-1]["code"] == 0, f"{what}: delete --force: {results[-1]}"
        assert leaked == [], f"{what}: processes left: {leaked}"
        assert leftovers.check(container_id) == [], what
    except BaseException:
        _forget(slr_bin, root, container_id, marker)
        raise
    finally:
        shutil.rmtree(root, ignore_errors=True)


ENCODING_CHOICES = st.sampled_from(("utf-8",) * 12 + ENCODINGS)


# The shapes the fuzzer found, kept (issue 16's defects 1, 2, 3, 4, 5, 6, 7, 8).
@example("run", [("nest", ("hostname",), 100000)], "nan")
@example("run", [("set", ("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ERRNO"})], "utf-8")
@example("run", [("set", ("linux", "seccomp", "defaultAction"), "SCMP_ACT_TRACE"),
                 ("delete", ("linux", "seccomp", "syscalls"), None)], "utf-8")
@example("run", [("set", ("process", "terminal"), True), ("set", ("process", "cwd"), "/etc/passwd")], "utf-8")
@example("create-delete", [("set", ("annotations",), {"org.slruntime.seccomp.profile": "fifo"}),
                           ("delete", ("linux", "seccomp"), None)], "utf-8")
@example("create-delete", [("set", ("linux", "namespaces", 1), {"type": "network", "path": "{bundle}/fifo"})],
         "utf-8")
@example("run", [("set", ("mounts", 7, "destination"), "/mnt" + "/a" * 1100)], "utf-8")
@example("run", [("repeat", ("process", "user", "additionalGids"), 70000)], "utf-8")
@example("run", [("set", ("process", "user", "umask"), 2147483648)], "utf-8")
@given(mode=st.sampled_from(MODES), operations=mutations(BASE), encoding=ENCODING_CHOICES)
@fuzz(ci_examples=60)
def test_fuzz_create_and_run(slr_bin, workspace, fuzz_rootfs, mode, operations, encoding):
    _config_example(slr_bin, workspace, fuzz_rootfs, mode, operations, encoding)


def test_base_config_runs(slr_bin, workspace, fuzz_rootfs):
    """The fuzzer starts from a config that works: else it only tests one error."""
    marker = "slrfuzz" + uuid.uuid4().hex[:12]
    bundle = _bundle(workspace, fuzz_rootfs)
    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(_fill(json.dumps(BASE).encode(), bundle, fuzz_rootfs, marker))
    root = os.path.join(workspace, "state")
    results, leaked = run_in_subreaper([[slr_bin, "--root", root, "run", "--bundle", bundle, "ok"]])
    assert (results[0]["code"], results[0]["stderr"], leaked) == (0, "", [])
    assert len(set(json_paths(BASE))) > 60


# --- exec -p, update -r: mutated documents against a running container -----------------

@pytest.fixture
def running(slr_bin, workspace, fuzz_rootfs):
    """(slr argv prefix, container id, marker) of a running busybox container."""
    marker = "slrfuzz" + uuid.uuid4().hex[:12]
    bundle = _bundle(workspace, fuzz_rootfs)
    config = default_config(["sleep", "100000"], fuzz_rootfs)
    config["process"]["env"].append(f"SLR_TEST_MARKER={marker}")
    config["linux"]["cgroupsPath"] = f"/{marker}/c"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    root = os.path.join(workspace, "state")
    slr = [slr_bin, "--root", root]
    leftovers = Leftovers(root, workspace, marker, f"/{marker}/c")
    subprocess.run(slr + ["run", "-d", "--bundle", bundle, "target"], check=True, timeout=60,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    yield slr, "target", bundle
    subprocess.run(slr + ["delete", "--force", "target"], check=True, timeout=60)
    assert leftovers.check("target") == []
    _forget(slr_bin, root, "target", marker)


def _assert_still_alone(slr, container_id, what):
    state = json.loads(subprocess.run(slr + ["state", container_id], capture_output=True, text=True,
                                      check=True).stdout)
    assert state["status"] == "running", what
    pids = json.loads(subprocess.run(slr + ["ps", "--format", "json", container_id], capture_output=True,
                                     text=True, check=True).stdout)
    assert len(pids) == 1, f"{what}: processes left in the container: {pids}"


PROCESS = {"args": ["true"], "cwd": "/", "env": ["PATH=/bin", "HOME=/root"], "terminal": False,
           "user": {"uid": 0, "gid": 0, "additionalGids": [5], "umask": 18},
           "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
           "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
           "noNewPrivileges": True, "oomScoreAdj": 1, "apparmorProfile": "", "selinuxLabel": ""}


@example([("set", ("cwd",), "/etc/passwd")], "utf-8")
@example([("repeat", ("user", "additionalGids"), 70000)], "utf-8")
@example([("set", ("user", "umask"), 1 << 31)], "utf-8")
@example([("nest", ("args",), 100000)], "nan")
@given(operations=mutations(PROCESS), encoding=ENCODING_CHOICES)
@fuzz(ci_examples=30)
def test_fuzz_exec_process_json(running, operations, encoding):
    _mutated_document_for(running, "exec", "-p", PROCESS, operations, encoding, runs_a_process=True)


def _mutated_document_for(running, command, flag, base, operations, encoding, runs_a_process):
    """`slr COMMAND FLAG <mutated base> ID` against the running container, which must
    stay running with its one process (an exec'd process must not stay behind)."""
    slr, container_id, bundle = running
    path = os.path.join(bundle, f"{command}.json")
    with open(path, "wb") as f:
        f.write(_fill(encode(mutate(base, operations), encoding), bundle, "/", "x"))
    results, leaked = run_in_subreaper([slr + [command, flag, path, container_id]])
    what = f"{command} {flag} with {operations!r} ({encoding})"
    if runs_a_process:
        _check_container_answer(results[0], what)
    else:
        check_answer(results[0], what)
    assert leaked == [], f"{what}: processes left: {leaked}"
    _assert_still_alone(slr, container_id, what)

RESOURCES = {"memory": {"limit": 1 << 28, "reservation": 1 << 27}, "pids": {"limit": 100},
             "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
             "blockIO": {"weight": 100}}


@example([("set", ("pids", "limit"), 1 << 64)], "utf-8")
@example([("nest", ("memory",), 100000)], "nan")
@given(operations=mutations(RESOURCES), encoding=ENCODING_CHOICES)
@fuzz(ci_examples=30)
def test_fuzz_update_resources(running, operations, encoding):
    _mutated_document_for(running, "update", "-r", RESOURCES, operations, encoding, runs_a_process=False)

# --- pool requests -------------------------------------------------------------------------

REQUEST = {"args": ["true"], "env": ["A=b"], "cwd": "/", "terminal": False, "wait": True,
           "consoleSize": {"height": 10, "width": 20}}


@pytest.fixture
def pool(slr_bin, workspace, fuzz_rootfs):
    bundle = _bundle(workspace, fuzz_rootfs)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(default_config(["true"], fuzz_rootfs), f)
    root = os.path.join(workspace, "state")
    slr = [slr_bin, "--root", root]
    subprocess.run(slr + ["pool", "create", "--bundle", bundle, "--size", "1", "fz"], check=True, timeout=60,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield slr, os.path.join(root, "pools", "fz", "pool.sock")
    subprocess.run(slr + ["pool", "delete", "fz"], timeout=60)


def _exchange(path, payload, timeout=20):
    """Send one request; -> the messages received until the manager closed (fds closed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        try:
            sock.sendmsg([payload])
        except OSError as exc:  # too large for one message: refused by the kernel, fine
            return [f"send: {exc.strerror}"]
        messages = []
        while True:
            data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(16))
            for level, kind, blob in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for i in range(0, len(blob) - len(blob) % 4, 4):
                        os.close(int.from_bytes(blob[i:i + 4], "little"))
            if not data:
                return messages
            messages.append(json.loads(data))


@example([("set", ("cwd",), "/etc/passwd")], "utf-8")
@example([("nest", ("args",), 100000)], "nan")
@example([("set", ("consoleSize", "height"), 1 << 64), ("set", ("terminal",), True)], "utf-8")
@given(operations=mutations(REQUEST), encoding=ENCODING_CHOICES)
@fuzz(ci_examples=30)
def test_fuzz_pool_requests(pool, operations, encoding):
    slr, path = pool
    what = f"pool request with {operations!r} ({encoding})"
    try:
        messages = _exchange(path, encode(mutate(REQUEST, operations), encoding))
    except socket.timeout:
        pytest.fail(f"{what}: no answer")
    for message in messages:
        if isinstance(message, str):
            continue
        assert isinstance(message, dict) and set(message) <= {"id", "pid", "error", "exit"}, (what, message)
        if "error" in message:
            assert "\n" not in message["error"] and not any(w in message["error"] for w in ("Traceback", "internal error")), \
                (what, message)
    # The manager still serves a good request.
    assert [set(m) for m in _exchange(path, json.dumps(REQUEST).encode())] == [{"id", "pid"}, {"exit"}], what


def test_fuzz_uses_a_private_subreaper(tmp_path):
    """The oracle sees an escaped process: a daemon the command leaves running."""
    results, leaked = run_in_subreaper([["sh", "-c", "sleep 1000 >/dev/null 2>&1 & exit 0"]])
    assert results[0]["code"] == 0 and leaked == ["sleep 1000"]
