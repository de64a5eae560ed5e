"""The first stage of the CI image: a busybox initramfs that loads the drivers
Debian's cloud kernel has as modules (virtio PCI/block, squashfs), mounts the
read-only squashfs root and switches to its /sbin/init.

The cpio archive is written here rather than by cpio(1): fixed inode numbers,
owner root, one timestamp and sorted entries make it byte-reproducible.
"""
import os
import stat

from . import elf

# Drivers needed to reach the root file system on QEMU's virtio disk.
ROOT_DRIVERS = ["virtio_pci", "virtio_blk", "squashfs"]

# Printed by /init when the kernel command line has `hwtests.probe`, then the
# guest powers off: used to learn whether an accelerator boots this kernel.
PROBE_MARKER = "hwtests-probe-booted"

INIT = f"""#!/bin/busybox sh
# slruntime CI image, first stage: drivers, read-only root, switch_root.
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
case " $(/bin/busybox cat /proc/cmdline) " in
*" hwtests.probe "*) echo {PROBE_MARKER}; /bin/busybox poweroff -f ;;
esac
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
while read module; do
    /bin/busybox insmod "/lib/modules/$module" || echo "init: cannot load $module"
done < /lib/modules/load-order
root=/dev/vda
for arg in $(/bin/busybox cat /proc/cmdline); do
    case "$arg" in root=*) root="${{arg#root=}}" ;; esac
done
tries=100
while [ ! -b "$root" ] && [ $tries -gt 0 ]; do /bin/busybox usleep 50000; tries=$((tries - 1)); done
if ! /bin/busybox mount -t squashfs -o ro "$root" /newroot; then
    echo "init: cannot mount $root read-only as squashfs; dropping to a shell"
    exec /bin/busybox sh
fi
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox umount /sys /proc
exec /bin/busybox switch_root /newroot /sbin/init
"""


class ModuleError(Exception):
    pass


def module_load_order(modules_dir, wanted):
    """Relative paths of the .ko files for `wanted` and everything they depend
    on (their modinfo `depends=`), dependencies first.  Built-in drivers
    (modules.builtin) need no file and are left out."""
    by_name = {}
    for dirpath, _dirnames, filenames in os.walk(modules_dir):
        for name in filenames:
            if name.endswith(".ko"):
                by_name[name[:-3].replace("-", "_")] = os.path.relpath(
                    os.path.join(dirpath, name), modules_dir)
    builtin = set()
    builtin_list = os.path.join(modules_dir, "modules.builtin")
    if os.path.exists(builtin_list):
        with open(builtin_list) as f:
            builtin = {os.path.basename(l.strip())[:-3].replace("-", "_") for l in f if l.strip()}
    order = []

    def visit(name, chain):
        if name in chain:
            raise ModuleError(f"module dependency cycle: {' -> '.join(chain + [name])}")
        if name in builtin or by_name.get(name) in order:
            return
        if name not in by_name:
            raise ModuleError(f"kernel has no module or built-in driver {name}")
        info = elf.Elf(os.path.join(modules_dir, by_name[name])).modinfo()
        for dep in sorted(d for d in ",".join(info.get("depends", [])).split(",") if d):
            visit(dep.replace("-", "_"), chain + [name])
        order.append(by_name[name])

    for name in wanted:
        visit(name, [])
    return order


def build(path, busybox, modules_dir, epoch):
    """Writes the newc initramfs to path, uncompressed: under TCG the kernel took
    about 1 s to gunzip it (2.4 MiB), a copy of the file costs QEMU nothing."""
    order = module_load_order(modules_dir, ROOT_DRIVERS)
    archive = _Cpio(epoch)
    for d in ("bin", "dev", "lib", "lib/modules", "newroot", "proc", "sys"):
        archive.directory(d)
    archive.device("dev/console", 0o600, 5, 1)
    with open(busybox, "rb") as f:
        archive.file("bin/busybox", f.read(), 0o755)
    archive.file("init", INIT.encode(), 0o755)
    for module in order:
        with open(os.path.join(modules_dir, module), "rb") as f:
            archive.file("lib/modules/" + os.path.basename(module), f.read(), 0o644)
    archive.file("lib/modules/load-order",
                 "".join(os.path.basename(m) + "\n" for m in order).encode(), 0o644)
    with open(path, "wb") as out:
        out.write(archive.close())
    return [os.path.basename(m) for m in order]


class _Cpio:
    """A newc ("070701") archive in memory."""

    def __init__(self, mtime):
        self.mtime = mtime
        self.inode = 0
        self.parts = []

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        self.inode += 1
        encoded = name.encode() + b"\0"
        fields = (self.inode, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, self.mtime,
                  len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.parts.append(header + encoded + _pad(len(header) + len(encoded)))
        self.parts.append(data + _pad(len(data)))

    def directory(self, name):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode):
        self._entry(name, stat.S_IFREG | mode, data)

    def device(self, name, mode, major, minor):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def close(self):
        self._entry("TRAILER!!!", 0)
        return b"".join(self.parts)


def _pad(length):
    return b"\0" * (-length % 4)
