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


# The administrator's seccomp-default is a floor: an image's profile (named by an
# annotation, which engines pass through) can narrow it, never widen it.
FLOOR_PROBE = (PROBE + "; grep '^Seccomp_filters:' /proc/self/status; "
               "ln -s a /tmp/link 2>&1; echo ln=$?")


def _floor_seen(out):
    seccomp, mkdir_denied = _seen(out)
    filters = next(line.split()[1] for line in out.splitlines() if line.startswith("Seccomp_filters:"))
    return seccomp, filters, mkdir_denied, "not supported" in out.split("mkdir=")[1] and "ln=1" in out


@pytest.mark.parametrize("image,expected", [
    ({"defaultAction": "SCMP_ACT_ALLOW"}, ("2", "2", True, False)),  # allow-all: the floor stays
    (_profile(("symlink", "symlinkat")), ("2", "2", True, True)),  # narrower: both denials
], ids=["allow-all-image", "narrowing-image"])
def test_image_profile_cannot_widen_the_admin_default(slr, bundle, admin_default, image, expected):
    init = script_output(slr, lambda args, edit=None: _bundle_with_image_profile(bundle, args, image), FLOOR_PROBE)
    assert _floor_seen(init) == expected
    slr("run", "-d", "-b", _bundle_with_image_profile(bundle, ["sleep", "1000"], image), "sc", check=True)
    try:
        result = slr("exec", "sc", "sh", "-c", FLOOR_PROBE)
    finally:
        slr("delete", "-f", "sc", check=True)
    assert _floor_seen(result.stdout) == expected, result.stderr


def test_a_notifying_admin_default_is_not_stacked(slr, bundle, tmp_path, monkeypatch):
    profile = tmp_path / "notify.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "l.sock"),
                                   "syscalls": [{"names": ["mknod"], "action": "SCMP_ACT_NOTIFY"}]}))
    conf = tmp_path / "slr.conf"
    conf.write_text(f"seccomp-default={profile}\n")
    monkeypatch.setenv("SLR_CONFIG", str(conf))
    result = slr("run", "-b", _bundle_with_image_profile(bundle, ["true"], _profile(ADMIN_DENIES)), "sc")
    assert result.returncode == 1
    assert result.stderr == ("slr: seccomp-default: a profile with SCMP_ACT_NOTIFY rules cannot be stacked under "
                             "the image's (annotation org.slruntime.seccomp.profile): only one filter may notify\n")
    assert slr.ids() == []


def test_an_image_profile_cannot_name_a_listener(slr, bundle, tmp_path):
    """The image's profile (named by an annotation, which engines pass through) must not
    pick a seccomp listener: the init would connect to that host socket as root and hand
    it the notify descriptor, with metadata of the image's choosing (what the FGAC
    server selects its rules by)."""
    import socket

    path = str(tmp_path / "host.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.setblocking(False)
    try:
        for key, value in (("listenerPath", path), ("listenerMetadata", "privileged")):
            profile = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                       "syscalls": [{"names": ["mknod"], "action": "SCMP_ACT_NOTIFY"}]}
            if key == "listenerMetadata":
                profile = dict(_profile(ADMIN_DENIES), listenerMetadata=value)
            result = slr("run", "-b", _bundle_with_image_profile(bundle, ["true"], profile), "sc")
            assert result.returncode == 1, result.stderr
            assert result.stderr == (f"slr: config.json: annotations: {ANNOTATION}: image.json: {key} is not "
                                     "allowed in an image's profile (only config.json or slr.conf may name a "
                                     "seccomp listener)\n")
            assert slr.ids() == []
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
