"""How native_modules.py reads a CPython source tree's module recipes, on made-up trees
(the real 3.11 and 3.13 trees are compiled by the builds the other tests make)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "compact"))
import native_modules  # noqa: E402

pytestmark = pytest.mark.unit

SETUP_STDLIB = """\
# comment
@MODULE_FCNTL_TRUE@fcntl fcntlmodule.c
@MODULE__MD5_TRUE@_md5 md5module.c -I$(srcdir)/Modules/_hacl/include _hacl/Hacl_Hash_MD5.c -D_BSD_SOURCE
@MODULE__SHA2_TRUE@_sha2 sha2module.c -I$(srcdir)/Modules/_hacl/include Modules/_hacl/libHacl_Hash_SHA2.a
#@MODULE__CTYPES_TRUE@_ctypes _ctypes/_ctypes.c
"""
# 3.13's Makefile.pre.in: the archive, its objects (a continued line) and its flags.
MAKEFILE_PRE_IN = """\
LIBHACL_SHA2_A= Modules/_hacl/libHacl_Hash_SHA2.a
LIBHACL_SHA2_OBJS= \\
                Modules/_hacl/Hacl_Hash_SHA2.o
LIBHACL_CFLAGS=-I$(srcdir)/Modules/_hacl/include -D_BSD_SOURCE -D_DEFAULT_SOURCE $(PY_STDMODULE_CFLAGS) $(CCSHARED)
"""


def source_tree(tmp_path, makefile=MAKEFILE_PRE_IN):
    (tmp_path / "Modules").mkdir()
    (tmp_path / "Modules" / "Setup.stdlib.in").write_text(SETUP_STDLIB)
    (tmp_path / "Makefile.pre.in").write_text(makefile)
    return str(tmp_path)


def recipe(name, src):
    return native_modules.recipe(name, src, None, ["cc"], [])


def test_plain_module_and_one_with_its_own_sources_and_flags(tmp_path):
    src = source_tree(tmp_path)
    fcntl = recipe("fcntl", src)
    assert fcntl.sources == [f"{src}/Modules/fcntlmodule.c"] and fcntl.cflags == []
    md5 = recipe("_md5", src)
    assert md5.sources == [f"{src}/Modules/md5module.c", f"{src}/Modules/_hacl/Hacl_Hash_MD5.c"]
    assert md5.cflags == [f"-I{src}/Modules/_hacl/include", "-D_BSD_SOURCE"]


def test_archive_built_by_the_makefile_becomes_its_sources(tmp_path):
    src = source_tree(tmp_path)
    sha2 = recipe("_sha2", src)
    assert sha2.sources == [f"{src}/Modules/sha2module.c", f"{src}/Modules/_hacl/Hacl_Hash_SHA2.c"]
    assert sha2.cflags == [f"-I{src}/Modules/_hacl/include", "-D_BSD_SOURCE", "-D_DEFAULT_SOURCE"]


def test_archive_the_makefile_does_not_build_is_an_error_of_its_module_only(tmp_path):
    src = source_tree(tmp_path, makefile="OTHER= 1\n")
    with pytest.raises(native_modules.NativeError, match="libHacl_Hash_SHA2.a"):
        recipe("_sha2", src)
    assert recipe("fcntl", src).sources == [f"{src}/Modules/fcntlmodule.c"]


def test_modules_without_an_entry_or_needing_a_library_have_no_recipe(tmp_path):
    src = source_tree(tmp_path)
    assert recipe("_bz2", src) is None and recipe("nosuch", src) is None
