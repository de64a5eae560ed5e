"""The device policy on cgroup v2 (what the target runs): linux.resources.devices
becomes an eBPF program attached to the container's cgroup. Every test runs real
containers with CAP_MKNOD (as podman's and Docker's default set has) against a real
block device of this host, in a cgroup-v2-only view (helpers.cgroup2_view: the hybrid
development host's v2 hierarchy mounted on /sys/fs/cgroup in a mount namespace of
slr's own; on a v2 host slr runs as it is)."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from helpers import Slr, cgroup2_view, edits

from slruntime import spec
from slruntime.cgroups import devices
from slruntime.cgroups.v2 import device_program


@pytest.fixture(scope="module")
def view(slr_bin, tmp_path_factory):
    binary, hierarchy = cgroup2_view(slr_bin, str(tmp_path_factory.mktemp("cgroup2")))
    if binary is None:
        pytest.skip("no cgroup v2 hierarchy on this host")
    return binary, hierarchy


@pytest.fixture
def slr2(view, state_root):
    runtime = Slr(view[0], state_root)
    yield runtime
    leftovers = runtime.cleanup()
    assert not leftovers, f"test left containers behind: {leftovers}"


def _openable(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def disk():
    """(major, minor) of a block device this host can open (the boot disk in the CI
    guest): what the container gets, if anything, is its policy's doing."""
    for name in sorted(os.listdir("/sys/class/block")):
        with open(f"/sys/class/block/{name}/dev") as f:
            major, minor = map(int, f.read().split(":"))
        if _openable(f"/dev/{name}") and os.major(os.stat(f"/dev/{name}").st_rdev) == major:
            return major, minor
    pytest.skip("no block device this host can open")


def _mknod_capability(config):
    caps = config["process"]["capabilities"]
    for name in ("bounding", "effective", "permitted"):
        caps[name].append("CAP_MKNOD")


def _rules(*rules):
    return lambda config: config["linux"].setdefault("resources", {}).update(devices=list(rules))


# Make a node of the disk (mknod: allowed to every container, as in runc), then open it
# for reading, writing (append: nothing is truncated or written) and both.
PROBE = """
mknod /dev/disk b {major} {minor} || exit 9
for mode in r w rw; do
  case $mode in r) op='<';; w) op='>>';; rw) op='<>';; esac
  if msg=$( (eval "exec 3$op/dev/disk") 2>&1 ); then echo $mode=ok
  else case $msg in *"not permitted"*) echo $mode=EPERM;; *) echo "$mode=$msg";; esac; fi
done
"""


def _probe(slr2, bundle, disk, *edit_functions):
    result = slr2("run", "-b", bundle(["sh", "-c", PROBE.format(major=disk[0], minor=disk[1])],
                                      edit=edits(_mknod_capability, *edit_functions)), "dev")
    assert result.returncode == 0, result.stderr + result.stdout
    return dict(line.split("=", 1) for line in result.stdout.split())


def test_a_device_the_config_does_not_allow_cannot_be_opened(slr2, bundle, disk):
    # `slr spec`'s rules: deny everything (the default devices stay allowed)
    assert _probe(slr2, bundle, disk) == {"r": "EPERM", "w": "EPERM", "rw": "EPERM"}
    # no rules at all: the same (runc and crun start from "deny all" too)
    no_rules = lambda c: c["linux"]["resources"].pop("devices")
    assert _probe(slr2, bundle, disk, no_rules) == {"r": "EPERM", "w": "EPERM", "rw": "EPERM"}


@pytest.mark.parametrize("access, expected", [
    ("r", {"r": "ok", "w": "EPERM", "rw": "EPERM"}),
    ("w", {"r": "EPERM", "w": "ok", "rw": "EPERM"}),
    ("rw", {"r": "ok", "w": "ok", "rw": "ok"}),
    ("m", {"r": "EPERM", "w": "EPERM", "rw": "EPERM"}),
])
def test_an_allowed_device_gets_exactly_the_access_given(slr2, bundle, disk, access, expected):
    major, minor = disk
    rules = _rules({"allow": False, "access": "rwm"},
                   {"allow": True, "type": "b", "major": major, "minor": minor, "access": access})
    assert _probe(slr2, bundle, disk, rules) == expected


@pytest.mark.parametrize("name, rules, expected", [
    # a later deny takes back part of an earlier allow
    ("deny-after-allow", lambda ma, mi: [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "b", "major": ma, "minor": mi, "access": "rw"},
                                        {"allow": False, "type": "b", "major": ma, "minor": mi, "access": "w"}],
     {"r": "ok", "w": "EPERM", "rw": "EPERM"}),
    # "a" resets everything before it
    ("deny-all-last", lambda ma, mi: [{"allow": True, "type": "b", "major": ma, "minor": mi, "access": "rwm"},
                                     {"allow": False, "type": "a", "access": "rwm"}],
     {"r": "EPERM", "w": "EPERM", "rw": "EPERM"}),
    # allow everything, then deny one access of one device
    ("allow-all-then-deny", lambda ma, mi: [{"allow": True, "access": "rwm"},
                                           {"allow": False, "type": "b", "major": ma, "minor": mi, "access": "w"}],
     {"r": "ok", "w": "EPERM", "rw": "EPERM"}),
    # wildcards: an absent minor and a -1 major
    ("any-minor", lambda ma, mi: [{"allow": False, "access": "rwm"},
                                 {"allow": True, "type": "b", "major": ma, "access": "r"}],
     {"r": "ok", "w": "EPERM", "rw": "EPERM"}),
    ("any-major", lambda ma, mi: [{"allow": False, "access": "rwm"},
                                 {"allow": True, "type": "b", "major": -1, "minor": mi, "access": "rw"}],
     {"r": "ok", "w": "ok", "rw": "ok"}),
    # an exception for another device (or type) does not open this one
    ("other-device", lambda ma, mi: [{"allow": False, "access": "rwm"},
                                    {"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"},
                                    {"allow": True, "type": "b", "major": ma, "minor": mi + 1, "access": "rwm"}],
     {"r": "EPERM", "w": "EPERM", "rw": "EPERM"}),
])
def test_rules_apply_in_order_the_later_wins(slr2, bundle, disk, name, rules, expected):
    assert _probe(slr2, bundle, disk, _rules(*rules(*disk))) == expected


def test_linux_devices_are_allowed(slr2, bundle, disk):
    major, minor = disk
    listed = lambda c: c["linux"].update(devices=[{"path": "/dev/listed", "type": "b", "major": major, "minor": minor}])
    script = "(exec 3</dev/listed) && echo listed=ok; " + PROBE.format(major=major, minor=minor)
    result = slr2("run", "-b", bundle(["sh", "-c", script], edit=edits(_mknod_capability, listed)), "dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["listed=ok", "r=ok", "w=ok", "rw=ok"]


def test_default_devices_and_ptys_work(slr2, bundle):
    """/dev/null & co. and the container's own terminal (a pty, 136:N) under the
    default deny-all rules."""
    script = ("for d in null zero full random urandom tty console ptmx $(tty); do "
              "(exec 3<>/dev/${d#/dev/}) && echo $d=ok; done")
    b = bundle(["sh", "-c", script], edit=lambda c: c["process"].update(terminal=True))
    result = slr2("run", "-b", b, "tty")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{name}=ok" for name in (
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "/dev/pts/0")]


def _attached_programs(hierarchy, pid):
    with open(f"/proc/{pid}/cgroup") as f:
        path = [line.strip().split(":", 2)[2] for line in f if line.startswith("0::")][0]
    fd = os.open(hierarchy + path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return device_program._attached(fd)
    finally:
        os.close(fd)


def test_update_replaces_the_program_and_exec_is_covered(slr2, view, bundle, disk, tmp_path):
    major, minor = disk
    b = bundle(["sleep", "1000"], edit=edits(_mknod_capability, lambda c: c["process"].update(args=[
        "sh", "-c", f"mknod /dev/disk b {major} {minor} && exec sleep 1000"])))
    slr2("run", "-d", "-b", b, "c1", check=True)
    probe = ["sh", "-c", "(exec 3</dev/disk) 2>/dev/null && echo r=ok || echo r=denied; "
                         "(exec 3>>/dev/disk) 2>/dev/null && echo w=ok || echo w=denied"]
    pid = slr2.state("c1")["pid"]
    try:
        before = _attached_programs(view[1], pid)
        assert len(before) == 1
        assert slr2("exec", "c1", *probe, check=True).stdout.split() == ["r=denied", "w=denied"]

        allow_read = tmp_path / "allow-read.json"
        allow_read.write_text(json.dumps({"devices": [
            {"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": major, "minor": minor, "access": "r"}]}))
        slr2("update", "-r", str(allow_read), "c1", check=True)
        after = _attached_programs(view[1], pid)
        assert len(after) == 1 and after != before  # the new program replaced the old one
        assert slr2("exec", "c1", *probe, check=True).stdout.split() == ["r=ok", "w=denied"]

        deny = tmp_path / "deny.json"
        deny.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"}]}))
        slr2("update", "-r", str(deny), "c1", check=True)
        assert slr2("exec", "c1", *probe, check=True).stdout.split() == ["r=denied", "w=denied"]
        assert len(_attached_programs(view[1], pid)) == 1
    finally:
        slr2("delete", "-f", "c1", check=True)


def test_pool_members_get_the_policy(slr2, bundle, disk):
    major, minor = disk
    b = bundle(["true"], edit=_mknod_capability)
    slr2("pool", "create", "--bundle", b, "--size", "1", "p1", check=True)
    try:
        script = f"mknod /dev/disk b {major} {minor} && (exec 3</dev/disk) 2>&1"
        result = slr2("pool", "run", "p1", "--", "sh", "-c", script)
        assert result.returncode != 0 and "Operation not permitted" in result.stdout + result.stderr
    finally:
        slr2("pool", "delete", "p1", check=True)


def test_a_rule_cutting_a_hole_in_a_wildcard_is_refused(slr2, bundle, state_root):
    """v1 would silently keep the wildcard (the device stays allowed); refused, as runc
    does, with nothing left behind."""
    rules = _rules({"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "access": "rwm"},
                   {"allow": False, "type": "b", "major": 8, "minor": 0, "access": "r"})
    result = slr2("run", "-b", bundle(["true"], edit=rules), "hole")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "slr: config.json: linux.resources.devices[2]: cannot deny b 8:0 r: the earlier wildcard rule b *:* rwm covers it "
        "(cgroup device rules cannot cut a hole in a wildcard; list the wildcard after it)"]
    assert slr2.ids() == []


def test_the_verifiers_complaint_is_the_error(view):
    """A program the kernel refuses (here: one that never sets its return value)."""
    with pytest.raises(device_program._Refused) as refused:
        device_program._load(bytes.fromhex("9500000000000000"))  # exit, r0 never written
    assert refused.value.detail == "R0 !read_ok"


ATTACH = ("import sys; sys.path.insert(0, {source!r}); from slruntime.cgroups import devices; "
          "from slruntime.cgroups.v2 import device_program; "
          "print(device_program.attach({cgroup!r}, devices.Policy(devices.rules([], []))))")


def _become_nobody():
    """An unprivileged user, without setpriv: the guest's setpriv cannot drop
    capabilities the way util-linux's does."""
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


@pytest.mark.parametrize("prefix,become", [(["unshare", "-U", "-r"], None), ([], _become_nobody)],
                         ids=["root-in-a-user-namespace", "unprivileged-user"])
def test_without_bpf_rights_the_program_is_left_out(view, prefix, become):
    """As runc and crun: where bpf(2) refuses an unprivileged runtime, the container
    goes without the program (it cannot make device nodes either: mknod of one needs
    CAP_MKNOD in the initial user namespace)."""
    if prefix and shutil.which(prefix[0]) is None:
        pytest.skip(f"{prefix[0]} is not installed")
    cgroup = os.path.join(view[1], f"slrtest-{uuid.uuid4().hex[:8]}")
    os.mkdir(cgroup)
    try:
        source = os.path.dirname(os.path.dirname(spec.__file__))  # the directory holding slruntime
        result = subprocess.run([*prefix, sys.executable, "-c", ATTACH.format(source=source, cgroup=cgroup)],
                                capture_output=True, text=True, timeout=60, preexec_fn=become)
        assert (result.stdout.strip(), result.stderr) == ("False", "")
        fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert device_program._attached(fd) == ()
        finally:
            os.close(fd)
    finally:
        os.rmdir(cgroup)


# Device nodes whose drivers are built in and harmless to open (no module is loaded, no
# device created): null, zero, full, console, ptmx, loop devices. Opened by a helper
# process in a cgroup; EPERM is the cgroup's refusal (a missing driver gives ENXIO).
PROBE_NODES = [("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 5, 1), ("c", 5, 2), ("b", 7, 3), ("b", 7, 5), ("b", 7, 6)]
OPENER = """
import errno, os, sys
verdicts = []
for path in sys.argv[1:]:
    for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR):
        try:
            os.close(os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY))
            verdicts.append("+")
        except OSError as exc:
            verdicts.append("-" if exc.errno == errno.EPERM else "+")
print("".join(verdicts))
"""


def _verdicts(cgroup_dir, nodes):
    script = f'echo $$ > {cgroup_dir}/cgroup.procs && code=$1 && shift && exec "$0" -c "$code" "$@"'
    result = subprocess.run(["sh", "-c", script, sys.executable, OPENER, *nodes],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _random_rules(rng):
    """An "a" reset first (a new v1 cgroup starts from its parent's policy, ours from
    deny), then rules over the probed devices, wildcards included."""
    rules = [{"allow": rng.random() < 0.5, "type": "a", "access": "rwm"}]
    for _ in range(rng.randint(1, 6)):
        rule = {"allow": rng.random() < 0.5, "type": rng.choice("bc"),
                "access": "".join(c for c in "rwm" if rng.random() < 0.6) or "r"}
        major, minor = rng.choice([None, 1, 5, 7]), rng.choice([None, 1, 2, 3, 5, 6, 7])
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def _v1_line(rule):
    if rule["type"] == "a":
        return "a"
    return f"{rule['type']} {rule.get('major', '*')}:{rule.get('minor', '*')} {rule['access']}"


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/devices"), reason="no cgroup v1 devices controller to compare with")
def test_the_program_decides_as_the_v1_controller(view, tmp_path):
    """Differential, on the real kernel: random rule lists written raw to a v1 devices
    cgroup, and compiled to the eBPF program on a v2 cgroup, allow and refuse the same
    opens (r, w, rw) of the same device nodes."""
    import random

    nodes = []
    for kind, major, minor in PROBE_NODES:
        path = str(tmp_path / f"{kind}{major}-{minor}")
        os.mknod(path, 0o600 | (0o60000 if kind == "b" else 0o20000), os.makedev(major, minor))
        nodes.append(path)
    name = f"slrtest-{uuid.uuid4().hex[:8]}"
    v1_dir, v2_dir = f"/sys/fs/cgroup/devices/{name}", os.path.join(view[1], name)
    compared = 0
    rng = random.Random(1252)
    try:
        for case in range(40):
            rules = _random_rules(rng)
            try:
                parsed = spec.parse_resources({"devices": rules}).devices
                policy = devices.Policy(devices.rules(parsed, [])[:len(rules)])  # without the defaults
            except devices.DeviceError:
                continue  # a hole in a wildcard: v1 ignores the rule, slr refuses the config
            os.mkdir(v1_dir)
            os.mkdir(v2_dir)
            try:
                for rule in rules:
                    with open(f"{v1_dir}/devices.{'allow' if rule['allow'] else 'deny'}", "w") as f:
                        f.write(_v1_line(rule))
                device_program.attach(v2_dir, policy)
                assert _verdicts(v2_dir, nodes) == _verdicts(v1_dir, nodes), (case, rules)
                compared += 1
            finally:
                os.rmdir(v1_dir)
                os.rmdir(v2_dir)
    finally:
        for directory in (v1_dir, v2_dir):
            if os.path.isdir(directory):
                os.rmdir(directory)
    assert compared >= 25
