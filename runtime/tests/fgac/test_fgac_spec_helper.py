"""slruntime.fgac.spec_helper.add_seccomp_notify: the config `slr spec --fgac` writes.
(Every container test runs the filter it produces: see rootless_container.py.)"""

import pytest

from slruntime.fgac.spec_helper import add_seccomp_notify


def rules_for(seccomp, name):
    return [(r["action"], [a["valueTwo"] for a in r.get("args", [])]) for r in seccomp["syscalls"] if name in r["names"]]


def test_adds_a_permissive_profile_with_notify_rules_when_there_is_none():
    config = {"ociVersion": "1.2.0"}
    seccomp = add_seccomp_notify(config, "/run/fgac.sock", metadata="cam")["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
    assert seccomp["listenerPath"] == "/run/fgac.sock" and seccomp["listenerMetadata"] == "cam"
    assert rules_for(seccomp, "mount") == [("SCMP_ACT_NOTIFY", [])]
    assert rules_for(seccomp, "umount2") == [("SCMP_ACT_NOTIFY", [])]
    # Only device nodes notify; FIFOs and files fall to the permissive default.
    assert rules_for(seccomp, "mknodat") == [("SCMP_ACT_NOTIFY", [0o020000]), ("SCMP_ACT_NOTIFY", [0o060000])]
    (arg,) = [r for r in seccomp["syscalls"] if "mknodat" in r["names"]][0]["args"]
    assert arg == {"index": 2, "value": 0o170000, "valueTwo": 0o020000, "op": "SCMP_CMP_MASKED_EQ"}


def test_existing_profile_keeps_its_rules_and_unprivileged_mknod():
    config = {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "listenerMetadata": "old", "syscalls": [
        {"names": ["read", "mknod", "mount"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["umount2"], "action": "SCMP_ACT_ERRNO"},
    ]}}}
    seccomp = add_seccomp_notify(config, "/run/fgac.sock", syscalls=("mount", "mknod", "umount2"))["linux"]["seccomp"]
    assert seccomp["syscalls"][0] == {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
    assert rules_for(seccomp, "umount2") == [("SCMP_ACT_NOTIFY", [])]
    mknod = rules_for(seccomp, "mknod")
    assert mknod[:2] == [("SCMP_ACT_NOTIFY", [0o020000]), ("SCMP_ACT_NOTIFY", [0o060000])]
    # mknod was allowed before and the default denies: files, FIFOs, sockets stay allowed.
    assert sorted(v for action, (v,) in mknod[2:]) == [0, 0o010000, 0o100000, 0o140000]
    assert "listenerMetadata" not in seccomp


def test_relative_socket_is_refused():
    with pytest.raises(ValueError, match="not an absolute path"):
        add_seccomp_notify({}, "fgac.sock")
