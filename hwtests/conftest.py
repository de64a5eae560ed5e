"""pytest setup of hwtests: `pytest hwtests --lg-env hwtests/env/<target>.yaml`.

For the QEMU env files the LG_* variables they use are filled in before
labgrid reads the file (labgrid's pytest_configure runs last): the CI image
is built or reused, or a Yocto deploy dir is used (LG_YOCTO_DEPLOY_DIR).
"""
import os
import re

import pytest

from . import overlays as overlay_disks
from .guest import SCRATCH, Guest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env_file(config):
    return config.getoption("lg_env", default=None) or os.environ.get("LG_ENV")


def pytest_collection_modifyitems(items):
    """A test of the target (labgrid's `target` fixture, under guest/strategy/slr) is a
    `guest` test: skipped without an env file (conftest.py at the repository's top).
    None has pytest.ini's per-test timeout: booting under TCG and the in-guest suite take
    longer; tools/checks/50-hwtests bounds each whole run instead."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    for item in items:
        if not str(item.path).startswith(here):
            continue
        item.add_marker(pytest.mark.timeout(0))
        if "target" in item.fixturenames:
            item.add_marker(pytest.mark.guest)


def pytest_configure(config):
    env_file = _env_file(config)
    match = re.fullmatch(r"qemu-(x86_64|aarch64)\.yaml", os.path.basename(env_file or ""))
    if match:
        from .qemu import lg_variables
        os.environ.update(lg_variables(match.group(1)))


@pytest.fixture(scope="session")
def target_name(pytestconfig):
    """The env file's name (qemu-x86_64, raspberrypi4-64, ...): names the results."""
    return os.path.splitext(os.path.basename(_env_file(pytestconfig)))[0]


@pytest.fixture(scope="session")
def results_dir(target_name):
    path = os.environ.get("HWTESTS_RESULTS") or os.path.join(REPO, "results", target_name)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def strategy(target):
    return target.get_driver("SlrStrategy")


@pytest.fixture(scope="session")
def guest(strategy, target):
    """A logged-in shell on the booted target, with /tmp/hwtests for bundles."""
    strategy.transition("shell")
    shell = target.get_driver("ShellDriver")
    # Kernel messages would interleave with command output on the console.
    shell.run("dmesg -n 1")
    g = Guest(shell)
    g.run(f"rm -rf {SCRATCH} && mkdir -p {SCRATCH}")
    return g


@pytest.fixture(scope="session")
def overlays(guest):
    """{name: Overlay} of the overlay disks attached to the guest (HWTESTS_OVERLAYS),
    mounted read-only under /run/hwtests; empty on boards and plain runs."""
    return overlay_disks.mount_all(guest)


@pytest.fixture(scope="session")
def qemu(target):
    """The QEMUDriver (for QMP), or None on a lab board."""
    from labgrid.driver import QEMUDriver
    from labgrid.exceptions import NoDriverFoundError
    try:
        return target.get_driver(QEMUDriver)
    except NoDriverFoundError:
        return None


@pytest.fixture(scope="session")
def slr(guest):
    """The runtime's command, once it has run a container (else every test using it fails
    with slr's own error)."""
    code, out = guest.status("slr features", timeout=120)
    if code != 0:
        pytest.fail("slr does not run in the image: " + " | ".join(out[-3:]))
    bundle = guest.make_bundle("smoke", ["true"])
    code, out = guest.status(f"slr run -b {bundle} hw-smoke", timeout=120)
    if code != 0:
        pytest.fail("slr cannot run a container in the image: " + " | ".join(out[-3:]))
    return "slr"
