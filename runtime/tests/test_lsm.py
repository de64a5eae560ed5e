"""AppArmor/SELinux: applied where the host runs the LSM, a clear error otherwise."""

import os

import pytest

from slruntime import lsm


@pytest.mark.parametrize("field, edit, lsm_name", [
    ("process.apparmorProfile", lambda c: c["process"].update(apparmorProfile="docker-default"), "AppArmor"),
    ("process.selinuxLabel", lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"), "SELinux"),
    ("linux.mountLabel", lambda c: c["linux"].update(mountLabel="system_u:object_r:container_file_t:s0"), "SELinux"),
])
def test_label_without_the_lsm_is_refused(slr, bundle, state_root, field, edit, lsm_name):
    enabled = lsm.apparmor_enabled() if lsm_name == "AppArmor" else lsm.selinux_enabled()
    if enabled:
        pytest.skip(f"{lsm_name} is enabled here: the refusal path cannot be exercised")
    result = slr("run", "-b", bundle(["true"], edit=edit), "c1")
    assert result.returncode == 1
    assert result.stderr.strip() == f"slr: config.json: {field}: {lsm_name} is not enabled on this host"
    assert os.listdir(state_root) == []


@pytest.mark.skipif(not lsm.apparmor_enabled(), reason="AppArmor is not enabled on this host")
def test_apparmor_profile_applies(slr, bundle):
    result = slr("run", "-b", bundle(["cat", "/proc/self/attr/current"],
                                     edit=lambda c: c["process"].update(apparmorProfile="unconfined")), "c1")
    assert result.returncode == 0 and result.stdout.strip() == "unconfined"
