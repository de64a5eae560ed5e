"""slr in the guest, through its runc-compatible command line: run, exec,
kill, seccomp, user namespaces and cgroup v2 limits (the guest has the full
v2 hierarchy with the memory, pids and cpu controllers)."""
import json
import shlex

from hwtests.guest import BUNDLE, SCRATCH

# cgroupsPath of the resource tests: known paths to read the kernel's own
# accounting from, independent of the runtime's naming.
CGROUP_PARENT = "/hwtests"


def run(guest, slr, name, args, config=None, timeout=120):
    """(exit code, output) of `slr run` of a fresh bundle."""
    bundle = guest.make_bundle(name, args, config)
    return guest.status(f"{slr} run -b {bundle} hw-{name} 2>&1", timeout=timeout)


def wait_stopped(guest, slr, container, tries=50):
    for _ in range(tries):
        state = json.loads(guest.text(f"{slr} state {container}"))
        if state["status"] == "stopped":
            return state
        guest.run("sleep 0.2")
    raise AssertionError(f"{container} still {state['status']}")


def test_run_prints_output_and_passes_the_exit_status(guest, slr):
    code, out = run(guest, slr, "hello", ["sh", "-c", "echo hello from $(hostname); exit 7"])
    assert code == 7
    assert "hello from slr" in out


def test_container_has_its_own_pid_namespace_and_read_only_root(guest, slr):
    code, out = run(guest, slr, "pidns",
                    ["sh", "-c", "echo pid=$$; touch /probe || echo read-only"])
    assert code == 0, out
    assert "pid=1" in out and "read-only" in out


def test_exec_kill_and_delete_a_detached_container(guest, slr):
    bundle = guest.make_bundle("detached", ["sleep", "300"])
    guest.run(f"{slr} create -b {bundle} hw-detached")
    assert json.loads(guest.text(f"{slr} state hw-detached"))["status"] == "created"
    guest.run(f"{slr} start hw-detached")
    state = json.loads(guest.text(f"{slr} state hw-detached"))
    assert state["status"] == "running" and state["pid"] > 0
    assert "hw-detached" in guest.text(f"{slr} list")
    out = guest.text(f"{slr} exec hw-detached sh -c 'echo exec in $(hostname); echo pid=$$'")
    assert "exec in slr" in out and "pid=1" not in out
    guest.run(f"{slr} kill hw-detached KILL")
    wait_stopped(guest, slr, "hw-detached")
    guest.run(f"{slr} delete hw-detached")
    assert guest.status(f"{slr} state hw-detached")[0] != 0


def test_seccomp_denies_the_listed_system_calls(guest, slr):
    script = ["sh", "-c", "mkdir /tmp/made && echo mkdir-allowed; echo done"]
    code, out = run(guest, slr, "no-seccomp", script)
    assert "mkdir-allowed" in out, out

    def deny_mkdir(spec):
        spec["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}],
        }
    code, out = run(guest, slr, "seccomp", script, deny_mkdir)
    assert "mkdir-allowed" not in out and "done" in out, out
    assert "Operation not permitted" in "\n".join(out)


def test_image_bundle_runs_under_its_build_time_profile(guest, slr):
    # The image builder profiled the test bundle from the image's own busybox, as the
    # layer's slruntime_seccomp_profile class does: the image default slr applies.
    image_bundle = f"/{BUNDLE}"
    config = json.loads(guest.text(f"cat {image_bundle}/config.json"))
    profile_name = config["annotations"]["org.slruntime.seccomp.profile"]
    profile = json.loads(guest.text(f"cat {image_bundle}/{profile_name}"))
    allowed = profile["syscalls"][0]["names"]
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and "wait4" in allowed
    script = "echo start; sh -c 'exit 3'; echo child $?; grep ^Seccomp: /proc/self/status | tr -d '\\t '"

    def run_with(name, names):
        # A copy of the bundle whose profile allows `names`: the image's rootfs, the
        # image's config with another command.
        bundle = f"{SCRATCH}/{name}"
        edited = dict(profile, syscalls=[dict(profile["syscalls"][0], names=names)])
        spec = dict(config, process=dict(config["process"], args=["sh", "-c", script]),
                    root=dict(config["root"], path=f"{image_bundle}/rootfs"))
        guest.run(f"mkdir -p {bundle}")
        guest.write_file(f"{bundle}/config.json", json.dumps(spec))
        guest.write_file(f"{bundle}/{profile_name}", json.dumps(edited))
        return guest.status(f"{slr} run -b {bundle} hw-{name} 2>&1")

    code, out = run_with("image-profile", allowed)
    assert code == 0, out
    assert out[:2] == ["start", "child 3"] and "Seccomp:2" in out, out
    # The generated profile is the one in force, not slr.conf's default (which allows
    # wait4): without wait4 the shell cannot reap its child.
    code, out = run_with("image-profile-no-wait4", [n for n in allowed if n != "wait4"])
    assert "child 3" not in out, out


def test_user_namespace_maps_root_to_an_unprivileged_range(guest, slr):
    def userns(spec):
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        # sysfs cannot be mounted from a user namespace without its own netns
        # owner rights on every kernel: leave it out.
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/sys"]
    code, out = run(guest, slr, "userns",
                    ["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 2"], userns)
    assert code == 0, out
    assert out[0].strip() == "0"
    assert out[1].split() == ["0", "100000", "65536"]


def _limited(cgroup, resources):
    def edit(spec):
        spec["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{cgroup}"
        spec["linux"]["resources"].update(resources)
    return edit


def test_memory_max_triggers_the_oom_killer(guest, slr):
    fill = ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null"
                        " && echo filled"]
    code, out = run(guest, slr, "mem-free", fill)
    assert "filled" in out, out
    bundle = guest.make_bundle("mem", ["sleep", "300"],
                               _limited("mem", {"memory": {"limit": 16 << 20, "swap": 16 << 20}}))
    guest.run(f"{slr} create -b {bundle} hw-mem && {slr} start hw-mem")
    try:
        cgroup = f"/sys/fs/cgroup{CGROUP_PARENT}/mem"
        assert guest.text(f"cat {cgroup}/memory.max") == str(16 << 20)
        code, out = guest.status(f"{slr} exec hw-mem {' '.join(shlex.quote(a) for a in fill)}",
                                 timeout=120)
        assert "filled" not in out
        events = dict(line.split() for line in guest.run(f"cat {cgroup}/memory.events"))
        assert int(events["oom_kill"]) >= 1, events
    finally:
        guest.status(f"{slr} kill hw-mem KILL; sleep 0.5; {slr} delete -f hw-mem")


def test_pids_max_limits_forks(guest, slr):
    forks = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 3 & done; wait; echo all-forked"]
    code, out = run(guest, slr, "pids-free", forks)
    assert "all-forked" in out, out
    code, out = run(guest, slr, "pids", forks, _limited("pids", {"pids": {"limit": 5}}))
    text = "\n".join(out)
    assert "can't fork" in text or "Resource temporarily unavailable" in text, text


def test_cpu_max_throttles(guest, slr):
    bundle = guest.make_bundle("cpu", ["sh", "-c", "while :; do :; done"],
                               _limited("cpu", {"cpu": {"quota": 10000, "period": 100000}}))
    guest.run(f"{slr} create -b {bundle} hw-cpu && {slr} start hw-cpu")
    try:
        cgroup = f"/sys/fs/cgroup{CGROUP_PARENT}/cpu"
        assert guest.text(f"cat {cgroup}/cpu.max") == "10000 100000"
        guest.run("sleep 3")
        stat = dict(line.split() for line in guest.run(f"cat {cgroup}/cpu.stat"))
        assert int(stat["nr_throttled"]) > 0, stat
        # 10 % of one CPU for ~3 s; generous bound for TCG's coarse timing.
        assert int(stat["usage_usec"]) < 1_500_000, stat
    finally:
        guest.status(f"{slr} kill hw-cpu KILL; sleep 0.5; {slr} delete -f hw-cpu")


def test_realtime_scheduler_and_cpu_affinity(guest, slr):
    """process.scheduler and execCPUAffinity (the guest has 2 CPUs and no RT group
    scheduling, as Debian's and Yocto's default kernels)."""
    def realtime(spec):
        spec["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
        spec["process"]["execCPUAffinity"] = {"initial": "0", "final": "1"}
    code, out = run(guest, slr, "rt", ["sh", "-c", "grep Cpus_allowed_list /proc/self/status;"
                                        " cut -d' ' -f40,41 /proc/self/stat"], realtime)
    assert code == 0, out
    assert out[0].split() == ["Cpus_allowed_list:", "1"]
    assert out[1].split() == ["10", "1"]  # rt_priority 10, policy SCHED_FIFO
