"""linux.namespaces: new ones, user-namespace id maps, time offsets, joining by path."""

import os
import socket

import pytest
from helpers import script_output

NS_NAMES = ("pid", "net", "mnt", "ipc", "uts", "cgroup", "user", "time")


def _ns_inodes(text):
    """`readlink /proc/self/ns/X` lines -> {X: 'X:[inode]'}."""
    return {line.split(":", 1)[0]: line for line in text.split()}


def _host_ns(pid="self"):
    return {name: os.readlink(f"/proc/{pid}/ns/{name}") for name in NS_NAMES}


def _set_namespaces(*entries):
    return lambda c: c["linux"].update(namespaces=list(entries))


READ_NS = "for n in " + " ".join(NS_NAMES) + "; do readlink /proc/self/ns/$n; done"


def test_default_namespaces_are_new(slr, bundle):
    out = script_output(slr, bundle, READ_NS + "; echo pid=$$; ls /sys/class/net")
    lines = out.split()
    inside = _ns_inodes(" ".join(lines[:len(NS_NAMES)]))
    host = _host_ns()
    for name in ("pid", "net", "mnt", "ipc", "uts", "cgroup"):  # what `slr spec` asks for
        assert inside[name] != host[name], name
    for name in ("user", "time"):
        assert inside[name] == host[name], name
    assert lines[len(NS_NAMES)] == "pid=1"
    assert lines[len(NS_NAMES) + 1:] == ["lo"]  # a new network namespace has only loopback


def test_user_namespace_with_id_mappings(slr, open_bundle):
    def userns(config):
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    script = ("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
              "grep -E '^(Uid|Gid)' /proc/self/status; stat -c %u:%g /bin/busybox; "
              "readlink /proc/self/ns/user")
    out = script_output(slr, open_bundle, script, edit=userns)
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["0", "200000", "65536"]
    assert lines[1] == ["0", "300000", "65536"]
    assert lines[2:4] == [["1000"], ["1000"]]
    assert lines[4][1:] == ["1000"] * 4 and lines[5][1:] == ["1000"] * 4  # as seen inside
    assert lines[6] == ["65534:65534"]  # host root is not mapped: the overflow ids
    assert lines[7][0] != os.readlink("/proc/self/ns/user")


def test_time_namespace_offsets(slr, bundle):
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])

    def timens(config):
        config["linux"]["namespaces"].append({"type": "time"})
        config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 400, "nanosecs": 0},
                                          "monotonic": {"secs": 7200, "nanosecs": 0}}

    out = script_output(slr, bundle, "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime", edit=timens)
    lines = out.splitlines()
    assert sorted(line.split() for line in lines[:2]) == [["boottime", "34560000", "0"], ["monotonic", "7200", "0"]]
    assert float(lines[2]) >= host_uptime + 86400 * 400


def test_joining_namespaces_by_path(slr, bundle):
    slr("run", "-d", "-b", bundle(["sleep", "1000"], edit=lambda c: c.update(hostname="owner")), "c2", check=True)
    owner = slr.state("c2")["pid"]
    owner_ns = _host_ns(owner)
    joined = [{"type": t, "path": f"/proc/{owner}/ns/{n}"}
              for t, n in (("network", "net"), ("ipc", "ipc"), ("uts", "uts"), ("pid", "pid"))]

    def join(config):
        config["linux"]["namespaces"] = joined + [{"type": "mount"}]
        del config["hostname"]  # setting it would change the owner's

    try:
        out = script_output(slr, bundle, READ_NS + "; hostname; cat /proc/1/cmdline; echo; echo $$", edit=join)
    finally:
        slr("delete", "-f", "c2", check=True)
    lines = out.split()
    inside = _ns_inodes(" ".join(lines[:len(NS_NAMES)]))
    for name in ("net", "ipc", "uts", "pid"):
        assert inside[name] == owner_ns[name], name
    assert inside["mnt"] != owner_ns["mnt"]
    assert lines[len(NS_NAMES)] == "owner"
    assert lines[len(NS_NAMES) + 1] == "sleep\x001000\x00"  # pid 1 is the owner's process
    assert lines[len(NS_NAMES) + 2] != "1"


def _read_sysctl(key):
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()


def _write_sysctl(key, value):
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


# A namespaced setting (sysctl, hostname, domainname) written into a namespace joined by
# path that is the runtime's own changes the host's: refused, whatever path names it.
HOST_NAMESPACE_CASES = [
    ("network", f"/proc/{os.getpid()}/ns/net", {"sysctl": {"net.core.somaxconn": "+1"}}),
    ("network", "/proc/self/ns/net", {"sysctl": {"net.ipv4.ping_group_range": "0 0"}}),
    ("ipc", f"/proc/{os.getpid()}/ns/ipc", {"sysctl": {"kernel.shmmni": "+1"}}),
    ("ipc", "/proc/self/ns/ipc", {"sysctl": {"fs.mqueue.msg_max": "+1"}}),
    ("uts", "/proc/self/ns/uts", {"sysctl": {"kernel.domainname": "evil.example"}}),
    ("uts", f"/proc/{os.getpid()}/ns/uts", {"hostname": "evil"}),
    ("uts", f"/proc/{os.getpid()}/ns/uts", {"domainname": "evil.example"}),
]


@pytest.mark.parametrize("ns_type,path,settings", HOST_NAMESPACE_CASES,
                         ids=[f"{c[0]}-{next(iter(c[2].get('sysctl', c[2])))}" for c in HOST_NAMESPACE_CASES])
def test_settings_for_the_runtimes_own_namespace_are_refused(slr, bundle, ns_type, path, settings):
    host = {key: _read_sysctl(key) for key in settings.get("sysctl", {})}
    names = (os.uname().nodename, _read_sysctl("kernel.domainname"))

    def edit(config):
        config.pop("hostname", None)
        config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != ns_type]
        config["linux"]["namespaces"].append({"type": ns_type, "path": path})
        for key, value in settings.get("sysctl", {}).items():
            if value == "+1":
                value = str(int(host[key]) + 1)
            config["linux"].setdefault("sysctl", {})[key] = value
        config.update({k: v for k, v in settings.items() if k != "sysctl"})

    try:
        result = slr("run", "-b", bundle(["true"], edit=edit), "hostns")
        changed = {key: _read_sysctl(key) for key in host}
        changed_names = (os.uname().nodename, _read_sysctl("kernel.domainname"))
    finally:  # the unfixed runtime changed the host: put it back
        for key, value in host.items():
            _write_sysctl(key, value)
        socket.sethostname(names[0])
        _write_sysctl("kernel.domainname", names[1])
    assert changed == host and changed_names == names
    assert result.returncode == 1
    index = len([ns for ns in bundle_namespaces() if ns != ns_type])
    assert result.stderr == (f"slr: config.json: linux.namespaces[{index}].path: {path} is the runtime's own "
                             f"{ns_type} namespace: {_what(settings)} would change the host's\n"), result.stderr
    assert slr.ids() == []


def bundle_namespaces():
    from helpers import default_config

    return [ns["type"] for ns in default_config(["true"], "/")["linux"]["namespaces"]]


def _what(settings):
    if "sysctl" in settings:
        return ", ".join(f"sysctl {key}" for key in settings["sysctl"])
    return next(iter(settings))


def test_empty_hostname_without_uts_namespace_leaves_the_hosts(slr, bundle):
    names = (os.uname().nodename, _read_sysctl("kernel.domainname"))

    def host_uts(config):
        config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "uts"]
        config.update(hostname="", domainname="")

    try:
        out = script_output(slr, bundle, "hostname", edit=host_uts)
        changed = (os.uname().nodename, _read_sysctl("kernel.domainname"))
    finally:
        socket.sethostname(names[0])
        _write_sysctl("kernel.domainname", names[1])
    assert changed == names
    assert out.strip() == names[0]


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def _root_mount_line():
    with open("/proc/self/mountinfo") as f:
        return next(line for line in f if line.split()[4] == "/")


def test_no_mount_namespace_inherits_the_runtimes_and_delete_removes_its_mounts(slr, bundle, state_root):
    """runtime-spec: a namespace type not listed is inherited from the runtime (runtime-tools'
    linux_ns_itype; runc and crun do it). The container's mounts are then made in the host's
    mount namespace: on a private bind of the rootfs in its state directory (the host's /
    keeps its propagation, the bundle gets no mount), the container chroots into it, and
    delete detaches them all (runc and crun leave them on the bundle's rootfs)."""
    root_before = _root_mount_line()
    b = bundle(["sleep", "1000"], edit=lambda c: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "mount"]))
    root = os.path.join(state_root, "c1", "rootfs")
    slr("run", "-d", "-b", b, "c1", check=True)
    try:
        mounted = _mounts_under(root)
        assert root in mounted and f"{root}/proc" in mounted and f"{root}/dev" in mounted
        assert _mounts_under(b) == []
        assert _root_mount_line() == root_before  # the host's / untouched (propagation included)
        pid = slr.state("c1")["pid"]
        assert os.readlink(f"/proc/{pid}/ns/mnt") == _host_ns()["mnt"]
        assert os.readlink(f"/proc/{pid}/root") == root
        result = slr("exec", "c1", "true")
        assert (result.returncode, result.stderr) == (1, "slr: exec: the container shares the runtime's mount "
                                                         "namespace (no mount entry in linux.namespaces): exec is "
                                                         "not supported there\n")
    finally:
        slr("delete", "-f", "c1", check=True)
    assert _mounts_under(root) == [] and not os.path.exists(os.path.join(state_root, "c1"))


def test_no_mount_namespace_failed_create_leaves_no_mount(slr, bundle, state_root):
    b = bundle(["/no/such/program"], edit=lambda c: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "mount"]))
    result = slr("create", "-b", b, "c1")
    assert (result.returncode, result.stderr) == (1, 'slr: exec: "/no/such/program": no such file or directory\n')
    assert _mounts_under(state_root) == [] and slr.ids() == []
