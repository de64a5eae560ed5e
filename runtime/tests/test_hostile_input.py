"""Regression tests for the defects the config fuzzer (fuzz/test_fuzz_config.py) and a
differential probe against runc found (issue 16): each one failed on the code before
its fix, and each fix is for the class, named in the test's docstring.

Same oracle as test_bad_input: one line on stderr naming the problem and exit 1, or the
container's own exit code; nothing left behind.
"""

import json
import os
import signal
import subprocess
import time

import pytest
from test_bad_input import (Leftovers, RawConfig, _assert_one_line_error, _bad, _make_bundle,
                            case_env)  # noqa: F401  (case_env: a fixture)

TRACEBACK_WORDS = ("Traceback", "internal error", "Error(")


def _run(slr, b, env, container_id="c", timeout=60):
    return slr("run", "--bundle", b, container_id, env=env, timeout=timeout)


# --- one bounded JSON error path ---------------------------------------------------------

@pytest.mark.parametrize("text", ["[NaN, " + "[" * 100000 + "]" * 100000 + "]",
                                  '{"a": -Infinity, "b": ' + "[" * 100000 + "]" * 100000 + "}"],
                         ids=["nan-next-to-deep-array", "infinity-next-to-deep-array"])
def test_invalid_json_deep_inside_is_one_line(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env, text):
    """The error path re-parsed with the recursive json package: a traceback."""
    marker, cgroups_path, env = case_env
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, lambda c, d: RawConfig(text.encode()))
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("create", "--bundle", b, "bad", env=env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr[-500:]
    assert result.stderr.startswith("slr: config.json: invalid JSON: "), result.stderr[-500:]
    assert leftovers.check("bad") == []


# --- files named by a bundle or a config: regular and bounded, or refused at once ---------

def test_fifo_named_as_image_default_seccomp_profile(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env):
    """create hung forever reading it (config.json was guarded, other bundle files not)."""
    marker, cgroups_path, env = case_env

    def edit(c, d):
        os.mkfifo(os.path.join(d, "profile.json"))
        c["annotations"] = {"org.slruntime.seccomp.profile": "profile.json"}

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("create", "--bundle", b, "bad", env=env, timeout=20)
    _assert_one_line_error(result, "config.json: annotations: org.slruntime.seccomp.profile: "
                                   "profile.json is not a regular file")
    assert leftovers.check("bad") == []


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_namespace_path_that_is_no_namespace_file(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env,
                                                  kind):
    """A FIFO hung create forever (runc too), and a killed create left state and cgroups."""
    marker, cgroups_path, env = case_env
    odd = str(tmp_path / "netns")
    if kind == "fifo":
        os.mkfifo(odd)
    else:
        os.symlink("/dev/zero", odd)

    def edit(c, d):
        next(n for n in c["linux"]["namespaces"] if n["type"] == "network")["path"] = odd

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    index = next(i for i, n in enumerate(json.load(open(os.path.join(b, "config.json")))["linux"]["namespaces"])
                 if n["type"] == "network")
    result = slr("create", "--bundle", b, "bad", env=env, timeout=20)
    _assert_one_line_error(result, _bad(f"linux.namespaces[{index}].path",
                                        f"{odd}: is not a regular file, not a namespace"))
    assert leftovers.check("bad") == []


def test_exec_and_update_refuse_a_fifo(slr, bundle, busybox_rootfs, tmp_path, case_env):
    """`exec -p FIFO` and `update -r FIFO` blocked forever."""
    marker, cgroups_path, env = case_env
    fifo = str(tmp_path / "fifo.json")
    os.mkfifo(fifo)
    slr("run", "-d", "--bundle", _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None), "c1",
        env=env, check=True)
    try:
        results = [slr("exec", "-p", fifo, "c1", timeout=20), slr("update", "-r", fifo, "c1", timeout=20)]
        assert slr.state("c1")["status"] == "running"
    finally:
        slr("delete", "-f", "c1", check=True)
    assert [(r.returncode, r.stderr) for r in results] == [
        (1, f"slr: {fifo}: is not a regular file\n"), (1, f"slr: --resources {fifo}: is not a regular file\n")]


# --- the kernel's limits, at parse time ---------------------------------------------------

def _set_user(key, value):
    return lambda c, d: c["process"]["user"].__setitem__(key, value)


@pytest.mark.parametrize("edit,expected", [
    (_set_user("additionalGids", list(range(65537))),
     _bad("process.user.additionalGids", "has 65537 groups, more than NGROUPS_MAX (65536)")),
    (_set_user("umask", 2147483648), _bad("process.user.umask", "2147483648 is out of range [0, 511]")),
    (_set_user("umask", 0o1000), _bad("process.user.umask", "512 is out of range [0, 511]")),
    (lambda c, d: c["mounts"].append({"destination": "/" + "a" * 4096, "type": "tmpfs", "source": "tmpfs"}),
     _bad("mounts[7].destination", "is longer than PATH_MAX (4095 bytes)")),
    (lambda c, d: c["process"].__setitem__("cwd", "/" + "a/" * 2048),
     _bad("process.cwd", "is longer than PATH_MAX (4095 bytes)")),
], ids=["groups-past-NGROUPS_MAX", "umask-past-int", "umask-past-0777", "destination-past-PATH_MAX",
        "cwd-past-PATH_MAX"])
def test_numbers_past_the_kernels_limits_name_their_path(slr, bundle, busybox_rootfs, state_root, tmp_path,
                                                         case_env, edit, expected):
    """They ended in `internal error: ValueError('too many groups')` / OverflowError."""
    marker, cgroups_path, env = case_env
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    _assert_one_line_error(slr("create", "--bundle", b, "bad", env=env), expected)
    assert leftovers.check("bad") == []


def test_numbers_at_the_kernels_limits_run(slr, bundle, busybox_rootfs, case_env):
    """What the kernel takes, the runtime takes: NGROUPS_MAX groups, umask 0777, a mount
    destination of 1100 components (a RecursionError before; runc runs it)."""
    marker, cgroups_path, env = case_env
    deep = "/mnt" + "/a" * 1100

    def edit(c, d):
        c["process"]["user"]["additionalGids"] = list(range(1, 65537))
        c["process"]["user"]["umask"] = 0o777
        # Its directories made in a tmpfs: in the shared rootfs, they would outlive the
        # test (and pytest's recursive clean-up of its temporary directories fails on them).
        c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"})
        c["mounts"].append({"destination": deep, "type": "tmpfs", "source": "tmpfs"})

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit,
                     args=("sh", "-c", f"umask; grep -c . /proc/self/status >/dev/null; "
                                       f"awk '/^Groups/ {{print NF - 1}}' /proc/self/status; "
                                       f"grep -c ' {deep} ' /proc/self/mountinfo"))
    result = _run(slr, b, env)
    assert (result.returncode, result.stdout.split(), result.stderr) == (0, ["0777", "65536", "1"], "")


# --- the runtime's own init failing is the runtime's error, not the container's status ----

@pytest.mark.parametrize("profile", [{"defaultAction": "SCMP_ACT_ERRNO"}, {"defaultAction": "SCMP_ACT_TRACE"},
                                     {"defaultAction": "SCMP_ACT_KILL_PROCESS"},
                                     {"defaultAction": "SCMP_ACT_ERRNO",
                                      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}],
                         ids=["errno", "trace", "kill-process", "only-read"])
@pytest.mark.parametrize("where", ["config", "image-default"])
def test_init_killed_by_its_own_seccomp_filter(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env,
                                               profile, where):
    """Exit 139 (or 159) and nothing on stderr, as if the container's program had crashed.
    runc exits 1 naming the problem."""
    marker, cgroups_path, env = case_env

    def edit(c, d):
        if where == "config":
            c["linux"]["seccomp"] = profile
        else:
            with open(os.path.join(d, "seccomp.profile.json"), "w") as f:
                json.dump(profile, f)
            c["annotations"] = {"org.slruntime.seccomp.profile": "seccomp.profile.json"}

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit, args=("true",))
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = _run(slr, b, env)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("slr: container init was killed by signal ")
    assert "before executing process.args" in result.stderr
    assert leftovers.check("c") == []


def test_init_failure_after_create_is_starts_error(slr, bundle, busybox_rootfs, case_env):
    """Detached create, then start: the init's failure at execve (a file the kernel
    cannot run; what can fail earlier fails create) is what `start` reports, and the
    container is stopped (as runc's start)."""
    marker, cgroups_path, env = case_env

    def not_a_program(c, d):
        path = os.path.join(d, c["root"]["path"], "not-a-program")
        with open(path, "wb") as f:
            f.write(b"\0" * 64)
        os.chmod(path, 0o755)
        c["process"]["args"] = ["/not-a-program"]

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, not_a_program)
    slr("create", "--bundle", b, "c1", env=env, check=True)
    try:
        result = slr("start", "c1")
        assert (result.returncode, result.stderr) == (1, 'slr: exec: "/not-a-program": Exec format error\n')
        assert slr.state("c1")["status"] == "stopped"
    finally:
        slr("delete", "-f", "c1", check=True)


@pytest.mark.parametrize("edit,expected", [
    (lambda c, d: c["process"].__setitem__("cwd", "/etc/passwd"), "process.cwd /etc/passwd: Not a directory"),
    (lambda c, d: c["process"].__setitem__("args", ["/etc"]), 'exec: "/etc": Permission denied'),
], ids=["cwd", "exec"])
def test_setup_error_with_a_terminal_goes_to_stderr(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env,
                                                    edit, expected):
    """With process.terminal, it was written through the pty to stdout; stderr stayed empty."""
    marker, cgroups_path, env = case_env

    def with_terminal(c, d):
        c["process"]["terminal"] = True
        edit(c, d)

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, with_terminal)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = _run(slr, b, env)
    _assert_one_line_error(result, expected)
    assert leftovers.check("c") == []


# --- signal dispositions and mask: the image's defaults -----------------------------------

SIGNALS_SHOWN = "grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -1"


RT_SIGACTION = {"x86_64": 13, "aarch64": 134}


def _odd_signals():
    """The caller ignores SIGHUP and blocks SIGUSR1 (nohup, a shell's trap, a supervisor),
    and ignores signal 32, which glibc's sigaction will not touch (seen: a CI job's shell
    left it ignored, and every container inherited that)."""
    import ctypes

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    ignore = (ctypes.c_ulong * 4)(1)  # kernel sigaction: SIG_IGN, no flags, empty mask
    assert ctypes.CDLL(None).syscall(RT_SIGACTION[os.uname().machine], 32, ignore, None, 8) == 0


def _assert_default_signals(result):
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16, "y"], result.stdout


def test_container_starts_with_default_signal_dispositions(slr, bundle, busybox_rootfs, case_env):
    """SigIgn was 0x1001000 (SIGPIPE, SIGXFSZ: the interpreter's): `yes | head -1`
    printed "Broken pipe". runc and crun: 0, and nothing blocked."""
    marker, cgroups_path, env = case_env
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None, args=("sh", "-c", SIGNALS_SHOWN))
    _assert_default_signals(slr("run", "--bundle", b, "c1", env=env, preexec_fn=_odd_signals))


def test_exec_process_starts_with_default_signal_dispositions(slr, bundle, busybox_rootfs, case_env):
    marker, cgroups_path, env = case_env
    slr("run", "-d", "--bundle", _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None), "c1",
        env=env, check=True)
    try:
        result = slr("exec", "c1", "sh", "-c", SIGNALS_SHOWN, preexec_fn=_odd_signals)
    finally:
        slr("delete", "-f", "c1", check=True)
    _assert_default_signals(result)


def test_pool_member_starts_with_default_signal_dispositions(slr, bundle, busybox_rootfs):
    b = bundle(rootfs=busybox_rootfs)
    slr("pool", "create", "--bundle", b, "--size", "1", "sigpool", check=True, preexec_fn=_odd_signals)
    try:
        result = slr("pool", "run", "sigpool", "--", "sh", "-c", SIGNALS_SHOWN, preexec_fn=_odd_signals)
    finally:
        slr("pool", "delete", "sigpool")
    _assert_default_signals(result)


# --- found by the CLI fuzzer's races -----------------------------------------------------

def test_kill_of_a_container_being_created_signals_nothing_else(slr, state_root):
    """`kill` raced with `create`: the state said "creating" with pid 0 yet, and
    kill(0, SIGKILL) killed the caller's whole process group (the fuzzer's pytest)."""
    os.makedirs(os.path.join(state_root, "c1"), 0o711)
    with open(os.path.join(state_root, "c1", "state.json"), "w") as f:
        json.dump({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 0, "bundle": "/nonexistent",
                   "annotations": {}, "created": "2026-01-01T00:00:00.000000000Z", "owner": "",
                   "creator_pid": os.getpid(), "init_start_time": None, "cgroup": None, "rootfs": ""}, f)
    try:
        # Its own session: on the old code only that one dies.
        result = slr("kill", "c1", "KILL", start_new_session=True)
        assert (result.returncode, result.stderr) == (
            1, "slr: container c1 has no process yet: it is being created\n")
    finally:
        with open(os.path.join(state_root, "c1", "state.json")) as f:
            data = json.load(f)
        data["creator_pid"] = 999999999  # gone: the container counts as stopped, delete removes it
        with open(os.path.join(state_root, "c1", "state.json"), "w") as f:
            json.dump(data, f)
        slr("delete", "c1", check=True)
