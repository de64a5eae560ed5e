"""linux.resources on this host's cgroup v1 controllers (the hybrid host is driven as v1),
observed from inside the container through its own cgroup mount, plus update, events
and cgroupsPath; and on v1 and v2 both, a container's whole cgroup tree (the cgroups its
processes make) listed, signalled and removed with it. cgroup v2 resources are covered
in the QEMU guest (hwtests)."""

import json
import os
import time
import uuid

import pytest
from helpers import Slr, cgroup2_view, script_output

from slruntime.cgroups import detect_version

v1_only = pytest.mark.skipif(detect_version() != 1, reason="covers cgroup v1 hosts")

CG = "/sys/fs/cgroup"


def _resources(**resources):
    return lambda c: c["linux"].setdefault("resources", {}).update(resources)


def _read_all(*files):
    return "; ".join(f"cat {CG}/{f}" for f in files) + ";"


@v1_only
def test_memory_limit_enforced(slr, bundle):
    limit = 32 << 20
    script = (_read_all("memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes")
              # one 64 MiB line held by `tail`: more than the limit, OOM-killed (it, not the
              # container's shell: the highest oom_score_adj goes first)
              + "sh -c 'echo 1000 > /proc/self/oom_score_adj; head -c 64m /dev/zero | tail -n 1 > /dev/null'; "
              + "echo rc=$?; "
              + "grep '^oom_kill ' /sys/fs/cgroup/memory/memory.oom_control")
    out = script_output(slr, bundle, script, edit=_resources(memory={"limit": limit, "swap": limit}))
    lines = out.splitlines()
    assert lines[:3] == [str(limit), str(limit), f"rc={128 + 9}"]
    assert lines[3].split()[0] == "oom_kill" and int(lines[3].split()[1]) >= 1


@v1_only
def test_pids_limit_enforced(slr, bundle):
    # An inner shell forks until it fails (and exits: ash gives up on "can't fork"); the
    # outer one then uses built-ins only, as the sleeps keep the group at its limit.
    script = ("cd /sys/fs/cgroup/pids; read max < pids.max; echo $max; "
              "sh -c 'while :; do sleep 30 & done' 2>/dev/null; "
              "read current < pids.current; echo $current; while read k v; do echo $k $v; done < pids.events")
    out = script_output(slr, bundle, script, edit=_resources(pids={"limit": 8}))
    lines = out.split()
    assert lines[:2] == ["8", "7"]  # both shells and 6 sleeps made 8; the inner shell is gone
    assert lines[2] == "max" and int(lines[3]) > 0


@v1_only
def test_cpu_quota_period_shares_and_cpuset(slr, bundle):
    cpus = "1" if os.cpu_count() > 1 else "0"
    script = (_read_all("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "cpu/cpu.shares", "cpuset/cpuset.cpus")
              + "grep Cpus_allowed_list /proc/self/status; "
              # spin for half a second: with 10 ms per 50 ms period the group must be throttled
              + "sh -c 'while :; do :; done' & sleep 0.5; kill $!; grep nr_throttled /sys/fs/cgroup/cpu/cpu.stat")
    out = script_output(slr, bundle, script, edit=_resources(
        cpu={"quota": 10000, "period": 50000, "shares": 512, "cpus": cpus, "mems": "0"}))
    lines = out.splitlines()
    assert lines[:4] == ["10000", "50000", "512", cpus]
    assert lines[4].split() == ["Cpus_allowed_list:", cpus]
    assert int(lines[5].split()[1]) > 0


@v1_only
def test_block_io_weight_and_throttle(slr, bundle):
    device = os.stat("/").st_dev
    major, minor = os.major(device), os.minor(device)
    # CFQ's blkio.weight is on every cgroup, BFQ's blkio.bfq.weight on all but the root:
    # a cgroup of our own tells (another container's may or may not be there).
    probe = f"{CG}/blkio/slrtest-{uuid.uuid4().hex[:8]}"
    os.mkdir(probe)
    try:
        weight_file = next((name for name in ("blkio.weight", "blkio.bfq.weight")
                            if os.path.exists(f"{probe}/{name}")), None)
    finally:
        os.rmdir(probe)
    if weight_file is None:
        pytest.skip("this kernel offers no blkio weights (neither CFQ nor BFQ)")
    out = script_output(slr, bundle, _read_all("blkio/blkio.throttle.read_bps_device") + f"cat {CG}/blkio/{weight_file}",
                        edit=_resources(blockIO={"weight": 300, "throttleReadBpsDevice": [
                            {"major": major, "minor": minor, "rate": 1048576}]}))
    lines = out.splitlines()
    assert lines[0] == f"{major}:{minor} 1048576"
    assert lines[1].split()[-1] == "300"


@v1_only
def test_device_rules(slr, bundle):
    def devices(config):
        caps = config["process"]["capabilities"]
        for name in ("bounding", "effective", "permitted"):
            caps[name].append("CAP_MKNOD")
        config["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"},
                                                   {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]

    script = ("mknod /dev/allowed b 7 0; mknod /dev/other b 7 1; mknod /dev/mem0 c 1 1; "
              "for d in allowed other mem0 null; do (exec 3</dev/$d) 2>/dev/null && echo $d=open || echo $d=denied; done; "
              "(exec 3>/dev/allowed) 2>/dev/null && echo allowed-w=open || echo allowed-w=denied; "
              "grep -c . /sys/fs/cgroup/devices/devices.list; grep 'b 7:0' /sys/fs/cgroup/devices/devices.list")
    out = script_output(slr, bundle, script, edit=devices)
    lines = out.splitlines()
    assert lines[:5] == ["allowed=open", "other=denied", "mem0=denied", "null=open", "allowed-w=denied"]
    assert int(lines[5]) > 1 and lines[6] == "b 7:0 r"  # a rule list, not "a *:* rwm"


@v1_only
def test_device_rules_are_written_in_the_listed_order(slr, bundle):
    """devices.list shows the exceptions in the order they were written: the config's, then
    the defaults (runtime-tools' linux_cgroups_devices reads it so)."""
    listed = [("c", 10, 229, "rwm"), ("b", 8, 20, "rw"), ("b", 8, 16, "r")]

    def devices(config):
        config["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}] + [
            {"allow": True, "type": t, "major": ma, "minor": mi, "access": a} for t, ma, mi, a in listed]

    out = script_output(slr, bundle, "cat /sys/fs/cgroup/devices/devices.list", edit=devices)
    assert out.splitlines()[:3] == [f"{t} {ma}:{mi} {a}" for t, ma, mi, a in listed]


@v1_only
def test_update_and_events_stats(slr, bundle, tmp_path):
    b = bundle(["sleep", "1000"], edit=_resources(memory={"limit": 64 << 20}, pids={"limit": 20}))
    slr("run", "-d", "-b", b, "c1", check=True)
    read = ["sh", "-c", _read_all("memory/memory.limit_in_bytes", "pids/pids.max", "cpu/cpu.cfs_quota_us", "cpu/cpu.shares")]
    assert slr("exec", "c1", *read, check=True).stdout.split() == [str(64 << 20), "20", "-1", "1024"]
    slr("update", "--memory", str(96 << 20), "--pids-limit", "30", "--cpu-quota", "20000", "c1", check=True)
    (tmp_path / "res.json").write_text(json.dumps({"cpu": {"shares": 256}}))
    slr("update", "-r", str(tmp_path / "res.json"), "c1", check=True)
    assert slr("exec", "c1", *read, check=True).stdout.split() == [str(96 << 20), "30", "20000", "256"]

    stats = json.loads(slr("events", "--stats", "c1", check=True).stdout)
    assert stats["type"] == "stats" and stats["id"] == "c1"
    data = stats["data"]
    assert data["memory"]["usage"]["limit"] == 96 << 20 and data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 30}
    assert data["cpu"]["usage"]["total"] > 0
    bad = slr("update", "--pids-limit", "x", "c1")
    assert bad.returncode != 0
    slr("delete", "-f", "c1", check=True)
    assert slr("update", "--memory", "1", "c1").returncode == 1


@v1_only
def test_cgroups_path_and_the_container_cgroup_mount(slr, bundle):
    top = f"slrtest-{uuid.uuid4().hex[:8]}"
    b = bundle(["sleep", "1000"], edit=lambda c: c["linux"].update(cgroupsPath=f"/{top}/inner"))
    slr("run", "-d", "-b", b, "c1", check=True)
    pid = slr.state("c1")["pid"]
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            host_view = {line.split(":")[1]: line.strip().split(":")[2] for line in f}
        for controller in ("memory", "pids", "cpu,cpuacct" if "cpu,cpuacct" in host_view else "cpu", "devices", "freezer"):
            assert host_view[controller] == f"/{top}/inner", controller
        out = slr("exec", "c1", "sh", "-c", "cat /proc/self/cgroup; echo 1 > /sys/fs/cgroup/pids/pids.max || echo ro; "
                  "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs", check=True).stdout
    finally:
        slr("delete", "-f", "c1", check=True)
    lines = out.splitlines()
    assert all(line.endswith(":/") for line in lines if line.count(":") == 2)  # its own cgroup namespace
    assert "ro" in lines
    assert {"memory", "pids", "cpu", "devices", "freezer"} <= set(lines)
    assert lines[-2:] == ["1", lines[-1]] and len([l for l in lines if l.isdigit()]) == 2  # init and the exec
    assert not any(os.path.exists(f"{CG}/{c}/{top}") for c in os.listdir(CG))  # removed with the container


@v1_only
def test_a_cgroup_in_use_is_not_joined(slr, bundle):
    """Two containers given the same cgroupsPath: the second must fail, not share (and
    at its delete, kill) the first one's processes."""
    shared = lambda c: c["linux"].update(cgroupsPath=f"/slrtest-{uuid.uuid4().hex[:8]}")
    first = bundle(["sleep", "1000"], edit=shared)
    with open(os.path.join(first, "config.json")) as f:
        path = json.load(f)["linux"]["cgroupsPath"]
    slr("run", "-d", "-b", first, "c1", check=True)
    try:
        result = slr("run", "-b", bundle(["true"], edit=lambda c: c["linux"].update(cgroupsPath=path)), "c2")
        assert result.returncode == 1
        assert f"cgroup: {path} is not empty: 1 process(es) found" in result.stderr
        assert slr.ids() == ["c1"] and slr.state("c1")["status"] == "running"
    finally:
        slr("delete", "-f", "c1", check=True)
    assert not any(os.path.exists(f"{CG}/{c}{path}") for c in os.listdir(CG))


# --- the container's cgroup tree, on v1 and v2 ---------------------------------------

@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def tree_slr(request, slr_bin, state_root, tmp_path):
    """(slr, where its cgroups are seen) on this host's v1 hierarchies, or in a
    cgroup-v2-only view of it (helpers.cgroup2_view)."""
    if request.param == 1:
        if detect_version() != 1:
            pytest.skip("no cgroup v1 on this host")
        runtime, hierarchies = Slr(slr_bin, state_root), [f"{CG}/{c}" for c in ("pids", "memory", "freezer", "devices")]
    else:
        binary, hierarchy = cgroup2_view(slr_bin, str(tmp_path))
        if binary is None:
            pytest.skip("no cgroup v2 hierarchy on this host")
        runtime, hierarchies = Slr(binary, state_root), [hierarchy]
    yield runtime, hierarchies
    assert not runtime.cleanup(), "test left containers behind"


def _writable_cgroup_mount(config):
    for mount in config["mounts"]:
        if mount["destination"] == "/sys/fs/cgroup":
            mount["options"] = [o for o in mount["options"] if o != "ro"] + ["rw"]


def _host_pid_namespace(config):
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "pid"]


# Make a cgroup below the container's own (on v1 in every hierarchy but cpuset, which
# needs its cpus set first) and move a `sleep` into it, then record its pid.
ESCAPE = """
cd /sys/fs/cgroup
for dir in $( [ -e cgroup.procs ] && echo . || ls ); do
  [ $dir = cpuset ] || mkdir -p $dir/escape/deeper
done
sleep 1000 &
for dir in $( [ -e cgroup.procs ] && echo . || ls ); do
  [ $dir = cpuset ] || echo $! > $dir/escape/deeper/cgroup.procs || exit 7
done
echo $! > /tmp/moved
"""


def _wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stop", ["kill --all KILL", "kill --all TERM", "delete --force"])
def test_processes_in_child_cgroups_are_listed_killed_and_removed(tree_slr, bundle, stop):
    """Pod-style (the host's pid namespace): a process that moved itself into a child
    cgroup is the container's for ps, kill --all and delete; nothing survives."""
    slr, hierarchies = tree_slr
    path = f"/slrtest-{uuid.uuid4().hex[:8]}"
    b = bundle(["sh", "-c", ESCAPE + "exec sleep 1000"], edit=lambda c: (
        _writable_cgroup_mount(c), _host_pid_namespace(c), c["linux"].update(cgroupsPath=path),
        c["root"].update(readonly=False)))
    moved_file = os.path.join(b, "rootfs", "tmp", "moved")
    slr("run", "-d", "-b", b, "c1", check=True)
    moved = None
    try:
        _wait_for(lambda: os.path.exists(moved_file) and open(moved_file).read().strip(), "the moved process")
        moved = int(open(moved_file).read())
        init = slr.state("c1")["pid"]
        assert set(json.loads(slr("ps", "--format", "json", "c1", check=True).stdout)) == {init, moved}
        if stop.startswith("kill"):
            slr(*stop.split()[:2], "c1", stop.split()[2], check=True)
            _wait_for(lambda: not _alive(moved) and not _alive(init), "every process to die")
        slr("delete", "--force", "c1", check=True)
        assert not _alive(moved)
        assert [h for h in hierarchies if os.path.exists(h + path)] == []
    finally:
        if moved and _alive(moved):
            os.kill(moved, 9)


def test_child_cgroups_are_removed_with_the_container(tree_slr, bundle):
    """With no process left, the cgroups a container made still go with it: the next
    container with the same cgroupsPath starts in an empty cgroup of its own."""
    slr, hierarchies = tree_slr
    path = f"/slrtest-{uuid.uuid4().hex[:8]}"
    make = ("cd /sys/fs/cgroup; for dir in $( [ -e cgroup.procs ] && echo . || ls ); do "
            "mkdir -p $dir/left/a/b $dir/left/c; done")
    look = "ls /sys/fs/cgroup/$( [ -e /sys/fs/cgroup/cgroup.procs ] || echo pids/ ) | grep -c left"
    edit = lambda c: (_writable_cgroup_mount(c), c["linux"].update(cgroupsPath=path))
    assert slr("run", "-b", bundle(["sh", "-c", make], edit=edit), "c1").returncode == 0
    assert [h for h in hierarchies if os.path.exists(h + path)] == []
    second = slr("run", "-b", bundle(["sh", "-c", look], edit=edit), "c2")
    assert second.stdout.split() == ["0"], second.stderr
