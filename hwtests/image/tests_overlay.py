"""The tests overlay: what the runtime's own pytest suite needs to run in the guest
against the image's frozen slr, on a disk of its own (never in the product root).

Debian's python3.11 and pytest with their libraries, the slruntime package (the
tests import its spec model and constants) with pyseccomp, and runtime/tests, all as
.pyc compiled here (unchecked-hash: no stat of a source, no write on the read-only
disk).  The guest runs `usr/bin/python3.11` of the mounted overlay with
LD_LIBRARY_PATH on its library directories; Python finds its stdlib relative to
the executable (hwtests/test_runtime_suite.py).
"""
import compileall
import os
import py_compile
import re
import shutil
import subprocess
import sys
import zipfile

from .rootfs import ImageError

PACKAGES = [
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
    "libexpat1", "libffi8", "libssl3", "libbz2-1.0", "liblzma5", "libuuid1", "libcrypt1",
    "python3-prctl", "libcap2",
    "python3-pytest", "python3-pluggy", "python3-iniconfig", "python3-packaging",
    "python3-attr", "python3-py",
]
PYSECCOMP = "pyseccomp==0.1.2"
DIST_PACKAGES = "usr/lib/python3/dist-packages"
# Where runtime/tests goes: its conftest finds the repository two levels up.
TESTS_DIR = "usr/share/slr-tests/runtime/tests"

# Stdlib parts no test uses; the extension modules listed also need libraries
# (ncurses, readline, sqlite, db, nsl) the overlay does not ship.
PYTHON_PRUNE = [
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
    "pydoc_data", "sqlite3", "curses", "dbm/gnu.py", "dbm/ndbm.py", "turtle.py",
]
PYTHON_PRUNE_EXTENSIONS = re.compile(
    r"^(_curses|_curses_panel|_dbm|_sqlite3|nis|readline|_test\w*|_ctypes_test"
    r"|xxlimited\w*|_xxtestfuzz|_xxsubinterpreters|ossaudiodev|audioop)\.cpython-")


def assemble(tree, runtime_package, tests_dir, pyseccomp_wheel):
    """Completes the overlay in tree, where PACKAGES are unpacked already."""
    python = python_of(tree)
    stdlib = os.path.join(tree, "usr/lib", python)
    for name in PYTHON_PRUNE:
        path = os.path.join(stdlib, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    dynload = os.path.join(stdlib, "lib-dynload")
    for name in os.listdir(dynload):
        if PYTHON_PRUNE_EXTENSIONS.match(name):
            os.remove(os.path.join(dynload, name))
    os.symlink(python, os.path.join(tree, "usr/bin/python3"))
    dist = os.path.join(tree, DIST_PACKAGES)
    shutil.copytree(runtime_package, os.path.join(dist, "slruntime"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    with zipfile.ZipFile(pyseccomp_wheel) as wheel:
        for member in sorted(wheel.namelist()):
            if not member.endswith("/") and ".dist-info/" not in member:
                wheel.extract(member, dist)
    shutil.copytree(tests_dir, os.path.join(tree, TESTS_DIR),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compile_tree(stdlib, f"/usr/lib/{python}")
    compile_tree(dist, "/" + DIST_PACKAGES)
    # The tests stay sources beside their .pyc: pytest reads them (assertion
    # rewriting, tracebacks); the rest imports the .pyc without a stat of the source.
    compile_tree(os.path.join(tree, TESTS_DIR), "/" + TESTS_DIR)


def compile_tree(directory, ddir):
    """Byte-compiles every .py under directory ahead of time.  unchecked-hash .pyc
    are never compared with their source, so the read-only disk costs no stat()
    per import and no write is ever attempted."""
    ok = compileall.compile_dir(
        directory, ddir=ddir, quiet=2, workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        raise ImageError(f"byte-compiling {directory} failed")


def python_of(tree):
    names = [n for n in os.listdir(os.path.join(tree, "usr/lib"))
             if re.fullmatch(r"python3\.\d+", n)]
    if len(names) != 1:
        raise ImageError(f"expected one python3.X stdlib in the overlay, found {names}")
    host = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if names[0] != host:
        raise ImageError(f"the overlay has {names[0]} but the builder runs {host}: "
                         f".pyc must be compiled by the target's Python version")
    return names[0]


def pyseccomp_wheel(cache_dir):
    wheels = os.path.join(cache_dir, "pip")
    path = os.path.join(wheels, PYSECCOMP.replace("==", "-") + "-py3-none-any.whl")
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--disable-pip-version-check", "--only-binary", ":all:",
                        "-d", wheels, PYSECCOMP], check=True, capture_output=True)
    return path
