"""The container's filesystem view: mounts, devices, pivot_root, masked and read-only paths.

Runs in the container's init, inside its new mount namespace (or, when the config asks
for none, in the runtime's: see prepare), before pivot_root (only the read-only root and
the root's propagation come after it). Every mount target is
resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), so a symlink in the image
cannot send a mount outside it (the CVE-2021-30465 class), and the mount is made on
the resolved /proc/self/fd/N rather than on a path that could be swapped afterwards.

The kernel's filesystems (proc, sysfs, devpts, mqueue, cgroup...) and a /dev of the
container's own are mounted only on an ordinary directory reached without any symlink
(runc refuses a proc or sysfs destination that is not one), and every later path below
one of them (masked and read-only paths, sysctls, devices, mounts inside /dev) is
resolved, without symlinks, from the descriptor of that mount's root: never again by
a name that the image, or another container sharing a writable rootfs, can swap
between the mount and its use.
"""

import errno
import os
import stat

from slruntime import files, libc
from slruntime.errors import SlrError
from slruntime.state import SHARED_ROOT

DEFAULT_DEVICES = (
    # path, major, minor, mode
    ("/dev/null", 1, 3, 0o666),
    ("/dev/zero", 1, 5, 0o666),
    ("/dev/full", 1, 7, 0o666),
    ("/dev/random", 1, 8, 0o666),
    ("/dev/urandom", 1, 9, 0o666),
    ("/dev/tty", 5, 0, 0o666),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("/proc/kcore", "/dev/core"),
)
_PROPAGATION = {
    "private": libc.MS_PRIVATE, "rprivate": libc.MS_PRIVATE | libc.MS_REC,
    "shared": libc.MS_SHARED, "rshared": libc.MS_SHARED | libc.MS_REC,
    "slave": libc.MS_SLAVE, "rslave": libc.MS_SLAVE | libc.MS_REC,
    "unbindable": libc.MS_UNBINDABLE, "runbindable": libc.MS_UNBINDABLE | libc.MS_REC,
}
# statvfs f_flag bits -> mount flags that a user namespace cannot clear on a bind remount.
_LOCKED_FLAGS = ((os.ST_NOSUID, libc.MS_NOSUID), (os.ST_NODEV, libc.MS_NODEV),
                 (os.ST_NOEXEC, libc.MS_NOEXEC), (os.ST_RDONLY, libc.MS_RDONLY),
                 (os.ST_NOATIME, libc.MS_NOATIME), (os.ST_NODIRATIME, libc.MS_NODIRATIME),
                 (os.ST_RELATIME, libc.MS_RELATIME))


class MountError(SlrError):
    pass


def _fail(what, exc):
    raise MountError(f"{what}: {exc.strerror or exc}") from None


# --- path resolution inside the rootfs ----------------------------------------------

def open_in_root(root_fd, path, flags=os.O_PATH):
    """Open `path` as seen from inside the rootfs; symlinks stay inside it."""
    return libc.openat2(root_fd, path.lstrip("/") or ".", flags, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)


_MAX_SYMLINKS = 40  # as the kernel's ELOOP limit


def make_in_root(root_fd, path, directory=True, mode=0o755):
    """Resolve `path` inside the rootfs, creating what is missing (directories, and a
    final empty file when `directory` is false); returns an O_PATH descriptor.
    A dangling symlink on the way is followed inside the rootfs and its target
    created there, as runc does (a link to a host path lands in the rootfs).
    A loop, not a recursion: a path may have a thousand components (runc takes them)."""
    for _ in range(_MAX_SYMLINKS + 1):
        try:
            return open_in_root(root_fd, path)
        except FileNotFoundError:
            pass
        # The deepest existing ancestor, and the names missing below it (deepest first).
        missing = []
        parent = path.rstrip("/")
        while True:
            parent, name = os.path.split(parent)
            if not name or name in (".", ".."):
                raise MountError(f"cannot create {path!r} in the rootfs")
            missing.append(name)
            try:
                parent_fd = open_in_root(root_fd, parent or "/")
                break
            except FileNotFoundError:
                continue
        path = _create_below(root_fd, parent or "/", parent_fd, missing, directory, mode)
    raise MountError(f"{path}: too many levels of symbolic links")


def _create_below(root_fd, parent, parent_fd, missing, directory, mode):
    """Create `missing` (deepest first) below `parent`; returns the path to resolve
    next: the same path once all exist, or through the target of a dangling symlink."""
    try:
        while missing:
            name = missing.pop()
            try:
                if directory or missing:
                    os.mkdir(name, mode, dir_fd=parent_fd)
                else:
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                                     0o644, dir_fd=parent_fd))
            except FileExistsError:
                target = _link_target_in_root(root_fd, parent_fd, name)
                if target is not None:  # else a racing creator: go on through it
                    return os.path.join(target, *reversed(missing))
            parent = os.path.join(parent, name)
            if missing:
                os.close(parent_fd)
                parent_fd = open_in_root(root_fd, parent)
    finally:
        os.close(parent_fd)
    return parent


def _link_target_in_root(root_fd, parent_fd, name):
    """Where the symlink `name` in `parent_fd` points, as a path inside the rootfs
    ('..' stops at its top, as RESOLVE_IN_ROOT does); None if it is not a symlink."""
    try:
        target = os.readlink(name, dir_fd=parent_fd)
    except OSError:
        return None
    if not target.startswith("/"):
        # The parent's real path has no symlinks left: '..' can be applied lexically.
        parent = os.path.relpath(os.readlink(_fd_path(parent_fd)), os.readlink(_fd_path(root_fd)))
        target = os.path.join("/", parent, target)
    return os.path.normpath("/" + target.lstrip("/"))


def _fd_path(fd):
    return f"/proc/self/fd/{fd}"


def _reopen(fd, root_fd, path):
    """A descriptor opened before a mount points below it: open the mount itself."""
    os.close(fd)
    return open_in_root(root_fd, path)


# --- the kernel's filesystems: resolved once, without symlinks ------------------------

# Mounted only on an ordinary directory reached without a symlink, and afterwards the
# anchor of every path below them; so is a /dev of the container's own (not a bind).
KERNEL_FILESYSTEMS = frozenset((
    "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs",
    "bpf", "configfs", "fusectl", "binfmt_misc", "pstore", "efivarfs", "hugetlbfs"))


def is_special(mount):
    return not mount.is_bind and (mount.type in KERNEL_FILESYSTEMS or _normal(mount.destination) == "/dev")


def _normal(path):
    return os.path.normpath("/" + path.lstrip("/"))  # no "..", no "//" (lexically, as in the root)


class Tree:
    """The rootfs being set up, and the special mounts made in it so far (destination ->
    O_PATH descriptor of the mounted filesystem's root). A path below one of them is
    walked from that descriptor; a path of a special mount or of a masked or read-only
    path outside them is walked from the rootfs; both one component at a time, refusing
    symlinks."""

    def __init__(self, rootfs):
        self.root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.anchors = {}
        self.proc_fd = None  # the procfs at /proc, for sysctls

    def close(self):
        for fd in (self.root_fd, *self.anchors.values()):
            os.close(fd)
        self.anchors = {}

    def anchored(self, path):
        """Whether `path` (normal) is at or below a special mount made in this tree."""
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in self.anchors)

    def walk(self, path, create=None):
        """An O_PATH descriptor of `path` (normal), every component reached without
        following a symlink (ELOOP names the first one met). create: None (it must exist),
        "dir" or "file": what to make at the end when it is missing (directories on the way)."""
        base = max((d for d in self.anchors if path == d or path.startswith(d.rstrip("/") + "/")),
                   key=len, default="/")
        fd = os.dup(self.anchors.get(base, self.root_fd))
        walked = base.rstrip("/")
        try:
            names = [n for n in path[len(base):].split("/") if n]
            for i, name in enumerate(names):
                walked += "/" + name
                last = i == len(names) - 1
                step = _open_component(fd, name, walked, (create if last else "dir") if create else None, last)
                os.close(fd)
                fd = step
        except BaseException:
            os.close(fd)
            raise
        return fd

    def reopen_mounted(self, path, covered_fd):
        """The root of the mount just made on `covered_fd` (the directory or file at
        `path`, which it covers): reached again from the parent, and checked to be on
        another mount than the covered one, so a swap of `path` in between is an error
        rather than a mount applied elsewhere (OSError, as the mount's own errors)."""
        parent, name = os.path.split(path)
        parent_fd = self.walk(parent)
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
        if _mount_id(fd) == _mount_id(covered_fd):
            os.close(fd)
            raise OSError(errno.ESTALE, f"{path} was replaced while it was being mounted on")
        return fd

    def add_anchor(self, path, fd, fs_type):
        old = self.anchors.pop(path, None)
        if old is not None:
            os.close(old)
        self.anchors[path] = fd
        if path == "/proc":
            self.proc_fd = fd if fs_type == "proc" else None


def _open_component(dir_fd, name, walked, create, last):
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        if create is None:
            raise
        try:
            if create == "dir":
                os.mkdir(name, 0o755, dir_fd=dir_fd)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=dir_fd))
        except FileExistsError:
            pass  # made by someone else meanwhile: checked below like anything found
        fd = os.open(name, flags, dir_fd=dir_fd)
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode) or (not last and not stat.S_ISDIR(mode)):
        os.close(fd)
        if stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, f"{walked} is a symbolic link")
        raise OSError(errno.ENOTDIR, f"{walked} is not a directory")
    return fd


def _mount_id(fd):
    """The id of the mount `fd` is on, from the runtime's (host's) /proc."""
    for line in files.read(f"/proc/self/fdinfo/{fd}").splitlines():
        if line.startswith(b"mnt_id:"):
            return int(line.split()[1])
    raise MountError("/proc/self/fdinfo has no mnt_id: kernel too old")


# --- mounts -----------------------------------------------------------------------------

def _locked_flags(path):
    try:
        f_flag = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in _LOCKED_FLAGS if f_flag & st)


def _bind_remount(target, flags, source_flags=0):
    libc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_BIND | flags | source_flags)


def mount_one(tree, mount, in_userns, cgroup):
    dest = _normal(mount.destination)
    if mount.type == "cgroup":
        _mount_cgroup(tree, mount, dest, cgroup)
        return
    if is_special(mount):
        _mount_special(tree, mount, dest, in_userns)
        return
    is_bind = mount.is_bind
    source_is_dir = True
    if is_bind:
        try:
            source_is_dir = stat.S_ISDIR(os.stat(mount.source).st_mode)
        except OSError as exc:
            _fail(f"mount {dest}: source {mount.source}", exc)
    anchored = tree.anchored(dest)  # below a special mount: walked from it, without symlinks
    try:
        if anchored:
            target_fd = tree.walk(dest, create="dir" if source_is_dir else "file")
        else:
            target_fd = make_in_root(tree.root_fd, dest, directory=source_is_dir)
    except OSError as exc:
        _fail(f"mount {dest}: cannot resolve the target in the rootfs", exc)

    def reopen(covered_fd):  # the new mount's root, to apply what concerns it
        try:
            return tree.reopen_mounted(dest, covered_fd) if anchored else open_in_root(tree.root_fd, dest)
        finally:
            os.close(covered_fd)

    target = _fd_path(target_fd)
    try:
        flags = mount.flags & ~(libc.MS_REMOUNT)
        if is_bind:
            libc.mount(mount.source, target, None, flags & (libc.MS_BIND | libc.MS_REC))
            extra = flags & ~(libc.MS_BIND | libc.MS_REC)
            if extra or mount.propagation:  # they apply to the new mount: open it
                target_fd = reopen(target_fd)
                target = _fd_path(target_fd)
            if extra:
                # A user namespace may not clear the source's nosuid/nodev/noexec/ro: keep them.
                locked = _locked_flags(target) if in_userns else 0
                _bind_remount(target, extra | (flags & libc.MS_REC), locked)
        else:
            libc.mount(mount.source or mount.type, target, mount.type, flags, mount.data or None)
            if mount.propagation:  # it applies to the new mount: open it
                target_fd = reopen(target_fd)
                target = _fd_path(target_fd)
        if mount.propagation:
            libc.mount(None, target, None, mount.propagation)
    except OSError as exc:
        _fail(f"mount {mount.source or mount.type} on {dest}", exc)
    finally:
        os.close(target_fd)


def _special_target(tree, mount, dest):
    """The directory a kernel filesystem (or /dev) is mounted on: made if missing,
    refused unless every component is an ordinary directory (no symlink), as runc
    refuses for proc and sysfs."""
    try:
        fd = tree.walk(dest, create="dir")
    except OSError as exc:
        _fail(f"mount {mount.type} on {dest}", exc)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise MountError(f"mount {mount.type} on {dest}: {dest} is not a directory")
    return fd


def _mount_special(tree, mount, dest, in_userns):
    target_fd = _special_target(tree, mount, dest)
    flags = mount.flags & ~(libc.MS_REMOUNT)
    root_fd = None
    try:
        host_copy = False
        try:
            libc.mount(mount.source or mount.type, _fd_path(target_fd), mount.type, flags, mount.data or None)
        except PermissionError:
            if mount.type not in ("sysfs", "mqueue") or not in_userns:
                raise
            # A user namespace without its own network (sysfs) or ipc (mqueue)
            # namespace may not mount them; show the host's read-only, as runc does.
            libc.mount("/sys" if mount.type == "sysfs" else "/dev/mqueue", _fd_path(target_fd), None,
                       libc.MS_BIND | libc.MS_REC)
            host_copy = True
        root_fd = tree.reopen_mounted(dest, target_fd)
        root = _fd_path(root_fd)
        if host_copy:
            _bind_remount(root, libc.MS_RDONLY | (flags & ~libc.MS_RDONLY), _locked_flags(root))
        if mount.propagation:
            libc.mount(None, root, None, mount.propagation)
    except OSError as exc:
        if root_fd is not None:
            os.close(root_fd)
        _fail(f"mount {mount.source or mount.type} on {dest}", exc)
    finally:
        os.close(target_fd)
    tree.add_anchor(dest, root_fd, mount.type)


def _mount_cgroup(tree, mount, dest, cgroup):
    covered_fd = _special_target(tree, mount, dest)
    target_fd = None
    try:
        ro = mount.flags & libc.MS_RDONLY
        binds = cgroup.bind_mounts() if cgroup is not None else None
        if binds is None:
            libc.mount("cgroup2", _fd_path(covered_fd), "cgroup2", mount.flags)
            target_fd = tree.reopen_mounted(dest, covered_fd)
            return
        # A tmpfs with the container's own group of each (v1) controller in it.
        libc.mount("tmpfs", _fd_path(covered_fd), "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC, "mode=755")
        target_fd = tree.reopen_mounted(dest, covered_fd)
        target = _fd_path(target_fd)
        for controller, path in binds:
            os.mkdir(controller, 0o755, dir_fd=target_fd)  # in the new, empty tmpfs: nothing to resolve
            sub_fd = open_in_root(target_fd, controller)
            try:
                libc.mount(path, _fd_path(sub_fd), None, libc.MS_BIND | libc.MS_REC)
                sub_fd = _reopen(sub_fd, target_fd, controller)
                _bind_remount(_fd_path(sub_fd), (mount.flags & ~libc.MS_REMOUNT) | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
            finally:
                os.close(sub_fd)
        if ro:
            _bind_remount(target, libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    except OSError as exc:
        if target_fd is not None:
            os.close(target_fd)
            target_fd = None
        _fail(f"mount cgroup on {dest}", exc)
    finally:
        os.close(covered_fd)
        if target_fd is not None:
            tree.add_anchor(dest, target_fd, "cgroup")


# --- devices ------------------------------------------------------------------------------

def create_devices(tree, devices, in_userns, with_defaults):
    """The default devices (when /dev is the container's own) plus linux.devices; in a
    user namespace mknod is not allowed, so the host's nodes are bind-mounted instead."""
    wanted = [(p, "c", ma, mi, mode, 0, 0) for p, ma, mi, mode in DEFAULT_DEVICES] if with_defaults else []
    wanted += [(d.path, d.type, d.major, d.minor, d.file_mode, d.uid, d.gid) for d in devices]
    parent_fds = {}  # one descriptor per directory: most devices share /dev
    old_umask = os.umask(0)  # the modes as given (directories made on the way get 0755 either way)
    try:
        for path, kind, major, minor, mode, uid, gid in wanted:
            parent, name = os.path.split(path)
            parent_fd = parent_fds.get(parent)
            try:
                if parent_fd is None:  # the /dev mount's own, or the image's reached without symlinks
                    parent_fd = parent_fds[parent] = tree.walk(_normal(parent), create="dir")
                if in_userns and kind != "p":
                    _bind_host_device(parent_fd, name, path)
                    continue
                kind_bits = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[kind]
                try:
                    os.mknod(name, kind_bits | mode, os.makedev(major, minor), dir_fd=parent_fd)
                except FileExistsError:
                    # Never delete what is there (an image's own node, or worse): accept
                    # the same device, refuse anything else.
                    existing = os.lstat(name, dir_fd=parent_fd)
                    if stat.S_IFMT(existing.st_mode) != kind_bits or (kind != "p" and existing.st_rdev != os.makedev(major, minor)):
                        raise MountError(f"device {path}: something else already exists there") from None
                    continue
                os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
            except OSError as exc:
                _fail(f"device {path}", exc)
    finally:
        os.umask(old_umask)
        for fd in parent_fds.values():
            os.close(fd)


def _bind_host_device(parent_fd, name, path):
    try:  # a mount point for the host's node; O_EXCL: never open what is there
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644, dir_fd=parent_fd))
    except FileExistsError:
        pass
    node_fd = os.open(name, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=parent_fd)
    try:
        libc.mount(path, _fd_path(node_fd), None, libc.MS_BIND)
    finally:
        os.close(node_fd)


def create_dev_symlinks(tree):
    dev_fd = tree.walk("/dev")
    try:
        for target, link in DEV_SYMLINKS:
            name = os.path.basename(link)
            if link == "/dev/core" and not os.path.exists("/proc/kcore"):
                continue
            try:
                os.symlink(target, name, dir_fd=dev_fd)
            except FileExistsError:
                pass
        try:
            os.lstat("pts/ptmx", dir_fd=dev_fd)
            try:
                os.unlink("ptmx", dir_fd=dev_fd)
            except FileNotFoundError:
                pass
            os.symlink("pts/ptmx", "ptmx", dir_fd=dev_fd)
        except FileNotFoundError:
            pass
    finally:
        os.close(dev_fd)


# --- the whole sequence -----------------------------------------------------------------

def prepare(spec, in_userns, cgroup, root):
    """Before pivot_root: propagation, the rootfs bind (at `root`: the rootfs itself, or
    the state directory's mount point when the mount namespace is the runtime's), mounts
    and devices. Returns the propagation for `finish` and the Tree, which `protect` uses
    and closes."""
    lx = spec.linux
    rootfs = spec.root_path
    propagation = _PROPAGATION[lx.rootfs_propagation] if lx.rootfs_propagation else libc.MS_SLAVE | libc.MS_REC
    try:
        if shares_runtime_mounts(lx):
            # The runtime's mount namespace (the host's): its / stays as it is; the
            # rootfs is bound at a mount point of this container's own, made private so
            # nothing mounted on it propagates to the host's peers, and delete detaches
            # it with all of them (release_shared).
            libc.mount(rootfs, root, None, libc.MS_BIND | libc.MS_REC)
            libc.mount(None, root, None, libc.MS_PRIVATE | libc.MS_REC)
        else:
            # Never let our mounts reach the host: slave (or private) first, whatever is asked later.
            libc.mount(None, "/", None, (propagation if propagation & (libc.MS_SLAVE | libc.MS_PRIVATE) else libc.MS_SLAVE) | libc.MS_REC)
            libc.mount(rootfs, rootfs, None, libc.MS_BIND | libc.MS_REC)
    except OSError as exc:
        _fail(f"rootfs {rootfs}", exc)
    tree = Tree(root)
    try:
        for mount in spec.mounts:
            mount_one(tree, mount, in_userns, cgroup)
        # A /dev of the container's own (tmpfs) gets the default devices and links.
        # A bind-mounted /dev is someone else's directory (often the host's): leave
        # it alone entirely, as runc does. Without a /dev mount, the image's own /dev
        # only gets linux.devices.
        dev_mounts = [m for m in spec.mounts if _normal(m.destination) == "/dev"]
        if not any(m.is_bind for m in dev_mounts):
            create_devices(tree, lx.devices, in_userns, with_defaults=bool(dev_mounts))
            if dev_mounts:
                create_dev_symlinks(tree)
    except BaseException:
        tree.close()
        raise
    return propagation, tree


def protect(tree, spec, in_userns):
    """Still before pivot_root, after the createContainer hooks: sysctls, masked paths,
    read-only paths, each resolved once, from the special mount holding it (see Tree),
    and mounted through the runtime's own /proc/self/fd. A path that is missing is
    skipped (as runc does); one that is there but cannot be reached without a symlink,
    or cannot be covered, fails create. Closes the tree."""
    lx = spec.linux
    try:
        # Before the read-only paths: they usually include /proc/sys (as in runc's order).
        _write_sysctls(tree, lx.sysctl)
        null = _NullDevice(tree)
        try:
            for path in lx.masked_paths:
                _mask(tree, _normal(path), null)
        finally:
            null.close()
        for path in lx.readonly_paths:
            _make_readonly(tree, _normal(path), in_userns)
    finally:
        tree.close()


def _write_sysctls(tree, sysctl):
    """Through the container's procfs at /proc, or without one the runtime's: either
    shows the calling process's namespaces, never the image's files."""
    for key, value in sysctl.items():
        relative = "sys/" + key.replace(".", "/")
        try:
            if tree.proc_fd is not None:
                fd = libc.openat2(tree.proc_fd, relative, os.O_WRONLY, libc.RESOLVE_BENEATH | libc.RESOLVE_NO_SYMLINKS)
            else:
                fd = libc.openat2(libc.AT_FDCWD, "/proc/" + relative, os.O_WRONLY, libc.RESOLVE_NO_SYMLINKS)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise SlrError(f"sysctl {key}={value}: {os.strerror(exc.errno)}") from None


def shares_runtime_mounts(lx):
    """Whether the container inherits the runtime's mount namespace (no "mount" entry)."""
    return lx.namespace("mount") is None


def release_shared(state_dir):
    """Detach the rootfs bind that prepare made in the runtime's mount namespace, with
    every mount of the container on it, and remove its mount point."""
    path = os.path.join(state_dir, SHARED_ROOT)
    try:
        libc.umount2(path, libc.MNT_DETACH)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: nothing mounted (create failed before)
            raise SlrError(f"{path}: cannot detach the container's mounts: {exc.strerror}") from None
    os.rmdir(path)


def enter(rootfs, no_pivot, shares_mounts=False):
    """Make the rootfs the process's / (pivot_root, or MS_MOVE + chroot with --no-pivot;
    only chroot in the runtime's mount namespace, whose / must stay the host's)."""
    try:
        if shares_mounts:
            os.chdir(rootfs)
            os.chroot(".")
        elif no_pivot:
            os.chdir(rootfs)
            libc.mount(rootfs, "/", None, libc.MS_MOVE)
            os.chroot(".")
        else:
            old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fchdir(new_root)
                libc.pivot_root(".", ".")
                os.fchdir(old_root)
                # The old root is stacked on top of us: detach it without
                # propagating the unmount back to the host.
                libc.mount(None, ".", None, libc.MS_SLAVE | libc.MS_REC)
                libc.umount2(".", libc.MNT_DETACH)
            finally:
                os.close(old_root)
                os.close(new_root)
        os.chdir("/")
    except OSError as exc:
        _fail("chroot" if no_pivot or shares_mounts else "pivot_root", exc)


def finish(spec, propagation):
    """After pivot_root: the read-only root and the root's propagation."""
    try:
        if spec.root_readonly:
            _bind_remount("/", libc.MS_RDONLY, _locked_flags("/") if spec.linux.namespace("user") is not None else 0)
        if propagation & (libc.MS_SHARED | libc.MS_UNBINDABLE):
            libc.mount(None, "/", None, propagation)
    except OSError as exc:
        _fail("read-only rootfs", exc)


class _NullDevice:
    """The container's /dev/null, opened once and checked, as the source that masks files.
    Mounting the path "/dev/null" would follow whatever the image put there: a symlink
    to /proc/sys/kernel/core_pattern turns every masked file into a writable view of
    it, and so into a way out of the container (CVE-2025-31133 class). So: no symlink
    on the way, it must be the null device itself, and the mount is made from the
    descriptor that was checked."""

    def __init__(self, tree):
        self.tree = tree
        self.fd = None

    def source(self):
        if self.fd is None:
            try:
                fd = self.tree.walk("/dev/null")
            except OSError as exc:
                if exc.errno != errno.ELOOP:  # a symlink: refused below
                    _fail("masked paths: /dev/null in the container", exc)
                fd = None
            st = os.fstat(fd) if fd is not None else None
            if st is None or not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
                if fd is not None:
                    os.close(fd)
                raise MountError("masked paths: /dev/null in the container is not the null device")
            self.fd = fd
        return _fd_path(self.fd)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)


def _mask(tree, path, null):
    try:
        fd = tree.walk(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        _fail(f"masked path {path}", exc)
    try:
        target = _fd_path(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            libc.mount("tmpfs", target, "tmpfs", libc.MS_RDONLY, "size=0,mode=755")
        else:
            libc.mount(null.source(), target, None, libc.MS_BIND)
    except OSError as exc:
        _fail(f"masked path {path}", exc)
    finally:
        os.close(fd)


def _make_readonly(tree, path, in_userns):
    try:
        fd = tree.walk(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        _fail(f"readonly path {path}", exc)
    try:
        libc.mount(_fd_path(fd), _fd_path(fd), None, libc.MS_BIND | libc.MS_REC)
        covered_fd, fd = fd, None
        try:
            fd = tree.reopen_mounted(path, covered_fd)
        finally:
            os.close(covered_fd)
        target = _fd_path(fd)
        _bind_remount(target, libc.MS_RDONLY | libc.MS_REC | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
                      _locked_flags(target) if in_userns else 0)
    except OSError as exc:
        _fail(f"readonly path {path}", exc)
    finally:
        if fd is not None:
            os.close(fd)
