"""The server's command line: bad input is refused at start, with one line naming
the problem, a non-zero exit and nothing left behind."""

import ctypes
import os
import subprocess
import sys

import pytest

GOOD_POLICY = "container id=x\n  mount fstype=tmpfs source=tmpfs target=/mnt\n"

BAD_POLICIES = [
    ("mount fstype=tmpfs source=tmpfs target=/mnt\n", ":1: mount: rule before any 'container' line"),
    ("container id=a\n\n  mount fstype=tmpfs target=/mnt\n", ":3: mount: field 'source': missing"),
    ("container id=a\n  mount fstype=tmpfs source=t target=mnt\n", ":2: mount: field 'target': 'mnt' is not an absolute path"),
    ("container id=a\n  mount fstype=tmpfs source=t target=/m flags=nosuid,remount\n", ":2: mount: field 'flags': unknown flag 'remount'"),
    ("container id=a\n  mount fstype=tmpfs source=t target=/m flags=rec\n", ":2: mount: field 'flags': bind and rec need fstype=bind"),
    ("container id=a\n  mknod path=/dev/x type=p dev=1:3 mode=0666\n", ":2: mknod: field 'type': 'p' is not c or b"),
    ("container id=a\n  mknod path=/dev/x type=c dev=1 mode=0666\n", ":2: mknod: field 'dev': expected MAJOR:MINOR"),
    ("container id=a\n  mknod path=/dev/x type=c dev=1:x mode=0666\n", ":2: mknod: field 'dev': 'x' is not a number or *"),
    ("container id=a\n  mknod path=/dev/x type=c dev=1:3 mode=0999\n", ":2: mknod: field 'mode': '0999' is not an octal mode"),
    ("container id=a\n  mknod path=/dev/x type=c dev=1:3 mode=0666 mode=0600\n", ":2: mknod: field 'mode': given more than once"),
    ("container id=a\n  umount target=/mnt flags=lazy\n", ":2: umount: field 'flags': unknown flag 'lazy'"),
    ("container id=a colour=blue\n", ":1: container: field 'colour': unknown field"),
    ("container uid=no-such-user-here\n", ":1: container: field 'uid': no such user 'no-such-user-here'"),
    ("container\n", ":1: container: no selector"),
    ("container id=a\n  chmod path=/x\n", ":2: unknown keyword 'chmod'"),
    ('container id="a\n', ":1: No closing quotation"),
    ("container id=a\n  mount fstype\n", ":2: mount: 'fstype' is not KEY=VALUE"),
]


def fgac_cli(*args, user=None):
    kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    return subprocess.run([sys.executable, "-m", "slruntime.fgac", *args], capture_output=True, text=True,
                          timeout=30, cwd="/", **kwargs)


@pytest.mark.parametrize("text,message", BAD_POLICIES, ids=[m for _, m in BAD_POLICIES])
def test_malformed_policy_is_refused_at_start(workdir, text, message):
    policy, sock = os.path.join(workdir, "policy"), os.path.join(workdir, "fgac.sock")
    with open(policy, "w") as f:
        f.write(text)
    result = fgac_cli("--socket", sock, "--policy", policy)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"python -m slruntime.fgac: {policy}{message}")
    assert os.listdir(workdir) == ["policy"]  # no socket left behind


def test_check_accepts_a_valid_policy(workdir):
    policy = os.path.join(workdir, "policy")
    with open(policy, "w") as f:
        f.write(GOOD_POLICY)
    assert fgac_cli("--policy", policy, "--check").returncode == 0


def _on_ram_filesystem(path):
    buf = ctypes.create_string_buffer(256)
    assert ctypes.CDLL("libc.so.6").statfs(path.encode(), buf) == 0
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF in (0x01021994, 0x858458F6)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_decision_log_must_be_on_a_ram_filesystem(workdir):
    disk_dir = os.path.dirname(os.path.abspath(__file__))
    if _on_ram_filesystem(disk_dir):
        pytest.skip("the checkout itself is on tmpfs: no disk directory to try")
    policy = _write(os.path.join(workdir, "policy"), GOOD_POLICY)
    log = os.path.join(disk_dir, "decisions.jsonl")
    result = fgac_cli("--socket", os.path.join(workdir, "s"), "--policy", policy, "--log", log)
    assert result.returncode == 1 and "not on tmpfs or ramfs" in result.stderr
    assert not os.path.exists(log) and not os.path.exists(os.path.join(workdir, "s"))


def test_socket_path_problems_are_refused(workdir, fgac):
    policy = _write(os.path.join(workdir, "policy"), GOOD_POLICY)
    not_a_socket = _write(os.path.join(workdir, "plain-file"), "")
    result = fgac_cli("--socket", not_a_socket, "--policy", policy)
    assert result.returncode == 1 and result.stderr.strip().endswith("exists and is not a socket")
    server = fgac(GOOD_POLICY)
    result = fgac_cli("--socket", server.socket, "--policy", policy)
    assert result.returncode == 1 and result.stderr.strip().endswith("another server is listening")
    assert server.proc.poll() is None


def test_other_bad_options(workdir, test_user):
    policy = _write(os.path.join(workdir, "policy"), GOOD_POLICY)
    sock = os.path.join(workdir, "s")
    for args, message in [
        (["--socket-mode", "rw"], "--socket-mode rw: not an octal mode"),
        (["--socket-group", "no-such-group-here"], "--socket-group no-such-group-here: no such group"),
        (["--cpus", "0-x"], "--cpus 0-x: not a CPU list like 0-1,3"),
        (["--cpus", "4096"], "--cpus 4096: Invalid argument"),
    ]:
        result = fgac_cli("--socket", sock, "--policy", policy, *args)
        assert (result.returncode, result.stderr.strip()) == (1, f"python -m slruntime.fgac: {message}")
    result = fgac_cli("--socket", "/tmp/unused.sock", "--policy", policy, user=test_user)
    assert result.returncode == 1 and "must run as root" in result.stderr
    result = fgac_cli("--socket", sock)
    assert (result.returncode, result.stderr) == (1, "python -m slruntime.fgac: --policy is required\n")
    result = fgac_cli("--socket", sock, "--policy")
    assert (result.returncode, result.stderr) == (1, "python -m slruntime.fgac: flag needs an argument: --policy\n")
    assert not os.path.exists(sock)
