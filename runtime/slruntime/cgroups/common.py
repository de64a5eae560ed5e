"""What every cgroup version shares: the Cgroup interface (as youki's libcgroups common
manager trait: create, add, apply, set_devices, freeze, pids, kill_all, stats, destroy)
and the parts the same on v1 and v2."""

import errno
import os

from slruntime import files
from slruntime.errors import SlrError

CGROUP_ROOT = "/sys/fs/cgroup"
SIGKILL = 9


class CgroupError(SlrError):
    pass


def write(path, value):
    try:
        files.write_once(path, value)
    except OSError as exc:
        raise CgroupError(f"cgroup: writing {value!r} to {path}: {exc.strerror}") from None


def read(path):
    return files.read(path).decode().strip()


def relative(cgroups_path):
    rel = cgroups_path.strip("/")
    if not rel or ".." in rel.split("/"):
        raise CgroupError(f"cgroup: invalid cgroupsPath {cgroups_path!r}")
    return rel


class Cgroup:
    """A container's cgroup; `paths` maps a controller (or "" for v2's one hierarchy)
    to its directory, `created` lists the directories this container made."""

    version = None  # of the implementation, recorded by to_state

    def __init__(self, paths, created=()):
        self.paths = paths
        self.created = list(created)

    def to_state(self):
        return {"version": self.version, "paths": self.paths, "created": self.created}

    # --- what each version implements -----------------------------------------------

    @staticmethod
    def paths_for(rel):
        """{controller: directory} of cgroupsPath `rel` (relative) on this host."""
        raise NotImplementedError

    def _prepare_directory(self, controller, path):
        """Make a directory just created (or found) usable for the container's processes."""
        raise NotImplementedError

    def apply(self, resources):
        """Apply a spec.Resources but its device rules (set_devices)."""
        raise NotImplementedError

    def set_devices(self, policy):
        """Install a cgroups.devices.Policy, replacing the one installed before."""
        raise NotImplementedError

    def freeze(self, frozen):
        raise NotImplementedError

    def is_frozen(self):
        raise NotImplementedError

    def stats(self):
        """A runc-like subset of `events --stats` data."""
        raise NotImplementedError

    def bind_mounts(self):
        """What the container's cgroup mount shows: None for a cgroup2 filesystem (the
        container's cgroup namespace roots it at its own cgroup), else (name, directory)
        pairs to bind under a tmpfs, one per v1 controller."""
        raise NotImplementedError

    def _kill_at_once(self):
        """Kill every process of the tree in one step where the kernel can; False if not."""
        return False

    def _freeze_state(self):
        """(file, line) that tells the tree is frozen, or None without a freezer."""
        raise NotImplementedError

    def _after_kill_signals(self, sig, froze):
        """Undo the freeze kill_all made (froze: it did)."""
        if froze:
            self.freeze(False)

    # --- shared ----------------------------------------------------------------------

    @classmethod
    def create(cls, rel, cgroups_path, resources, rootless, own_parents):
        """See slruntime.cgroups.create."""
        group = cls(cls.paths_for(rel))
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
            self._prepare_directory(controller, path)

    def add(self, pid):
        for path in self.paths.values():
            write(os.path.join(path, "cgroup.procs"), pid)

    def _apply_cpuset_and_pids(self, res, cpuset, pids):
        """What both versions write alike, to the directories of controllers `cpuset`
        and `pids` (v2: "", its one hierarchy)."""
        if res.cpu is not None and res.cpu.cpus:
            self._set(cpuset, "cpuset.cpus", res.cpu.cpus)
        if res.cpu is not None and res.cpu.mems:
            self._set(cpuset, "cpuset.mems", res.cpu.mems)
        if res.pids is not None and res.pids.limit is not None:
            self._set(pids, "pids.max", "max" if res.pids.limit <= 0 else res.pids.limit)

    def _set(self, controller, name, value):
        directory = self.paths.get(controller)
        if directory is None:
            raise CgroupError(f"cgroup: the {controller or 'unified'} controller is not available on this host")
        write(os.path.join(directory, name), value)

    def _tops(self):
        """The container's own directories, one per hierarchy (co-mounted v1
        controllers share one)."""
        return list(dict.fromkeys(self.paths.values()))

    def pids(self):
        """Every process in the container's cgroup or below it: a process that can write
        its cgroup mount may move into a child cgroup, and is still the container's."""
        found = {}
        for top in self._tops():  # v1: each hierarchy holds each process once, somewhere
            for directory in tree(top):
                try:
                    procs = files.read(os.path.join(directory, "cgroup.procs")).split()
                except OSError:
                    continue  # removed meanwhile
                found.update(dict.fromkeys(int(pid) for pid in procs))
        return list(found)

    def kill_all(self, sig):
        """Signal every process of the container's cgroup tree: at once where the kernel
        can (cgroup v2's cgroup.kill, Linux 5.14+, leaves no process a chance to fork
        away); otherwise the tree is frozen while the signals go out, as runc does."""
        if sig == SIGKILL and self._kill_at_once():
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
            self._after_kill_signals(sig, froze)

    def _freeze_and_wait(self, timeout=1.0):
        """Freeze the tree for a moment in which no process forks; False when this
        cgroup has no freezer (the signals then go out as they can)."""
        import time

        state = self._freeze_state()
        if state is None:
            return False
        state_file, frozen = state
        try:
            self.freeze(True)
        except CgroupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if frozen in read(state_file).splitlines():
                    break
            except OSError:
                break
            time.sleep(0.001)
        return True

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


def tree(top):
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
