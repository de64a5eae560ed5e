"""Bad input to build_compact.py and build_cpython.py: a one-line error naming the
problem, exit status 1, and no executable or build directory left behind."""

import os
import subprocess
import sys

from compact_build import REPO, build_compact


def assert_clean_failure(result, output, *words):
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("build_compact: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert not os.path.exists(output)
    assert not os.path.exists(output + ".build")


def test_missing_static_libpython(tmp_path):
    output = str(tmp_path / "slr")
    result = build_compact(output, "--libpython", str(tmp_path / "libpython3.11.a"))
    assert_clean_failure(result, output, "--libpython", "does not exist")


def test_headers_without_patchlevel(tmp_path):
    output = str(tmp_path / "slr")
    result = build_compact(output, "--python-include", str(tmp_path))
    assert_clean_failure(result, output, "patchlevel.h")


def test_entry_point_without_function(tmp_path):
    output = str(tmp_path / "slr")
    result = build_compact(output, "--entry-point", "slruntime.cli")
    assert_clean_failure(result, output, "module:function")


def test_package_importing_a_missing_module(tmp_path):
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("def main():\n    import no_such_module_here\n")
    output = str(tmp_path / "out" / "slr")
    result = build_compact(output, "--package-dir", str(package),
                           "--entry-point", "brokenpkg:main")
    assert_clean_failure(result, output, "no_such_module_here", "brokenpkg")
    assert not os.path.exists(tmp_path / "out")


def test_entry_function_not_defined(tmp_path):
    output = str(tmp_path / "slr")
    result = build_compact(output, "--entry-point", "slruntime.cli:no_such_function")
    assert_clean_failure(result, output, "slruntime.cli", "no_such_function")


def test_newest_python_builder_without_such_a_series(tmp_path):
    """build_cpython.py (tools/setup --newest-python) asked for a CPython the Debian
    release does not carry: one line, status 1, no installation prefix."""
    result = subprocess.run([sys.executable, os.path.join(REPO, "runtime", "compact",
                                                          "build_cpython.py"),
                             "--cache", str(tmp_path), "--series", "3.99"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr == "build_cpython: Debian trixie has no source package python3.99\n"
    assert result.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["apt-trixie"]


def test_relative_frozen_path(tmp_path):
    """The front never searches for the runtime: the path it executes must be absolute."""
    output = str(tmp_path / "slr")
    result = build_compact(output, "--frozen-path", "libexec/slruntime/slr")
    assert_clean_failure(result, output, "--frozen-path", "absolute")
    assert not os.path.exists(tmp_path / "libexec")


def test_front_only_without_the_runtimes_path(tmp_path):
    output = str(tmp_path / "slr")
    result = build_compact(output, "--front-only")
    assert_clean_failure(result, output, "--front-only", "--frozen-path")
