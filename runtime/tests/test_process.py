"""process.*: user, rlimits, capabilities, no_new_privs, OOM score, scheduling, affinity,
env/cwd, and the uts/sysctl settings, each observed from inside a real container."""

import os
import signal
import time

import pytest
from helpers import Terminal, cap_mask, edits, run_script, script_output, status_fields


def _process(**settings):
    return lambda c: c["process"].update(settings)


def test_user_additional_gids_umask_env_and_cwd(slr, bundle):
    out = script_output(slr, bundle, "id -u; id -g; grep Groups /proc/self/status; umask; "
                        "touch /dev/shm/f; stat -c %a /dev/shm/f; pwd; echo \"$FOO\"; echo \"$PATH\"",
                        edit=_process(user={"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027},
                                      env=["FOO=bar baz", "PATH=/bin"], cwd="/dev/shm"))
    lines = out.splitlines()
    assert lines[0:2] == ["1000", "1001"]
    assert lines[2].split()[1:] == ["10", "20"]  # Groups: exactly the additional gids
    assert lines[3] == "0027"
    assert lines[4] == "640"  # 0666 & ~umask
    assert lines[5:] == ["/dev/shm", "bar baz", "/bin"]


def test_cwd_is_entered_before_the_user_change_as_runc_does(slr, bundle):
    """A cwd only root may enter is still the process's (runc chdirs as root first, and
    again as the user only when root was refused): the check of where it leads runs
    before a seccomp filter is loaded."""
    def private_cwd(config):
        os.mkdir(os.path.join(config["root"]["path"], "private"), 0o700)
        config["process"].update(user={"uid": 1000, "gid": 1000}, cwd="/private")

    out = script_output(slr, bundle, "id -u; pwd; ls . 2>&1; echo rc=$?", edit=private_cwd)
    lines = out.splitlines()
    assert lines[:2] == ["1000", "/private"]
    assert "Permission denied" in lines[2] and lines[-1] == "rc=1"  # the user still cannot read it


def test_rlimits(slr, bundle):
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 200, "hard": 300},
               {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
               {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000}]
    out = script_output(slr, bundle, "ulimit -n; ulimit -Hn; cat /proc/self/limits",
                        edit=_process(rlimits=rlimits))
    lines = out.splitlines()
    assert lines[:2] == ["200", "300"]
    limits = {line[:26].strip(): line[26:].split()[:2] for line in lines[3:]}
    assert limits["Max open files"] == ["200", "300"]
    assert limits["Max core file size"] == ["0", "0"]
    assert limits["Max processes"] == ["1000", "2000"]


_STATUS = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"
_CAPS = {
    "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
                 "CAP_SETUID", "CAP_SETGID"],
    "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "ambient": ["CAP_NET_BIND_SERVICE"],
}


def test_capabilities_all_five_sets_as_root(slr, bundle):
    status = status_fields(script_output(slr, bundle, _STATUS, edit=_process(capabilities=_CAPS)))
    assert status["CapBnd"] == cap_mask(_CAPS["bounding"])
    assert status["CapInh"] == cap_mask(_CAPS["inheritable"])
    assert status["CapAmb"] == cap_mask(_CAPS["ambient"])
    # no_new_privs keeps execve as uid 0 from raising the permitted set to the bounding set
    assert status["CapPrm"] == status["CapEff"] == cap_mask(_CAPS["permitted"])
    assert status["NoNewPrivs"] == "1"


def test_capabilities_as_a_user_keep_only_ambient_and_no_new_privs_off(slr, bundle):
    status = status_fields(script_output(
        slr, bundle, _STATUS,
        edit=_process(capabilities=_CAPS, user={"uid": 1000, "gid": 1000}, noNewPrivileges=False)))
    assert status["CapBnd"] == cap_mask(_CAPS["bounding"])
    assert status["CapInh"] == cap_mask(_CAPS["inheritable"])
    assert status["CapAmb"] == cap_mask(_CAPS["ambient"])
    assert status["CapPrm"] == status["CapEff"] == cap_mask(_CAPS["ambient"])  # ambient survives exec
    assert status["NoNewPrivs"] == "0"


def test_ambient_capability_not_raisable_is_skipped_as_runc_does(slr, bundle):
    """`runc spec` writes ambient capabilities without an inheritable set; runc and crun
    start such containers with those ambient capabilities left out, and so does slr."""
    caps = dict(_CAPS, effective=["CAP_CHOWN"], permitted=["CAP_CHOWN", "CAP_KILL"],
                inheritable=["CAP_KILL"], ambient=["CAP_NET_BIND_SERVICE", "CAP_KILL"])
    fields = status_fields(script_output(slr, bundle, "cat /proc/self/status", edit=_process(capabilities=caps)))
    assert fields["CapAmb"] == cap_mask(["CAP_KILL"])  # the raisable one only


def test_oom_score_adj_scheduler_and_io_priority(slr, bundle):
    out = script_output(slr, bundle, "cat /proc/self/oom_score_adj; cat /proc/$$/stat; ionice -p $$",
                        edit=_process(oomScoreAdj=345, scheduler={"policy": "SCHED_BATCH", "nice": 7},
                                      ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 6}))
    lines = out.splitlines()
    assert lines[0] == "345"
    stat = lines[1].rsplit(")", 1)[1].split()  # fields from 3 (state) on
    assert stat[19 - 3] == "7"  # nice
    assert stat[41 - 3] == "3"  # policy SCHED_BATCH
    assert lines[2] == "best-effort: prio 6"


def _has_cap(number):
    with open("/proc/self/status") as f:
        return int(status_fields(f.read())["CapEff"], 16) >> number & 1


@pytest.mark.skipif(_has_cap(24), reason="the runtime has CAP_SYS_RESOURCE: a negative score is allowed")
def test_negative_oom_score_adj_without_cap_sys_resource_fails_cleanly(slr, bundle, state_root):
    result = run_script(slr, bundle, "true", edit=_process(oomScoreAdj=-500))
    assert result.returncode == 1
    assert "process.oomScoreAdj -500" in result.stderr
    assert os.listdir(state_root) == []


@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two CPUs")
def test_exec_cpu_affinity_initial_and_final(slr, bundle, tmp_path):
    seen_at_setup = tmp_path / "initial"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"grep Cpus_allowed_list /proc/self/status > {seen_at_setup}"]}
    out = script_output(slr, bundle, "grep Cpus_allowed_list /proc/self/status",
                        edit=edits(_process(execCPUAffinity={"initial": "0", "final": "1"}),
                                   lambda c: c.update(hooks={"createContainer": [hook]})))
    assert status_fields(seen_at_setup.read_text())["Cpus_allowed_list"] == "0"
    assert status_fields(out)["Cpus_allowed_list"] == "1"


def test_hostname_domainname_and_sysctl(slr, bundle):
    with open("/proc/sys/kernel/shmmax") as f:
        host_shmmax = f.read()
    out = script_output(slr, bundle, "hostname; cat /proc/sys/kernel/domainname /proc/sys/kernel/shmmax "
                        "/proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/kernel/shmmni || echo ro",
                        edit=lambda c: c.update(hostname="box1", domainname="example.org") or c["linux"].update(
                            sysctl={"kernel.shmmax": "123456789", "net.ipv4.ip_forward": "1"}))
    assert out.split() == ["box1", "example.org", "123456789", "1", "ro"]  # /proc/sys stays read-only
    with open("/proc/sys/kernel/shmmax") as f:
        assert f.read() == host_shmmax  # set in the container's ipc namespace only
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read().strip() != "box1"


# --- "#!" scripts as the process --------------------------------------------------------

SCRIPTS = {  # in the image: a busybox sh script, and one whose interpreter prints its argv
    "script.sh": '#!/bin/sh\necho "sh ran $0 with" "$@"\n',
    "show-argv": "#!/bin/echo interpreter-arg\n",
}
# What execve makes of args ["/script.sh", "a", "b c"] and ["/show-argv", "x"]: the
# interpreter, its "#!" argument, the script's path, then args[1:].
SCRIPT_RUNS = {("/script.sh", "a", "b c"): "sh ran /script.sh with a b c\n",
               ("/show-argv", "x"): "interpreter-arg /show-argv x\n",
               ("show-argv", "y"): "interpreter-arg /usr/bin/show-argv y\n"}  # found in $PATH (/usr/bin -> ../bin)


def _with_scripts(config):
    root = config["root"]["path"]
    for name, text in SCRIPTS.items():
        for directory in ("", "bin"):
            path = os.path.join(root, directory, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)


def test_hashbang_script_as_the_process_of_run_exec_and_pool(slr, bundle):
    """The interpreter got the script's argv ("/script.sh", "a", ...) instead of the one
    execve builds: busybox then looked for an applet "script.sh", and a shell like dash
    ran the first argument as the script."""
    runs = {args: slr("run", "-b", bundle(list(args), edit=_with_scripts), "r1") for args in SCRIPT_RUNS}
    slr("run", "-d", "-b", bundle(["sleep", "1000"], edit=_with_scripts), "c1", check=True)
    try:
        execs = {args: slr("exec", "c1", *args) for args in SCRIPT_RUNS}
    finally:
        slr("delete", "-f", "c1", check=True)
    slr("pool", "create", "-b", bundle(["true"], edit=_with_scripts), "--size", "1", "p1", check=True)
    try:
        pooled = {args: slr("pool", "run", "p1", "--", *args) for args in SCRIPT_RUNS}
    finally:
        slr("pool", "delete", "p1", check=True)
    for how, results in (("run", runs), ("exec", execs), ("pool run", pooled)):
        assert {args: (r.returncode, r.stdout) for args, r in results.items()} == {
            args: (0, out) for args, out in SCRIPT_RUNS.items()}, (how, {a: r.stderr for a, r in results.items()})


# --- the process is finalised during create ---------------------------------------------

def _no_cgroup_left(slr, container_id):
    from slruntime.cgroups import default_path

    path = default_path(slr.root, container_id)
    return [c for c in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{c}{path}")] == []


def test_create_finalises_the_process_and_start_only_runs_it(slr, bundle, tmp_path):
    """After create, the waiting init is already the container's process (user, groups,
    capabilities, no_new_privs); start only executes the program."""
    marker = "/dev/shm/ran"
    b = bundle(["sh", "-c", f"touch {marker}; sleep 1000"], edit=_process(
        capabilities=_CAPS, user={"uid": 1000, "gid": 1001, "additionalGids": [10]}))
    slr("create", "-b", b, "c1", check=True)
    try:
        pid = slr.state("c1")["pid"]
        with open(f"/proc/{pid}/status") as f:
            created = status_fields(f.read())
        not_yet = slr("exec", "c1", "ls", marker)
        slr("start", "c1", check=True)
        ran = slr("exec", "c1", "ls", marker)
    finally:
        slr("delete", "-f", "c1", check=True)
    assert created["Uid"].split() == ["1000"] * 4 and created["Gid"].split() == ["1001"] * 4
    assert created["Groups"] == "10" and created["NoNewPrivs"] == "1"
    assert (created["CapBnd"], created["CapAmb"]) == (cap_mask(_CAPS["bounding"]), cap_mask(_CAPS["ambient"]))
    assert created["CapPrm"] == created["CapEff"] == cap_mask(_CAPS["permitted"])
    assert not_yet.returncode == 1 and ran.returncode == 0  # the program ran at start, not before


def _cannot_be_granted(config):
    config["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_SYS_RESOURCE"],
                                         "effective": ["CAP_SYS_RESOURCE"], "permitted": ["CAP_SYS_RESOURCE"]}


BAD_PROCESSES = {  # what the host cannot give the process -> the one line create prints
    "capabilities": (_cannot_be_granted, "slr: capabilities: capset: Operation not permitted "
                                         "(not in the bounding set: CAP_SYS_RESOURCE)\n"),
    "cwd": (_process(cwd="/no/such/dir"), "slr: process.cwd /no/such/dir: No such file or directory\n"),
}


@pytest.mark.parametrize("what", sorted(BAD_PROCESSES))
def test_a_process_the_host_cannot_set_up_fails_create(slr, bundle, state_root, what):
    """Capabilities (and cwd, user...) were applied after `start`: create and start both
    exited 0 and the container then stopped. runc and crun fail create with the reason."""
    if what == "capabilities" and _has_cap(24):
        pytest.skip("the runtime has CAP_SYS_RESOURCE: nothing to refuse")
    edit, message = BAD_PROCESSES[what]
    b = bundle(["sleep", "1000"], edit=edit)
    container_id = f"bad-{what}"
    result = slr("create", "-b", b, container_id)
    assert (result.returncode, result.stderr) == (1, message)
    assert os.listdir(state_root) == [] and _no_cgroup_left(slr, container_id)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert b.encode() not in f.read(), f"process {pid} of the failed create is left"
        except OSError:
            pass


def test_run_with_a_terminal_follows_the_callers_window_size(slr, bundle):
    """`run -t`: the pty starts with the caller's size, and SIGWINCH (the caller's
    terminal resized) gives it the new one, as runc's console does."""
    b = bundle(["sh", "-c", "stty size; echo ready; read line; stty size; exit 5"],
               edit=lambda c: c["process"].update(terminal=True))
    terminal = Terminal(33, 99)
    try:
        process = terminal.start(slr.cmd("run", "-b", b, "tty1"))
        assert terminal.read_until("ready"), terminal.output
        assert b"33 99" in terminal.output
        terminal.resize(40, 120)
        process.send_signal(signal.SIGWINCH)
        time.sleep(0.5)  # the handler runs before the line below reaches the process
        os.write(terminal.master, b"\r")
        assert process.wait(timeout=60) == 5, terminal.output
        assert terminal.read_until("40 120"), terminal.output
    finally:
        terminal.close()
