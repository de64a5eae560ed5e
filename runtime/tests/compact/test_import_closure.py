"""The rules of import_closure.py on small made-up packages (the other tests run it on
the real runtime)."""

import os
import sys
import sysconfig

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "compact"))
import import_closure  # noqa: E402

STDLIB = sysconfig.get_path("stdlib")

pytestmark = pytest.mark.unit


def closure_of(tmp_path, files, roots=("app",)):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    closure = import_closure.ImportClosure([str(tmp_path), STDLIB], [STDLIB],
                                           sys.builtin_module_names, ["app"])
    for root in roots:
        closure.add(root)
    return closure


def test_lazy_imports_count_and_dead_branches_do_not(tmp_path):
    closure = closure_of(tmp_path, {"app/__init__.py": (
        "import sys\n"
        "def command():\n    import json\n"
        "if sys.platform == 'win32':\n    import winreg_helper_missing\n"
        "if __name__ == '__main__':\n    import also_missing\n"
        "try:\n    import optional_missing\nexcept ImportError:\n    pass\n"
        "from . import sub\n"), "app/sub.py": "import importlib\nimportlib.import_module('csv')\n"})
    assert {"app", "app.sub", "json", "json.decoder", "csv"} <= set(closure.modules)
    assert "optional_missing" in closure.missing
    assert not {"winreg_helper_missing", "also_missing"} & set(closure.missing)


def test_stdlib_script_helpers_and_excluded_subsystems_are_pruned(tmp_path):
    closure = closure_of(tmp_path, {"app/__init__.py": "import random, shutil\n"})
    # random imports statistics only in its _test_generator(); shutil reaches tarfile and
    # zipfile only through its archive helpers.
    assert "statistics" not in closure.modules
    assert not {"tarfile", "zipfile"} & set(closure.modules)
    assert "tarfile" in closure.excluded_imports


def test_the_application_may_use_an_excluded_subsystem(tmp_path):
    closure = closure_of(tmp_path, {"app/__init__.py": "def f():\n    import zipfile\n"})
    assert "zipfile" in closure.modules


def test_unconditional_missing_import_of_the_package_is_an_error(tmp_path):
    with pytest.raises(import_closure.ClosureError, match="not_there.*app"):
        closure_of(tmp_path, {"app/__init__.py": "def f():\n    import not_there\n"})
