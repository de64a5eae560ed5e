"""What the QEMU env files (hwtests/env/qemu-*.yaml) are pointed at: the LG_*
variables for the CI image or for a Yocto deploy directory, and the
accelerator.

KVM is used only when it really boots this kernel: /dev/kvm may exist and
still hang a guest (nested virtualisation), so a probe boot with a deadline
decides, and TCG is the fallback.  The answer is kept in LG_QEMU_ACCEL for
the rest of the session (set it yourself to skip the probe).
"""
import hashlib
import os
import platform
import subprocess

from . import overlays
from .image import build as image_build
from .image.initramfs import PROBE_MARKER

QEMU = {"x86_64": "qemu-system-x86_64", "aarch64": "qemu-system-aarch64"}
MACHINE = {"x86_64": "pc", "aarch64": "virt"}
CONSOLE = {"x86_64": "ttyS0", "aarch64": "ttyAMA0"}
# Yocto machine and kernel image names per architecture.
YOCTO_MACHINE = {"x86_64": "qemux86-64", "aarch64": "qemuarm64"}
YOCTO_KERNEL = {"x86_64": "bzImage", "aarch64": "Image"}
YOCTO_IMAGE = "slruntime-image"
PROBE_SECONDS = 10


def probe_accel(arch, kernel, initrd):
    """'kvm' if a KVM guest of this kernel reaches its init in time, else 'tcg'.

    The answer is remembered in the build cache until the host reboots."""
    if arch != platform.machine() or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot_id = f.read().strip()
    with open(kernel, "rb") as f:
        kernel_digest = hashlib.sha256(f.read()).hexdigest()
    key = hashlib.sha256(f"{arch} {kernel_digest} {boot_id}".encode()).hexdigest()
    remembered = os.path.join(image_build.DEFAULT_CACHE, "accel", key[:16])
    if os.path.exists(remembered):
        with open(remembered) as f:
            return f.read().strip()
    accel = _probe_kvm(arch, kernel, initrd)
    os.makedirs(os.path.dirname(remembered), exist_ok=True)
    with open(remembered, "w") as f:
        f.write(accel + "\n")
    return accel


def _probe_kvm(arch, kernel, initrd):
    command = [QEMU[arch], "-machine", MACHINE[arch], "-accel", "kvm", "-cpu", "host",
               "-m", "256M", "-nographic", "-no-reboot", "-kernel", kernel]
    if initrd:
        command += ["-initrd", initrd]
    command += ["-append", f"console={CONSOLE[arch]} hwtests.probe panic=-1"]
    try:
        out = subprocess.run(command, capture_output=True, timeout=PROBE_SECONDS,
                             stdin=subprocess.DEVNULL).stdout
    except subprocess.TimeoutExpired:
        return "tcg"
    return "kvm" if PROBE_MARKER.encode() in out else "tcg"


def lg_variables(arch, log=print, **build_options):
    """The LG_* variables of hwtests/env/qemu-<arch>.yaml (those already in
    the environment win).  With LG_YOCTO_DEPLOY_DIR the target boots the
    Yocto image (LG_YOCTO_IMAGE, default slruntime-image) from that
    directory, otherwise the CI image, built or reused here (build_options
    go to hwtests.image.build.build), with the overlays HWTESTS_OVERLAYS
    names attached as disks of their own."""
    env = {}
    deploy = os.environ.get("LG_YOCTO_DEPLOY_DIR")
    if deploy:
        image = os.environ.get("LG_YOCTO_IMAGE", YOCTO_IMAGE)
        env["LG_KERNEL"] = os.path.join(deploy, YOCTO_KERNEL[arch])
        for fstype in ("ext4", "squashfs"):
            rootfs = os.path.join(deploy, f"{image}-{YOCTO_MACHINE[arch]}.rootfs.{fstype}")
            if os.path.exists(rootfs):
                env["LG_ROOTFS"] = rootfs
                env["LG_BOOT_ARGS"] = f"rootfstype={fstype} ro"
                break
        else:
            raise FileNotFoundError(f"no {image}-{YOCTO_MACHINE[arch]}.rootfs.ext4 or "
                                    f".squashfs in {deploy}")
        env["LG_QEMU_EXTRA"] = ""
        initrd = None
    else:
        image = image_build.build(arch, log=log, **build_options)
        env["LG_KERNEL"] = image.kernel
        env["LG_ROOTFS"] = image.rootfs
        env["LG_QEMU_EXTRA"] = " ".join(
            [f"-initrd {image.initrd}", overlays.qemu_args(image, overlays.requested())])
        env["LG_BOOT_ARGS"] = ""
        initrd = image.initrd
    env.update({k: v for k, v in os.environ.items() if k in env})
    env["LG_QEMU_ACCEL"] = os.environ.get("LG_QEMU_ACCEL") or probe_accel(
        arch, env["LG_KERNEL"], initrd)
    return env
