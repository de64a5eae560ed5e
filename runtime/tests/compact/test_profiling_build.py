"""build_compact.py --import-time: a build that reports its imports as `python -X importtime`
does (the binary reads no PYTHON* variable, so profiling is a build of its own)."""

import subprocess

from conftest import build_compact


def test_import_time_build_reports_every_import(tmp_path, compact_slr):
    output = str(tmp_path / "slr")
    build = build_compact(output, "--import-time")
    assert build.returncode == 0, build.stderr
    profiled = subprocess.run([output, "--version"], capture_output=True, text=True, timeout=60)
    normal = subprocess.run([compact_slr, "--version"], capture_output=True, text=True,
                            timeout=60)
    assert profiled.returncode == 0
    assert profiled.stdout == normal.stdout
    reports = [line.rsplit("|", 1)[-1].strip() for line in profiled.stderr.splitlines()
               if line.startswith("import time:")]
    assert {"encodings", "slruntime.cli", "slruntime.errors"} <= set(reports)
    # The normal build reports nothing.
    assert "import time:" not in normal.stderr
