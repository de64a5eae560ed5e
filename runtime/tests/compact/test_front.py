"""The compact slr's static front (runtime/compact/slr_front.c): linked statically, it
executes the frozen runtime from the absolute path fixed at build time, and when that
file is missing or not executable it says so in one line (naming the path) and exits 1,
while the `pool run` it serves itself still works. Its behaviour against the Python
client, and that it executes the runtime exactly once with the same argv for every other
command line: runtime/tests/test_pool_protocol.py."""

import os
import subprocess

import pytest

from compact_build import build_compact


def front_executing(tmp_path, frozen_path):
    output = str(tmp_path / "slr")
    result = build_compact(output, "--front-only", "--frozen-path", frozen_path)
    assert result.returncode == 0, result.stderr
    return output


def run(front, *args):
    return subprocess.run([front, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SLR_CONFIG=""))


def test_the_front_is_linked_statically(compact_slr):
    headers = subprocess.run(["readelf", "--program-headers", "--wide", compact_slr],
                             capture_output=True, text=True, check=True).stdout
    assert "LOAD" in headers and "INTERP" not in headers and "DYNAMIC" not in headers


@pytest.mark.parametrize("problem", ["missing", "not executable", "a directory"])
def test_a_runtime_that_cannot_be_executed_is_one_line_and_status_1(tmp_path, problem):
    frozen = tmp_path / "libexec" / "slr"
    if problem == "not executable":
        frozen.parent.mkdir()
        frozen.write_bytes(b"\x7fELF")
        frozen.chmod(0o644)
    elif problem == "a directory":
        frozen.mkdir(parents=True)
    front = front_executing(tmp_path, str(frozen))
    reason = {"missing": "No such file or directory", "not executable": "Permission denied",
              "a directory": "Permission denied"}[problem]
    for args in (["--version"], ["pool", "list"], []):
        result = run(front, *args)
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", f"slr: cannot execute the runtime {frozen}: {reason}\n"), args
    # What the front serves itself does not need the runtime.
    result = run(front, "--root", str(tmp_path), "pool", "run", "p", "--", "true")
    assert (result.returncode, result.stderr) == (1, "slr: pool p is not running\n")


def test_the_runtimes_path_is_built_in_byte_for_byte(tmp_path):
    """build_compact.py writes the path as a C string: quotes, backslashes and non-ASCII
    bytes arrive unchanged."""
    frozen = tmp_path / 'a "quoted" \\ dir \u00e9' / "slr"
    result = run(front_executing(tmp_path, str(frozen)), "--version")
    assert (result.returncode, result.stderr) == (
        1, f"slr: cannot execute the runtime {frozen}: No such file or directory\n")
