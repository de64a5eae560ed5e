"""The FGAC server against real rootless containers: user + mount namespaces, a
pivot_root'ed busybox root, a seccomp filter that notifies a real server."""

import errno
import os
import signal
import socket
import struct
import time

import pyseccomp
import pytest

TMPFS_MAGIC = 0x01021994
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 32, 0x1000, 0x4000
S_IFCHR, S_IFBLK = 0o020000, 0o060000
MNT_DETACH = 2

POLICY = """
# The containers of these tests
container id=fgac-*
  mount fstype=tmpfs source=tmpfs target=/mnt/allowed flags=nosuid,nodev,noexec require=nosuid data=size=*,mode=0755
  mount fstype=bind source=/data target=/mnt/allowed flags=rec,ro
  mknod path=/dev/null* type=c dev=1:3 mode=0666
  umount target=/mnt/allowed flags=detach
"""


def mount(target, fstype="tmpfs", source="tmpfs", flags=MS_NOSUID | MS_NODEV, data=None):
    return {"op": "mount", "source": source, "target": target, "fstype": fstype, "flags": flags, "data": data}


def mknod(path, mode, major, minor, op="mknod"):
    return {"op": op, "path": path, "mode": mode, "major": major, "minor": minor}


def test_allowed_tmpfs_mount_is_visible_inside_only(fgac, rootfs, container):
    server = fgac(POLICY)
    results = container(server, rootfs, "fgac-tmpfs", [
        mount("/mnt/allowed", data="size=1m,mode=0755"),
        {"op": "statfs", "path": "/mnt/allowed"},
        {"op": "write", "path": "/mnt/allowed/note", "data": "in the tmpfs"},
        {"op": "read", "path": "/mnt/allowed/note"},
        {"op": "umount2", "target": "/mnt/allowed", "flags": MNT_DETACH},
        {"op": "statfs", "path": "/mnt/allowed"},
    ]).results()
    assert results[0] == {"errno": 0}
    assert results[1]["type"] == TMPFS_MAGIC
    assert results[3]["data"] == "in the tmpfs"
    assert results[4] == {"errno": 0}
    assert results[5]["type"] != TMPFS_MAGIC
    # The mount lived in the container's mount namespace, not on the host.
    assert os.listdir(os.path.join(rootfs, "mnt/allowed")) == []
    allow = server.decisions("fgac-tmpfs")[0]
    assert allow["decision"] == "allow" and allow["errno"] == "OK"
    assert allow["resolved"] == {"target": "/mnt/allowed"}
    assert allow["args"]["flags"] == ["nosuid", "nodev"] and allow["rule"].endswith(":4")


def test_allowed_bind_mount_is_visible_inside(fgac, rootfs, container):
    server = fgac(POLICY)
    results = container(server, rootfs, "fgac-bind", [
        mount("/mnt/allowed", fstype=None, source="/data", flags=MS_BIND | MS_REC),
        {"op": "read", "path": "/mnt/allowed/hello"},
        {"op": "write", "path": "/mnt/allowed/from-inside", "data": "rw"},
        # mount(2) itself would ignore ro on a bind; the server honours it.
        mount("/mnt/allowed", fstype=None, source="/data", flags=MS_BIND | MS_RDONLY),
        {"op": "read", "path": "/mnt/allowed/from-inside"},
        {"op": "write", "path": "/mnt/allowed/refused", "data": "ro"},
    ]).results()
    assert results == [
        {"errno": 0},
        {"errno": 0, "data": "hello from /data\n"},
        {"errno": 0},
        {"errno": 0},
        {"errno": 0, "data": "rw"},
        {"errno": errno.EROFS},
    ]
    assert server.decisions("fgac-bind")[0]["resolved"] == {"target": "/mnt/allowed", "source": "/data"}
    assert os.path.exists(os.path.join(rootfs, "data/from-inside"))


def test_allowed_mknod_creates_the_node_with_the_callers_mode_and_owner(fgac, rootfs, container, test_user):
    server = fgac(POLICY)
    ops = [
        {"op": "umask", "mask": 0},
        mknod("/dev/null", S_IFCHR | 0o666, 1, 3),
        {"op": "stat", "path": "/dev/null"},
        {"op": "open_rw", "path": "/dev/null"},
        {"op": "umask", "mask": 0o022},
        mknod("/dev/null-umask", S_IFCHR | 0o666, 1, 3),
        {"op": "stat", "path": "/dev/null-umask"},
        {"op": "mkfifo", "path": "/tmp/fifo"},  # unprivileged: never reaches the server
        mknod("/dev/null", S_IFCHR | 0o666, 1, 3),  # exists: the real errno comes back
    ]
    has_mknod_syscall = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "mknod") >= 0
    if has_mknod_syscall:
        ops += [mknod("/dev/null-raw", S_IFCHR | 0o600, 1, 3, op="mknod_syscall"), {"op": "stat", "path": "/dev/null-raw"}]
    results = container(server, rootfs, "fgac-mknod", ops).results()
    assert results[1] == {"errno": 0}
    node = results[2]
    assert (node["mode"], node["major"], node["minor"], node["uid"]) == (S_IFCHR | 0o666, 1, 3, 0)
    assert results[3] == {"errno": 0, "written": 1, "read": ""}  # it is a working /dev/null
    assert results[5] == {"errno": 0} and results[6]["mode"] == S_IFCHR | 0o644
    assert results[7] == {"errno": 0}
    assert results[8] == {"errno": errno.EEXIST}
    host_view = os.stat(os.path.join(rootfs, "dev/null"))
    assert (host_view.st_uid, host_view.st_gid) == (test_user.pw_uid, test_user.pw_gid)
    syscalls = [d["syscall"] for d in server.decisions("fgac-mknod")]
    assert len(syscalls) == (4 if has_mknod_syscall else 3)
    if has_mknod_syscall:
        assert results[-2] == {"errno": 0} and results[-1]["mode"] == S_IFCHR | 0o600
        assert "mknod" in syscalls


def test_disallowed_calls_get_eperm(fgac, rootfs, container, workdir):
    server = fgac(POLICY)
    host_dir = os.path.join(workdir, "host-only")
    os.mkdir(host_dir)
    os.chmod(host_dir, 0o777)
    cases = [
        ("other fstype", mount("/mnt/allowed", fstype="ramfs", source="ramfs")),
        ("target outside the prefix", mount("/mnt/other")),
        ("prefix is not a string prefix", mount("/mnt/allowedx")),
        ("symlink to a host path", mount("/mnt/allowed/escape")),
        ("symlink climbing out", mount("/mnt/allowed/up/etc")),
        ("flag not allowed", mount("/mnt/allowed", flags=MS_NOSUID | MS_RDONLY)),
        ("required flag missing", mount("/mnt/allowed", flags=MS_NODEV)),
        ("data option not allowed", mount("/mnt/allowed", data="size=1m,uid=0")),
        ("remount", mount("/mnt/allowed", flags=MS_REMOUNT | MS_NOSUID)),
        ("bind source outside", mount("/mnt/allowed", fstype=None, source="/etc", flags=MS_BIND)),
        ("relative target", mount("mnt/allowed")),
        ("other device", mknod("/dev/null", S_IFCHR | 0o666, 1, 5)),
        ("block device", mknod("/dev/null", S_IFBLK | 0o666, 1, 3)),
        ("mode beyond the rule", mknod("/dev/null", S_IFCHR | 0o4666, 1, 3)),
        ("other path", mknod("/tmp/null", S_IFCHR | 0o666, 1, 3)),
        ("umount outside", {"op": "umount2", "target": "/mnt/other", "flags": 0}),
    ]
    setup = [
        {"op": "umask", "mask": 0},
        {"op": "mkdir", "path": "/mnt/allowedx"},
        {"op": "symlink", "path": "/mnt/allowed/escape", "to": host_dir},
        {"op": "symlink", "path": "/mnt/allowed/up", "to": "../../../../../../.."},
    ]
    results = container(server, rootfs, "fgac-denied", setup + [op for _, op in cases]).results()
    answers = dict(zip([name for name, _ in cases], results[len(setup):]))
    assert answers == {name: {"errno": errno.EPERM} for name, _ in cases}
    assert os.listdir(host_dir) == [] and not os.path.ismount(host_dir)
    assert not os.path.exists(os.path.join(rootfs, "tmp/null"))
    decisions = server.decisions("fgac-denied")
    assert [d["decision"] for d in decisions] == ["deny"] * len(cases)
    by_target = {d["args"].get("target"): d for d in decisions if d["syscall"] == "mount"}
    # The in-container view: absolute symlinks restart at the container's root.
    assert "No such file" in by_target["/mnt/allowed/escape"]["reason"]
    assert by_target["/mnt/allowed/up/etc"]["resolved"] == {"target": "/etc"}
    assert "not within /mnt/allowed" in by_target["/mnt/allowed/up/etc"]["reason"]


def test_allowed_block_device_mount_uses_the_host_device(fgac, rootfs, container, loop_device):
    """The device named in the policy is the host's: the container has no such node."""
    flags = MS_NOSUID | MS_NODEV | MS_RDONLY
    server = fgac(f"""
container id=fgac-*
  mount fstype=ext4 source={loop_device} target=/mnt/allowed flags=nosuid,nodev,ro require=nosuid,nodev,ro
""")
    results = container(server, rootfs, "fgac-blockdev", [
        {"op": "stat", "path": loop_device},
        mount("/mnt/allowed", fstype="ext4", source=loop_device, flags=flags & ~MS_RDONLY),
        mount("/mnt/other", fstype="ext4", source=loop_device, flags=flags),
        mount("/mnt/allowed", fstype="ext4", source=loop_device, flags=flags),
        {"op": "read", "path": "/mnt/allowed/on-ext4"},
    ]).results()
    assert results == [
        {"errno": errno.ENOENT},  # no such node inside the container
        {"errno": errno.EPERM},  # ro is required
        {"errno": errno.EPERM},  # outside the target
        {"errno": 0},
        {"errno": 0, "data": "from the block device\n"},
    ]
    assert server.decisions("fgac-blockdev")[-1]["rule"].endswith(":3")


def test_unknown_container_gets_eperm_and_is_logged(fgac, rootfs, container):
    server = fgac(POLICY)
    results = container(server, rootfs, "stranger", [mount("/mnt/allowed", data="size=1m")]).results()
    assert results == [{"errno": errno.EPERM}]
    (registered,) = [r for r in server.records("register") if r["container"] == "stranger"]
    assert registered["policy"] is None
    (decision,) = server.decisions("stranger")
    assert decision["decision"] == "deny" and decision["reason"].startswith("unknown container")


def test_argument_swap_race_cannot_redirect_an_allowed_mount(fgac, rootfs, container):
    server = fgac(POLICY.replace("require=nosuid ", ""))
    results = container(server, rootfs, "fgac-race", [
        {"op": "race", "good": "/mnt/allowed", "bad": "/etc", "iterations": 200},
        {"op": "statfs", "path": "/etc"},
        {"op": "statfs", "path": "/mnt/allowed"},
    ]).results()
    counts = results[0]["counts"]
    assert set(counts) <= {"OK", "EPERM"} and sum(counts.values()) == 200
    # Both outcomes happened: the buffer really changed under the server's feet.
    assert counts.get("OK", 0) > 0 and counts.get("EPERM", 0) > 0, counts
    assert results[1]["type"] != TMPFS_MAGIC
    assert results[2]["type"] == TMPFS_MAGIC
    decisions = server.decisions("fgac-race")
    allowed = [d for d in decisions if d["decision"] == "allow"]
    assert len(allowed) == counts["OK"]
    assert {d["resolved"]["target"] for d in allowed} == {"/mnt/allowed"}


def test_many_containers_are_served_at_once(fgac, rootfs, container):
    policy = POLICY + """
container annotation=org.example.fgac=sensors
  mount fstype=tmpfs source=tmpfs target=/mnt/allowed flags=nosuid,nodev
  mknod path=/dev/null* type=c dev=1:3 mode=0666
container bundle=/srv/bundles/*
  mount fstype=tmpfs source=tmpfs target=/mnt/allowed flags=nosuid,nodev
  mknod path=/dev/null* type=c dev=1:3 mode=0666
"""
    server = fgac(policy)
    selectors = [{}] * 3 + [{"annotations": {"org.example.fgac": "sensors"}}] * 3 + [{"bundle": "/srv/bundles/b"}] * 3
    containers = []
    for n, state in enumerate(selectors):
        name = f"fgac-many-{n}" if n < 3 else f"other-{n}"
        ops = [{"op": "wait"}, mount("/mnt/allowed"), {"op": "statfs", "path": "/mnt/allowed"},
               mknod(f"/dev/null{n}", S_IFCHR | 0o666, 1, 3), mount("/mnt/allowed"),
               mknod(f"/dev/null{n}b", S_IFCHR | 0o666, 1, 3)]
        containers.append((name, container(server, rootfs, name, ops, **state)))
    for _, c in containers:
        c.wait_until("waiting")
    server.wait_for(lambda r: len(server.records("register")) == len(containers))
    for _, c in containers:  # all at once
        c.resume()
    for name, c in containers:
        results = c.results()
        assert [r.get("errno") for r in results] == [None, 0, 0, 0, 0, 0], name
        assert results[2]["type"] == TMPFS_MAGIC
    assert all(d["decision"] == "allow" for d in server.records("decision"))
    assert len(server.records("decision")) == 4 * len(containers)


def test_a_flooding_container_is_served_in_bounded_batches(fgac, rootfs, container):
    """More concurrent calls than the server runs helpers for one container: the
    rest wait in the kernel's queue and are all answered."""
    server = fgac(POLICY)
    results = container(server, rootfs, "fgac-flood", [
        {"op": "parallel", "threads": 12, "call": mount("/mnt/allowed")},
        {"op": "parallel", "threads": 12, "call": mount("/etc")},
    ]).results()
    assert results == [{"errnos": [0] * 12}, {"errnos": [errno.EPERM] * 12}]
    decisions = server.decisions("fgac-flood")
    assert sorted(d["decision"] for d in decisions) == ["allow"] * 12 + ["deny"] * 12


def test_killed_server_makes_calls_fail_instead_of_hanging(fgac, rootfs, container):
    server = fgac(POLICY)
    c = container(server, rootfs, "fgac-orphan", [
        {"op": "wait"},
        mount("/mnt/allowed", data="size=1m"),
        mknod("/dev/null", S_IFCHR | 0o666, 1, 3),
    ])
    c.wait_until("waiting")
    server.wait_for(lambda r: r["event"] == "register")
    os.kill(server.proc.pid, signal.SIGSTOP)  # the call below reaches a stalled server
    c.resume()
    mount_nr = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "mount")
    deadline = time.monotonic() + 10
    while not _in_syscall(c.pid, mount_nr):
        assert time.monotonic() < deadline, "container never blocked in mount(2)"
        time.sleep(0.02)
    os.kill(server.proc.pid, signal.SIGKILL)
    started = time.monotonic()
    results = c.results(timeout=10)
    assert results[1:] == [{"errno": errno.ENOSYS}, {"errno": errno.ENOSYS}]
    print(f"blocked call answered {time.monotonic() - started:.3f}s after the server died")


def test_container_killed_during_a_call_leaves_the_server_serving(fgac, rootfs, container):
    server = fgac(POLICY)
    doomed = container(server, rootfs, "fgac-doomed", [{"op": "wait"}, mount("/mnt/allowed")])
    doomed.wait_until("waiting")
    server.wait_for(lambda r: r["event"] == "register")
    os.kill(server.proc.pid, signal.SIGSTOP)
    doomed.resume()
    mount_nr = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "mount")
    deadline = time.monotonic() + 10
    while not _in_syscall(doomed.pid, mount_nr):
        assert time.monotonic() < deadline, "container never blocked in mount(2)"
        time.sleep(0.02)
    os.kill(doomed.pid, signal.SIGKILL)
    os.kill(server.proc.pid, signal.SIGCONT)
    server.wait_for(lambda r: r["event"] == "unregister" and r["container"] == "fgac-doomed")
    assert container(server, rootfs, "fgac-survivor", [mount("/mnt/allowed")]).results() == [{"errno": 0}]
    assert server.proc.poll() is None


def _in_syscall(pid, nr):
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] == str(nr)
    except (OSError, IndexError):
        return False


def _send(path, payload, fds=(), close=True):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    conn.sendmsg([payload], ancillary)
    if close:
        conn.close()
    return conn


def _open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_garbage_clients_are_dropped_without_affecting_others(fgac, rootfs, container):
    server = fgac(POLICY)
    server.wait_for(lambda r: r["event"] == "client_dropped")  # the readiness probe's
    baseline = _open_fds(server.proc.pid)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(server.socket)  # says nothing: dropped after the client timeout
    pipe_r, pipe_w = os.pipe()
    state = (b'{"ociVersion":"1.2.0","fds":["seccompFd"],"pid":1,"state":{"ociVersion":"1.2.0",'
             b'"id":"fgac-fake","status":"creating","pid":1,"bundle":"/b"}}')
    _send(server.socket, os.urandom(4096))
    _send(server.socket, b'{"ociVersion": "1.2.0", "fds": [], "pid": 1}')
    _send(server.socket, state, fds=[pipe_r])  # a pipe is not a seccomp notify fd
    _send(server.socket, state.replace(b'"pid":1,', b'"pid":"1",', 1), fds=[pipe_r])
    _send(server.socket, b"{" * 70000)
    os.close(pipe_r)
    os.close(pipe_w)
    results = container(server, rootfs, "fgac-neighbour", [mount("/mnt/allowed")]).results()
    assert results == [{"errno": 0}]
    drops = server.wait_for(lambda r: r["event"] == "client_dropped" and "in time" in r["reason"], timeout=15)
    idle.close()
    reasons = [r["reason"] for r in server.records("client_dropped")]
    assert reasons[0] == "closed without sending anything"  # the fixture's readiness probe
    reasons = reasons[1:]
    assert len(reasons) == 6, reasons
    assert any(r.startswith("payload is not JSON") for r in reasons)
    assert any("no single 'seccompFd'" in r for r in reasons)
    assert any("not a seccomp notify descriptor" in r for r in reasons)
    assert any(r.startswith("pid:") for r in reasons)
    assert any(r == "message too large" for r in reasons)
    assert drops and server.proc.poll() is None
    time.sleep(0.2)
    assert _open_fds(server.proc.pid) == baseline  # every received descriptor closed


def test_policy_reload_on_sighup(fgac, rootfs, container):
    server = fgac("container id=nobody-else\n")
    c = container(server, rootfs, "fgac-reload", [mount("/mnt/allowed"), {"op": "wait"}, mount("/mnt/allowed")])
    c.wait_until("waiting")
    server.write_policy("container id=broken\n  mount fstype=tmpfs\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_for(lambda r: r["event"] == "reload_failed")
    server.write_policy(POLICY)
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_for(lambda r: r["event"] == "reloaded")
    c.resume()
    assert c.results() == [{"errno": errno.EPERM}, {}, {"errno": 0}]
    reason = server.records("reload_failed")[0]["reason"]
    assert reason.endswith("fgac.policy:2: mount: field 'source': missing")


def test_server_stops_cleanly_on_sigterm(fgac):
    server = fgac(POLICY)
    assert server.stop() == 0
    assert not os.path.exists(server.socket)
    assert server.records()[-1]["event"] == "stopped"


# --- notifications from processes that are not the registered container --------------
# A client the policy trusts (here the test user, uid= of no block) can hand the server
# the listener of a filter on any process of its own. The server must act only for
# threads of the container it registered: never in the host's mount namespace and
# root, nor in a namespace the client made outside any container.

def _host_policy(workdir):
    return (f"container id=fgac-*\n"
            f"  mount fstype=tmpfs source=tmpfs target={workdir}/hostdir flags=nosuid,nodev\n"
            f"  mount fstype=tmpfs source=tmpfs target=/mnt/allowed flags=nosuid,nodev\n"
            f"  mknod path={workdir}/node* type=c dev=1:3 mode=0666\n")


def _mounted_at(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _undo_host_effects(workdir):
    """What an unfixed server did to the host: unmount and remove it."""
    while _mounted_at(os.path.join(workdir, "hostdir")):
        os.system(f"umount -l {workdir}/hostdir")
    for name in os.listdir(workdir):
        if name.startswith("node"):
            os.unlink(os.path.join(workdir, name))


@pytest.mark.parametrize("enter,op,reason", [
    ("host", "mount", "it shares the server's mount namespace"),
    ("userns", "mknod", "its root directory is the server's"),
], ids=["host-process", "own-userns-host-root"])
def test_a_listener_of_a_process_outside_any_container_is_not_registered(
        fgac, rootfs, container, workdir, enter, op, reason):
    os.mkdir(os.path.join(workdir, "hostdir"))
    server = fgac(_host_policy(workdir))
    call = (mount(f"{workdir}/hostdir") if op == "mount"
            else mknod(f"{workdir}/node", S_IFCHR | 0o666, 1, 3))
    try:
        proc = container(server, rootfs, "fgac-host", [call], enter=enter)
        results = proc.results()
        mounted = _mounted_at(os.path.join(workdir, "hostdir"))
        made = os.path.exists(os.path.join(workdir, "node"))
    finally:
        _undo_host_effects(workdir)
    assert (mounted, made) == (False, False)
    assert results == [{"errno": errno.ENOSYS}]  # no listener: the server refused it
    # (The fixture's start-up probe is dropped too: it connects and sends nothing.)
    dropped = server.wait_for(lambda r: r["event"] == "client_dropped" and r["reason"].startswith("pid "))
    assert dropped[0]["reason"] == f"pid {proc.pid} is not in a container: {reason}"
    assert server.records("register") == []


def test_a_host_process_claiming_a_real_container_is_not_served(fgac, rootfs, container, workdir):
    os.mkdir(os.path.join(workdir, "hostdir"))
    server = fgac(_host_policy(workdir))
    real = container(server, rootfs, "fgac-real", [{"op": "wait"}, mount("/mnt/allowed")])
    real.wait_until("waiting")
    try:
        impostor = container(server, rootfs, "fgac-real", [mount(f"{workdir}/hostdir")],
                             enter="host", claim_pid=real.pid)
        results = impostor.results()
        mounted = _mounted_at(os.path.join(workdir, "hostdir"))
    finally:
        _undo_host_effects(workdir)
    assert not mounted
    assert results == [{"errno": errno.EPERM}]
    denied = [d for d in server.decisions("fgac-real") if d["decision"] == "deny"]
    assert denied[0]["reason"] == (f"pid {impostor.pid} is not a thread of the registered container: "
                                   "its mnt namespace differs")
    real.resume()
    assert real.results() == [{}, {"errno": 0}]  # the real container is served as before
