"""Fixtures for the FGAC tests: an unprivileged user, busybox root filesystems, a
real FGAC server process and real rootless containers (rootless_container.py)."""

import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from slruntime.fgac.spec_helper import add_seccomp_notify

HERE = os.path.dirname(os.path.abspath(__file__))
CONTAINER_SCRIPT = os.path.join(HERE, "rootless_container.py")
TEST_USER = "fgac-test"


@pytest.fixture(scope="session")
def test_user():
    """An unprivileged user the containers run as (created if missing)."""
    created = False
    try:
        entry = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER], check=True
        )
        entry, created = pwd.getpwnam(TEST_USER), True
    yield entry
    if created:
        subprocess.run(["userdel", TEST_USER], check=False)


@pytest.fixture
def workdir(open_tmp):
    """A directory the unprivileged user can traverse (runtime/tests/conftest.py)."""
    return open_tmp


@pytest.fixture
def rootfs(workdir, test_user):
    """A busybox root filesystem owned by the test user (its container root)."""
    root = os.path.join(workdir, "rootfs")
    for sub in ("bin", "dev", "etc", "tmp", "data", "mnt/allowed", "mnt/other"):
        os.makedirs(os.path.join(root, sub))
    shutil.copy2("/bin/busybox", os.path.join(root, "bin/busybox"))
    os.symlink("busybox", os.path.join(root, "bin/sh"))
    with open(os.path.join(root, "data/hello"), "w") as f:
        f.write("hello from /data\n")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            os.lchown(name, test_user.pw_uid, test_user.pw_gid)
    return root


@pytest.fixture
def logdir():
    path = tempfile.mkdtemp(prefix="fgac-test-", dir="/dev/shm")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class FgacServer:
    """`python -m slruntime.fgac` as its own process, as an administrator runs it."""

    def __init__(self, workdir, logdir, policy_text):
        self.socket = os.path.join(workdir, "fgac.sock")
        self.policy = os.path.join(workdir, "fgac.policy")
        self.log_path = os.path.join(logdir, "decisions.jsonl")
        self.write_policy(policy_text)
        cmd = [sys.executable, "-m", "slruntime.fgac", "--socket", self.socket, "--policy", self.policy,
               "--log", self.log_path, "--socket-mode", "0666"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while not self._connectable():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"FGAC server did not start: {self.proc.communicate()[1]}")
            time.sleep(0.05)

    def write_policy(self, text):
        with open(self.policy, "w") as f:
            f.write(text)

    def _connectable(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.socket)
            except OSError:
                return False
        return True

    def records(self, event=None):
        with open(self.log_path) as f:
            records = [json.loads(line) for line in f]
        return [r for r in records if event is None or r["event"] == event]

    def decisions(self, container):
        return [r for r in self.records("decision") if r["container"] == container]

    def wait_for(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.records() if predicate(r)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError("expected log record did not appear")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture
def fgac(workdir, logdir):
    """Factory: fgac(policy_text) starts a server; each is stopped at teardown."""
    servers = []

    def start(policy_text):
        server = FgacServer(workdir, logdir, policy_text)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Container:
    """One rootless container run by rootless_container.py as the test user."""

    def __init__(self, user, server, rootfs, container_id, ops, **state):
        seccomp = add_seccomp_notify({}, server.socket)["linux"]["seccomp"]
        spec = dict(socket=server.socket, rootfs=rootfs, id=container_id, ops=ops, seccomp=seccomp, **state)
        self.proc = subprocess.Popen(
            [sys.executable, CONTAINER_SCRIPT, json.dumps(spec)],
            user=user.pw_uid, group=user.pw_gid, extra_groups=[],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, cwd="/",
        )
        self.pid, self.buffer = None, b""

    def next_event(self, timeout=30):
        # Read the pipe directly: a buffered reader would hide lines from select().
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                self.proc.kill()
                raise AssertionError("container gave no sign of life (hung?)")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"container ended early (exit {self.proc.wait()})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        event = json.loads(line)
        if event.get("event") == "error":
            raise AssertionError(f"container failed: {event['error']}")
        if event.get("event") == "registered":
            self.pid = event["pid"]
        return event

    def wait_until(self, name, timeout=30):
        while True:
            event = self.next_event(timeout)
            if event.get("event") == name or name in event:
                return event

    def resume(self):
        self.proc.stdin.write(b"\n")

    def results(self, timeout=60):
        results = self.wait_until("results", timeout)["results"]
        assert self.wait_until("exit", timeout)["status"] == 0
        assert self.proc.wait(timeout) == 0
        return results


@pytest.fixture
def container(test_user):
    """Factory: container(server, rootfs, id, ops, annotations=..., bundle=...)."""
    started = []

    def start(server, rootfs, container_id, ops, **state):
        c = Container(test_user, server, rootfs, container_id, ops, **state)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
        c.proc.wait()
        for stream in (c.proc.stdin, c.proc.stdout):
            stream.close()



@pytest.fixture
def loop_device(workdir):
    """A host block device (loop) holding an ext4 filesystem with one file."""
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no loop device support on this host")
    content = os.path.join(workdir, "ext4-content")
    os.mkdir(content)
    with open(os.path.join(content, "on-ext4"), "w") as f:
        f.write("from the block device\n")
    image = os.path.join(workdir, "ext4.img")
    subprocess.run(["truncate", "-s", "8M", image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", content, image], check=True)
    device = subprocess.run(["losetup", "--find", "--show", image], check=True, capture_output=True,
                            text=True).stdout.strip()
    yield device
    subprocess.run(["losetup", "--detach", device], check=False)
