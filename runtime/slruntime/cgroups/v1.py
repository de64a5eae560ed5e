"""cgroup v1: one hierarchy per controller (co-mounted ones share one), found in
/proc/self/mountinfo; a hybrid host's empty cgroup2 at /sys/fs/cgroup/unified is not
used (as runc)."""

import os

from slruntime.cgroups.common import SIGKILL, Cgroup, CgroupError, read, tree, write
from slruntime.cgroups.devices import Rule

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer",
               "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc")


def _mounts():
    """controller -> mount point of its v1 hierarchy (from /proc/self/mountinfo)."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] != "cgroup":
                continue
            for opt in fields[sep + 3].split(","):
                if opt in CONTROLLERS:
                    mounts.setdefault(opt, fields[4])
    return mounts


class CgroupV1(Cgroup):
    version = 1

    @staticmethod
    def paths_for(rel):
        return {controller: os.path.join(mount, rel) for controller, mount in _mounts().items()}

    def _prepare_directory(self, controller, path):
        if controller == "cpuset":
            _inherit_cpuset(path)

    def apply(self, res):
        mem = res.memory
        if mem is not None:
            if mem.limit is not None:
                self._set("memory", "memory.limit_in_bytes", mem.limit)
            if mem.reservation is not None:
                self._set("memory", "memory.soft_limit_in_bytes", mem.reservation)
            if mem.swap is not None:
                self._set("memory", "memory.memsw.limit_in_bytes", mem.swap)
            if mem.swappiness is not None:
                self._set("memory", "memory.swappiness", mem.swappiness)
            if mem.disable_oom_killer:
                self._set("memory", "memory.oom_control", 1)
        cpu = res.cpu
        if cpu is not None:
            for value, name in ((cpu.shares, "cpu.shares"), (cpu.period, "cpu.cfs_period_us"),
                                (cpu.quota, "cpu.cfs_quota_us"), (cpu.realtime_period, "cpu.rt_period_us"),
                                (cpu.realtime_runtime, "cpu.rt_runtime_us")):
                if value is not None:
                    self._set("cpu", name, value)
        self._apply_cpuset_and_pids(res, "cpuset", "pids")
        blkio = res.block_io
        if blkio is not None:
            if blkio.weight is not None:
                self._set("blkio", self._blkio_weight_file("blkio.weight"), blkio.weight)
            if blkio.leaf_weight is not None:
                self._set("blkio", "blkio.leaf_weight", blkio.leaf_weight)
            for dev in blkio.weight_device or ():
                if dev.weight is not None:
                    self._set("blkio", self._blkio_weight_file("blkio.weight_device"),
                              f"{dev.major}:{dev.minor} {dev.weight}")
            for kind, dev in blkio.throttles():
                self._set("blkio", f"blkio.throttle.{kind}_device", f"{dev.major}:{dev.minor} {dev.rate}")
        for limit in res.hugepage_limits or ():
            self._set("hugetlb", f"hugetlb.{limit.page_size}.limit_in_bytes", limit.limit)
        net = res.network
        if net is not None:
            if net.class_id is not None:
                self._set("net_cls", "net_cls.classid", net.class_id)
            for prio in net.priorities or ():
                self._set("net_prio", "net_prio.ifpriomap", f"{prio.name} {prio.priority}")
        if res.unified:
            raise CgroupError("cgroup: linux.resources.unified needs cgroup v2, this host has v1")

    def _blkio_weight_file(self, name):
        """blkio.weight* exist with the CFQ scheduler only (gone since Linux 5.0);
        with BFQ the same weights are blkio.bfq.weight* (as runc falls back)."""
        directory = self.paths.get("blkio")
        if directory is None or os.path.exists(os.path.join(directory, name)):
            return name
        bfq = name.replace("blkio.", "blkio.bfq.", 1)
        return bfq if os.path.exists(os.path.join(directory, bfq)) else name

    def set_devices(self, policy):
        """The devices controller: a reset to the policy's default, then its exceptions
        in the order the rules listed them (the spec's "in the listed order", which
        devices.list shows and runtime-tools' linux_cgroups_devices reads)."""
        if "devices" not in self.paths:
            return
        self._set("devices", "devices.allow" if policy.default_allow else "devices.deny", "a")
        exception_file = "devices.deny" if policy.default_allow else "devices.allow"
        for (kind, major, minor), access in policy.exceptions.items():
            self._set("devices", exception_file, Rule(True, kind, major, minor, access, "").describe())

    def freeze(self, frozen):
        self._set("freezer", "freezer.state", "FROZEN" if frozen else "THAWED")

    def is_frozen(self):
        try:
            if "freezer" in self.paths:
                return read(os.path.join(self.paths["freezer"], "freezer.state")) != "THAWED"
        except OSError:
            pass
        return False

    def _freeze_state(self):
        if "freezer" not in self.paths:
            return None
        return os.path.join(self.paths["freezer"], "freezer.state"), "FROZEN"

    def _after_kill_signals(self, sig, froze):
        if sig == SIGKILL:
            self._thaw_tree()  # a frozen v1 task cannot die, wherever in the tree it is
        else:
            super()._after_kill_signals(sig, froze)

    def _thaw_tree(self):
        """Thaw every freezer cgroup of the tree, top first (a child frozen by the
        container itself stays frozen when only the top is thawed)."""
        top = self.paths.get("freezer")
        if top is None:
            return
        for directory in tree(top):
            try:
                write(os.path.join(directory, "freezer.state"), "THAWED")
            except CgroupError:
                pass

    def stats(self):
        from slruntime.cgroups import stats

        return stats.v1(self.paths)

    def bind_mounts(self):
        return sorted(self.paths.items())


def _inherit_cpuset(directory):
    """A v1 cpuset starts empty and refuses tasks (and children's cpus) until its
    cpus and mems are set: fill every empty level, top first. A shared parent
    (e.g. the state root's) may be one that another create has just made."""
    empty = []
    while not (read(os.path.join(directory, "cpuset.cpus")) and read(os.path.join(directory, "cpuset.mems"))):
        empty.append(directory)
        directory = os.path.dirname(directory)
    for directory in reversed(empty):
        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read(os.path.join(directory, name)):
                write(os.path.join(directory, name), read(os.path.join(parent, name)))
