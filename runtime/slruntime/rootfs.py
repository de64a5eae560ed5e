"""The container's filesystem view: mounts, devices, pivot_root, masked and read-only paths.

Runs in the container's init, inside its new mount namespace. Every mount target is
resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), so a symlink in the image
cannot send a mount outside it (the CVE-2021-30465 class), and the mount is made on
the resolved /proc/self/fd/N rather than on a path that could be swapped afterwards.
"""

import errno
import os
import stat

from slruntime import libc
from slruntime.errors import SlrError

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


# --- mounts -----------------------------------------------------------------------------

def _locked_flags(path):
    try:
        f_flag = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in _LOCKED_FLAGS if f_flag & st)


def _bind_remount(target, flags, source_flags=0):
    libc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_BIND | flags | source_flags)


def mount_one(root_fd, mount, in_userns, cgroup):
    dest = mount.destination
    if mount.type == "cgroup":
        _mount_cgroup(root_fd, mount, cgroup)
        return
    is_bind = mount.is_bind
    source_is_dir = True
    if is_bind:
        try:
            source_is_dir = stat.S_ISDIR(os.stat(mount.source).st_mode)
        except OSError as exc:
            _fail(f"mount {dest}: source {mount.source}", exc)
    try:
        target_fd = make_in_root(root_fd, dest, directory=source_is_dir)
    except OSError as exc:
        _fail(f"mount {dest}: cannot resolve the target in the rootfs", exc)
    target = _fd_path(target_fd)
    try:
        flags = mount.flags & ~(libc.MS_REMOUNT)
        if is_bind:
            libc.mount(mount.source, target, None, flags & (libc.MS_BIND | libc.MS_REC))
            extra = flags & ~(libc.MS_BIND | libc.MS_REC)
            if extra or mount.propagation:  # they apply to the new mount: open it
                target_fd = _reopen(target_fd, root_fd, dest)
                target = _fd_path(target_fd)
            if extra:
                # A user namespace may not clear the source's nosuid/nodev/noexec/ro: keep them.
                locked = _locked_flags(target) if in_userns else 0
                _bind_remount(target, extra | (flags & libc.MS_REC), locked)
        else:
            source = mount.source or mount.type
            try:
                libc.mount(source, target, mount.type, flags, mount.data or None)
            except PermissionError:
                if mount.type not in ("sysfs", "mqueue") or not in_userns:
                    raise
                # A user namespace without its own network (sysfs) or ipc (mqueue)
                # namespace may not mount them; show the host's read-only, as runc does.
                host = "/sys" if mount.type == "sysfs" else "/dev/mqueue"
                libc.mount(host, target, None, libc.MS_BIND | libc.MS_REC)
                target_fd = _reopen(target_fd, root_fd, dest)
                target = _fd_path(target_fd)
                _bind_remount(target, libc.MS_RDONLY | (flags & ~libc.MS_RDONLY), _locked_flags(target))
            else:
                if mount.propagation:  # it applies to the new mount: open it
                    target_fd = _reopen(target_fd, root_fd, dest)
                    target = _fd_path(target_fd)
        if mount.propagation:
            libc.mount(None, target, None, mount.propagation)
    except OSError as exc:
        _fail(f"mount {mount.source or mount.type} on {dest}", exc)
    finally:
        os.close(target_fd)


def _mount_cgroup(root_fd, mount, cgroup):
    target_fd = make_in_root(root_fd, mount.destination)
    target = _fd_path(target_fd)
    try:
        ro = mount.flags & libc.MS_RDONLY
        if cgroup is None or cgroup.version == 2:
            libc.mount("cgroup2", target, "cgroup2", mount.flags)
            return
        # cgroup v1: a tmpfs with the container's own group of each controller in it.
        libc.mount("tmpfs", target, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC, "mode=755")
        os.close(target_fd)  # it still points below the new tmpfs
        target_fd = open_in_root(root_fd, mount.destination)
        target = _fd_path(target_fd)
        for controller, path in sorted(cgroup.paths.items()):
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
        _fail(f"mount cgroup on {mount.destination}", exc)
    finally:
        os.close(target_fd)


# --- devices ------------------------------------------------------------------------------

def create_devices(root_fd, devices, in_userns, with_defaults):
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
                if parent_fd is None:
                    parent_fd = parent_fds[parent] = make_in_root(root_fd, parent)
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


def create_dev_symlinks(root_fd):
    dev_fd = open_in_root(root_fd, "/dev", os.O_RDONLY | os.O_DIRECTORY)
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

def prepare(spec, in_userns, cgroup):
    """Before pivot_root: propagation, the rootfs bind, mounts and devices."""
    lx = spec.linux
    rootfs = spec.root_path
    propagation = _PROPAGATION[lx.rootfs_propagation] if lx.rootfs_propagation else libc.MS_SLAVE | libc.MS_REC
    try:
        # Never let our mounts reach the host: slave (or private) first, whatever is asked later.
        libc.mount(None, "/", None, (propagation if propagation & (libc.MS_SLAVE | libc.MS_PRIVATE) else libc.MS_SLAVE) | libc.MS_REC)
        libc.mount(rootfs, rootfs, None, libc.MS_BIND | libc.MS_REC)
    except OSError as exc:
        _fail(f"rootfs {rootfs}", exc)
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for mount in spec.mounts:
            mount_one(root_fd, mount, in_userns, cgroup)
        # A /dev of the container's own (tmpfs) gets the default devices and links.
        # A bind-mounted /dev is someone else's directory (often the host's): leave
        # it alone entirely, as runc does. Without a /dev mount, the image's own /dev
        # only gets linux.devices.
        dev_mounts = [m for m in spec.mounts if m.destination.rstrip("/") == "/dev"]
        if not any(m.is_bind for m in dev_mounts):
            create_devices(root_fd, lx.devices, in_userns, with_defaults=bool(dev_mounts))
            if dev_mounts:
                create_dev_symlinks(root_fd)
    finally:
        os.close(root_fd)
    return propagation


def enter(rootfs, no_pivot):
    """Make the rootfs the process's / (pivot_root, or MS_MOVE + chroot with --no-pivot)."""
    try:
        if no_pivot:
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
        _fail("pivot_root" if not no_pivot else "chroot", exc)


def finish(spec, propagation, in_userns):
    """After pivot_root: masked paths, read-only paths, read-only root, propagation."""
    lx = spec.linux
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = _NullDevice(root_fd)
    try:
        for path in lx.masked_paths:
            _mask(root_fd, path, null)
        for path in lx.readonly_paths:
            _make_readonly(root_fd, path, in_userns)
    finally:
        null.close()
        os.close(root_fd)
    try:
        if spec.root_readonly:
            _bind_remount("/", libc.MS_RDONLY, _locked_flags("/") if in_userns else 0)
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

    def __init__(self, root_fd):
        self.root_fd = root_fd
        self.fd = None

    def source(self):
        if self.fd is None:
            try:
                fd = libc.openat2(self.root_fd, "dev/null", os.O_PATH, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_SYMLINKS)
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


def _mask(root_fd, path, null):
    try:
        fd = open_in_root(root_fd, path)
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


def _make_readonly(root_fd, path, in_userns):
    try:
        fd = open_in_root(root_fd, path)
    except FileNotFoundError:
        return
    except OSError as exc:
        _fail(f"readonly path {path}", exc)
    try:
        target = _fd_path(fd)
        libc.mount(target, target, None, libc.MS_BIND | libc.MS_REC)
        fd = _reopen(fd, root_fd, path)
        target = _fd_path(fd)
        _bind_remount(target, libc.MS_RDONLY | libc.MS_REC | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
                      _locked_flags(target) if in_userns else 0)
    except OSError as exc:
        _fail(f"readonly path {path}", exc)
    finally:
        os.close(fd)
