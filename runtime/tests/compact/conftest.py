"""Fixtures of the compact-binary tests: the binary and its module manifest, a test build
with an import-probe entry point, and Python-free machine views to run them in."""

import os
import platform
import sysconfig

import pytest

from compact_build import HERE, REPO, build_compact, make_view, read_manifest


@pytest.fixture(scope="session")
def compact_slr():
    """COMPACT_SLR (built by tools/checks/20-compact), else a build made here."""
    path = os.environ.get("COMPACT_SLR")
    if path:
        assert os.path.isfile(path), f"COMPACT_SLR={path} does not exist"
        return path
    path = os.path.join(REPO, "build", "compact", platform.machine(), "slr")
    result = build_compact(path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="session")
def manifest(compact_slr):
    return read_manifest(compact_slr)


@pytest.fixture(scope="session")
def view_slr(compact_slr, tmp_path_factory):
    return make_view(compact_slr, str(tmp_path_factory.mktemp("view") / "slr-view"))


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    """The compact build with import_probe.py as its entry point (and everything else)."""
    path = str(tmp_path_factory.mktemp("probe") / "slr-probe")
    result = build_compact(path, "--entry-point", "import_probe:main",
                           "--extra-module", "import_probe",
                           "--path", sysconfig.get_path("purelib"), "--path", HERE)
    assert result.returncode == 0, result.stderr
    return path
