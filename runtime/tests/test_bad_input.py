"""Bad input: every malformed or unsupported config.json, runtime failure after
validation, and CLI misuse gets a one-line error, exit code 1 (runc's codes for the
CLI) and leaves nothing behind: no state directory, cgroup, mount or process.

Each case runs the real `slr` against a real bundle; `Leftovers` looks at the host
before and after (state root, every cgroup hierarchy, /proc/self/mountinfo, every
process carrying the case's marker, /dev/null).
"""

import copy
import json
import os
import socket
import time
import uuid

import pytest
from helpers import default_config
from slruntime import jsonlite, seccomp, spec
from slruntime.cgroups import default_path
from slruntime.errors import SpecError

# --- what "nothing left behind" means ----------------------------------------------

def _mountinfo():
    """(mount id, mount point) of every mount: a mount stacked on an existing mount
    point is new too."""
    with open("/proc/self/mountinfo") as f:
        return {(fields[0], fields[4]) for fields in map(str.split, f)}


def _cgroup_hierarchies():
    base = "/sys/fs/cgroup"
    return [os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]


def _marked_processes(marker):
    """Processes whose command line or environment carries `marker`: the runtime, its
    stage-1 child, the container's init (before and after exec) and hooks."""
    found = []
    token = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{name}/{what}", "rb") as f:
                    if token in f.read():
                        found.append(int(name))
                        break
            except OSError:
                pass
    return found


class Leftovers:
    """Snapshot of the host before a case; `check()` lists what the case left behind."""

    def __init__(self, state_root, tmp_path, marker, cgroups_path):
        self.state_root = state_root
        self.tmp_path = str(tmp_path)
        self.marker = marker
        self.cgroups_path = cgroups_path.strip("/")
        self.mounts = _mountinfo()
        self.devnull = _identity("/dev/null")

    def check(self, container_id):
        problems = []
        # The cache of compiled seccomp programs is kept on purpose (a valid profile's).
        state = set(os.listdir(self.state_root)) - {seccomp.CACHE_DIR} if os.path.isdir(self.state_root) else ()
        if state:
            problems.append(f"state: {sorted(state)}")
        for hierarchy in _cgroup_hierarchies():
            for rel in (self.cgroups_path, self.cgroups_path.split("/")[0],
                        default_path(self.state_root, container_id).strip("/")):
                if os.path.exists(os.path.join(hierarchy, rel)):
                    problems.append(f"cgroup: {os.path.join(hierarchy, rel)}")
        # Only mounts the runtime could have made on the host count: other work on the
        # machine may mount elsewhere at the same time.
        for _, point in _mountinfo() - self.mounts:
            if point.startswith((self.tmp_path, self.state_root, "/dev", "/proc", "/sys", "/run/slr")) or self.marker in point:
                problems.append(f"mount: {point}")
        deadline = time.monotonic() + 3
        while _marked_processes(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in _marked_processes(self.marker):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            problems.append(f"process {pid}: {cmd}")
        if _identity("/dev/null") != self.devnull:  # a runtime once recreated the host's nodes
            problems.append(f"/dev/null was replaced: {self.devnull} -> {_identity('/dev/null')}")
        return problems


def _identity(path):
    st = os.lstat(path)
    return st.st_ino, st.st_mode, st.st_rdev


@pytest.fixture
def case_env():
    """(marker, cgroupsPath, env for slr) for one case."""
    marker = "slrbad" + uuid.uuid4().hex[:12]
    cgroups_path = f"/{marker}/c"
    env = dict(os.environ, SLR_TEST_MARKER=marker)
    return marker, cgroups_path, env


def _prepare(cfg, marker, cgroups_path):
    """Every case's config: the marker in the container's environment (so a leaked init
    is found after exec too) and a cgroup path of its own."""
    cfg["process"]["env"].append(f"SLR_TEST_MARKER={marker}")
    cfg["linux"]["cgroupsPath"] = cgroups_path


# --- config.json validation -----------------------------------------------------------

def _ns(cfg, ns_type):
    return next(n for n in cfg["linux"]["namespaces"] if n["type"] == ns_type)


def _set_userns(cfg, uid_maps, gid_maps):
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = uid_maps
    cfg["linux"]["gidMappings"] = gid_maps


class RawConfig(bytes):
    """What an `edit` returns to write config.json verbatim (not valid JSON, say)."""


def _raw(text):
    return lambda c, b: RawConfig(text.encode() if isinstance(text, str) else text)


def _bad(path, message):
    return f"config.json: {path}: {message}" if path else f"config.json: {message}"


# (case id, edit(cfg, bundle_dir) -> None or a RawConfig, expected error without "slr: ")
# The default config's namespaces are [pid, network, ipc, uts, mount, cgroup].
SPEC_CASES = [
    ("invalid-json", _raw('{"ociVersion": "1.2.0",'),
     _bad("", "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 24 (char 23)")),
    ("empty-file", _raw(""), _bad("", "invalid JSON: expecting value at line 1 column 1")),
    ("trailing-garbage", _raw("{} {}"), _bad("", "invalid JSON: extra data at line 1 column 4")),
    ("not-utf8", _raw(b'{"ociVersion": "\xff"}'),
     _bad("", "invalid JSON: 'utf-8' codec can't decode byte 0xff in position 16: invalid start byte")),
    ("nested-too-deep", _raw("[" * 100000 + "]" * 100000), _bad("", "invalid JSON: nested too deeply")),
    ("top-level-array", _raw("[]"), _bad("", "must be an object, not array")),
    ("no-ociVersion", lambda c, b: c.pop("ociVersion"), _bad("ociVersion", "is required")),
    ("ociVersion-major-2", lambda c, b: c.update(ociVersion="2.0.0"),
     _bad("ociVersion", 'unsupported ociVersion "2.0.0" (this runtime supports 1.x)')),
    ("ociVersion-not-semver", lambda c, b: c.update(ociVersion="latest"),
     _bad("ociVersion", '"latest" is not a semantic version')),
    ("ociVersion-number", lambda c, b: c.update(ociVersion=1.2), _bad("ociVersion", "must be a string, not number")),
    ("root-array", lambda c, b: c.update(root=[]), _bad("root", "must be an object, not array")),
    ("root-path-empty", lambda c, b: c["root"].update(path=""), _bad("root.path", "must not be empty")),
    ("root-path-nul-byte", lambda c, b: c["root"].update(path="rootfs\0/x"), _bad("root.path", "contains a NUL byte")),
    ("root-readonly-string", lambda c, b: c["root"].update(readonly="yes"),
     _bad("root.readonly", "must be a boolean, not string")),
    ("process-string", lambda c, b: c.update(process="sh"), _bad("process", "must be an object, not string")),
    ("no-process-args", lambda c, b: c["process"].pop("args"), _bad("process.args", "is required")),
    ("empty-process-args", lambda c, b: c["process"].update(args=[]),
     _bad("process.args", "must name the program to run")),
    ("process-arg-number", lambda c, b: c["process"].update(args=["sleep", 5]),
     _bad("process.args[1]", "must be a string, not number")),
    ("env-without-equals", lambda c, b: c["process"]["env"].insert(1, "NOVALUE"),
     _bad("process.env[1]", '"NOVALUE" is not of the form KEY=value')),
    ("relative-cwd", lambda c, b: c["process"].update(cwd="tmp"), _bad("process.cwd", '"tmp" is not an absolute path')),
    ("uid-string", lambda c, b: c["process"]["user"].update(uid="0"),
     _bad("process.user.uid", "must be an integer, not string")),
    ("uid-negative", lambda c, b: c["process"]["user"].update(uid=-1),
     _bad("process.user.uid", "-1 is out of range [0, 4294967294]")),
    # (uid_t)-1 tells setresuid "leave unchanged": the process stayed root.
    ("uid-all-ones", lambda c, b: c["process"]["user"].update(uid=4294967295),
     _bad("process.user.uid", "4294967295 is out of range [0, 4294967294]")),
    ("gid-all-ones", lambda c, b: c["process"]["user"].update(gid=4294967295),
     _bad("process.user.gid", "4294967295 is out of range [0, 4294967294]")),
    ("hostname-too-long", lambda c, b: c.update(hostname="h" * 65), _bad("hostname", "is longer than 64 bytes")),
    ("additional-gid-bool", lambda c, b: c["process"]["user"].update(additionalGids=[1, True]),
     _bad("process.user.additionalGids[1]", "must be an integer, not boolean")),
    ("unknown-capability", lambda c, b: c["process"]["capabilities"]["effective"].append("CAP_FLY"),
     _bad("process.capabilities.effective[3]", 'unknown capability "CAP_FLY"')),
    ("unknown-rlimit", lambda c, b: c["process"]["rlimits"].append({"type": "RLIMIT_SPEED", "soft": 1, "hard": 1}),
     _bad("process.rlimits[1].type", 'unknown rlimit "RLIMIT_SPEED"')),
    ("rlimit-soft-above-hard", lambda c, b: c["process"]["rlimits"][0].update(soft=2048),
     _bad("process.rlimits[0]", "soft limit 2048 is above hard limit 1024")),
    ("scheduler-fifo-without-priority", lambda c, b: c["process"].update(scheduler={"policy": "SCHED_FIFO"}),
     _bad("process.scheduler.priority", "SCHED_FIFO needs a priority between 1 and 99")),
    ("unknown-scheduler-policy", lambda c, b: c["process"].update(scheduler={"policy": "SCHED_FAST"}),
     _bad("process.scheduler.policy", 'unknown scheduler policy "SCHED_FAST"')),
    ("bad-exec-cpu-list", lambda c, b: c["process"].update(execCPUAffinity={"initial": "0-x"}),
     _bad("process.execCPUAffinity.initial", '"0-x" is not a CPU list like "0-3,7"')),
    ("oom-score-out-of-range", lambda c, b: c["process"].update(oomScoreAdj=1001),
     _bad("process.oomScoreAdj", "1001 is out of range [-1000, 1000]")),
    ("unknown-namespace", lambda c, b: c["linux"]["namespaces"][2].update(type="foo"),
     _bad("linux.namespaces[2].type", 'unknown namespace "foo"')),
    ("duplicate-namespace", lambda c, b: c["linux"]["namespaces"].append({"type": "pid"}),
     _bad("linux.namespaces[6].type", 'duplicate namespace "pid"')),
    ("namespaces-object", lambda c, b: c["linux"].update(namespaces={"pid": {}}),
     _bad("linux.namespaces", "must be an array, not object")),
    ("relative-namespace-path", lambda c, b: _ns(c, "network").update(path="netns/x"),
     _bad("linux.namespaces[1].path", '"netns/x" is not an absolute path')),
    ("userns-without-mount-namespace", lambda c, b: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "mount"] + [{"type": "user"}],
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     _bad("linux.namespaces", "a user namespace needs a mount namespace (new or joined by path)")),
    ("id-mappings-without-userns", lambda c, b: c["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     _bad("linux.uidMappings", "id mappings need a new user namespace")),
    ("userns-without-mappings", lambda c, b: c["linux"]["namespaces"].append({"type": "user"}),
     _bad("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")),
    ("id-mapping-size-0", lambda c, b: _set_userns(c, [{"containerID": 0, "hostID": 1000, "size": 0}],
                                                  [{"containerID": 0, "hostID": 1000, "size": 1}]),
     _bad("linux.uidMappings[0].size", "must be at least 1")),
    ("id-mappings-overlap", lambda c, b: _set_userns(
        c, [{"containerID": 0, "hostID": 1000, "size": 1}],
        [{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 3000, "size": 10}]),
     _bad("linux.gidMappings[1]", "overlaps another mapping's containerID range")),
    ("id-mapping-beyond-32-bits", lambda c, b: _set_userns(
        c, [{"containerID": 0, "hostID": 4294967290, "size": 10}], [{"containerID": 0, "hostID": 0, "size": 1}]),
     _bad("linux.uidMappings[0]", "range exceeds the 32-bit id space")),
    ("hostname-without-uts", lambda c, b: c["linux"]["namespaces"].pop(3),
     _bad("hostname", "setting a hostname needs a uts namespace")),
    ("domainname-without-uts", lambda c, b: (c.pop("hostname"), c.update(domainname="example.org"),
                                             c["linux"]["namespaces"].pop(3)),
     _bad("domainname", "setting a domainname needs a uts namespace")),
    ("unknown-seccomp-default-action", lambda c, b: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_MAYBE"}),
     _bad("linux.seccomp.defaultAction", 'unknown seccomp action "SCMP_ACT_MAYBE"')),
    ("unknown-seccomp-rule-action", lambda c, b: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}),
     _bad("linux.seccomp.syscalls[0].action", 'unknown seccomp action "SCMP_ACT_DENY"')),
    ("unknown-seccomp-operator", lambda c, b: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_ABOUT"}]}]}),
     _bad("linux.seccomp.syscalls[0].args[0].op", 'unknown seccomp operator "SCMP_CMP_ABOUT"')),
    ("seccomp-arg-index-6", lambda c, b: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                                          "args": [{"index": 6, "value": 8, "op": "SCMP_CMP_EQ"}]}]}),
     _bad("linux.seccomp.syscalls[0].args[0].index", "6 is out of range [0, 5]")),
    ("unknown-seccomp-arch", lambda c, b: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}),
     _bad("linux.seccomp.architectures[1]", 'unknown seccomp architecture "SCMP_ARCH_Z80"')),
    ("seccomp-notify-without-listener", lambda c, b: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
     _bad("linux.seccomp.listenerPath", "is required when an action is SCMP_ACT_NOTIFY")),
    ("seccomp-rule-without-names", lambda c, b: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
     _bad("linux.seccomp.syscalls[0].names", "must name at least one system call")),
    ("bad-sysctl-name", lambda c, b: c["linux"].update(sysctl={"../../etc/passwd": "x"}),
     _bad("linux.sysctl.../../etc/passwd", "is not a sysctl name")),
    # kernel.core_pattern is the host's: through it a container crash runs a program as root.
    ("sysctl-of-the-host", lambda c, b: c["linux"].update(sysctl={"kernel.core_pattern": "|/bin/evil"}),
     _bad("linux.sysctl.kernel.core_pattern", "is not in a namespace of the container: setting it would change the host")),
    ("sysctl-of-the-host-vm", lambda c, b: c["linux"].update(sysctl={"vm.overcommit_memory": "1"}),
     _bad("linux.sysctl.vm.overcommit_memory", "is not in a namespace of the container: setting it would change the host")),
    ("ipc-sysctl-without-ipc-namespace", lambda c, b: (c["linux"].update(sysctl={"kernel.shmmax": "1"}),
                                                       c["linux"]["namespaces"].pop(2)),
     _bad("linux.namespaces", "sysctl kernel.shmmax needs an ipc namespace")),
    ("net-sysctl-without-network-namespace", lambda c, b: (c["linux"].update(sysctl={"net.ipv4.ip_forward": "1"}),
                                                           c["linux"]["namespaces"].pop(1)),
     _bad("linux.namespaces", "sysctl net.ipv4.ip_forward needs a network namespace")),
    ("sysctl-value-number", lambda c, b: c["linux"].update(sysctl={"kernel.msgmax": 8192}),
     _bad("linux.sysctl.kernel.msgmax", "must be a string, not number")),
    ("bad-cpuset-cpus", lambda c, b: c["linux"]["resources"].update(cpu={"cpus": "3-1"}),
     _bad("linux.resources.cpu.cpus", '"3-1" has an invalid range "3-1"')),
    ("memory-limit-string", lambda c, b: c["linux"]["resources"].update(memory={"limit": "1G"}),
     _bad("linux.resources.memory.limit", "must be an integer, not string")),
    ("device-rule-bad-access", lambda c, b: c["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwx"}),
     _bad("linux.resources.devices[1].access", '"rwx" is not a combination of r, w, m')),
    ("bad-device-type", lambda c, b: c["linux"].update(devices=[{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}]),
     _bad("linux.devices[0].type", 'unknown device type "x"')),
    ("device-without-major", lambda c, b: c["linux"].update(devices=[{"path": "/dev/fuse", "type": "c", "minor": 229}]),
     _bad("linux.devices[0].major", "is required")),
    ("cgroups-path-dotdot", lambda c, b: c["linux"].update(cgroupsPath="/slr/../../escape"),
     _bad("linux.cgroupsPath", '"/slr/../../escape" is not a cgroupfs path '
          "(systemd slice:prefix:name paths need --systemd-cgroup, not supported)")),
    ("unknown-rootfs-propagation", lambda c, b: c["linux"].update(rootfsPropagation="sideways"),
     _bad("linux.rootfsPropagation", 'unknown propagation "sideways"')),
    ("relative-masked-path", lambda c, b: c["linux"]["maskedPaths"].append("proc/kcore"),
     _bad("linux.maskedPaths[10]", '"proc/kcore" is not an absolute path')),
    ("relative-mount-destination", lambda c, b: c["mounts"].append({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}),
     _bad("mounts[7].destination", '"mnt" is not an absolute path')),
    ("mount-options-string", lambda c, b: c["mounts"][0].update(options="ro"),
     _bad("mounts[0].options", "must be an array, not string")),
    ("bind-mount-without-source", lambda c, b: c["mounts"].append({"destination": "/mnt", "options": ["rbind"]}),
     _bad("mounts[7].source", "is required for a bind mount")),
    ("relative-hook-path", lambda c, b: c.update(hooks={"prestart": [{"path": "bin/true"}]}),
     _bad("hooks.prestart[0].path", '"bin/true" is not an absolute path')),
    # Both broke `slr delete` later: its poststop hook raised, and the state stayed for good.
    ("hook-env-without-equals", lambda c, b: c.update(hooks={"poststop": [{"path": "/bin/true", "env": ["X"]}]}),
     _bad("hooks.poststop[0].env[0]", '"X" is not of the form KEY=value')),
    ("hook-arg-lone-surrogate", lambda c, b: c.update(hooks={"poststop": [{"path": "/bin/true", "args": ["true", "\ud800"]}]}),
     _bad("hooks.poststop[0].args[1]", "contains a lone surrogate (not valid Unicode)")),
    ("process-arg-lone-surrogate", lambda c, b: c["process"].update(args=["echo", "\udcff"]),
     _bad("process.args[1]", "contains a lone surrogate (not valid Unicode)")),
    ("hook-timeout-zero", lambda c, b: c.update(hooks={"poststop": [{"path": "/bin/true", "timeout": 0}]}),
     _bad("hooks.poststop[0].timeout", "0 is out of range [1, 2147483648]")),
    ("annotation-value-number", lambda c, b: c.update(annotations={"org.example.n": 1}),
     _bad("annotations.org.example.n", "must be a string, not number")),
    ("no-linux-section", lambda c, b: c.pop("linux"), _bad("linux", "is required: this runtime runs Linux containers")),
    ("missing-rootfs", lambda c, b: c["root"].update(path=os.path.join(b, "nope")),
     _bad("root.path", "{bundle}/nope: No such file or directory")),
    ("rootfs-is-a-file", lambda c, b: (open(os.path.join(b, "file"), "w").close(), c["root"].update(path="file")),
     _bad("root.path", "{bundle}/file is not a directory")),
    ("rootfs-is-host-root", lambda c, b: c["root"].update(path="/"),
     _bad("root.path", "the host's / cannot be a container's rootfs")),
    ("rootfs-symlink-to-host-root", lambda c, b: (os.symlink("/", os.path.join(b, "hostroot")), c["root"].update(path="hostroot")),
     _bad("root.path", "the host's / cannot be a container's rootfs")),
]


def _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit, args=("sleep", "31337")):
    """A bundle sharing the read-only busybox rootfs; `edit(cfg, bundle_dir)` changes the
    config, or returns a RawConfig to write instead."""
    path = bundle(list(args), rootfs=busybox_rootfs)
    config_path = os.path.join(path, "config.json")
    with open(config_path) as f:
        cfg = json.load(f)
    _prepare(cfg, marker, cgroups_path)
    raw = edit(cfg, path) if edit else None
    with open(config_path, "wb") as f:
        f.write(raw if isinstance(raw, RawConfig) else json.dumps(cfg, indent=1).encode())
    return path


def _assert_one_line_error(result, expected):
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr == f"slr: {expected}\n", result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("edit,expected", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_config_is_refused_and_leaves_nothing(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env,
                                                  edit, expected):
    marker, cgroups_path, env = case_env
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("create", "--bundle", b, "bad", env=env)
    _assert_one_line_error(result, expected.replace("{bundle}", b))
    assert leftovers.check("bad") == []


def test_spec_case_table_is_large_enough():
    assert len(SPEC_CASES) >= 40
    assert len({c[0] for c in SPEC_CASES}) == len(SPEC_CASES)


def test_bad_config_through_run_leaves_nothing(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env):
    """`slr run` (foreground, with a terminal) takes another path to create."""
    marker, cgroups_path, env = case_env

    def edit(c, b):
        c["process"]["terminal"] = True
        c["linux"]["namespaces"][2]["type"] = "foo"

    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, edit)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("run", "--bundle", b, "bad", env=env)
    _assert_one_line_error(result, _bad("linux.namespaces[2].type", 'unknown namespace "foo"'))
    assert leftovers.check("bad") == []


def _fifo(path):
    os.mkfifo(path)


def _dev_zero(path):
    os.symlink("/dev/zero", path)


def _huge(path):
    with open(path, "wb") as f:
        f.truncate(jsonlite.MAX_DOCUMENT + 1)  # sparse: no disk used


@pytest.mark.parametrize("make,problem", [(_fifo, "is not a regular file"), (_dev_zero, "is not a regular file"),
                                          (os.mkdir, "is not a regular file"),
                                          (_huge, f"is larger than {jsonlite.MAX_DOCUMENT >> 20} MiB")],
                         ids=["fifo", "dev-zero", "directory", "huge"])
def test_config_json_that_is_no_config_file(slr, tmp_path, state_root, case_env, make, problem):
    """A FIFO blocked create forever; /dev/zero or a huge file ate the host's memory."""
    marker, cgroups_path, env = case_env
    b = tmp_path / "odd-bundle"
    b.mkdir()
    make(str(b / "config.json"))
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("create", "--bundle", str(b), "bad", env=env, timeout=20)
    _assert_one_line_error(result, _bad("", f"{b}/config.json {problem}"))
    assert leftovers.check("bad") == []


def test_error_naming_a_path_with_a_newline_stays_one_line(slr, bundle, busybox_rootfs, state_root, tmp_path,
                                                           case_env):
    marker, cgroups_path, env = case_env
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None)
    odd = os.path.join(tmp_path, "new\nline")
    os.rename(b, odd)  # the config's root.path stays the shared rootfs: point it inside the bundle instead
    with open(os.path.join(odd, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = "nope"
    with open(os.path.join(odd, "config.json"), "w") as f:
        json.dump(cfg, f)
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("create", "--bundle", odd, "bad", env=env)
    _assert_one_line_error(result, _bad("root.path", f"{tmp_path}/new\\nline/nope: No such file or directory"))
    assert leftovers.check("bad") == []


def test_endless_process_and_resources_files_are_refused(slr, bundle, busybox_rootfs, case_env):
    """`exec -p` and `update -r` read the caller's file whole: /dev/zero ate the memory.
    (And `update`'s errors name its own flags' resources, not a config.json.)"""
    marker, cgroups_path, env = case_env
    slr("run", "-d", "--bundle", _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None), "c1",
        env=env, check=True)
    try:
        results = [slr("exec", "-p", "/dev/zero", "c1", timeout=30), slr("update", "-r", "/dev/zero", "c1", timeout=30),
                   slr("update", "--cpu-quota", str(1 << 64), "c1")]
        assert slr.state("c1")["status"] == "running"
    finally:
        slr("delete", "-f", "c1", check=True)
    assert [(r.returncode, r.stderr) for r in results] == [
        (1, "slr: /dev/zero: is not a regular file\n"), (1, "slr: --resources /dev/zero: is not a regular file\n"),
        (1, f"slr: update: resources.cpu.quota: {1 << 64} is out of range [{-(1 << 63)}, {(1 << 63) - 1}]\n")]


def test_missing_config_json(slr, tmp_path, state_root, case_env):
    marker, cgroups_path, env = case_env
    empty = tmp_path / "empty-bundle"
    empty.mkdir()
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    result = slr("create", "--bundle", str(empty), "bad", env=env)
    _assert_one_line_error(result, _bad("", f"cannot read {empty}/config.json: No such file or directory"))
    assert leftovers.check("bad") == []


# --- wrong values anywhere (the parser alone: thousands of configs) -----------------------

def _rich_config(rootfs):
    """A valid config that sets (almost) every property slr knows, for the mutation test."""
    c = default_config(["true"], rootfs)
    c["domainname"] = "example.org"
    c["annotations"] = {"org.example": "x"}
    c["hooks"] = {name: [{"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}]
                  for name in spec.HOOK_NAMES}
    p = c["process"]
    p["user"]["additionalGids"] = [5]
    p["consoleSize"] = {"height": 10, "width": 20}
    p["oomScoreAdj"] = 5
    p["scheduler"] = {"policy": "SCHED_FIFO", "priority": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    p["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    p["execCPUAffinity"] = {"initial": "0", "final": "0-1"}
    lx = c["linux"]
    lx["namespaces"].append({"type": "time"})
    lx["timeOffsets"] = {"monotonic": {"secs": 1, "nanosecs": 2}}
    lx["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}]
    lx["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
        "memory": {"limit": 1 << 30, "swappiness": 10},
        "cpu": {"shares": 1024, "quota": 1000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 10},
        "blockIO": {"weight": 10, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]},
        "unified": {"memory.high": "max"},
    }
    lx["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/listener.sock", "listenerMetadata": "m",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY", "errnoRet": 1,
                      "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}],
    }
    lx["sysctl"] = {"kernel.msgmax": "8192"}
    lx["personality"] = {"domain": "LINUX"}
    lx["rootfsPropagation"] = "rslave"
    return c


def _json_paths(node, path=()):
    """Every property and array item of a decoded JSON document, as key tuples."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield path + (key,)
        yield from _json_paths(value, path + (key,))


def _spec_path(keys):
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


WRONG_VALUES = (None, True, 0, -1, 1.5, 1 << 70, "", "x", "\0", [], [1], {}, {"x": 1})


NEED_NAMESPACES = ("hostname", "domainname", "linux.timeOffsets", "linux.uidMappings", "linux.gidMappings",
                   "linux.sysctl")


def test_wrong_values_anywhere_are_refused_naming_their_path(busybox_rootfs):
    """Every property of a rich config replaced by every JSON type (and deleted):
    the parser accepts it or refuses it with one line naming that property (or the
    object/array around it, or a property inside it), never anything else. This is the
    validation create runs before it touches the system (the cases above check that
    end to end)."""
    config = _rich_config(busybox_rootfs)
    spec.parse(copy.deepcopy(config), os.path.dirname(busybox_rootfs))  # the base is valid
    refused = tried = 0
    for keys in list(_json_paths(config)):
        for value in WRONG_VALUES + (KeyError,):
            mutated = copy.deepcopy(config)
            parent = mutated
            for key in keys[:-1]:
                parent = parent[key]
            if value is KeyError:
                if isinstance(parent, list):
                    continue
                del parent[keys[-1]]
            else:
                parent[keys[-1]] = value
            tried += 1
            try:
                spec.parse(mutated, os.path.dirname(busybox_rootfs))
            except SpecError as exc:
                refused += 1
                where = _spec_path(keys)
                message = str(exc)
                assert "\n" not in message and message.startswith("config.json: "), (where, value, message)
                # Settings that need a namespace (a hostname, time offsets...) report its loss
                # where they are.
                needs_namespace = exc.path.startswith(NEED_NAMESPACES) and (
                    "linux.namespaces".startswith(where) or where.startswith("linux.namespaces"))
                assert exc.path.startswith(where) or where.startswith(exc.path) or needs_namespace, (
                    where, value, message)
    assert tried > 3000 and refused > tried // 2, (tried, refused)


# --- failures after validation: the system was touched, everything must be undone ---------

def _hook(script, marker):
    """A host hook running `script` with sh; the marker makes a leaked hook findable."""
    return {"path": "/bin/sh", "args": ["sh", "-c", script, marker]}


def _refusing_socket(tmp_path):
    """A unix socket path that exists but refuses connections (bound, never listening)."""
    path = str(tmp_path / "refuses.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    return sock, path


RUNTIME_CASES = [
    ("prestart-hook-fails",
     lambda c, b, m, t: c.update(hooks={"prestart": [_hook("echo broken prestart >&2; exit 3", m)]}),
     (), "prestart hook #0 (/bin/sh) failed with status 3: broken prestart"),
    ("create-runtime-hook-fails-after-another",
     lambda c, b, m, t: c.update(hooks={"createRuntime": [_hook("exit 0", m), _hook("exit 7", m)]}),
     (), "createRuntime hook #1 (/bin/sh) failed with status 7"),
    ("create-container-hook-fails",
     lambda c, b, m, t: c.update(hooks={"createContainer": [_hook("exit 5", m)]}),
     (), "createContainer hook #0 (/bin/sh) failed with status 5"),
    ("hook-program-missing",
     lambda c, b, m, t: c.update(hooks={"createRuntime": [{"path": f"/nonexistent/{m}"}]}),
     (), "createRuntime hook #0 (/nonexistent/{marker}): No such file or directory"),
    ("hook-times-out",
     lambda c, b, m, t: c.update(hooks={"createRuntime": [dict(_hook("sleep 30", m), timeout=1)]}),
     (), "createRuntime hook #0 (/bin/sh) timed out after 1s"),
    ("hook-times-out-with-children",
     # Everything the hook started goes with it (the marker in their environment finds them).
     lambda c, b, m, t: c.update(hooks={"createRuntime": [dict(_hook("sleep 30 & sleep 31; true", m), timeout=1,
                                                               env=[f"SLR_TEST_MARKER={m}"])]}),
     (), "createRuntime hook #0 (/bin/sh) timed out after 1s"),
    ("hook-crashes",
     lambda c, b, m, t: c.update(hooks={"prestart": [_hook("kill -SEGV $$", m)]}),
     (), "prestart hook #0 (/bin/sh) was killed by signal 11"),
    ("hook-kills-the-init",
     # The state on stdin names the init (stage 1 is gone by then): kill it mid-create.
     lambda c, b, m, t: c.update(hooks={"createRuntime": [_hook(
         "kill -9 $(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/')", m)]}),
     (), "the container's init exited during setup"),
    ("bind-mount-source-missing",
     lambda c, b, m, t: c["mounts"].append({"destination": "/mnt", "type": "bind", "source": f"/nonexistent-{m}",
                                            "options": ["rbind"]}),
     (), "mount /mnt: source /nonexistent-{marker}: No such file or directory"),
    ("namespace-path-missing",
     lambda c, b, m, t: _ns(c, "network").update(path=f"/run/netns/{m}"),
     (), 'config.json: linux.namespaces[1].path: /run/netns/{marker}: No such file or directory'),
    ("namespace-path-not-a-namespace",
     lambda c, b, m, t: _ns(c, "network").update(path="/etc/hostname"),
     (), 'config.json: linux.namespaces[1].path: /etc/hostname is not a network namespace'),
    ("namespace-path-of-another-type",
     lambda c, b, m, t: _ns(c, "network").update(path="/proc/self/ns/pid"),
     (), 'config.json: linux.namespaces[1].path: /proc/self/ns/pid is not a network namespace'),
    ("sysctl-unknown-key",
     lambda c, b, m, t: c["linux"].update(sysctl={"net.no_such_sysctl": "1"}),
     (), "sysctl net.no_such_sysctl=1: No such file or directory"),
    ("executable-not-found",
     lambda c, b, m, t: c["process"].update(args=["no-such-program", m]),
     (), 'exec: "no-such-program": executable file not found in $PATH'),
    ("cpuset-outside-the-host",
     lambda c, b, m, t: c["linux"]["resources"].update(cpu={"cpus": "4000"}),
     (), "cgroup: writing '4000' to {cpuset}/{marker}/c/cpuset.cpus: Numerical result out of range"),
    ("memory-limit-kills-the-init",
     # The limit is applied before the init builds the rootfs: the kernel kills it.
     lambda c, b, m, t: c["linux"]["resources"].update(memory={"limit": 4096}),
     (), "the container's init exited during setup"),
    ("terminal-without-console-socket",
     lambda c, b, m, t: c["process"].update(terminal=True),
     (), "process.terminal needs --console-socket (or `slr run` in the foreground)"),
    ("console-socket-missing",
     lambda c, b, m, t: c["process"].update(terminal=True),
     ("--console-socket", "{tmp}/no-such.sock"), "console socket {tmp}/no-such.sock: No such file or directory"),
    ("console-socket-refuses",
     lambda c, b, m, t: c["process"].update(terminal=True),
     ("--console-socket", "{tmp}/refuses.sock"), "console socket {tmp}/refuses.sock: Connection refused"),
    ("pid-file-directory-missing",
     lambda c, b, m, t: None,
     ("--pid-file", "{tmp}/no-such-dir/pid"), "--pid-file {tmp}/no-such-dir/pid: No such file or directory"),
    ("seccomp-listener-refuses",
     lambda c, b, m, t: c["linux"].update(seccomp={
         "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": f"{t}/refuses.sock",
         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
     (), "seccomp listener {tmp}/refuses.sock: Connection refused"),
]


@pytest.mark.parametrize("edit,flags,expected", [c[1:] for c in RUNTIME_CASES], ids=[c[0] for c in RUNTIME_CASES])
def test_failure_after_validation_leaves_nothing(slr, bundle, busybox_rootfs, state_root, tmp_path, case_env,
                                                 edit, flags, expected):
    marker, cgroups_path, env = case_env
    listening, _ = _refusing_socket(tmp_path)
    try:
        b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path,
                         lambda c, d: edit(c, d, marker, str(tmp_path)))
        leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
        flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
        result = slr("create", *flags, "--bundle", b, "late", env=env)
    finally:
        listening.close()
    cpuset = "/sys/fs/cgroup/cpuset" if os.path.isdir("/sys/fs/cgroup/cpuset") else "/sys/fs/cgroup"  # v1 or v2
    expected = expected.replace("{tmp}", str(tmp_path)).replace("{marker}", marker).replace("{cpuset}", cpuset)
    _assert_one_line_error(result, expected)
    assert leftovers.check("late") == []


def test_runtime_killed_during_create_is_cleaned_up_by_delete(slr, bundle, busybox_rootfs, state_root, tmp_path,
                                                                case_env):
    """`slr create` SIGKILLed mid-way (here while a createRuntime hook runs): the init
    exits on its own (its channel closes), `state` says stopped and `delete` removes the
    state and the cgroup. (The hook itself is the runtime's child and outlives it, as
    with runc: it is killed by hand below.)"""
    import subprocess

    marker, cgroups_path, env = case_env
    ready = tmp_path / "hook-ready"
    hook = dict(_hook(f"touch {ready}; exec sleep 60", marker), env=[f"SLR_TEST_MARKER={marker}"])
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, lambda c, d: c.update(hooks={"createRuntime": [hook]}))
    leftovers = Leftovers(state_root, tmp_path, marker, cgroups_path)
    creator = subprocess.Popen(slr.cmd("create", "--bundle", b, "crashed"), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline and creator.poll() is None:
        time.sleep(0.02)
    assert ready.exists(), creator.poll()
    creator.kill()
    creator.wait()
    assert slr.state("crashed")["status"] == "stopped"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if all(_cmdline(pid).startswith("sleep") for pid in _marked_processes(marker)):
            break  # the init is gone: only the hook is left
        time.sleep(0.05)
    for pid in _marked_processes(marker):
        if _cmdline(pid).startswith("sleep"):
            os.kill(pid, 9)
    slr("delete", "crashed", check=True)
    assert leftovers.check("crashed") == []


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_failed_create_leaves_the_id_free(slr, bundle, busybox_rootfs, case_env):
    marker, cgroups_path, env = case_env
    bad = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path,
                       lambda c, b: c["process"].update(args=["no-such-program"]))
    assert slr("create", "--bundle", bad, "again", env=env).returncode == 1
    good = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None)
    slr("create", "--bundle", good, "again", env=env, check=True)
    assert slr.state("again")["status"] == "created"
    slr("delete", "again", check=True)


# --- the command line ---------------------------------------------------------------

CLI_CASES = [
    (("frobnicate",), 1, "unknown command 'frobnicate'; run `slr --help`"),
    (("--frobnicate", "list"), 1, "flag provided but not defined: --frobnicate"),
    (("list", "--frobnicate"), 1, "flag provided but not defined: --frobnicate"),
    (("state",), 1, "missing argument: container id"),
    (("start",), 1, "missing argument: container id"),
    (("delete",), 1, "missing argument: container id"),
    (("kill",), 1, "missing argument: container id"),
    (("exec",), 1, "missing argument: container id"),
    (("create", "--bundle"), 1, "flag needs an argument: --bundle"),
    (("state", "a", "b"), 1, "unexpected argument: b"),
    (("create", "--preserve-fds", "many", "x"), 1, "invalid value 'many' for flag --preserve-fds"),
    # A negative count leaked every descriptor of the caller into the container.
    (("create", "--preserve-fds", "-2", "x"), 1, "invalid value '-2' for flag --preserve-fds"),
    (("exec", "--preserve-fds=-1", "x", "true"), 1, "invalid value '-1' for flag --preserve-fds"),
    (("events", "--interval", "-1", "x"), 1, "invalid value '-1' for flag --interval"),  # was a traceback
    (("--log-format", "xml", "list"), 1, "invalid log format 'xml': use text or json"),
    (("--systemd-cgroup", "list"), 1, "--systemd-cgroup is not supported: slr manages cgroups through cgroupfs "
                                      "(set cgroupsPath to a path, or configure your engine for cgroupfs)"),
    (("list", "--format", "yaml"), 1, "invalid format 'yaml': use table or json"),
    (("state", "nope"), 1, "container does not exist: nope"),
    (("kill", "nope", "KILL"), 1, "container does not exist: nope"),
]


@pytest.mark.parametrize("argv,code,expected", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_misuse(slr, state_root, argv, code, expected):
    result = slr(*argv)
    assert result.returncode == code, result.stderr
    assert result.stderr == f"slr: {expected}\n"
    assert os.listdir(state_root) == []


@pytest.mark.parametrize("container_id,expected", [
    ("../x", "invalid container id '../x': use letters, digits and _+-."),
    ("a/b", "invalid container id 'a/b': use letters, digits and _+-."),
    ("..", "invalid container id '..': use letters, digits and _+-."),
    ("a" * 256, "invalid container id: longer than 255 characters"),
], ids=["dotdot-slash", "slash", "dotdot", "too-long"])
def test_invalid_container_ids(slr, bundle, busybox_rootfs, state_root, case_env, container_id, expected):
    marker, cgroups_path, env = case_env
    result = slr("create", "--bundle", _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None), container_id,
                 env=env)
    _assert_one_line_error(result, expected)
    assert os.listdir(state_root) == [] and os.listdir(os.path.dirname(state_root)) == ["bundle1", "state"]


def test_operations_in_the_wrong_state(slr, bundle, busybox_rootfs, case_env):
    """runc's messages for lifecycle operations a container's state does not allow."""
    marker, cgroups_path, env = case_env
    b = _make_bundle(bundle, busybox_rootfs, marker, cgroups_path, None)

    def refused(expected, *argv):
        result = slr(*argv, env=env)
        assert (result.returncode, result.stderr) == (1, f"slr: {expected}\n"), argv

    slr("create", "--bundle", b, "c1", env=env, check=True)
    refused("container with id exists: c1", "create", "--bundle", b, "c1")
    refused("container not running: created", "pause", "c1")
    refused("container not paused: created", "resume", "c1")
    slr("start", "c1", check=True)
    refused("cannot start an already running container", "start", "c1")
    refused("container not paused: running", "resume", "c1")
    refused("cannot delete container c1 that is not stopped: running", "delete", "c1")
    refused("invalid signal 'SIGNOPE'", "kill", "c1", "SIGNOPE")
    slr("kill", "c1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while slr.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    refused("cannot start a container that has stopped", "start", "c1")
    refused("cannot exec in a stopped container", "exec", "c1", "true")
    refused("container not running: stopped", "pause", "c1")
    refused("container not running", "kill", "c1", "TERM")
    slr("delete", "c1", check=True)
    refused("container does not exist: c1", "delete", "c1")
