"""variants.page_in_from_disk: the compact binary's pages leave the page cache before a
session, so its memory is measured as read from disk (fincore shows what is cached)."""

import os
import shutil
import subprocess

import pytest

from bench import variants


def _cached_bytes(path):
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


@pytest.mark.skipif(shutil.which("fincore") is None, reason="fincore (util-linux) not installed")
def test_written_file_leaves_the_page_cache(tmp_path):
    path = tmp_path / "binary"
    path.write_bytes(os.urandom(1 << 20))  # just written: cached (and dirty)
    assert _cached_bytes(path) > 0
    variants.page_in_from_disk(path)
    assert _cached_bytes(path) == 0
    assert path.stat().st_size == 1 << 20  # the file itself is untouched
