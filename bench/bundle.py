"""The benchmark's OCI bundle: a busybox root filesystem and one config.json for all runtimes."""

import json
import os
import shutil
import subprocess

from slruntime.specgen import default_config

BUSYBOX = "/bin/busybox"  # Debian's busybox-static: no shared libraries to copy

# The seccomp profile every container of the target image gets (/etc/slr/slr.conf's
# seccomp-default), relative to the repository: read at run time, never copied.
SECCOMP_PROFILE = "meta-slruntime/recipes-core/slruntime-rootfs-config/files/seccomp-default.json"

# `runc spec` defaults as runc 1.1.5 writes them (slr spec's, with runc's ociVersion and
# hostname, the ambient set and no cgroup namespace), with the process made
# non-interactive (/bin/true, no terminal); build() sets cgroupsPath so every runtime puts
# the container's cgroup inside the benchmark's memory cgroup (see README: "Memory").
def _runc_spec_config():
    config = default_config(args=["/bin/true"], terminal=False)
    config["ociVersion"] = "1.0.2-dev"
    config["hostname"] = "runc"
    capabilities = config["process"]["capabilities"]
    capabilities["ambient"] = list(capabilities["bounding"])
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "cgroup"]
    return config


CONFIG = _runc_spec_config()


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
