"""Fixtures for the runtime's tests: real busybox bundles and a real `slr`.

SLR_BIN selects the runtime under test (default: the virtualenv's `slr`), so the
same tests run against the compact frozen binary.
"""

import json
import os
import shutil
import subprocess

import pytest

from helpers import Slr, build_busybox_rootfs, default_config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SLR = os.path.join(REPO, ".venv", "bin", "slr")
BUSYBOX = "/bin/busybox"


def pytest_configure(config):
    if config.inipath is None:
        # Run without the repository's pytest.ini (the QEMU guest runs a copy of this
        # directory alone): the markers this directory gives are still known.
        for marker in ("unit", "root", "rootless", "engines", "compact"):
            config.addinivalue_line("markers", marker)


def pytest_collection_modifyitems(items):
    """A runtime test starts real containers as root unless it is marked `unit`; one
    using the compact binary (the compact_slr fixture) needs that binary. The repository's
    conftest.py skips what this machine cannot run."""
    for item in items:
        if not str(item.path).startswith(HERE + os.sep):
            continue
        if item.get_closest_marker("unit") is None:
            item.add_marker(pytest.mark.root)
        if "compact_slr" in item.fixturenames:
            item.add_marker(pytest.mark.compact)


@pytest.fixture(scope="session")
def slr_bin():
    path = os.environ.get("SLR_BIN", DEFAULT_SLR)
    if not os.path.exists(path):
        pytest.fail(f"slr binary {path} not found: run tools/setup")
    return path


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    """A read-only-shared busybox rootfs (static busybox from busybox-static)."""
    root = tmp_path_factory.mktemp("images") / "busybox"
    build_busybox_rootfs(str(root))
    return str(root)


@pytest.fixture
def state_root(tmp_path):
    root = tmp_path / "state"
    root.mkdir()
    return str(root)


@pytest.fixture
def slr(slr_bin, state_root):
    runtime = Slr(slr_bin, state_root)
    yield runtime
    leftovers = runtime.cleanup()
    assert not leftovers, f"test left containers behind: {leftovers}"


@pytest.fixture
def bundle(tmp_path, busybox_rootfs):
    """A bundle directory whose rootfs is a private copy of busybox_rootfs.
    Returns a factory: make(args, **config overrides) -> bundle path."""
    counter = [0]

    def make(args=("true",), config=None, rootfs=None, edit=None):
        counter[0] += 1
        path = tmp_path / f"bundle{counter[0]}"
        path.mkdir()
        if rootfs is None:
            rootfs = str(path / "rootfs")
            shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        cfg = config if config is not None else default_config(list(args), rootfs)
        if edit:
            edit(cfg)
        (path / "config.json").write_text(json.dumps(cfg, indent=1))
        return str(path)

    return make


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


@pytest.fixture
def open_tmp():
    """A directory every user may traverse: pytest's tmp_path is 0700 root's, which a
    user namespace's root (a host uid other than 0) or an unprivileged user cannot enter."""
    import tempfile

    path = tempfile.mkdtemp(prefix="slr-test-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def open_bundle(open_tmp, busybox_rootfs):
    """Like `bundle`, in open_tmp (readable by every user)."""
    counter = [0]

    def make(args=("true",), config=None, edit=None, rootless=False):
        counter[0] += 1
        path = os.path.join(open_tmp, f"bundle{counter[0]}")
        os.mkdir(path)
        rootfs = os.path.join(path, "rootfs")
        shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        cfg = config if config is not None else default_config(list(args), rootfs, rootless=rootless)
        if edit:
            edit(cfg)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    return make
