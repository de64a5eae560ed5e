"""Overlays: squashfs images of programs the product never ships (runc and crun for
the benchmark; later, the test suite's interpreter), each attached to the QEMU guest
as a read-only virtio disk of its own and mounted under /run/hwtests/<name>.

The product root file system stays exactly what a board gets; an overlay is added
only to the runs that need it (HWTESTS_OVERLAYS=bench), and its programs run with
its libraries (LD_LIBRARY_PATH) on top of the product's.  The guest finds each disk
by its virtio serial number, whatever the order of the disks.
"""
import os
import shlex

# The QEMU drive serial of an overlay's disk: this prefix and its name.
SERIAL_PREFIX = "slr-overlay-"
MOUNT_BASE = "/run/hwtests"
# PCI slots of the overlay disks: after the root disk's (labgrid's `-drive if=virtio`
# takes the first free slot), so the root stays /dev/vda, the kernel's root=.
FIRST_SLOT = 0x10
TRIPLET = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


def requested():
    """Names of the overlays to attach: HWTESTS_OVERLAYS, comma separated."""
    return [n for n in os.environ.get("HWTESTS_OVERLAYS", "").split(",") if n.strip()]


def qemu_args(image, names):
    """QEMU options attaching the overlays `names` of image (a build.Image)."""
    args = []
    for slot, name in enumerate(names, FIRST_SLOT):
        path = image.overlay(name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no overlay {name!r} in {image.directory}")
        args += [f"-drive if=none,id=overlay-{name},format=raw,readonly=on,file={path}",
                 f"-device virtio-blk-pci,drive=overlay-{name},serial={SERIAL_PREFIX}{name},"
                 f"addr={slot:#x}"]
    return " ".join(args)


class Overlay:
    """A mounted overlay in the guest: where it is, and how to run its programs."""

    def __init__(self, name, path, arch):
        self.name, self.path = name, path
        triplet = TRIPLET[arch]
        self.library_path = ":".join(f"{path}/{d}/{triplet}" for d in ("lib", "usr/lib"))

    def program(self, guest, command):
        """The absolute path of command in the overlay, or None."""
        for directory in ("usr/sbin", "usr/bin", "sbin", "bin"):
            candidate = f"{self.path}/{directory}/{command}"
            if guest.status(f"test -x {shlex.quote(candidate)}")[0] == 0:
                return candidate
        return None


def mount_all(guest):
    """Mounts every overlay disk of the guest read-only; {name: Overlay}."""
    arch = guest.text("uname -m")
    found = {}
    for line in guest.run("for d in /sys/block/vd*; do [ -r $d/serial ] &&"
                          " echo ${d##*/} $(cat $d/serial); done; true"):
        fields = line.split()
        if len(fields) != 2 or not fields[1].startswith(SERIAL_PREFIX):
            continue
        device, name = fields[0], fields[1][len(SERIAL_PREFIX):]
        path = f"{MOUNT_BASE}/{name}"
        guest.run(f"mkdir -p {path} && (grep -q ' {path} ' /proc/mounts ||"
                  f" mount -t squashfs -o ro /dev/{device} {path})")
        found[name] = Overlay(name, path, arch)
    return found
