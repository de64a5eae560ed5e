"""jsonlite.write_file_atomic: the runtime's state.json and saved config.json writes."""

import os

import pytest

from slruntime import jsonlite

pytestmark = pytest.mark.unit


def test_a_link_at_the_temporary_name_is_not_written_through(tmp_path):
    # The temporary name is predictable (path.tmp<pid>): whoever can write the directory
    # plants a link there, and the old code opened it with O_CREAT|O_TRUNC, writing
    # through it, then renamed the link into place.
    victim = tmp_path / "victim"
    victim.write_text("a host file\n")
    path = tmp_path / "state.json"
    os.symlink(victim, f"{path}.tmp{os.getpid()}")
    jsonlite.write_file_atomic(str(path), {"id": "c1"})
    assert victim.read_text() == "a host file\n"
    assert not path.is_symlink() and jsonlite.load_file(str(path)) == {"id": "c1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "victim"]


def test_the_file_has_the_mode_asked_for(tmp_path):
    path = tmp_path / "config.json"
    jsonlite.write_file_atomic(str(path), {"a": 1}, mode=0o640)
    assert (os.stat(path).st_mode & 0o777) == 0o640 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
