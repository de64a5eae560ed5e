"""The CI image builder is reproducible: two builds of the same inputs into
different directories give the same bytes.  Runs on the host only (the
downloaded packages are shared through the cache)."""
import filecmp
import json
import os
import shutil

import pytest

from .image import build as image_build

IMAGE_FILES = ["vmlinuz", "initrd.img", "rootfs.squashfs", "overlay-bench.squashfs",
               "overlay-tests.squashfs", "manifest.json"]


@pytest.mark.parametrize("arch", [os.environ.get("HWTESTS_REPRO_ARCH", "x86_64")])
def test_two_builds_give_the_same_bytes(arch, tmp_path):
    # A snapshot of the inputs that change in a working tree, so that both
    # builds see the same ones.
    runtime = shutil.copytree(image_build.RUNTIME_PACKAGE, tmp_path / "slruntime",
                              ignore=shutil.ignore_patterns("__pycache__"))
    compact = shutil.copy(image_build.compact_binary(arch), tmp_path / "slr")
    first, second = (image_build.build(arch, images=str(tmp_path / name), log=lambda *a: None,
                                       runtime_dir=str(runtime), compact=compact)
                     for name in ("first", "second"))
    assert os.path.basename(first.directory) == os.path.basename(second.directory)
    match, mismatch, errors = filecmp.cmpfiles(first.directory, second.directory,
                                               IMAGE_FILES, shallow=False)
    assert (mismatch, errors) == ([], []), f"differing files: {mismatch + errors}"
    with open(first.manifest) as f:
        manifest = json.load(f)
    # The layer's layout files really went in, through its manifest.
    assert "/etc/fstab" in manifest["layout_files"]
    assert "/etc/inittab" in manifest["layout_files"]
    # The frozen slr is the product's slr; runc and crun are only in the overlay.
    product = {f["path"] for f in manifest["contents"]["rootfs.squashfs"]["large_files"]}
    bench = {f["path"] for f in manifest["contents"]["overlay-bench.squashfs"]["large_files"]}
    assert "/usr/bin/slr" in product and "/usr/sbin/runc" in bench
    assert not any("runc" in p or "crun" in p for p in product), product
