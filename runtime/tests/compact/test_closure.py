"""The module list is derived statically; these tests hold it against what slr really
imports when its commands run on the normal interpreter."""

import os
import subprocess
import sys
import sysconfig

from compact_build import HERE, REPO
from helpers import Slr


def recording_slr(tmp_path, log):
    """An executable running the venv's slruntime under import_recorder.py."""
    wrapper = tmp_path / "slr-recorded"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -I -S {HERE}/import_recorder.py {log} "
        f"{REPO}/runtime {sysconfig.get_path('purelib')} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def test_closure_covers_what_commands_import(manifest, bundle, state_root, tmp_path):
    log = tmp_path / "imports.log"
    slr = Slr(recording_slr(tmp_path, log), state_root)
    for args in (["--version"], ["--help"], ["features"], ["list"], ["no-such-command"],
                 ["run", "--help"], ["state", "no-such-container"]):
        slr(*args)
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    slr("spec", check=True, cwd=spec_dir)
    slr("run", "--bundle", bundle(["true"]), "c1", check=True)
    slr("create", "--bundle", bundle(["sleep", "30"]), "c2", check=True)
    slr("start", "c2", check=True)
    slr("state", "c2", check=True)
    slr("ps", "c2")
    slr("exec", "c2", "true")
    slr("kill", "c2", "KILL", check=True)
    slr("delete", "--force", "c2", check=True)

    attempted = set(log.read_text().split())
    # Failed optional imports are recorded too: keep the modules that exist.
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         "import sys, importlib.util\n"
         f"sys.path[:0] = [{REPO + '/runtime'!r}, {sysconfig.get_path('purelib')!r}]\n"
         "for name in sys.argv[1:]:\n"
         "    try:\n"
         "        found = name in sys.builtin_module_names or importlib.util.find_spec(name)\n"
         "    except ImportError:\n"
         "        found = False\n"
         "    if found:\n"
         "        print(name)\n", *sorted(attempted)],
        capture_output=True, text=True, check=True)
    imported = set(probe.stdout.split())
    provided = set()
    for kind in ("frozen", "frozen-in-libpython", "builtin", "builtin-compiled"):
        provided |= set(manifest.get(kind, {}))
    assert "slruntime.cli" in imported and "slruntime.container" in imported
    assert sorted(imported - provided) == []
