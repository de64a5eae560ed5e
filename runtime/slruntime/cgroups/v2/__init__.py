"""cgroup v2: one unified hierarchy at /sys/fs/cgroup; controllers are delegated down
to the container's cgroup through each parent's cgroup.subtree_control, and the device
policy is an eBPF program attached to it (device_program.py)."""

import os

from slruntime.cgroups import common
from slruntime.cgroups.common import Cgroup, CgroupError, read, write

# linux.resources.blockIO's throttle kinds -> io.max keys
_IO_MAX_KEYS = {"read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops", "write_iops": "wiops"}


class CgroupV2(Cgroup):
    version = 2

    @staticmethod
    def paths_for(rel):
        return {"": os.path.join(common.CGROUP_ROOT, rel)}

    def _prepare_directory(self, controller, path):
        _enable_controllers(path)

    def apply(self, res):
        mem = res.memory
        if mem is not None:
            if mem.limit is not None:
                self._set("", "memory.max", "max" if mem.limit < 0 else mem.limit)
            if mem.reservation is not None:
                self._set("", "memory.low", "max" if mem.reservation < 0 else mem.reservation)
            if mem.swap is not None:
                # v1 semantics: swap is memory+swap; v2's swap.max counts swap alone.
                if mem.swap < 0:
                    swap = "max"
                elif mem.limit is None or mem.limit < 0:
                    raise CgroupError("cgroup: memory.swap needs memory.limit on cgroup v2")
                else:
                    swap = mem.swap - mem.limit
                    if swap < 0:
                        raise CgroupError("cgroup: memory.swap must be at least memory.limit")
                self._set("", "memory.swap.max", swap)
            if mem.disable_oom_killer:
                raise CgroupError("cgroup: disableOOMKiller is not available on cgroup v2")
        cpu = res.cpu
        if cpu is not None:
            if cpu.shares:
                weight = 1 + ((cpu.shares - 2) * 9999) // 262142
                self._set("", "cpu.weight", max(1, min(10000, weight)))
            if cpu.quota is not None or cpu.period is not None:
                quota = "max" if cpu.quota is None or cpu.quota < 0 else cpu.quota
                self._set("", "cpu.max", f"{quota} {cpu.period or 100000}")
            if cpu.burst is not None:
                self._set("", "cpu.max.burst", cpu.burst)
            if cpu.idle is not None:
                self._set("", "cpu.idle", cpu.idle)
            if cpu.realtime_runtime or cpu.realtime_period:
                raise CgroupError("cgroup: realtime cpu limits are not available on cgroup v2")
        self._apply_cpuset_and_pids(res, "", "")
        blkio = res.block_io
        if blkio is not None:
            if blkio.weight:
                # Map the v1 range [10, 1000] onto v2's [1, 10000].
                self._set("", "io.weight", 1 + (blkio.weight - 10) * 9999 // 990)
            for kind, dev in blkio.throttles():
                self._set("", "io.max", f"{dev.major}:{dev.minor} {_IO_MAX_KEYS[kind]}={dev.rate}")
        for limit in res.hugepage_limits or ():
            self._set("", f"hugetlb.{limit.page_size}.max", limit.limit)
        for key, value in (res.unified or {}).items():
            if "/" in key or key.startswith("."):
                raise CgroupError(f"cgroup: invalid unified key {key!r}")
            self._set("", key, value)

    def set_devices(self, policy):
        """cgroup v2 has no devices controller: the policy is an eBPF program attached to
        the cgroup (replacing the one installed before)."""
        from slruntime.cgroups.v2 import device_program

        device_program.attach(self.paths[""], policy)

    def freeze(self, frozen):
        self._set("", "cgroup.freeze", 1 if frozen else 0)

    def is_frozen(self):
        try:
            return read(os.path.join(self.paths[""], "cgroup.freeze")) == "1"
        except OSError:
            return False

    def _freeze_state(self):
        return os.path.join(self.paths[""], "cgroup.events"), "frozen 1"

    def _kill_at_once(self):
        try:
            write(os.path.join(self.paths[""], "cgroup.kill"), 1)
            return True
        except CgroupError:
            return False  # before Linux 5.14, or not ours to write: signal each process

    def stats(self):
        from slruntime.cgroups import stats

        return stats.v2(self.paths[""])

    def bind_mounts(self):
        return None


def _enable_controllers(path):
    """Delegate every available controller down to `path`'s parent."""
    rel = os.path.relpath(path, common.CGROUP_ROOT).split("/")
    current = common.CGROUP_ROOT
    for part in rel[:-1] if rel != ["."] else []:
        _enable_available(current)
        current = os.path.join(current, part)
    _enable_available(current)


def _enable_available(directory):
    available = read(os.path.join(directory, "cgroup.controllers")).split()
    enabled = read(os.path.join(directory, "cgroup.subtree_control")).split()
    for controller in available:
        if controller not in enabled:
            try:
                write(os.path.join(directory, "cgroup.subtree_control"), "+" + controller)
            except CgroupError:
                pass  # e.g. cpu with realtime tasks in the root: the rest still works
