"""cgroup v2 resources -> the files the runtime writes, on a temporary directory standing
in for /sys/fs/cgroup (no root, no kernel): what test_cgroups.py checks through real
containers, at the level of the interface files."""

import pytest

from slruntime import cgroups, spec
from slruntime.cgroups import common
from slruntime.errors import SlrError

pytestmark = pytest.mark.unit

CONTROLLERS = "cpu io memory pids"
LEAF_FILES = ("memory.max", "memory.low", "memory.swap.max", "cpu.weight", "cpu.max",
              "pids.max", "io.weight", "memory.oom.group")


@pytest.fixture
def cgroup_root(tmp_path, monkeypatch):
    """A cgroup2 tree in tmp_path with the container's directory slr/c1 already there,
    as a cgroup manager that delegated it leaves it: the kernel makes a directory's
    interface files, a temporary directory does not, so they are made here."""
    root = tmp_path / "cgroup"
    leaf = root / "slr" / "c1"
    leaf.mkdir(parents=True)
    for directory in (root, root / "slr", leaf):
        (directory / "cgroup.controllers").write_text(CONTROLLERS + "\n")
        (directory / "cgroup.subtree_control").write_text("")
        (directory / "cgroup.procs").write_text("")
    for name in LEAF_FILES:
        (leaf / name).write_text("")
    monkeypatch.setattr(common, "CGROUP_ROOT", str(root))  # the one place the package reads it
    return root


def create(resources):
    return cgroups.create("/slr/c1", spec.parse_resources(resources))


def test_resources_become_the_v2_interface_files(cgroup_root):
    resources = {"memory": {"limit": 1 << 20, "swap": 3 << 20, "reservation": 1 << 19},
                 "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
                 "pids": {"limit": 64}, "blockIO": {"weight": 500},
                 "unified": {"memory.oom.group": "1"}}
    create(resources).apply(spec.parse_resources(resources))
    leaf = cgroup_root / "slr" / "c1"
    written = {name: (leaf / name).read_text() for name in LEAF_FILES}
    assert written == {
        "memory.max": "1048576", "memory.low": "524288",
        "memory.swap.max": str(2 << 20),  # v1's memory+swap minus memory
        "cpu.weight": "39",  # shares 1024 on v2's 1..10000 scale, as runc and crun map it
        "cpu.max": "50000 100000", "pids.max": "64",
        "io.weight": "4950",  # v1's 10..1000 weight on v2's 1..10000
        "memory.oom.group": "1"}


def test_negative_limits_are_max(cgroup_root):
    group = create({})
    group.apply(spec.parse_resources({"memory": {"limit": -1}, "pids": {"limit": -1}}))
    leaf = cgroup_root / "slr" / "c1"
    assert (leaf / "memory.max").read_text() == "max"
    assert (leaf / "pids.max").read_text() == "max"


@pytest.mark.parametrize("resources, message", [
    ({"memory": {"swap": 1 << 20}}, "cgroup: memory.swap needs memory.limit on cgroup v2"),
    ({"memory": {"limit": 2 << 20, "swap": 1 << 20}}, "cgroup: memory.swap must be at least memory.limit"),
    ({"memory": {"disableOOMKiller": True}}, "cgroup: disableOOMKiller is not available on cgroup v2"),
    ({"unified": {"../cgroup.procs": "1"}}, "cgroup: invalid unified key '../cgroup.procs'"),
])
def test_what_v2_cannot_do_is_one_error(cgroup_root, resources, message):
    group = create({})
    with pytest.raises(SlrError) as raised:
        group.apply(spec.parse_resources(resources))
    assert str(raised.value) == message


def test_a_cgroup_holding_processes_is_not_joined(cgroup_root):
    (cgroup_root / "slr" / "c1" / "cgroup.procs").write_text("4242\n")
    with pytest.raises(SlrError) as raised:
        create({})
    assert str(raised.value) == "cgroup: /slr/c1 is not empty: 1 process(es) found"
    assert (cgroup_root / "slr" / "c1").is_dir()  # another container's: left alone
