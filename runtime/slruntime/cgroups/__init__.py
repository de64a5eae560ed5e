"""A container's control group: one interface (common.Cgroup) with an implementation per
cgroup version (v1.py; v2/, with the eBPF device program cgroup v2 needs), the device
policy both enforce (devices.py) and the statistics of `events --stats` (stats.py).
Nothing outside this package knows which version it drives.

A hybrid host (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) is
driven as v1, as runc does. The cgroup of a container is recorded in its state as
{"version": 1|2, "paths": {controller: dir}, "created": [dir, ...]} (to_state), so
later commands need no detection.
"""

import os

from slruntime.cgroups import common
from slruntime.cgroups.common import CgroupError, relative


def detect_version():
    # os.statvfs has no f_type; the presence of cgroup.controllers tells a cgroup2 mount.
    if os.path.exists(os.path.join(common.CGROUP_ROOT, "cgroup.controllers")):
        return 2
    if os.path.isdir(os.path.join(common.CGROUP_ROOT, "memory")) or os.path.isdir(os.path.join(common.CGROUP_ROOT, "pids")):
        return 1
    return 0


def _implementation(version):
    if version == 2:
        from slruntime.cgroups.v2 import CgroupV2

        return CgroupV2
    from slruntime.cgroups.v1 import CgroupV1

    return CgroupV1


def create(cgroups_path, resources, rootless=False, own_parents=False):
    """The cgroup at cgroupsPath `cgroups_path` on this host, made (with its parents)
    where missing; None when an unprivileged runtime cannot make one and `resources`
    (a spec.Resources) asks for nothing. own_parents: the parents are the runtime's own
    (the default path), shared by its containers: the last one out removes them,
    whoever created them."""
    version = detect_version()
    if not version:
        raise CgroupError("cgroup: no cgroup filesystem is mounted at /sys/fs/cgroup")
    return _implementation(version).create(relative(cgroups_path), cgroups_path, resources, rootless, own_parents)


def from_state(record):
    """The cgroup that to_state recorded, or None without a record."""
    if not record:
        return None
    return _implementation(record["version"])(record["paths"], record.get("created", ()))


def default_path(root, container_id):
    """/slr/<id> for the default state root; other roots (another engine, a test)
    get a directory of their own, so equal ids under two roots never share a cgroup."""
    if root == "/run/slr":
        return f"/slr/{container_id}"
    import binascii  # the same CRC-32 as zlib's, without mapping libz (~170 KiB of RSS)

    return f"/slr/{binascii.crc32(os.path.abspath(root).encode()):08x}/{container_id}"
