"""The module list is derived statically; these tests hold it against what slr really
imports when its commands run on the normal interpreter."""

import os
import subprocess
import sys
import sysconfig

from compact_build import HERE, REPO
from helpers import Slr

START_PATH = os.path.join(REPO, "runtime", "compact", "start_path.txt")


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


def test_start_path_lists_what_lifecycle_commands_import(manifest, bundle, state_root,
                                                          tmp_path):
    """runtime/compact/start_path.txt (the frozen modules whose bytecode the build lays out
    first) holds every module `--version` and the lifecycle commands import. A stale list
    costs memory, not correctness; COMPACT_WRITE_START_PATH=1 rewrites it, in import order."""
    log = tmp_path / "imports.log"
    slr = Slr(recording_slr(tmp_path, log), state_root)
    slr("--version", check=True)
    slr("run", "--bundle", bundle(["true"]), "c1", check=True)
    slr("create", "--bundle", bundle(["sleep", "30"]), "c2", check=True)
    slr("start", "c2", check=True)
    slr("state", "c2", check=True)
    slr("kill", "c2", "KILL", check=True)
    slr("delete", "--force", "c2", check=True)

    # The interpreter's own start-up imports (the codecs of stdio) precede the audit hook.
    startup = subprocess.run([sys.executable, "-I", "-S", "-c",
                              "import sys; print(*sys.modules)"],
                             capture_output=True, text=True, check=True).stdout.split()
    frozen = manifest["frozen"]
    imported = list(dict.fromkeys(n for n in startup + log.read_text().split() if n in frozen))
    if os.environ.get("COMPACT_WRITE_START_PATH") == "1":
        _write_start_path(imported, frozen)
    with open(START_PATH, encoding="utf-8") as listed:
        names = {line.strip() for line in listed if not line.startswith("#")}
    # Only a missing module of the runtime counts: the standard modules on the start path
    # differ between Python versions (3.13 imports linecache there, 3.11 does not).
    assert [n for n in imported if n not in names and n.startswith("slruntime")] == [], (
        "runtime/compact/start_path.txt is stale: rerun this test with "
        "COMPACT_WRITE_START_PATH=1 and rebuild")


# The boards mount cgroup v2 only, while a development host may be driven as v1: the
# list holds both versions' modules, where the host imported its own.
CGROUP_VERSION_MODULES = ["slruntime.cgroups.v1", "slruntime.cgroups.v2", "slruntime.cgroups.v2.device_program"]


def _write_start_path(imported, frozen):
    listed = []
    for name in imported:
        listed += [n for n in CGROUP_VERSION_MODULES if n in frozen] if name in CGROUP_VERSION_MODULES else [name]
    with open(START_PATH, encoding="utf-8") as old:
        lines = old.readlines()
    header = [line for line in lines if line.startswith("#")]
    # Standard modules another Python version imported (listed by its run) stay, after.
    other_versions = [line.strip() for line in lines
                      if not line.startswith("#") and not line.startswith("slruntime") and line.strip() not in listed]
    with open(START_PATH, "w", encoding="utf-8") as new:
        new.writelines(header + [name + "\n" for name in dict.fromkeys(listed + other_versions)])
