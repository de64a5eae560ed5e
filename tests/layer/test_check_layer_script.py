"""tools/yocto/check-layer's handling of bad input (its real runs need OpenEmbedded
checkouts, which CI does not have: see meta-slruntime's documentation)."""
import os
import subprocess

from conftest import REPO

SCRIPT = os.path.join(REPO, "tools", "yocto", "check-layer")


def run(*args):
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=30)


def test_without_checkouts_it_names_what_is_missing():
    result = run()
    assert result.returncode == 2
    assert result.stderr.strip() == \
        "check-layer: give --bitbake, --oe-core and --meta-oe, or --kas-workdir"


def test_a_directory_that_is_no_bitbake_checkout_is_refused(tmp_path):
    result = run("--kas-workdir", str(tmp_path))
    assert result.returncode == 2
    assert "is not a bitbake checkout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_options_are_refused():
    result = run("--frobnicate")
    assert result.returncode == 2 and "unknown argument: --frobnicate" in result.stderr
