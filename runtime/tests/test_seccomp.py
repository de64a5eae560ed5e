"""linux.seccomp: every action, argument filters, architectures, flags and the notify
listener, observed through the syscalls' results, /proc/self/status and the kernel's
audit records (type=1326 lines, whose code= field names the action taken)."""

import array
import errno
import fcntl
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest
from helpers import edits, script_output, status_fields

from slruntime.seccomp import _pyseccomp


def _try(command):
    """Run `command` in an inner shell (a killing action ends it, not the script)."""
    return f"sh -c '{command}' 2>&1; echo rc=$?;"


def _seccomp(syscalls, default="SCMP_ACT_ALLOW", **extra):
    def edit(config):
        config["linux"]["seccomp"] = dict({"defaultAction": default, "syscalls": syscalls}, **extra)
    return edit


def _rule(names, action, **extra):
    return dict({"names": names, "action": action}, **extra)


def _syscall_number(name):
    sc = _pyseccomp()
    return sc.resolve_syscall(sc.Arch.NATIVE, name)


def _results(out):
    """Output of a series of _try() -> [(output, rc), ...]."""
    parts = re.split(r"rc=(\d+)\n", out)
    return list(zip(parts[0:-1:2], parts[1::2]))


class KernelLog:
    """The kernel log from now on (a marker line written to /dev/kmsg), for one
    container whose busybox has a name of its own: the audit records of another run
    (another suite running these tests at the same time) name another exe."""

    def __init__(self):
        self.marker = f"slr-test-{uuid.uuid4()}"
        self.busybox = f"busybox-{uuid.uuid4().hex[:12]}"
        with open("/dev/kmsg", "w") as f:
            f.write(self.marker + "\n")

    def renaming_busybox(self, edit):
        """`edit` plus: the bundle's private rootfs gets its busybox under this log's
        name (/bin/busybox, which the applets link to, links to it)."""
        def rename(config):
            edit(config)
            binaries = os.path.join(config["root"]["path"], "bin")
            os.rename(os.path.join(binaries, "busybox"), os.path.join(binaries, self.busybox))
            os.symlink(self.busybox, os.path.join(binaries, "busybox"))
        return rename

    def seccomp_codes(self):
        """syscall number -> the seccomp action codes audited for this log's busybox since the marker."""
        text = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
        codes = {}
        exe = re.escape(f'exe="/bin/{self.busybox}"')
        for line in text.split(self.marker, 1)[1].splitlines():
            match = re.search(r'type=1326 .*' + exe + r'.* syscall=(\d+) .*code=(0x[0-9a-f]+)', line)
            if match:
                codes.setdefault(int(match.group(1)), set()).add(int(match.group(2), 16))
        return codes


SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_LOG = 0x7FFC0000
SIGSYS_EXIT = str(128 + 31)

needs_legacy_syscalls = pytest.mark.skipif(_syscall_number("mkdir") < 0, reason="no mkdir/chmod syscalls on this arch")


def _speculation(status):
    return status_fields(status)["Speculation_Store_Bypass"]


def _ssb_by_seccomp():
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/spec_store_bypass") as f:
            return "seccomp" in f.read()
    except OSError:
        return False


SSB_BY_SECCOMP = _ssb_by_seccomp()  # else (e.g. "via prctl") seccomp does not touch SSB


def test_errno_with_errno_ret_default_errno_and_trace_without_tracer(slr, bundle):
    script = (_try("mkdir /dev/shm/a") + _try("ln /bin/busybox /dev/shm/l") + _try("mknod /dev/shm/p p")
              + "grep -E '^(Seccomp|Speculation_Store)' /proc/self/status")
    out = script_output(slr, bundle, script, edit=_seccomp([
        _rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errnoRet=errno.EXDEV),
        _rule(["link", "linkat"], "SCMP_ACT_ERRNO"),
        _rule(["mknod", "mknodat"], "SCMP_ACT_TRACE"),
    ]))
    results = _results(out)
    assert "Invalid cross-device link" in results[0][0] and results[0][1] == "1"
    assert "Operation not permitted" in results[1][0] and results[1][1] == "1"  # EPERM without errnoRet
    assert "Function not implemented" in results[2][0] and results[2][1] == "1"  # no tracer: ENOSYS
    status = status_fields(out.rsplit("rc=1\n", 1)[1])
    assert status["Seccomp"] == "2" and status["Seccomp_filters"] == "1"
    if SSB_BY_SECCOMP:  # without SPEC_ALLOW, seccomp turns the SSB mitigation on
        assert status["Speculation_Store_Bypass"] == "thread force mitigated"


def _audited(run, expected, attempts=3):
    """(seccomp_codes, run's outcome) of run(log), which starts a container for a fresh
    KernelLog. Without auditd the kernel prints audit records through a rate limit (10
    per 5 s): when other processes' records (another suite at the same time) use it up,
    ours are dropped, so a run whose `expected` {syscall number: codes} is not all there
    is repeated once the limit's interval has passed; the last attempt's codes are
    returned whatever they are, for the test's own assertions."""
    for attempt in range(attempts):
        log = KernelLog()
        outcome = run(log)
        codes = log.seccomp_codes()
        if all(codes.get(number) == wanted for number, wanted in expected.items()) or attempt == attempts - 1:
            return codes, outcome
        time.sleep(5.5)


@needs_legacy_syscalls
def test_kill_kill_process_trap_and_log_actions(slr, bundle):
    script = ("touch /dev/shm/f; " + _try("mkdir /dev/shm/a") + _try("rmdir /dev/shm") + _try("ln -s x /dev/shm/s")
              + _try("ln /dev/shm/f /dev/shm/l") + "ls /dev/shm | tr '\\n' ' '")

    def run(log):
        out = script_output(slr, bundle, script, edit=log.renaming_busybox(_seccomp([
            _rule(["mkdir"], "SCMP_ACT_KILL"),
            _rule(["rmdir"], "SCMP_ACT_KILL_PROCESS"),
            _rule(["symlink"], "SCMP_ACT_TRAP"),
            _rule(["link"], "SCMP_ACT_LOG"),
        ])))
        results = _results(out)
        assert [rc for _, rc in results] == [SIGSYS_EXIT, SIGSYS_EXIT, SIGSYS_EXIT, "0"]
        assert out.rsplit("\n", 1)[-1] == "f l "  # only the logged link happened
    expected = {_syscall_number("mkdir"): {SECCOMP_RET_KILL_THREAD},
                _syscall_number("rmdir"): {SECCOMP_RET_KILL_PROCESS},
                _syscall_number("link"): {SECCOMP_RET_LOG}}
    codes, _ = _audited(run, expected)
    assert {number: codes.get(number) for number in expected} == expected
    assert _syscall_number("symlink") not in codes  # traps are audited only with the LOG flag


@needs_legacy_syscalls
def test_log_flag_audits_errno_and_trap_and_spec_allow(slr, bundle, tmp_path):
    script = _try("mkdir /dev/shm/a") + _try("ln -s x /dev/shm/s") + "grep Speculation_Store /proc/self/status"

    def run(log):
        b = bundle(["sh", "-c", script], edit=log.renaming_busybox(_seccomp(
            [_rule(["mkdir"], "SCMP_ACT_ERRNO"), _rule(["symlink"], "SCMP_ACT_TRAP")],
            flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])))
        if SSB_BY_SECCOMP:
            return slr("run", "-b", b, "c1")
        # seccomp leaves SSB alone on this host: watch the flags the filter is loaded with.
        if not shutil.which("strace"):
            pytest.skip("SPEC_ALLOW is only observable with strace here (SSB mitigation is not seccomp's)")
        trace = tmp_path / "strace"
        completed = subprocess.run(["strace", "-f", "-qq", "-e", "trace=seccomp", "-o", str(trace),
                                    *slr.cmd("run", "-b", b, "c1")], capture_output=True, text=True, timeout=60)
        loads = [line for line in trace.read_text().splitlines() if "SECCOMP_SET_MODE_FILTER" in line and "filter=" in line]
        assert len(loads) == 1 and loads[0].endswith("= 0"), loads
        assert "SECCOMP_FILTER_FLAG_LOG" in loads[0] and "SECCOMP_FILTER_FLAG_SPEC_ALLOW" in loads[0]
        return completed
    expected = {_syscall_number("mkdir"): {SECCOMP_RET_ERRNO},  # the audit code omits the errno
                _syscall_number("symlink"): {SECCOMP_RET_TRAP}}
    codes, completed = _audited(run, expected)
    assert completed.returncode == 0, completed.stderr
    assert [rc for _, rc in _results(completed.stdout)] == ["1", SIGSYS_EXIT]
    assert {number: codes.get(number) for number in expected} == expected
    if SSB_BY_SECCOMP:
        assert _speculation(completed.stdout) == "thread vulnerable"  # SPEC_ALLOW: no forced mitigation


def test_allow_list_with_default_errno_ret(slr, bundle):
    sc = _pyseccomp()
    blocked = {_syscall_number("mkdir"), _syscall_number("mkdirat")}
    allowed = []
    for number in range(1024):
        try:
            name = sc.resolve_syscall(sc.Arch.NATIVE, number).decode()
        except ValueError:
            continue
        if number not in blocked:
            allowed.append(name)
    out = script_output(slr, bundle, _try("mkdir /dev/shm/a") + "echo still-running", edit=_seccomp(
        [_rule(allowed, "SCMP_ACT_ALLOW")], default="SCMP_ACT_ERRNO", defaultErrnoRet=errno.EACCES))
    assert "Permission denied" in out and "rc=1\nstill-running" in out


@needs_legacy_syscalls
def test_argument_filters_with_same_index_or_and_masked_eq(slr, bundle):
    modes = ("700", "750", "705", "755", "744", "711")
    script = "touch /dev/shm/f; " + "".join(_try(f"chmod {m} /dev/shm/f") for m in modes)
    out = script_output(slr, bundle, script, edit=_seccomp([
        # Two conditions on the same argument: either matches (runc's semantics).
        _rule(["chmod"], "SCMP_ACT_ERRNO", errnoRet=errno.EXDEV, args=[
            {"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 0o750, "op": "SCMP_CMP_EQ"}]),
        # mode & 0o7 == 0o5
        _rule(["chmod"], "SCMP_ACT_ERRNO", args=[
            {"index": 1, "value": 0o7, "valueTwo": 0o5, "op": "SCMP_CMP_MASKED_EQ"}]),
    ]))
    results = dict(zip(modes, _results(out)))
    assert all("Invalid cross-device link" in results[m][0] for m in ("700", "750"))
    assert all("Operation not permitted" in results[m][0] for m in ("705", "755"))
    assert [results[m][1] for m in modes] == ["1", "1", "1", "1", "0", "0"]


def test_filter_loads_without_no_new_privileges_for_a_user(slr, bundle):
    # Without no_new_privs the filter needs CAP_SYS_ADMIN: it is loaded before the user change.
    out = script_output(slr, bundle, _try("mkdir /dev/shm/a") + "id -u; grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status",
                        edit=edits(_seccomp([_rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errnoRet=errno.EROFS)]),
                                   lambda c: c["process"].update(noNewPrivileges=False, user={"uid": 1000, "gid": 1000})))
    assert "Read-only file system" in out
    status = status_fields(out)
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "0"
    assert "\n1000\n" in out


def test_profile_denying_getcwd_without_no_new_privileges(slr, bundle):
    # Loaded early (no no_new_privs), the filter must not catch the runtime's own check of
    # the cwd (getcwd, CVE-2024-21626 class): runtime-tools' linux_seccomp. runc 1.1.5 fails
    # this create; crun runs it.
    out = script_output(slr, bundle, _try("busybox pwd") + "echo done",
                        edit=edits(_seccomp([_rule(["getcwd"], "SCMP_ACT_ERRNO")]),
                                   lambda c: c["process"].update(noNewPrivileges=False, cwd="/tmp")))
    assert "getcwd: Operation not permitted" in out and out.endswith("done\n")


# struct seccomp_notif / seccomp_notif_resp and their ioctls (linux/seccomp.h)
_NOTIF = struct.Struct("=QII" + "iIQ6Q")
_NOTIF_RESP = struct.Struct("=QqiI")
SECCOMP_IOCTL_NOTIF_RECV = 0xC0000000 | (_NOTIF.size << 16) | (ord("!") << 8) | 0
SECCOMP_IOCTL_NOTIF_SEND = 0xC0000000 | (_NOTIF_RESP.size << 16) | (ord("!") << 8) | 1


def _answer_one(notify_fd, error, timeout=20):
    """Wait for one notification; answer it with -error (0: success, value 0)."""
    assert select.select([notify_fd], [], [], timeout)[0], "no seccomp notification arrived"
    buf = bytearray(_NOTIF.size)
    fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
    fields = _NOTIF.unpack(buf)
    notif_id, pid, nr = fields[0], fields[1], fields[3]
    with open(f"/proc/{pid}/status") as f:  # it waits for our answer: still there
        parent = int(status_fields(f.read())["PPid"])
    fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(_NOTIF_RESP.pack(notif_id, 0, -error, 0)))
    return pid, parent, nr


def test_notify_listener_receives_state_and_fd_and_answers(slr, bundle, tmp_path):
    path = str(tmp_path / "listener.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(20)
    script = "mkdir /dev/shm/a && echo made; ls /dev/shm | wc -l; mkdir /dev/shm/b || echo refused"
    b = bundle(["sh", "-c", script], edit=_seccomp(
        [_rule(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")], listenerPath=path, listenerMetadata="meta"))
    result = {}
    runner = threading.Thread(target=lambda: result.update(run=slr("run", "-b", b, "c1")))
    runner.start()
    try:
        conn, _ = server.accept()
        msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        fds = array.array("i")
        fds.frombytes(ancdata[0][2])
        notify_fd = fds[0]
        state = json.loads(msg)
        first = _answer_one(notify_fd, 0)  # pretend success: nothing is created
        second = _answer_one(notify_fd, errno.EXDEV)
        os.close(notify_fd)
        conn.close()
    finally:
        runner.join(60)
        server.close()
    run = result["run"]
    assert run.returncode == 0, run.stderr
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "meta"
    assert state["state"]["id"] == "c1" and state["state"]["status"] == "running"
    assert state["pid"] == state["state"]["pid"] == first[1]  # mkdir is a child of the container process
    assert state["ociVersion"] == state["state"]["ociVersion"]
    assert first[2] in (_syscall_number("mkdir"), _syscall_number("mkdirat")) and second[2] == first[2]
    assert run.stdout.split() == ["made", "0", "refused"]
    assert "Invalid cross-device link" in run.stderr


def test_exec_processes_get_the_filter_too(slr, bundle):
    b = bundle(["sleep", "1000"], edit=_seccomp([_rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errnoRet=errno.EXDEV)]))
    slr("run", "-d", "-b", b, "c1", check=True)
    try:
        out = slr("exec", "c1", "sh", "-c", _try("mkdir /dev/shm/a") + "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
                  check=True).stdout
    finally:
        slr("delete", "-f", "c1", check=True)
    assert "Invalid cross-device link" in out and "rc=1" in out
    status = status_fields(out)
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
