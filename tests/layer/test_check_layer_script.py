"""tools/yocto/check-layer's handling of bad input (its real runs need OpenEmbedded
checkouts, which CI does not have: see meta-slruntime's documentation)."""
import os
import subprocess

from layer_paths import REPO

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


def fake_kas_workdir(root):
    """The files check-layer looks at to tell the checkouts apart (nothing runs)."""
    for path in ("bitbake/bin/bitbake", "openembedded-core/meta/conf/layer.conf",
                 "meta-openembedded/meta-python/conf/layer.conf"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("")
    (root / "bitbake/bin/bitbake").chmod(0o755)
    return str(root)


def test_a_board_without_its_bsp_layer_is_refused(tmp_path):
    workdir = fake_kas_workdir(tmp_path)
    result = run("--kas-workdir", workdir, "--machines", "qemuarm64 beaglebone-yocto")
    assert result.returncode == 2
    assert result.stderr.strip() == "check-layer: beaglebone-yocto needs --meta-yocto"
    result = run("--kas-workdir", workdir, "--machines", "raspberrypi4-64")
    assert result.stderr.strip() == "check-layer: raspberrypi4-64 needs --meta-raspberrypi"


def test_a_directory_that_is_no_meta_raspberrypi_checkout_is_refused(tmp_path):
    workdir = fake_kas_workdir(tmp_path / "kas")
    result = run("--kas-workdir", workdir, "--meta-raspberrypi", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"check-layer: {tmp_path} is not a meta-raspberrypi checkout"
