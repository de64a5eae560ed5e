"""AppArmor/SELinux: process labels applied where the host runs the LSM, a clear error
otherwise; linux.mountLabel without effect where no SELinux reads it, refused where it
would (slr does not label mounts)."""

import os
import subprocess

import pytest

from slruntime import lsm


@pytest.mark.parametrize("field, edit, lsm_name", [
    ("process.apparmorProfile", lambda c: c["process"].update(apparmorProfile="docker-default"), "AppArmor"),
    ("process.selinuxLabel", lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"), "SELinux"),
])
def test_label_without_the_lsm_is_refused(slr, bundle, state_root, field, edit, lsm_name):
    enabled = lsm.apparmor_enabled() if lsm_name == "AppArmor" else lsm.selinux_enabled()
    if enabled:
        pytest.skip(f"{lsm_name} is enabled here: the refusal path cannot be exercised")
    result = slr("run", "-b", bundle(["true"], edit=edit), "c1")
    assert result.returncode == 1
    assert result.stderr.strip() == f"slr: config.json: {field}: {lsm_name} is not enabled on this host"
    assert os.listdir(state_root) == []


MOUNT_LABEL = "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"


@pytest.mark.skipif(lsm.selinux_enabled(), reason="SELinux is enabled here: a mount label is refused")
def test_mount_label_without_selinux_runs_unlabelled(slr, bundle):
    """No SELinux: nothing reads file labels, the container runs as without the label,
    and no `context=` reaches the kernel (tmpfs would fail the mount with EINVAL)."""
    result = slr("run", "-b", bundle(["cat", "/proc/self/mountinfo"],
                                     edit=lambda c: c["linux"].update(mountLabel=MOUNT_LABEL)), "c1")
    assert result.returncode == 0, result.stderr
    assert " /dev " in result.stdout and "context=" not in result.stdout


def test_mount_label_on_an_selinux_host_is_refused(slr_bin, state_root, bundle, tmp_path):
    """Where SELinux runs, an unapplied label would leave the container's tmpfs and devpts
    files outside its MCS categories: refused. The host's SELinux is stood in for by an
    selinuxfs-shaped /sys/fs/selinux in a private mount namespace (this host has no
    SELinux; the cgroup mounts stay, so a runtime that accepted the label would run)."""
    config = bundle(["true"], edit=lambda c: c["linux"].update(mountLabel=MOUNT_LABEL))
    cgroups = tmp_path / "cgroups"
    cgroups.mkdir()
    fake_selinuxfs = (f"mount --rbind /sys/fs/cgroup {cgroups} && mount -t tmpfs slr-test /sys/fs"
                      f" && mkdir /sys/fs/cgroup /sys/fs/selinux && mount --move {cgroups} /sys/fs/cgroup"
                      " && echo 1 > /sys/fs/selinux/enforce")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                             f'{fake_selinuxfs} && exec "$@"', "sh",
                             slr_bin, "--root", state_root, "run", "-b", config, "c1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == ("slr: config.json: linux.mountLabel: not supported where SELinux"
                                     " is enabled (slr does not label mounts)")
    assert os.listdir(state_root) == []


@pytest.mark.skipif(not lsm.apparmor_enabled(), reason="AppArmor is not enabled on this host")
def test_apparmor_profile_applies(slr, bundle):
    result = slr("run", "-b", bundle(["cat", "/proc/self/attr/current"],
                                     edit=lambda c: c["process"].update(apparmorProfile="unconfined")), "c1")
    assert result.returncode == 0 and result.stdout.strip() == "unconfined"
