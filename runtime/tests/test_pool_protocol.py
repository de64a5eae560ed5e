"""The pool protocol's conformance suite (slruntime/pool/PROTOCOL.md), run against every
client of `slr pool run` and against the manager:

- `python`: the venv's slr (slruntime/pool/cli.py, client.py, wire.py);
- `c`: the compact slr's static front, which serves `pool run` in C
  (runtime/compact/slr_front.c, pool_client.c) and executes the frozen runtime for
  everything else, when built (COMPACT_SLR, else build/compact/<machine>/slr);
- `c-aarch64`: the aarch64 cross build of it (runtime/compact/cross_build.py) under
  qemu-user, with a binfmt_misc instance of its own so that its frozen runtime runs too
  (runtime/tests/qemu-aarch64-binfmt), when built.
A client that is not built is left out, and test_c_clients_under_test says so (skip).

Each case runs the same command line through each client and checks the stderr line, the
exit status and (against a scripted manager) the exact request bytes; the C clients'
results must be the Python client's. The manager is then checked with raw sockets.
"""

import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import threading
import time

import pytest
from helpers import Terminal

from slruntime.pool import wire

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_SLR = os.path.join(REPO, ".venv", "bin", "slr")
COMPACT_SLR = os.environ.get("COMPACT_SLR") or os.path.join(REPO, "build", "compact", platform.machine(), "slr")
AARCH64_SLR = os.path.join(REPO, "build", "compact", "aarch64", "slr")
QEMU_AARCH64 = shutil.which("qemu-aarch64-static")
QEMU_AARCH64_BINFMT = os.path.join(REPO, "runtime", "tests", "qemu-aarch64-binfmt")


def _frozen_runtime(front):
    """The frozen runtime a front executes, in build_compact.py's default layout."""
    return os.path.join(os.path.dirname(front), "libexec", "slruntime", os.path.basename(front))


def _commands():
    """client kind -> how to run that `slr`, for the clients present; why the others are not."""
    commands, missing = {"python": [PYTHON_SLR]}, {}
    if os.access(COMPACT_SLR, os.X_OK):
        commands["c"] = [COMPACT_SLR]
    else:
        missing["c"] = f"the compact binary {COMPACT_SLR} is not built (runtime/compact/README.md)"
    if platform.machine() == "aarch64":
        pass  # the native build is the aarch64 one
    elif os.access(AARCH64_SLR, os.X_OK) and QEMU_AARCH64:
        commands["c-aarch64"] = [QEMU_AARCH64_BINFMT, AARCH64_SLR]
    else:
        missing["c-aarch64"] = (f"no aarch64 build in {AARCH64_SLR} (runtime/compact/cross_build.py) "
                                "or no qemu-aarch64-static")
    return commands, missing


COMMANDS, MISSING = _commands()


@pytest.mark.parametrize("kind", ["c", "c-aarch64"])
def test_c_clients_under_test(kind):
    """Says which C clients this run compares with the Python one (a skip: not built)."""
    if kind in MISSING:
        pytest.skip(MISSING[kind])
    assert subprocess.run(COMMANDS[kind] + ["--version"], capture_output=True).returncode == 0


def _run(command, root, *args, stdin=subprocess.DEVNULL, env=None, timeout=60):
    environment = dict(os.environ, SLR_CONFIG="")
    environment.update(env or {})
    return subprocess.run([*command, "--root", root, "pool", "run", *args], stdin=stdin, capture_output=True,
                          text=True, env=environment, timeout=timeout)


def _outcome(result):
    return result.returncode, result.stdout, result.stderr


def _each(root, *args, **kwargs):
    """kind -> result of the same command line through each client."""
    return {kind: _run(command, root, *args, **kwargs) for kind, command in COMMANDS.items()}


def _assert_alike(results, outcome=_outcome):
    python = outcome(results["python"])
    for kind, result in results.items():
        assert outcome(result) == python, kind


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
        self.hold = None
        self.thread = None

    def serve_once(self, *answers, hold=None):
        """hold: a threading.Event to wait for before closing the connection."""
        self.answers = list(answers)
        self.hold = hold
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
                try:
                    connection.send(answer)
                except (BrokenPipeError, ConnectionResetError):
                    return  # a detached client has left after the first answer
            if self.hold is not None:
                self.hold.wait(30)

    def close(self):
        self.listener.close()


@pytest.fixture
def scripted(tmp_path):
    manager = ScriptedManager(str(tmp_path))
    yield manager
    manager.close()


# --- requests: every client sends the same bytes -----------------------------------------

REQUEST_CASES = [
    ("f", "--", "/bin/true"),
    ("-d", "f", "sh", "-c", "echo \"quoted\" \\ back\tslash"),
    ("-e", "A=1", "--env=B=2 two", "-e=C=\n", "--cwd", "/tmp", "f", "--", "x", "--", "y"),
    ("--cwd=", "f", "-e", "not-an-option", "--cwd", "z"),
    ("--", "f", "ünïcödé", "\u2028", "\U0001f600", "\x7f\x01"),
    ("--detach", "--cwd", "/a", "--cwd=/b", "f", "-", "a"),
    ("f", ""),
    ("-t", "-e", "A=1", "--cwd", "/x", "f", "--", "sh"),  # stdin is no terminal: no consoleSize
    ("--tty", "--cwd=/w", "f", "true"),
]


def _through_scripted(scripted, answers, run):
    """run(command) through every client, each served by the scripted manager with
    answers (b"PID": a process of the test's own that only a relayed signal could end,
    so that no client can signal anything else); -> kind -> result."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        results = {}
        for kind, command in COMMANDS.items():
            scripted.serve_once(*(a.replace(b"PID", str(sleeper.pid).encode()) for a in answers))
            results[kind] = run(command)
            scripted.thread.join(10)
        return results
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("argv", REQUEST_CASES, ids=range(len(REQUEST_CASES)))
def test_every_client_sends_the_same_request(tmp_path, scripted, argv):
    results = _through_scripted(scripted, [b'{"id": "f-1-1", "pid": PID}', b'{"exit": 3}'],
                                lambda command: _run(command, str(tmp_path), *argv))
    python_request, python_fds = scripted.requests[0]
    assert scripted.requests == [(python_request, python_fds)] * len(COMMANDS)
    with_pty = "-t" in argv or "--tty" in argv
    assert python_fds == ([] if with_pty else ["/dev/null", "pipe", "pipe"])  # stdin, stdout, stderr
    _assert_alike(results)
    detach = argv[0] in ("-d", "--detach")
    assert results["python"].returncode == (0 if detach else 3)
    assert json.loads(python_request)["wait"] is not detach


ANSWER_CASES = {
    "error": ([b'{"error": "exec: \\"x\\": not found\\r\\nsecond line \\u00e9 \\ud800"}'], 1),
    "closed before answering": ([], 1),
    "closed while running": ([b'{"id": "f-1-1\\n", "pid": PID}'], 1),
    "exit status": ([b'{"id": "f-1-1", "pid": PID}', b'{"exit": 137}'], 137),
    "other fields": ([b' {"id":"f-1-1","pid":PID,"more":[1,{"a":[true,false,null,-0.5e+3,"\\u20ac"]}],"exit":"x"}',
                      b'{"exit":2, "id": 5}'], 2),
    "not json": ([b"not json"], 1),
    "not an object": ([b"[1]"], 1),
    "not utf-8": ([b'{"error": "\xff"}'], 1),
    "error not a string": ([b'{"error": 5}'], 1),
    "id not a string": ([b'{"id": 7, "pid": PID}'], 1),
    "pid zero": ([b'{"id": "f-1-1", "pid": 0}'], 1),
    "pid a float": ([b'{"id": "f-1-1", "pid": 1.5}'], 1),
    "pid with a leading zero": ([b'{"id": "f-1-1", "pid": 0PID}'], 1),
    "pid too large": ([b'{"id": "f-1-1", "pid": 4294967296}'], 1),
    "pid true": ([b'{"id": "f-1-1", "pid": true}'], 1),
    "nested": ([b'{"id": "f-1-1", "pid": PID, "x": ' + b"[" * 40 + b"]" * 40 + b"}"], 1),
    "exit not an int": ([b'{"id": "f-1-1", "pid": PID}', b'{"exit": "3"}'], 1),
    "exit too large": ([b'{"id": "f-1-1", "pid": PID}', b'{"exit": 4294967296}'], 1),
    "exit garbage": ([b'{"id": "f-1-1", "pid": PID}', b'{"exit": 3'], 1),
}


@pytest.mark.parametrize("case", ANSWER_CASES)
def test_every_client_reports_answers_alike(tmp_path, scripted, case):
    answers, code = ANSWER_CASES[case]
    results = _through_scripted(scripted, answers, lambda command: _run(command, str(tmp_path), "f", "--", "true"))
    python = results["python"]
    assert python.returncode == code
    assert python.stderr.count("\n") == (1 if code == 1 else 0), python.stderr
    _assert_alike(results)


def test_every_client_survives_random_answers(tmp_path, scripted):
    """Bytes a broken (or hostile) socket at the pool's path could send: one line, status 1,
    the same from every client, never a crash."""
    import random

    generator = random.Random(14)
    pieces = [b'{"id": "f-1-1", "pid": ', b"PID", b"}", b'"', b"\\u", b"d800", b"[", b"]", b"-", b"0", b"1e9",
              b",", b":", b'"error"', b"\xc3", b"\x00", b"null", b" "]
    for _ in range(12):
        answer = b"".join(generator.choice(pieces) for _ in range(generator.randrange(1, 12)))
        results = _through_scripted(scripted, [answer],
                                    lambda command: _run(command, str(tmp_path), "f", "--", "true"))
        assert results["python"].returncode == 1 and results["python"].stderr.count("\n") == 1, answer
        _assert_alike(results)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_signal_before_the_process_runs(tmp_path, scripted, signal_number):
    """While the request waits for a ready container, SIGINT ends the client with 130 (the
    Python CLI's KeyboardInterrupt) and SIGTERM kills it: nothing is relayed yet."""
    outcomes = {}
    for kind, command in COMMANDS.items():
        released = threading.Event()
        scripted.serve_once(hold=released)
        process = subprocess.Popen([*command, "--root", str(tmp_path), "pool", "run", "f", "--", "true"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=dict(os.environ, SLR_CONFIG=""))
        deadline = time.monotonic() + 30
        while len(scripted.requests) < len(outcomes) + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal_number)
        outcomes[kind] = (process.wait(timeout=30), process.stdout.read(), process.stderr.read())
        released.set()
        scripted.thread.join(10)
    expected = (130, b"", b"") if signal_number == signal.SIGINT else (-signal_number, b"", b"")
    assert outcomes["python"] == expected
    assert all(outcome == expected for outcome in outcomes.values()), outcomes


# --- bad input: the same line and status --------------------------------------------------

def test_unknown_pool(tmp_path):
    results = _each(str(tmp_path), "nope", "--", "true")
    assert _outcome(results["python"]) == (1, "", "slr: pool nope is not running\n")
    _assert_alike(results)


@pytest.mark.parametrize("name", ["nöpe\nx", "../..", "a/b", "..", "x" * 201])
def test_invalid_pool_name(tmp_path, name):
    """A pool's name is one path component (pool create's rule): anything else names no pool."""
    results = _each(str(tmp_path), name, "--", "true")
    assert _outcome(results["python"]) == (
        1, "", f"slr: invalid pool name {name!r}: use up to 200 letters, digits and _+-.\n")
    _assert_alike(results)


def test_dead_manager(tmp_path):
    path = tmp_path / "pools" / "gone" / "pool.sock"
    path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dead.bind(str(path))  # bound, never listening: what a killed manager leaves
    dead.close()
    results = _each(str(tmp_path), "gone", "--", "true")
    assert _outcome(results["python"]) == (1, "", "slr: pool gone is not running\n")
    _assert_alike(results)


def test_oversized_arguments(tmp_path, scripted):
    results = _through_scripted(scripted, [], lambda command: _run(command, str(tmp_path), "f", "--", "echo",
                                                                   "x" * wire.MAX_MESSAGE))
    assert _outcome(results["python"]) == (
        1, "", f"slr: pool: message too long: a pool message holds at most {wire.MAX_MESSAGE} bytes\n")
    _assert_alike(results)
    assert [request for request, _ in scripted.requests] == [b""] * len(COMMANDS)  # connected, sent nothing


def test_default_root_and_slr_conf(tmp_path, scripted):
    """Without --root: slr.conf's root (SLR_CONFIG), as the Python CLI reads it."""
    conf = tmp_path / "slr.conf"
    conf.write_text(f"# comment\n  root = {tmp_path}  # trailing\nhousekeeping-cpus=0\n")

    def run(command):
        return subprocess.run([*command, "pool", "run", "f", "true"], capture_output=True, text=True,
                              env=dict(os.environ, SLR_CONFIG=str(conf)), timeout=60)
    results = _through_scripted(scripted, [b'{"id": "f-1-1", "pid": PID}', b'{"exit": 5}'], run)
    assert results["python"].returncode == 5
    _assert_alike(results)
    conf.write_text("root = /nonexistent\nbogus = 1\n")  # malformed: the Python CLI's error, from every client
    results = {kind: run(command) for kind, command in COMMANDS.items()}
    assert results["python"].returncode == 1
    assert results["python"].stderr.startswith(f"slr: {conf}:2: expected one of")
    _assert_alike(results)


def test_usage_errors_are_the_python_clis(tmp_path):
    for argv in (("--bogus", "p"), ("-e",), (), ("-t",), ("p",), ("p", "--")):
        results = _each(str(tmp_path), *argv)
        assert results["python"].returncode == 1 and results["python"].stderr.startswith("slr: "), argv
        _assert_alike(results)


# --- the front serves pool run itself, and executes the frozen runtime for the rest -----

FRONTS = {"c": COMPACT_SLR, "c-aarch64": AARCH64_SLR}


def _execs(command, *args):
    """(path, argv) of every successful execve of `command` + args and its children, as
    bytes (strace -f)."""
    with tempfile.NamedTemporaryFile() as trace:
        subprocess.run(["strace", "-f", "-qq", "-xx", "-s", "65536", "-e", "trace=execve", "-e", "signal=none",
                        "-o", trace.name, *command, *args], capture_output=True,
                       env=dict(os.environ, SLR_CONFIG=""), timeout=120)
        lines = trace.read().decode("ascii").splitlines()
    hex_string = r'"((?:\\x[0-9a-f]{2})*)"'
    calls = []
    for line in lines:
        found = re.search(rf'execve\({hex_string}, \[((?:{hex_string}(?:, )?)*)\].* = 0$', line)
        if found:
            calls.append((_unhex(found.group(1)), [_unhex(a) for a in re.findall(hex_string, found.group(2))]))
    return calls


def _unhex(text):
    return bytes.fromhex(text.replace("\\x", ""))


@pytest.mark.parametrize("kind", ["c", "c-aarch64"])
def test_front_serves_pool_run_and_executes_the_runtime_once_for_the_rest(tmp_path, kind):
    if kind not in COMMANDS:
        pytest.skip(MISSING[kind])
    front, root = os.fsencode(FRONTS[kind]), str(tmp_path)
    frozen = os.fsencode(_frozen_runtime(FRONTS[kind]))
    for served in (["--root", root, "pool", "run", "nope", "--", "true"],
                   ["--root=" + root, "pool", "run", "-d", "-e", "A=1", "nope", "true"],
                   ["--root", root, "pool", "run", "-t", "nope", "true"]):
        calls = _execs(COMMANDS[kind], *served)
        assert [path for path, _ in calls].count(front) == 1, calls
        assert frozen not in [path for path, _ in calls], served
    for fallback in (["pool", "run", "-dt", "nope", "true"], ["pool", "run", "--help"], ["pool", "list"],
                     ["--debug", "pool", "run", "nope", "true"], ["pool", "run", "nope", b"\xff"],
                     ["--version"]):
        argv = [os.fsencode(a) for a in ["--root", root, *fallback]]
        calls = _execs(COMMANDS[kind], *argv)
        front_argv = [args for path, args in calls if path == front]
        assert front_argv == [[front, *argv]], calls
        assert [args for path, args in calls if path == frozen] == front_argv, fallback


# --- a terminal (-t) ------------------------------------------------------------------------

def test_every_client_sends_the_terminals_size(tmp_path, scripted):
    """With -t and a terminal as stdin, the request asks for a pty of its size."""
    terminals = []

    def run(command):
        terminals.append(Terminal(33, 99))
        process = terminals[-1].start([*command, "--root", str(tmp_path), "pool", "run", "-t", "f", "true"])
        return process.wait(timeout=60)
    try:
        statuses = _through_scripted(scripted, [b'{"id": "f-1-1", "pid": PID}', b'{"exit": 4}'], run)
    finally:
        for terminal in terminals:
            terminal.close()
    assert statuses == dict.fromkeys(COMMANDS, 4)
    requests = [request for request, _ in scripted.requests]
    assert json.loads(requests[0])["consoleSize"] == {"height": 33, "width": 99}
    assert requests == [requests[0]] * len(COMMANDS)
    assert [kinds for _, kinds in scripted.requests] == [[]] * len(COMMANDS)  # no stdio with a pty


def test_real_pool_relays_a_terminal_and_restores_it(real_pool):
    """The process gets a pty of the caller's size; keys typed reach it, its output comes
    back; the client's terminal is raw meanwhile and as it was after; the exit status is
    the process's."""
    for kind, command in COMMANDS.items():
        terminal = Terminal(33, 99)
        try:
            before = termios.tcgetattr(terminal.slave)
            process = terminal.start([*command, "--root", real_pool, "pool", "run", "-t", "conf", "--", "sh", "-c",
                                      "stty size; echo ready; read line; echo got:$line; exit 3"])
            assert terminal.read_until("ready"), (kind, terminal.output)
            raw = termios.tcgetattr(terminal.slave)
            assert not raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG), kind
            os.write(terminal.master, b"hello\r")  # the container's pty turns CR into NL
            assert terminal.read_until("got:hello"), (kind, terminal.output)
            assert process.wait(timeout=60) == 3, (kind, terminal.output)
            assert b"33 99" in terminal.output, (kind, terminal.output)
            assert termios.tcgetattr(terminal.slave) == before, kind
        finally:
            terminal.close()


def test_sigwinch_resizes_the_pty(real_pool):
    """SIGWINCH (the caller's terminal resized) gives the pty the new size, as runc's
    console does (the Python client used to forward the signal only)."""
    for kind in COMMANDS:
        terminal = Terminal(33, 99)
        try:
            process = terminal.start([*COMMANDS[kind], "--root", real_pool, "pool", "run", "-t", "conf", "--", "sh",
                                      "-c", "stty size; echo ready; read line; stty size; exit 5"])
            assert terminal.read_until("ready"), (kind, terminal.output)
            terminal.resize(40, 120)
            process.send_signal(signal.SIGWINCH)
            time.sleep(0.5)  # the handler runs before the line below reaches the process
            os.write(terminal.master, b"\r")
            assert process.wait(timeout=60) == 5, (kind, terminal.output)
            assert terminal.read_until("40 120"), (kind, terminal.output)
        finally:
            terminal.close()


# --- against a real pool ------------------------------------------------------------------

@pytest.fixture
def real_pool(slr, bundle):
    """A pool of the venv's manager: every client talks to the same manager. Its
    containers share the host's pid namespace: a namespace's init ignores signals it has
    no handler for, and the signal tests need a process that dies of one."""
    b = bundle(["true"], edit=lambda c: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "pid"]))
    slr("pool", "create", "--bundle", b, "--size", "2", "conf", check=True)
    yield slr.root
    slr("pool", "delete", "conf")


def test_real_pool_status_stdio_env_and_errors(real_pool):
    results = {kind: subprocess.run([*command, "--root", real_pool, "pool", "run", "-e", "GREETING=hi",
                                     "--cwd", "/tmp", "conf", "--", "sh", "-c",
                                     "read line; echo $GREETING $(pwd) $line; echo err >&2; exit 6"],
                                    input="from-stdin\n", capture_output=True, text=True, timeout=60,
                                    env=dict(os.environ, SLR_CONFIG=""))
               for kind, command in COMMANDS.items()}
    assert _outcome(results["python"]) == (6, "hi /tmp from-stdin\n", "err\n")
    _assert_alike(results)
    results = _each(real_pool, "conf", "no-such-program")
    assert results["python"].returncode == 1
    assert results["python"].stderr.endswith(': exec: "no-such-program": executable file not found in $PATH\n')
    _assert_alike(results, lambda r: (r.returncode, r.stderr.split(":", 2)[2]))  # the member id differs
    for kind, result in _each(real_pool, "-d", "conf", "--", "true").items():
        assert result.returncode == 0 and result.stdout.startswith("conf-"), (kind, result)


def test_real_pool_process_gets_only_the_stdio(real_pool, tmp_path):
    """Descriptors the client inherited stay with it: the container's process has 0-2."""
    with open(tmp_path / "secret", "w") as secret:
        os.set_inheritable(secret.fileno(), True)
        results = {kind: subprocess.run([*command, "--root", real_pool, "pool", "run", "conf", "--",
                                         "ls", "/proc/self/fd"], capture_output=True, text=True, timeout=60,
                                        pass_fds=(secret.fileno(),), env=dict(os.environ, SLR_CONFIG=""))
                   for kind, command in COMMANDS.items()}
    assert _outcome(results["python"]) == (0, "0\n1\n2\n3\n", "")  # 3: the directory ls reads
    _assert_alike(results)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_real_pool_relays_signals_and_reports_the_death(real_pool, signal_number):
    """The client passes the signal on; the process dies of it; every client exits 128+N."""
    for kind, command in COMMANDS.items():
        process = subprocess.Popen([*command, "--root", real_pool, "pool", "run", "conf", "--",
                                    "sh", "-c", "echo ready; exec sleep 30"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, SLR_CONFIG=""))
        assert process.stdout.readline() == "ready\n"
        time.sleep(0.2)  # sleep has replaced sh
        process.send_signal(signal_number)
        assert (process.wait(timeout=30), process.stderr.read()) == (128 + signal_number, ""), kind


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
