"""The pool protocol's conformance suite (slruntime/pool/PROTOCOL.md), run against both
clients of `slr pool run` and against the manager:

- `python`: the venv's slr (slruntime/pool/cli.py, client.py, wire.py);
- `c`: the compact binary, whose C entry serves `pool run` without starting the
  interpreter (runtime/compact/pool_client.c); skipped, with the reason, when it is not
  built (COMPACT_SLR, else build/compact/<machine>/slr).

Each case runs the same command line through each client and checks the stderr line, the
exit status and (against a scripted manager) the exact request bytes; the C client's
results must be the Python client's. The manager is then checked with raw sockets.
"""

import json
import os
import platform
import signal
import socket
import subprocess
import threading
import time

import pytest

from slruntime.pool import wire

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_SLR = os.path.join(REPO, ".venv", "bin", "slr")
COMPACT_SLR = os.environ.get("COMPACT_SLR") or os.path.join(REPO, "build", "compact", platform.machine(), "slr")
CLIENTS = ("python", "c")


def _binary(kind):
    if kind == "python":
        return PYTHON_SLR
    if not os.access(COMPACT_SLR, os.X_OK):
        pytest.skip(f"the compact binary {COMPACT_SLR} is not built (runtime/compact/README.md)")
    return COMPACT_SLR


@pytest.fixture(params=CLIENTS)
def client(request):
    return _binary(request.param)


def _run(binary, root, *args, stdin=subprocess.DEVNULL, env=None, timeout=60):
    environment = dict(os.environ, SLR_CONFIG="")
    environment.update(env or {})
    return subprocess.run([binary, "--root", root, "pool", "run", *args], stdin=stdin, capture_output=True,
                          text=True, env=environment, timeout=timeout)


def _both(root, *args, **kwargs):
    """(python result, c result) of the same command line."""
    return tuple(_run(_binary(kind), root, *args, **kwargs) for kind in CLIENTS)


class ScriptedManager:
    """A pool socket at ROOT/pools/f/pool.sock whose answers a test scripts: records each
    request's bytes and descriptors, then sends the answers given (bytes), then closes."""

    def __init__(self, root):
        self.path = os.path.join(root, "pools", "f", "pool.sock")
        os.makedirs(os.path.dirname(self.path))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.path)
        self.listener.listen()
        self.requests = []
        self.answers = []
        self.thread = None

    def serve_once(self, *answers):
        self.answers = list(answers)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection:
            data, ancillary, _, _ = connection.recvmsg(2 * wire.MAX_MESSAGE, socket.CMSG_SPACE(16))
            fds = []
            for level, kind, blob in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(int.from_bytes(blob[i:i + 4], "little") for i in range(0, len(blob), 4))
            # what each descriptor is: a pipe's inode number differs from run to run
            kinds = [os.readlink(f"/proc/self/fd/{fd}").partition(":[")[0] for fd in fds]
            self.requests.append((data, kinds))
            for fd in fds:
                os.close(fd)
            for answer in self.answers:
                connection.send(answer)

    def close(self):
        self.listener.close()


@pytest.fixture
def scripted(tmp_path):
    manager = ScriptedManager(str(tmp_path))
    yield manager
    manager.close()


def _idle_pid():
    """A process of the test's own that a relayed signal could only end: the answers'
    pid, so that no client can signal anything else."""
    return subprocess.Popen(["sleep", "60"])


# --- requests: both clients send the same bytes -------------------------------------------

REQUEST_CASES = [
    ("f", "--", "/bin/true"),
    ("-d", "f", "sh", "-c", "echo \"quoted\" \\ back\tslash"),
    ("-e", "A=1", "--env=B=2 two", "-e=C=\n", "--cwd", "/tmp", "f", "--", "x", "--", "y"),
    ("--cwd=", "f", "-e", "not-an-option", "--cwd", "z"),
    ("--", "f", "ünïcödé", "\u2028", "\U0001f600", "\x7f\x01"),
    ("--detach", "--cwd", "/a", "--cwd=/b", "f", "-", "a"),
    ("f", ""),
]


@pytest.mark.parametrize("argv", REQUEST_CASES, ids=range(len(REQUEST_CASES)))
def test_both_clients_send_the_same_request(tmp_path, scripted, argv):
    sleeper = _idle_pid()
    try:
        results = []
        for kind in CLIENTS:
            scripted.serve_once(json.dumps({"id": "f-1-1", "pid": sleeper.pid}).encode(),
                                json.dumps({"exit": 3}).encode())
            results.append(_run(_binary(kind), str(tmp_path), *argv))
            scripted.thread.join(10)
    finally:
        sleeper.kill()
        sleeper.wait()
    (python_request, python_fds), (c_request, c_fds) = scripted.requests
    assert c_request == python_request
    assert c_fds == python_fds and len(c_fds) == 3  # stdin, stdout, stderr
    python, c = results
    assert (c.returncode, c.stdout, c.stderr) == (python.returncode, python.stdout, python.stderr)
    detach = argv[0] in ("-d", "--detach")
    assert python.returncode == (0 if detach else 3)
    assert json.loads(python_request)["wait"] is not detach


ANSWER_CASES = {
    "error": ([b'{"error": "exec: \\"x\\": not found\\r\\nsecond line \\u00e9 \\ud800"}'], 1),
    "closed before answering": ([], 1),
    "closed while running": ([b'{"id": "f-1-1\\n", "pid": PID}'], 1),
    "exit status": ([b'{"id": "f-1-1", "pid": PID}', b'{"exit": 137}'], 137),
}


@pytest.mark.parametrize("case", ANSWER_CASES)
def test_both_clients_report_answers_alike(tmp_path, scripted, case):
    answers, code = ANSWER_CASES[case]
    sleeper = _idle_pid()
    try:
        results = []
        for kind in CLIENTS:
            scripted.serve_once(*(a.replace(b"PID", str(sleeper.pid).encode()) for a in answers))
            results.append(_run(_binary(kind), str(tmp_path), "f", "--", "true"))
            scripted.thread.join(10)
    finally:
        sleeper.kill()
        sleeper.wait()
    python, c = results
    assert python.returncode == code
    assert (c.returncode, c.stdout, c.stderr) == (python.returncode, python.stdout, python.stderr)
    assert python.stderr.count("\n") == (1 if code == 1 else 0), python.stderr


# --- bad input: the same line and status --------------------------------------------------

def test_unknown_pool(tmp_path):
    python, c = _both(str(tmp_path), "nope", "--", "true")
    assert (python.returncode, python.stderr) == (1, "slr: pool nope is not running\n")
    assert (c.returncode, c.stderr) == (python.returncode, python.stderr)


def test_dead_manager(tmp_path):
    path = tmp_path / "pools" / "gone" / "pool.sock"
    path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dead.bind(str(path))  # bound, never listening: what a killed manager leaves
    dead.close()
    python, c = _both(str(tmp_path), "gone", "--", "true")
    assert (python.returncode, python.stderr) == (1, "slr: pool gone is not running\n")
    assert (c.returncode, c.stderr) == (python.returncode, python.stderr)


def test_oversized_arguments(tmp_path, scripted):
    for kind in CLIENTS:
        scripted.serve_once()
    python, c = _both(str(tmp_path), "f", "--", "echo", "x" * wire.MAX_MESSAGE)
    assert (python.returncode, python.stderr) == (
        1, f"slr: pool: message too long: a pool message holds at most {wire.MAX_MESSAGE} bytes\n")
    assert (c.returncode, c.stderr) == (python.returncode, python.stderr)
    assert [request for request, _ in scripted.requests] == [b"", b""]  # connected, sent nothing


def test_default_root_and_slr_conf(tmp_path, scripted):
    """Without --root: slr.conf's root (SLR_CONFIG), as the Python CLI reads it."""
    conf = tmp_path / "slr.conf"
    conf.write_text(f"# comment\n  root = {tmp_path}  # trailing\nhousekeeping-cpus=0\n")
    sleeper = _idle_pid()
    try:
        results = []
        for kind in CLIENTS:
            scripted.serve_once(json.dumps({"id": "f-1-1", "pid": sleeper.pid}).encode(), b'{"exit": 5}')
            results.append(subprocess.run([_binary(kind), "pool", "run", "f", "true"], capture_output=True,
                                          text=True, env=dict(os.environ, SLR_CONFIG=str(conf)), timeout=60))
            scripted.thread.join(10)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [r.returncode for r in results] == [5, 5], results
    conf.write_text("root = /nonexistent\nbogus = 1\n")  # malformed: the Python CLI's error, from both
    python, c = (subprocess.run([_binary(kind), "pool", "run", "f", "true"], capture_output=True, text=True,
                                env=dict(os.environ, SLR_CONFIG=str(conf))) for kind in CLIENTS)
    assert python.returncode == 1 and python.stderr.startswith(f"slr: {conf}:2: expected one of")
    assert (c.returncode, c.stderr) == (python.returncode, python.stderr)


def test_usage_errors_are_the_python_clis(tmp_path):
    for argv in (("--bogus", "p"), ("-e",), (), ("-t",), ("p",), ("p", "--")):
        python, c = _both(str(tmp_path), *argv)
        assert python.returncode == 1 and python.stderr.startswith("slr: "), (argv, python.stderr)
        assert (c.returncode, c.stderr) == (python.returncode, python.stderr), argv


# --- the C entry serves pool run without the interpreter, and only it ----------------------

def _starts_interpreter(argv):
    """Whether the compact binary initialised CPython: it reads /proc/self/exe to set
    sys.executable; the C client never does."""
    traced = subprocess.run(["strace", "-f", "-e", "trace=readlink,readlinkat", *argv],
                            capture_output=True, text=True, env=dict(os.environ, SLR_CONFIG=""), timeout=60)
    return "/proc/self/exe" in traced.stderr


def test_c_entry_serves_pool_run_and_nothing_else(tmp_path):
    binary = _binary("c")
    root = str(tmp_path)
    assert not _starts_interpreter([binary, "--root", root, "pool", "run", "nope", "--", "true"])
    assert not _starts_interpreter([binary, "--root=" + root, "pool", "run", "-d", "-e", "A=1", "nope", "true"])
    for fallback in (["pool", "run", "-t", "nope"], ["pool", "run", "--help"], ["pool", "list"],
                     ["--debug", "pool", "run", "nope"], ["pool", "run", "nope", b"\xff"]):
        assert _starts_interpreter([binary, "--root", root, *fallback]), fallback


# --- against a real pool ------------------------------------------------------------------

@pytest.fixture
def real_pool(slr, bundle):
    """A pool of the venv's manager: both clients talk to the same manager. Its containers
    share the host's pid namespace: a namespace's init ignores signals it has no handler
    for, and the signal tests need a process that dies of one."""
    b = bundle(["true"], edit=lambda c: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "pid"]))
    slr("pool", "create", "--bundle", b, "--size", "2", "conf", check=True)
    yield slr.root
    slr("pool", "delete", "conf")


def test_real_pool_status_stdio_env_and_errors(real_pool):
    outputs = []
    for kind in CLIENTS:
        process = subprocess.run([_binary(kind), "--root", real_pool, "pool", "run", "-e", "GREETING=hi",
                                  "--cwd", "/tmp", "conf", "--", "sh", "-c",
                                  "read line; echo $GREETING $(pwd) $line; echo err >&2; exit 6"],
                                 input="from-stdin\n", capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, SLR_CONFIG=""))
        outputs.append((process.returncode, process.stdout, process.stderr))
    assert outputs[0] == (6, "hi /tmp from-stdin\n", "err\n")
    assert outputs[1] == outputs[0]
    python, c = _both(real_pool, "conf", "no-such-program")
    assert python.returncode == 1
    assert python.stderr.endswith(': exec: "no-such-program": executable file not found in $PATH\n')
    assert (c.returncode, c.stderr.split(":", 2)[2]) == (1, python.stderr.split(":", 2)[2])
    detached = [_run(_binary(kind), real_pool, "-d", "conf", "--", "true") for kind in CLIENTS]
    for result in detached:
        assert result.returncode == 0 and result.stdout.startswith("conf-"), result


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_real_pool_relays_signals_and_reports_the_death(real_pool, signal_number):
    """The client passes the signal on; the process dies of it; both exit 128+N."""
    codes = []
    for kind in CLIENTS:
        process = subprocess.Popen([_binary(kind), "--root", real_pool, "pool", "run", "conf", "--",
                                    "sh", "-c", "echo ready; exec sleep 30"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, SLR_CONFIG=""))
        assert process.stdout.readline() == "ready\n"
        time.sleep(0.2)  # sleep has replaced sh
        process.send_signal(signal_number)
        codes.append((process.wait(timeout=30), process.stderr.read()))
    assert codes[0] == (128 + signal_number, "")
    assert codes[1] == codes[0]


# --- the manager, through raw sockets ------------------------------------------------------

def _raw(path, payload, fds=()):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    with sock:
        if fds:
            sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"".join(
                fd.to_bytes(4, "little") for fd in fds))])
        else:
            sock.send(payload)
        answers = []
        while True:
            data = sock.recv(wire.MAX_MESSAGE)
            if not data:
                return answers
            answers.append(json.loads(data))


def test_manager_over_raw_sockets(real_pool):
    path = os.path.join(real_pool, "pools", "conf", "pool.sock")
    assert _raw(path, b"not json") == []  # garbage: disconnected, nothing else
    assert _raw(path, b'{"env": []}') == [{"error": "request: args must be an array of strings"}]
    assert _raw(path, b"[" * (wire.MAX_MESSAGE + 10)) == []  # cut by the receiver: garbage
    with open(os.devnull, "w") as devnull:
        answers = _raw(path, b'{"args": ["sh", "-c", "exit 4"]}', [devnull.fileno()] * 3)
    assert [sorted(a) for a in answers] == [["id", "pid"], ["exit"]] and answers[1] == {"exit": 4}
    answers = _raw(path, b'{"args": ["true"], "wait": false}')
    assert len(answers) == 1 and answers[0]["id"].startswith("conf-")
