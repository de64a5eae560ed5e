"""The benchmark's OCI bundle: a busybox root filesystem and one config.json for all runtimes."""

import json
import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"  # Debian's busybox-static: no shared libraries to copy

# The seccomp profile every container of the target image gets (/etc/slr/slr.conf's
# seccomp-default), relative to the repository: read at run time, never copied.
SECCOMP_PROFILE = "meta-slruntime/recipes-core/slruntime-rootfs-config/files/seccomp-default.json"

# `runc spec` defaults (runc 1.1.5), with the process made non-interactive (/bin/true, no
# terminal) and cgroupsPath set so every runtime puts the container's cgroup inside the
# benchmark's memory cgroup (see README: "Memory").
CONFIG = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            kind: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for kind in ("bounding", "effective", "permitted", "ambient")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def build(path, cgroups_path, rootfs=None, seccomp=None):
    """Creates the bundle at `path` (rootfs with busybox and its applet links, config.json).

    With `rootfs` (an absolute path), the bundle is only a config.json using that root
    filesystem; without `cgroups_path`, the config has no linux.cgroupsPath; `seccomp`
    (a linux.seccomp object) is added as is.
    """
    linux = dict(CONFIG["linux"], cgroupsPath=cgroups_path) if cgroups_path else dict(CONFIG["linux"])
    if seccomp:
        linux["seccomp"] = seccomp
    if rootfs:
        os.makedirs(path)
        _write_config(path, dict(CONFIG, root=dict(CONFIG["root"], path=rootfs), linux=linux))
        return
    if not os.access(BUSYBOX, os.X_OK):
        raise RuntimeError(f"{BUSYBOX} not found: install Debian's busybox-static")
    rootfs = os.path.join(path, "rootfs")
    bindir = os.path.join(rootfs, "bin")
    os.makedirs(bindir)
    for name in ("proc", "dev", "sys", "tmp", "etc"):
        os.mkdir(os.path.join(rootfs, name))
    shutil.copy2(BUSYBOX, os.path.join(bindir, "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(bindir, applet))
    _write_config(path, dict(CONFIG, linux=linux))


def _write_config(path, config):
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
