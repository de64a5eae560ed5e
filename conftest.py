"""Skips what this machine cannot run, with the reason (pytest.ini lists the markers).

Each part's conftest.py (or test module) says what its tests need with a marker; here a
test whose need is not met is skipped, so `pytest` anywhere in the repository runs what
the machine can run.  Markers, not directories, decide: tools/checks/* run exactly the
tests they name.
"""
import os
import platform
import shutil

import pytest

REPO = os.path.dirname(os.path.abspath(__file__))
DEFAULT_COMPACT_SLR = os.path.join(REPO, "build", "compact", platform.machine(), "slr")


def _unmet(item, config):
    """Why this machine cannot run `item`, or None."""
    if (item.get_closest_marker("root") or item.get_closest_marker("rootless")) \
            and os.geteuid() != 0:
        return "needs root (real containers, mounts, cgroups); `pytest -m unit` needs none"
    if item.get_closest_marker("rootless") and shutil.which("newuidmap") is None:
        return "needs newuidmap (uidmap package) to map the unprivileged test user"
    engines = item.get_closest_marker("engines")
    if engines:
        missing = [c for c in (*engines.args, "runc") if shutil.which(c) is None]
        if missing:
            return f"{', '.join(missing)} not installed (tools/deps/engines.apt)"
    # A COMPACT_SLR that does not exist is the fixture's error, not a skip.
    if item.get_closest_marker("compact") and "COMPACT_SLR" not in os.environ \
            and not os.path.isfile(DEFAULT_COMPACT_SLR):
        return (f"no compact slr at {DEFAULT_COMPACT_SLR}: build it with tools/build-compact"
                " or name one with COMPACT_SLR")
    if item.get_closest_marker("guest") and not (config.getoption("lg_env", default=None)
                                                 or os.environ.get("LG_ENV")):
        return "needs a QEMU guest or board: pytest hwtests --lg-env hwtests/env/qemu-x86_64.yaml"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # tryfirst: before plugins' own setup hooks (labgrid's needs an env file).
    reason = _unmet(item, item.config)
    if reason:
        pytest.skip(reason)
