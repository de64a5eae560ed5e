"""The seccomp profile a container gets when its config.json has none: slr.conf's
seccomp-default or the image's own (annotation org.slruntime.seccomp.profile). Every
process of the container gets that profile: the init, `slr exec` processes and pool
requests alike."""

import json
import os

import pytest
from helpers import script_output

from slruntime.profile.image_default import ANNOTATION

EOPNOTSUPP = 95


def _profile(denied):
    """Allow everything but `denied`, which fails with EOPNOTSUPP (no other cause of
    that errno here: the denial is the profile's)."""
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": list(denied), "action": "SCMP_ACT_ERRNO", "errnoRet": EOPNOTSUPP}]}


ADMIN_DENIES = ("mkdir", "mkdirat")
PROBE = ("grep '^Seccomp:' /proc/self/status; mkdir /tmp/probe 2>&1; echo mkdir=$?")


def _seen(out):
    """What PROBE showed: (Seccomp field, whether mkdir was refused by the profile)."""
    lines = out.splitlines()
    return lines[0].split()[1], "not supported" in out and "mkdir=1" in out


@pytest.fixture
def admin_default(tmp_path, monkeypatch):
    """slr.conf (SLR_CONFIG) with a seccomp-default denying mkdir."""
    profile = tmp_path / "admin-default.json"
    profile.write_text(json.dumps(_profile(ADMIN_DENIES)))
    conf = tmp_path / "slr.conf"
    conf.write_text(f"seccomp-default={profile}\n")
    monkeypatch.setenv("SLR_CONFIG", str(conf))




def _bundle_with_image_profile(bundle, args, profile):
    path = bundle(args, edit=lambda c: c.setdefault("annotations", {}).update({ANNOTATION: "image.json"}))
    with open(os.path.join(path, "image.json"), "w") as f:
        json.dump(profile, f)
    return path


def _exec_probe(slr, bundle_path):
    slr("run", "-d", "-b", bundle_path, "sc", check=True)
    try:
        result = slr("exec", "sc", "sh", "-c", PROBE)
    finally:
        slr("delete", "-f", "sc", check=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("source", ["slr.conf", "image"])
def test_exec_gets_the_profile_the_init_got(slr, bundle, admin_default, source, monkeypatch, tmp_path):
    if source == "image":
        monkeypatch.setenv("SLR_CONFIG", "")
        make = lambda args: _bundle_with_image_profile(bundle, args, _profile(ADMIN_DENIES))  # noqa: E731
    else:
        make = lambda args: bundle(args)  # noqa: E731
    init = script_output(slr, lambda args, edit=None: make(args), PROBE)
    assert _seen(init) == ("2", True)
    assert _seen(_exec_probe(slr, make(["sleep", "1000"]))) == ("2", True)


def test_exec_with_a_process_file_gets_it_too(slr, bundle, admin_default, tmp_path):
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", PROBE], "cwd": "/", "user": {"uid": 0, "gid": 0}}))
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "sc", check=True)
    try:
        result = slr("exec", "-p", str(process), "sc")
    finally:
        slr("delete", "-f", "sc", check=True)
    assert _seen(result.stdout) == ("2", True), result.stderr


def test_pool_requests_get_it(slr, bundle, admin_default):
    slr("pool", "create", "-b", bundle(["true"]), "--size", "1", "scp", check=True)
    try:
        result = slr("pool", "run", "scp", "--", "sh", "-c", PROBE)
    finally:
        slr("pool", "delete", "scp", check=True)
    assert _seen(result.stdout) == ("2", True), result.stderr
