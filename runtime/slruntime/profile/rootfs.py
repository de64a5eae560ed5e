"""Looking at a rootfs from the inside: paths resolved as the container will see them.

Symlinks are followed relative to the rootfs (an absolute link target means the rootfs's
own root, `..` stops at it), so analysing a rootfs never reads files of the host beyond
what the bundle's own bind mounts put into the container's view.

A bundle's mounts are part of that view: a bind mount shows its source at its
destination (an image's shared /lib bound into a small bundle), any other mount (tmpfs,
proc) hides what the rootfs has there. Later mounts cover earlier ones, as in the runtime.
"""

import glob
import os
import stat

from slruntime.profile import safeio

_MAX_LINKS = 40
# ld.so.conf and its includes, ld-musl-*.path: a few lines each.
MAX_CONFIG = 1 << 20
_ELF_MAGIC = b"\x7fELF"
# Library directories the dynamic loaders search by default (glibc: multiarch and lib64;
# musl: /lib, /usr/local/lib, /usr/lib).
_DEFAULT_LIBDIRS = {
    "x86_64": ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"],
    "aarch64": ["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"],
}
_COMMON_LIBDIRS = ["/lib", "/usr/lib", "/usr/local/lib"]
# Kernel filesystems a bind mount may show (a host /dev or /sys): never walked for programs.
_PSEUDO_FILESYSTEMS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs",
                       "tracefs", "securityfs", "mqueue", "bpf", "configfs", "fusectl", "pstore",
                       "hugetlbfs", "efivarfs", "binfmt_misc", "autofs"}


class RootfsError(ValueError):
    """A file of the image cannot be read as the analysis needs; the message names it."""


def _components(path):
    return [p for p in path.split("/") if p and p != "."]


class Mount:
    """One entry of the container's mount table: `source` is the host path shown at
    `destination`, or None for a mount that hides the rootfs there (tmpfs, proc)."""

    def __init__(self, destination, source):
        self.destination = _components(destination)
        self.source = source


def bundle_view(config, bundle_dir, host_root="/"):
    """(host path of the rootfs, [Mount]) of a bundle's config.json.

    root.path and bind sources are paths of the image the bundle lives in, `host_root`
    (the image's root filesystem when profiling at build time): absolute ones are looked
    up under it, relative ones from the bundle's place in it, symlinks and `..` never
    leaving it (a bundle outside `host_root` confines relative paths to itself).
    RootfsError names a missing path.
    """
    host = Rootfs(host_root)
    relative_to = host
    try:
        bundle_inside = host.inside(os.path.realpath(bundle_dir))
    except RootfsError:
        relative_to, bundle_inside = Rootfs(bundle_dir), "/"

    def image_path(path):
        if path.startswith("/"):
            return host.resolve(path)
        return relative_to.resolve(os.path.join(bundle_inside, path))

    root = config.get("root", {})
    if not isinstance(root, dict):
        raise RootfsError("root: must be an object")
    root = root.get("path", "rootfs")
    if not isinstance(root, str) or not root:
        raise RootfsError("root.path: must be a non-empty string")
    rootfs = image_path(root)
    if rootfs is None or not os.path.isdir(rootfs):
        raise RootfsError(f"root.path {root} is not a directory under {host.root}")
    entries = config.get("mounts") or []
    if not isinstance(entries, list):
        raise RootfsError("mounts: must be an array")
    mounts = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("destination"), str):
            continue
        options = entry.get("options") or []
        if not isinstance(options, list):
            raise RootfsError(f"mounts[{index}].options: must be an array")
        if entry.get("type") != "bind" and "bind" not in options and "rbind" not in options:
            mounts.append(Mount(entry["destination"], None))
            continue
        source = entry.get("source")
        if not isinstance(source, str) or not source:
            raise RootfsError(f"bind mount of {entry['destination']} has no source")
        found = image_path(source)
        if found is None:
            raise RootfsError(f"bind mount source {source} of {entry['destination']} is not "
                              f"found under {host.root}")
        mounts.append(Mount(entry["destination"], found))
    return rootfs, mounts


def _mount_points():
    """(mount point, filesystem type) of this process's mounts, longest first."""
    points = []
    try:
        with open("/proc/self/mountinfo") as stream:
            for line in stream:
                fields = line.split()
                if " - " in line:
                    fstype = line.split(" - ", 1)[1].split()[0]
                    points.append((fields[4].replace("\\040", " "), fstype))
    except OSError:
        pass
    return sorted(points, key=lambda point: len(point[0]), reverse=True)


def _on_pseudo_filesystem(path, mount_points):
    path = os.path.realpath(path)
    for point, fstype in mount_points:
        if path == point or path.startswith(point.rstrip("/") + "/"):
            return fstype in _PSEUDO_FILESYSTEMS
    return False


class Rootfs:
    def __init__(self, root, mounts=()):
        if not os.path.isdir(root):
            raise RootfsError(f"rootfs is not a directory: {root}")
        self.root = os.path.abspath(root)
        self.mounts = []
        for mount in mounts:
            # Like the runtime, a destination's symlinks are followed inside the view
            # the earlier mounts made.
            resolved = self._resolve(mount.destination)
            if resolved is not None:
                mount.destination = resolved
            self.mounts.append(mount)
        self._ld_conf = None
        self._ld_conf_read = set()      # host paths: each file once, includes may include each other

    def _mount_at(self, components):
        """The last mount whose destination holds the container path `components`, or
        None: the rootfs shows there."""
        for mount in reversed(self.mounts):
            if components[:len(mount.destination)] == mount.destination:
                return mount
        return None

    def _host(self, components):
        """Host path of a container path given as components (symlinks not followed);
        None below a mount that hides the rootfs."""
        mount = self._mount_at(components)
        if mount is None:
            return os.path.join(self.root, *components)
        if mount.source is None:
            return None
        return os.path.join(mount.source, *components[len(mount.destination):])

    def _resolve(self, parts):
        """The components of a container path with all symlinks followed; None if absent."""
        parts = list(parts)
        resolved = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self._host(resolved + [part])
            try:
                mode = os.lstat(candidate).st_mode if candidate else None
            except OSError:
                mode = None
            if mode is None:
                return None
            if stat.S_ISLNK(mode):
                links += 1
                if links > _MAX_LINKS:
                    return None
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = _components(target) + parts
                continue
            resolved.append(part)
        return resolved

    def resolve(self, path):
        """Host path of `path` inside the rootfs, all symlinks followed; None if absent
        (also for a name no file can have: ld.so.conf or config.json may hold a NUL)."""
        if "\x00" in path:
            return None
        resolved = self._resolve(_components(path))
        return None if resolved is None else self._host(resolved)

    def inside(self, host_path):
        """The container path of a host path returned by resolve(): through the rootfs or
        the mount whose source holds it most closely (a later mount on a tie)."""
        best, best_source = None, None
        for destination, source in [([], self.root)] + [
                (m.destination, m.source) for m in self.mounts if m.source is not None]:
            relative = os.path.relpath(host_path, source)
            outside = relative == ".." or relative.startswith("../")
            if outside or (best_source and len(source) < len(best_source)):
                continue
            best, best_source = destination + _components(relative), source
        if best is None:
            raise RootfsError(f"{host_path} is outside the rootfs and its mounts")
        return "/" + "/".join(best)

    def _glob(self, pattern):
        """Container paths matching `pattern`, whose last component may hold wildcards."""
        directory = self.resolve(os.path.dirname(pattern))
        if directory is None or "\x00" in pattern:
            return []
        return [self.inside(match) for match in
                sorted(glob.glob(os.path.join(glob.escape(directory), os.path.basename(pattern))))]

    def trees(self):
        """(host directory or file, container path) of everything the container sees:
        the rootfs and each bind mount not on a kernel filesystem."""
        trees = [(self.root, "/")]
        mount_points = None
        for mount in self.mounts:
            if mount.source is None:
                continue
            if mount_points is None:
                mount_points = _mount_points()
            if not _on_pseudo_filesystem(mount.source, mount_points):
                trees.append((mount.source, "/" + "/".join(mount.destination)))
        return trees

    def _visible(self, container_path, tree_host):
        """Whether the file at `container_path`, found walking `tree_host`, is the one
        the container sees there (not covered by a later mount)."""
        mount = self._mount_at(_components(container_path))
        return (mount.source if mount else self.root) == tree_host

    def find_program(self, name, search_path):
        """Host path of a program named like process.args[0] (searched in PATH when bare)."""
        if "/" in name:
            return self.resolve(name)
        for directory in search_path.split(":"):
            if directory:
                found = self.resolve(os.path.join(directory, name))
                if found and os.path.isfile(found):
                    return found
        return None

    def library_dirs(self, arch):
        """Directories searched for DT_NEEDED after RPATH/RUNPATH: ld.so.conf, defaults."""
        if self._ld_conf is None:
            self._ld_conf = []
            self._read_ld_conf("/etc/ld.so.conf", 0)
            for musl_path in self._glob("/etc/ld-musl-*.path"):
                self._ld_conf += (self._read_config(musl_path) or "").replace(":", "\n").split()
        return self._ld_conf + _DEFAULT_LIBDIRS[arch] + _COMMON_LIBDIRS

    def _read_ld_conf(self, path, depth):
        host = self.resolve(path)
        if host in self._ld_conf_read or depth > 8:
            return
        self._ld_conf_read.add(host)
        text = self._read_config(path)
        for line in (text or "").splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("include "):
                pattern = line.split(None, 1)[1]
                if not pattern.startswith("/"):
                    pattern = os.path.join(os.path.dirname(path), pattern)
                for match in self._glob(pattern):
                    self._read_ld_conf(match, depth + 1)
            elif line:
                self._ld_conf.append(line)

    def _read_config(self, path):
        """The text of a loader configuration file of the image, None if absent."""
        host = self.resolve(path)
        if host is None:
            return None
        try:
            return safeio.read_regular(host, MAX_CONFIG).decode("utf-8", "surrogateescape")
        except safeio.RefusedFile as err:
            raise RootfsError(f"{path}: {err.reason}") from None
        except OSError as err:
            raise RootfsError(f"cannot read {path}: {err.strerror}") from None

    def elf_files(self):
        """Container paths of regular ELF files: (executables, shared libraries).

        Executables are ELF files with an execute bit and without a DT_SONAME-looking
        name; the rest (lib*.so*, Python extension modules, ...) are libraries.
        """
        executables, libraries = set(), set()
        for tree_host, tree_path in self.trees():
            for host, container_path in _files(tree_host, tree_path):
                kind = _elf_kind(host)
                if kind is None or not self._visible(container_path, tree_host):
                    continue
                (executables if kind == "executable" else libraries).add(container_path)
        return sorted(executables), sorted(libraries)


def _files(tree_host, tree_path):
    """(host path, container path) of the files of a tree, symlinked directories not followed."""
    if not os.path.isdir(tree_host):
        if os.path.isfile(tree_host):     # a bind-mounted file (a device such as /dev/null: nothing)
            yield tree_host, tree_path
        return
    try:
        for directory, _, files in safeio.walk(tree_host):
            inside = os.path.normpath(os.path.join(tree_path, os.path.relpath(directory, tree_host)))
            for name in files:
                yield os.path.join(directory, name), os.path.join(inside, name)
    except OSError as err:
        raise RootfsError(f"cannot list {err.filename}: {err.strerror}") from None


def _elf_kind(host):
    """"executable", "library" or None (not a regular ELF file)."""
    try:
        info = os.lstat(host)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size < 64 or safeio.read_header(host, 4) != _ELF_MAGIC:
        return None
    if ".so" in os.path.basename(host):
        return "library"
    return "executable" if info.st_mode & 0o111 else None
