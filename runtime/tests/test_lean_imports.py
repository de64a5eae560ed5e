"""Each command imports only what it needs: no argparse, typing, json, re or enum on
the paths of a container start (see `python -X importtime`)."""

import json
import subprocess
import sys

import pytest

HEAVY = {"typing", "argparse", "ctypes.util", "subprocess", "json", "re", "enum", "shutil",
         "dataclasses", "socket", "selectors", "threading", "logging", "tempfile", "signal"}

PROBE = """
import json as _j, os, sys
before = set(sys.modules)
def _report_child_imports(event, args):  # the forked container side imports its own modules
    if event == "import" and args[0] not in before:
        os.write(2, ("IMPORTED " + args[0] + "\\n").encode())
sys.addaudithook(_report_child_imports)
from slruntime.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
loaded = sorted(set(sys.modules) - before)
sys.stdout.flush()
sys.__stderr__.write("MODULES " + _j.dumps(loaded) + "\\n")
"""


def _modules_loaded(args):
    """Modules `slr ARGS` imports, in its own process and in those it forks (the probe's
    own json is checked separately below)."""
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    line = [l for l in result.stderr.splitlines() if l.startswith("MODULES ")]
    assert line, result.stderr
    imported = {l[len("IMPORTED "):] for l in result.stderr.splitlines() if l.startswith("IMPORTED ")}
    return set(json.loads(line[0][len("MODULES "):])) | imported, result


@pytest.mark.parametrize("command", [["features"], ["list"], ["state", "nope"], ["spec", "--bundle", "/nonexistent"],
                                     ["pool", "list"]])
def test_commands_import_nothing_heavy(command, state_root):
    loaded, _ = _modules_loaded(["--root", state_root, *command])
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_run_with_seccomp_imports_nothing_heavy(state_root, bundle):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    b = bundle(["true"], edit=lambda c: c["linux"].update(seccomp=seccomp))
    loaded, result = _modules_loaded(["--root", state_root, "run", "-b", b, "lean"])
    assert "slruntime.init" in loaded, result.stderr
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_seccomp_filter_without_typing_or_ldconfig():
    """pyseccomp imports typing and runs find_library (ldconfig): the init must not."""
    code = ("import sys; from slruntime import seccomp, spec; "
            "seccomp.build(spec.parse_seccomp({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': "
            "[{'names': ['getpid'], 'action': 'SCMP_ACT_ERRNO'}]}, 'linux.seccomp')); "
            "heavy = {'typing', 'ctypes.util', 'subprocess'} & set(sys.modules); "
            "assert 'pyseccomp' in sys.modules and not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_json_package_is_not_imported():
    code = "import sys; from slruntime.cli import main; main(['features']); assert 'json' not in sys.modules, 'json'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_installed_slr_script_imports_nothing_heavy(slr_bin):
    """The `slr` on PATH (not a generated wrapper that imports re) as started by users."""
    if not slr_bin.endswith("/.venv/bin/slr"):
        pytest.skip("SLR_BIN is not the virtualenv's script")
    result = subprocess.run([sys.executable, "-X", "importtime", slr_bin, "list"],
                            capture_output=True, text=True, timeout=60)
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & HEAVY, sorted(imported & HEAVY)
