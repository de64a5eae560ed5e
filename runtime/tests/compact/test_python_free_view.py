"""The compact binary in a machine view with no Python at all: only the binary, the shared
libraries it links or dlopens, and busybox (see python-free-view)."""

import json
import os
import subprocess

from compact_build import REPO, assert_every_module_imports, make_view
from helpers import Slr

VENV_SLR = os.path.join(REPO, ".venv", "bin", "slr")


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)


def test_view_holds_no_python(view_slr, compact_slr):
    root = os.path.join(os.path.dirname(view_slr), "root")
    # The front, and the frozen runtime at the path built into it (build_compact.py's layout).
    frozen = os.path.join(os.path.dirname(compact_slr), "libexec", "slruntime", os.path.basename(compact_slr))
    files = []
    for directory, _, names in os.walk(root):
        files += [os.path.relpath(os.path.join(directory, n), root) for n in names]
    assert [f for f in files if "python" in f.lower() or f.endswith((".py", ".pyc"))] == []
    programs = [f for f in files if not os.path.islink(os.path.join(root, f))]
    assert sorted(p for p in programs if not p.startswith(("lib", "etc/"))) == sorted([
        "bin/busybox", "bin/slr", os.path.realpath(frozen).lstrip("/")])


def test_commands_answer_like_the_venv_slr(view_slr, tmp_path):
    for args in (["--version"], ["features"], ["--help"], ["no-such-command"],
                 ["state", "--help"]):
        compact, normal = run([view_slr, *args]), run([VENV_SLR, *args])
        assert (compact.returncode, compact.stdout, compact.stderr) == (
            normal.returncode, normal.stdout, normal.stderr), args
    json.loads(run([view_slr, "features"]).stdout)
    for name, binary in (("compact", view_slr), ("normal", VENV_SLR)):
        (tmp_path / name).mkdir()
        assert run([binary, "spec"], cwd=tmp_path / name).returncode == 0
    assert ((tmp_path / "compact" / "config.json").read_text()
            == (tmp_path / "normal" / "config.json").read_text())


def test_every_module_imports_in_the_view(probe_binary, tmp_path):
    probe = make_view(probe_binary, str(tmp_path / "probe-view"))
    assert_every_module_imports(probe_binary, lambda names: run([probe, *names]))


def test_containers_run_in_the_view(view_slr, bundle, state_root):
    slr = Slr(view_slr, state_root)
    result = slr("run", "--bundle", bundle(["echo", "hello", "from", "the", "view"]), "c1")
    assert (result.returncode, result.stdout) == (0, "hello from the view\n"), result.stderr
    slr("create", "--bundle", bundle(["sleep", "30"]), "c2", check=True)
    assert slr.state("c2")["status"] == "created"
    slr("start", "c2", check=True)
    assert slr.state("c2")["status"] == "running"
    slr("kill", "c2", "KILL", check=True)
    slr("delete", "--force", "c2", check=True)
    assert slr.ids() == []


def test_image_profile_applies_in_the_view(view_slr, bundle, state_root):
    """A bundle's own seccomp profile (annotation org.slruntime.seccomp.profile, what the
    layer's slruntime_seccomp_profile class writes): read by runtime code the binary
    holds, not by the host-side `slr profile` package it leaves out."""
    path = bundle(["sh", "-c", "grep '^Seccomp:' /proc/self/status; mkdir /tmp/x 2>&1; echo rc=$?"],
                  edit=lambda c: c.setdefault("annotations", {}).update({"org.slruntime.seccomp.profile": "p.json"}))
    with open(os.path.join(path, "p.json"), "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}, f)
    result = Slr(view_slr, state_root)("run", "--bundle", path, "c3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "Seccomp:\t2" and "not supported" in result.stdout, result.stdout
