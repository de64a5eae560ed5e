"""The core features again, run by an unprivileged user: `slr spec --rootless`-style
configs (a user namespace mapping that user to root), state in a directory it owns."""

import json
import os
import pwd
import subprocess
import time

import pytest
from helpers import Slr

pytestmark = pytest.mark.rootless

USER = "slrrootless"
SUB_START, SUB_COUNT = 300000, 65536  # subordinate ids for the newuidmap/newgidmap test


@pytest.fixture(scope="session")
def rootless_user():
    """An unprivileged user (created once; kept for later runs) with subordinate ids."""
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        line = f"{USER}:{SUB_START}:{SUB_COUNT}"
        if not os.path.exists(path) or line not in open(path).read().split():
            subprocess.run(["usermod", flag, f"{SUB_START}-{SUB_START + SUB_COUNT - 1}", USER], check=True)
    return entry.pw_uid, entry.pw_gid


class RootlessSlr(Slr):
    def cmd(self, *args):
        return ["runuser", "-u", USER, "--", self.binary, "--root", self.root, *args]


@pytest.fixture
def rslr(slr_bin, open_tmp, rootless_user):
    root = os.path.join(open_tmp, "state")
    os.mkdir(root, 0o700)
    os.chown(root, *rootless_user)
    runtime = RootlessSlr(slr_bin, root)
    yield runtime
    leftovers = runtime.cleanup()
    assert not leftovers, f"test left containers behind: {leftovers}"


@pytest.fixture
def rbundle(open_bundle, rootless_user):
    """open_bundle with `slr spec --rootless` defaults for the rootless user."""
    uid, gid = rootless_user

    def make(args, edit=None):
        def rootless(config):
            config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
            config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
            if edit:
                edit(config)
        path = open_bundle(args, edit=rootless, rootless=True)
        # A rootless user runs its own image: the rootfs is the user's (mount points get made in it).
        for directory, dirs, files in os.walk(os.path.join(path, "rootfs")):
            for name in [directory] + [os.path.join(directory, n) for n in dirs + files]:
                os.lchown(name, uid, gid)
        return path

    return make


def _user_dir(parent, rootless_user, name):
    path = os.path.join(parent, name)
    os.mkdir(path)
    os.chown(path, *rootless_user)
    return path


def test_rootless_container_identity_and_isolation(rslr, rbundle, rootless_user):
    script = ("cat /proc/self/uid_map /proc/self/gid_map; id -u; echo pid=$$; hostname; "
              "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
              "touch /rootfs-write 2>/dev/null || echo root-ro; wc -c < /proc/keys; "
              "echo 1 > /proc/sys/kernel/ostype 2>/dev/null || echo sys-ro; mkdir /dev/shm/x 2>&1; "
              "echo data > /scratch/f && cat /scratch/f; ls /sys/class/net 2>/dev/null | wc -l")

    def extras(config):
        config["hostname"] = "rootless"
        config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]}

    result = rslr("run", "-b", rbundle(["sh", "-c", script], edit=extras), "c1")
    assert result.returncode == 0, result.stderr
    uid, gid = rootless_user
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["0", str(uid), "1"] and lines[1].split() == ["0", str(gid), "1"]
    assert lines[2:5] == ["0", "pid=1", "rootless"]
    status = dict(line.split(":\t") for line in lines[5:9])
    assert status["CapEff"] == status["CapBnd"] == "0000000020000420"  # `slr spec`'s three capabilities
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    assert lines[9:12] == ["root-ro", "0", "sys-ro"]
    assert "Invalid cross-device link" in lines[12]
    assert lines[13] == "data"


def test_rootless_lifecycle_exec_and_host_view(rslr, rbundle, rootless_user):
    b = rbundle(["sleep", "1000"])
    rslr("create", "-b", b, "c1", check=True)
    assert rslr.state("c1")["status"] == "created"
    rslr("start", "c1", check=True)
    state = rslr.state("c1")
    assert state["status"] == "running"
    with open(f"/proc/{state['pid']}/status") as f:
        host_ids = {line.split(":")[0]: line.split()[1:] for line in f if line.startswith(("Uid", "Gid"))}
    assert host_ids["Uid"] == [str(rootless_user[0])] * 4  # the container's root is the user on the host
    out = rslr("exec", "c1", "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '", check=True).stdout
    assert out.split("\n")[:2] == ["0", "sleep 1000 "]
    assert [c["id"] for c in json.loads(rslr("list", "--format", "json", check=True).stdout)] == ["c1"]
    paused = rslr("pause", "c1")  # no cgroup without delegation: a clear error
    assert paused.returncode == 1 and "cgroup" in paused.stderr
    rslr("kill", "c1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while rslr.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rslr.state("c1")["status"] == "stopped"
    rslr("delete", "c1", check=True)
    assert rslr.ids() == []


def test_rootless_hooks_and_bind_mounts(rslr, rbundle, rootless_user, open_tmp):
    shared = _user_dir(open_tmp, rootless_user, "shared")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f'cat > {shared}/prestart.json; id -u >> {shared}/prestart.json']}

    def edit(config):
        config["hooks"] = {"prestart": [hook]}
        config["mounts"].append({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]})

    rslr("run", "-b", rbundle(["sh", "-c", "echo inside > /shared/from-container"], edit=edit), "c1", check=True)
    created = os.stat(os.path.join(shared, "from-container"))
    assert (created.st_uid, created.st_gid) == rootless_user
    state_text, hook_uid = open(os.path.join(shared, "prestart.json")).read().rsplit("}", 1)
    assert json.loads(state_text + "}")["status"] == "created"
    assert hook_uid.strip() == str(rootless_user[0])  # hooks run as the calling user


def test_rootless_several_ids_through_newuidmap(rslr, rbundle, rootless_user):
    def mappings(config):
        uid, gid = rootless_user
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1},
                                          {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1},
                                          {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}]
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    b = rbundle(["sleep", "1000"], edit=mappings)
    rslr("run", "-d", "-b", b, "c1", check=True)
    pid = rslr.state("c1")["pid"]
    with open(f"/proc/{pid}/uid_map") as f:
        uid_map = [line.split() for line in f]
    with open(f"/proc/{pid}/status") as f:
        host_uid = next(line.split()[1] for line in f if line.startswith("Uid"))
    rslr("delete", "-f", "c1", check=True)
    assert uid_map == [["0", str(rootless_user[0]), "1"], ["1", str(SUB_START), str(SUB_COUNT)]]
    assert host_uid == str(SUB_START + 999)


def test_rootless_mapping_of_foreign_ids_is_refused(rslr, rbundle, open_tmp):
    b = rbundle(["true"], edit=lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 0, "size": 1}]))
    result = rslr("run", "-b", b, "c1")
    assert result.returncode == 1 and "newuidmap" in result.stderr
    assert os.listdir(rslr.root) == []


def test_rootless_terminal_through_console_socket(rslr, rbundle, open_tmp):
    import array
    import socket

    path = os.path.join(open_tmp, "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)  # the unprivileged runtime connects to it
    listener.listen(1)
    listener.settimeout(20)
    b = rbundle(["sh", "-c", "tty; id -u; sleep 1000"], edit=lambda c: c["process"].update(terminal=True))
    rslr("create", "-b", b, "--console-socket", path, "c1", check=True)
    conn, _ = listener.accept()
    _, ancdata, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4))
    fds = array.array("i")
    fds.frombytes(ancdata[0][2])
    master = fds[0]
    try:
        rslr("start", "c1", check=True)
        output = b""
        deadline = time.monotonic() + 10
        while b"\n0\r\n" not in output and time.monotonic() < deadline:
            output += os.read(master, 1024)
    finally:
        rslr("delete", "-f", "c1", check=True)
        os.close(master)
        conn.close()
        listener.close()
    assert output.startswith(b"/dev/pts/0\r\n0\r\n"), output
