"""Control groups: cgroup v2 (unified), with a v1 fallback for hosts that only offer v1.

A hybrid host (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) is
driven as v1, as runc does. The cgroup of a container is recorded in its state as
{"version": 1|2, "paths": {controller: dir}} so later commands need no detection.
"""

import errno
import os

from slruntime import files
from slruntime.errors import SlrError

CGROUP_ROOT = "/sys/fs/cgroup"
SIGKILL = 9
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer",
                  "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc")


class CgroupError(SlrError):
    pass


def _write(path, value):
    try:
        files.write_once(path, value)
    except OSError as exc:
        raise CgroupError(f"cgroup: writing {value!r} to {path}: {exc.strerror}") from None


def _read(path):
    return files.read(path).decode().strip()


def _is_cgroup2(path):
    # os.statvfs has no f_type; the presence of cgroup.controllers tells a cgroup2 mount.
    return os.path.exists(os.path.join(path, "cgroup.controllers"))


def detect_version():
    if _is_cgroup2(CGROUP_ROOT):
        return 2
    if os.path.isdir(os.path.join(CGROUP_ROOT, "memory")) or os.path.isdir(os.path.join(CGROUP_ROOT, "pids")):
        return 1
    return 0


def _v1_mounts():
    """controller -> mount point of its v1 hierarchy (from /proc/self/mountinfo)."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] != "cgroup":
                continue
            for opt in fields[sep + 3].split(","):
                if opt in V1_CONTROLLERS:
                    mounts.setdefault(opt, fields[4])
    return mounts


def default_path(root, container_id):
    """/slr/<id> for the default state root; other roots (another engine, a test)
    get a directory of their own, so equal ids under two roots never share a cgroup."""
    if root == "/run/slr":
        return f"/slr/{container_id}"
    import binascii  # the same CRC-32 as zlib's, without mapping libz (~170 KiB of RSS)

    return f"/slr/{binascii.crc32(os.path.abspath(root).encode()):08x}/{container_id}"


def _relative(cgroups_path):
    rel = cgroups_path.strip("/")
    if not rel or ".." in rel.split("/"):
        raise CgroupError(f"cgroup: invalid cgroupsPath {cgroups_path!r}")
    return rel


class Cgroup:
    """A container's cgroup; `paths` maps a controller (or "" for v2) to its directory."""

    def __init__(self, version, paths, created=()):
        self.version = version
        self.paths = paths
        self.created = list(created)

    @classmethod
    def from_state(cls, record):
        if not record:
            return None
        return cls(record["version"], record["paths"], record.get("created", ()))

    def to_state(self):
        return {"version": self.version, "paths": self.paths, "created": self.created}

    @classmethod
    def create(cls, cgroups_path, resources, rootless=False, own_parents=False):
        """own_parents: the parents are the runtime's own (the default path), shared by
        its containers: the last one out removes them, whoever created them."""
        version = detect_version()
        rel = _relative(cgroups_path)
        if version == 2:
            group = cls(2, {"": os.path.join(CGROUP_ROOT, rel)})
        elif version == 1:
            group = cls(1, {c: os.path.join(m, rel) for c, m in _v1_mounts().items()})
        else:
            raise CgroupError("cgroup: no cgroup filesystem is mounted at /sys/fs/cgroup")
        try:
            try:
                group._make_dirs()
            except FileNotFoundError:
                group._make_dirs()  # a shared parent was pruned under us: once more
        except CgroupError:
            if rootless and not resources.asks_anything():
                return None  # unprivileged and nothing to enforce: run without a cgroup
            group._remove_created()
            raise
        if own_parents:
            for path in group.paths.values():
                parent = os.path.dirname(path)
                for _ in range(rel.count("/")):
                    if parent not in group.created:
                        group.created.append(parent)
                    parent = os.path.dirname(parent)
        reused = any(path not in group.created for path in group.paths.values())
        busy = group.pids() if reused else ()  # a directory made just now holds nothing
        if busy:
            # Another container's (same id under another --root, or a shared cgroupsPath):
            # joining it would let either one's delete kill the other's processes.
            group._remove_created()
            raise CgroupError(f"cgroup: {cgroups_path} is not empty: {len(busy)} process(es) found")
        return group

    def _make_dirs(self):
        for controller, path in self.paths.items():
            missing = []
            probe = path
            while not os.path.isdir(probe):
                missing.append(probe)
                probe = os.path.dirname(probe)
            for directory in reversed(missing):
                try:
                    os.mkdir(directory, 0o755)
                except FileExistsError:
                    continue
                except FileNotFoundError:
                    raise
                except OSError as exc:
                    raise CgroupError(f"cgroup: cannot create {directory}: {exc.strerror}") from None
                self.created.append(directory)
            if controller == "cpuset":
                self._inherit_cpuset(path)
            if self.version == 2:
                self._enable_controllers(path)

    @staticmethod
    def _inherit_cpuset(directory):
        """A v1 cpuset starts empty and refuses tasks (and children's cpus) until its
        cpus and mems are set: fill every empty level, top first. A shared parent
        (e.g. the state root's) may be one that another create has just made."""
        empty = []
        while not (_read(os.path.join(directory, "cpuset.cpus")) and _read(os.path.join(directory, "cpuset.mems"))):
            empty.append(directory)
            directory = os.path.dirname(directory)
        for directory in reversed(empty):
            parent = os.path.dirname(directory)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not _read(os.path.join(directory, name)):
                    _write(os.path.join(directory, name), _read(os.path.join(parent, name)))

    @staticmethod
    def _enable_controllers(path):
        """Delegate every available controller down to `path`'s parent."""
        rel = os.path.relpath(path, CGROUP_ROOT).split("/")
        current = CGROUP_ROOT
        for part in rel[:-1] if rel != ["."] else []:
            available = _read(os.path.join(current, "cgroup.controllers")).split()
            enabled = _read(os.path.join(current, "cgroup.subtree_control")).split()
            wanted = [c for c in available if c not in enabled]
            for controller in wanted:
                try:
                    _write(os.path.join(current, "cgroup.subtree_control"), "+" + controller)
                except CgroupError:
                    pass  # e.g. cpu with realtime tasks in the root: the rest still works
            current = os.path.join(current, part)
        available = _read(os.path.join(current, "cgroup.controllers")).split()
        enabled = _read(os.path.join(current, "cgroup.subtree_control")).split()
        for controller in available:
            if controller not in enabled:
                try:
                    _write(os.path.join(current, "cgroup.subtree_control"), "+" + controller)
                except CgroupError:
                    pass

    def add(self, pid):
        for path in self.paths.values():
            _write(os.path.join(path, "cgroup.procs"), pid)

    # --- resources -------------------------------------------------------------

    def apply(self, resources):
        """Apply linux.resources but its device rules (set_devices)."""
        if self.version == 2:
            self._apply_v2(resources)
        else:
            self._apply_v1(resources)

    def set_devices(self, policy):
        """Install a slruntime.devices.Policy: v1's devices controller, or on v2 an eBPF
        program attached to the cgroup (replacing the one installed before)."""
        if self.version == 2:
            from slruntime import devices

            devices.attach(self.paths[""], policy)
        elif "devices" in self.paths:
            for name, line in policy.v1_writes():
                self._set("devices", name, line)

    def _set(self, controller, name, value):
        directory = self.paths.get(controller)
        if directory is None:
            raise CgroupError(f"cgroup: the {controller or 'unified'} controller is not available on this host")
        _write(os.path.join(directory, name), value)

    def _apply_v1(self, res):
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
            if cpu.cpus:
                self._set("cpuset", "cpuset.cpus", cpu.cpus)
            if cpu.mems:
                self._set("cpuset", "cpuset.mems", cpu.mems)
        if res.pids is not None and res.pids.limit is not None:
            self._set("pids", "pids.max", "max" if res.pids.limit <= 0 else res.pids.limit)
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
            for devs, name in ((blkio.throttle_read_bps_device, "read_bps_device"),
                               (blkio.throttle_write_bps_device, "write_bps_device"),
                               (blkio.throttle_read_iops_device, "read_iops_device"),
                               (blkio.throttle_write_iops_device, "write_iops_device")):
                for dev in devs or ():
                    self._set("blkio", "blkio.throttle." + name, f"{dev.major}:{dev.minor} {dev.rate}")
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

    def _apply_v2(self, res):
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
                quota = cpu.quota
                self._set("", "cpu.max", f"{'max' if quota is None or quota < 0 else quota} {cpu.period or 100000}")
            if cpu.burst is not None:
                self._set("", "cpu.max.burst", cpu.burst)
            if cpu.idle is not None:
                self._set("", "cpu.idle", cpu.idle)
            if cpu.realtime_runtime or cpu.realtime_period:
                raise CgroupError("cgroup: realtime cpu limits are not available on cgroup v2")
            if cpu.cpus:
                self._set("", "cpuset.cpus", cpu.cpus)
            if cpu.mems:
                self._set("", "cpuset.mems", cpu.mems)
        if res.pids is not None and res.pids.limit is not None:
            self._set("", "pids.max", "max" if res.pids.limit <= 0 else res.pids.limit)
        blkio = res.block_io
        if blkio is not None:
            if blkio.weight:
                # Map the v1 range [10, 1000] onto v2's [1, 10000].
                self._set("", "io.weight", 1 + (blkio.weight - 10) * 9999 // 990)
            for devs, name in ((blkio.throttle_read_bps_device, "rbps"), (blkio.throttle_write_bps_device, "wbps"),
                               (blkio.throttle_read_iops_device, "riops"), (blkio.throttle_write_iops_device, "wiops")):
                for dev in devs or ():
                    self._set("", "io.max", f"{dev.major}:{dev.minor} {name}={dev.rate}")
        for limit in res.hugepage_limits or ():
            self._set("", f"hugetlb.{limit.page_size}.max", limit.limit)
        for key, value in (res.unified or {}).items():
            if "/" in key or key.startswith("."):
                raise CgroupError(f"cgroup: invalid unified key {key!r}")
            self._set("", key, value)

    # --- lifecycle ---------------------------------------------------------------

    def freeze(self, frozen):
        if self.version == 2:
            self._set("", "cgroup.freeze", 1 if frozen else 0)
        else:
            self._set("freezer", "freezer.state", "FROZEN" if frozen else "THAWED")

    def is_frozen(self):
        try:
            if self.version == 2:
                return _read(os.path.join(self.paths[""], "cgroup.freeze")) == "1"
            if "freezer" in self.paths:
                return _read(os.path.join(self.paths["freezer"], "freezer.state")) != "THAWED"
        except OSError:
            pass
        return False

    def _tops(self):
        """The container's own directories, one per hierarchy (co-mounted v1
        controllers share one)."""
        return list(dict.fromkeys(self.paths.values()))

    def pids(self):
        """Every process in the container's cgroup or below it: a process that can write
        its cgroup mount may move into a child cgroup, and is still the container's."""
        found = {}
        for top in self._tops():  # v1: each hierarchy holds each process once, somewhere
            for directory in _tree(top):
                try:
                    procs = files.read(os.path.join(directory, "cgroup.procs")).split()
                except OSError:
                    continue  # removed meanwhile
                found.update(dict.fromkeys(int(pid) for pid in procs))
        return list(found)

    def stats(self):
        """A runc-like subset of `events --stats` data."""
        def num(controller, name):
            try:
                value = _read(os.path.join(self.paths[controller], name))
            except (OSError, KeyError):
                return None
            return None if value == "max" else int(value)

        def kv(controller, name):
            try:
                with open(os.path.join(self.paths[controller], name)) as f:
                    return {k: int(v) for k, v in (line.split() for line in f)}
            except (OSError, KeyError, ValueError):
                return {}

        if self.version == 2:
            cpu = kv("", "cpu.stat")
            return {
                "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000, "user": cpu.get("user_usec", 0) * 1000,
                                  "kernel": cpu.get("system_usec", 0) * 1000},
                        "throttling": {"periods": cpu.get("nr_periods", 0), "throttledPeriods": cpu.get("nr_throttled", 0),
                                       "throttledTime": cpu.get("throttled_usec", 0) * 1000}},
                "memory": {"usage": {"usage": num("", "memory.current") or 0, "max": num("", "memory.peak") or 0,
                                     "limit": num("", "memory.max") or 0},
                           "raw": kv("", "memory.stat")},
                "pids": {"current": num("", "pids.current") or 0, "limit": num("", "pids.max") or 0},
            }
        return {
            "cpu": {"usage": {"total": num("cpuacct", "cpuacct.usage") or 0},
                    "throttling": {"periods": kv("cpu", "cpu.stat").get("nr_periods", 0),
                                   "throttledPeriods": kv("cpu", "cpu.stat").get("nr_throttled", 0),
                                   "throttledTime": kv("cpu", "cpu.stat").get("throttled_time", 0)}},
            "memory": {"usage": {"usage": num("memory", "memory.usage_in_bytes") or 0,
                                 "max": num("memory", "memory.max_usage_in_bytes") or 0,
                                 "limit": num("memory", "memory.limit_in_bytes") or 0,
                                 "failcnt": num("memory", "memory.failcnt") or 0},
                       "raw": kv("memory", "memory.stat")},
            "pids": {"current": num("pids", "pids.current") or 0, "limit": num("pids", "pids.max") or 0},
        }

    def kill_all(self, sig):
        """Signal every process of the container's cgroup tree. SIGKILL goes through
        cgroup v2's cgroup.kill (Linux 5.14+), which leaves no process a chance to fork
        away; otherwise the tree is frozen while the signals go out, as runc does."""
        if sig == SIGKILL and self.version == 2 and self._write_cgroup_kill():
            return
        pids = self.pids()
        if not pids:
            return
        froze = not self.is_frozen() and self._freeze_and_wait()
        try:
            for pid in self.pids() if froze else pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if sig == SIGKILL and self.version == 1:
                self._thaw_tree()  # a frozen v1 task cannot die, wherever in the tree it is
            elif froze:
                self.freeze(False)

    def _write_cgroup_kill(self):
        try:
            files.write_once(os.path.join(self.paths[""], "cgroup.kill"), 1)
            return True
        except OSError:
            return False  # before Linux 5.14, or not ours to write: signal each process

    def _freeze_and_wait(self, timeout=1.0):
        """Freeze the tree for a moment in which no process forks; False when this
        cgroup has no freezer (the signals then go out as they can)."""
        import time

        if self.version == 2:
            state_file, frozen = os.path.join(self.paths[""], "cgroup.events"), "frozen 1"
        elif "freezer" in self.paths:
            state_file, frozen = os.path.join(self.paths["freezer"], "freezer.state"), "FROZEN"
        else:
            return False
        try:
            self.freeze(True)
        except CgroupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if frozen in _read(state_file).splitlines():
                    break
            except OSError:
                break
            time.sleep(0.001)
        return True

    def _thaw_tree(self):
        """v1: thaw every freezer cgroup of the tree, top first (a child frozen by the
        container itself stays frozen when only the top is thawed)."""
        top = self.paths.get("freezer")
        if top is None:
            return
        for directory in _tree(top):
            try:
                files.write_once(os.path.join(directory, "freezer.state"), "THAWED")
            except OSError:
                pass

    def _remove_created(self):
        """Undo a create that failed: what it made, deepest first (a reused directory
        may be another container's)."""
        for directory in sorted(self.created, key=len, reverse=True):
            try:
                os.rmdir(directory)
            except OSError:
                pass

    def destroy(self):
        """Remove the container's cgroup with every cgroup below it (the container may
        have made some), deepest first, then the parents this container created that
        no other container uses."""
        for top in self._tops():
            _remove_tree(top)
        self._remove_created()  # busy parents hold other containers' cgroups: they stay


def _tree(top):
    """`top` and every cgroup below it, parents before children."""
    for directory, _, _ in os.walk(top):
        yield directory


def _remove_tree(top, timeout=5.0):
    """rmdir the cgroups of a tree bottom-up. A cgroup whose last process has just
    died stays busy (EBUSY) for a moment, a dying cgroup longer: retry until `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        busy = None
        for directory, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    return  # not ours to remove (unprivileged): left as before
                busy = directory
        if busy is None:
            return
        if time.monotonic() > deadline:
            raise CgroupError(f"cgroup: cannot remove {busy}: it still has processes")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
