"""Nothing is imported once a container process has left the host's view (the init after
pivot_root, an exec process after joining the container's mount namespace): from there
sys.path names the container's files, so a lazy import fails (the venv's slr) or runs
whatever the image put there, as the runtime, before the process is confined.
process_setup.forbid_imports turns every such import into the process's error; these
tests take each path that runs after that point, so a lazy import added on one of them
fails here, with the venv's slr and with the frozen one (SLR_BIN=... pytest this file).
"""

import array
import os
import socket
import subprocess
import threading

IMPORT_REFUSED = "imported in the container (after pivot_root)"
NOT_FOUND = 'slr: exec: "no-such-program": executable file not found in $PATH\n'


def _full_setup(config, listener_path):
    """A process that takes every optional step after the pivot: a terminal, another
    user with capabilities, rlimits, a seccomp filter with a notify listener, a
    startContainer hook, hostname."""
    config["process"].update(terminal=True, consoleSize={"height": 24, "width": 80},
                             user={"uid": 65534, "gid": 65534, "additionalGids": [1]},
                             rlimits=[{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
                             noNewPrivileges=False)
    config["hostname"] = "pivoted"
    config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener_path, "listenerMetadata": "m",
        "syscalls": [{"names": ["mknod", "mknodat"], "action": "SCMP_ACT_NOTIFY"}]}


def _receive_fd(conn):
    _, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
    fds = array.array("i")
    fds.frombytes(ancdata[0][2])
    return fds[0]


def _listen(path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(30)
    return server


def _in_a_terminal(slr, *args):
    """slr ARGS run by script(1), which gives it a terminal (its stdio here are files)."""
    return subprocess.run(["script", "-qec", " ".join(slr.cmd(*args)), "/dev/null"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_init_with_every_post_pivot_step(slr, bundle, tmp_path):
    console, listener = _listen(str(tmp_path / "console.sock")), _listen(str(tmp_path / "listener.sock"))
    b = bundle(["sh", "-c", "hostname; id -u; ulimit -n; sleep 1000"],
               edit=lambda c: _full_setup(c, listener.getsockname()))
    slr("create", "-b", b, "--console-socket", console.getsockname(), "c1", check=True)
    conn, _ = console.accept()
    master = _receive_fd(conn)
    started = {}
    starter = threading.Thread(target=lambda: started.update(result=slr("start", "c1")))
    starter.start()
    try:
        notify_conn, _ = listener.accept()  # the filter is loaded after start
        os.close(_receive_fd(notify_conn))
        notify_conn.close()
    finally:
        starter.join(60)
    assert started["result"].returncode == 0, started["result"].stderr
    output = b""
    while output.count(b"\n") < 3:
        output += os.read(master, 1024)
    assert output.split() == [b"pivoted", b"65534", b"256"]
    slr("delete", "-f", "c1", check=True)
    os.close(master)


def test_exec_process_with_a_terminal_and_a_failing_one(slr, bundle):
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    try:
        result = _in_a_terminal(slr, "exec", "-t", "--user", "65534", "c1", "sh", "-c", "'tty; exit 4'")
        assert result.returncode == 4, result.stdout + result.stderr
        assert result.stdout.split() == ["/dev/pts/0"]
        failed = slr("exec", "c1", "no-such-program")
        assert (failed.returncode, failed.stderr) == (1, NOT_FOUND)
    finally:
        slr("delete", "-f", "c1")


def test_errors_after_the_pivot_are_reported_not_imported(slr, bundle):
    """Failures after the pivot format their message with what is loaded already."""
    missing = slr("run", "-b", bundle(["no-such-program"]), "c1")
    assert (missing.returncode, missing.stderr) == (1, NOT_FOUND)
    too_many = bundle(["true"], edit=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "hard": 1 << 30, "soft": 1 << 30}]))
    refused = slr("run", "-b", too_many, "c2")
    assert refused.returncode == 1 and refused.stderr.startswith("slr: process.rlimits: RLIMIT_NOFILE "), refused.stderr
    assert IMPORT_REFUSED not in missing.stderr + refused.stderr


def test_pool_member_receives_its_process_with_a_terminal(slr, bundle):
    slr("pool", "create", "--bundle", bundle(["true"]), "--size", "1", "p1", check=True)
    try:
        result = _in_a_terminal(slr, "pool", "run", "-t", "p1", "--", "sh", "-c", "'tty; exit 5'")
        assert result.returncode == 5, result.stdout + result.stderr
        assert result.stdout.split() == ["/dev/pts/0"]
        failed = slr("pool", "run", "p1", "--", "no-such-program")
        assert failed.returncode == 1 and IMPORT_REFUSED not in failed.stderr, failed.stderr
        assert "no-such-program" in failed.stderr, failed.stderr
    finally:
        slr("pool", "delete", "p1")
