"""The aarch64 cross build (cross_build.py: Debian's gcc-aarch64-linux-gnu and arm64
-dev packages), run under qemu-user: the same answers as the native slr, and every
module importable."""

import os
import subprocess
import sys
import sysconfig

import pytest

from compact_build import HERE, REPO, SOURCES_CACHE, assert_every_module_imports

CROSS_TOOL = os.path.join(REPO, "runtime", "compact", "cross_build.py")
VENV_SLR = os.path.join(REPO, ".venv", "bin", "slr")
QEMU_AARCH64_BINFMT = os.path.join(REPO, "runtime", "tests", "qemu-aarch64-binfmt")
EM_AARCH64 = 183

# cross_build.py's arm64 sysroot holds the host Debian release's libpythonX.Y-dev, of the
# Python Debian installs in /usr (3.11 on bookworm); a Python built elsewhere has none.
pytestmark = pytest.mark.skipif(
    sys.base_prefix != "/usr",
    reason=f"the arm64 sysroot is Debian's: no libpython{sys.version_info[0]}."
           f"{sys.version_info[1]}-dev for this Python ({sys.base_prefix})")


def cross_build(output, *extra):
    result = subprocess.run([sys.executable, CROSS_TOOL, "--arch", "aarch64",
                             "--output", output, "--sources-cache", SOURCES_CACHE, *extra],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return output


def qemu(binary, *args, cwd=None):
    """Runs an aarch64 build (its front, which executes its frozen runtime) under
    qemu-user; the C library from the cross toolchain, libseccomp from the sysroot
    cross_build.py unpacked (qemu falls back to host paths)."""
    env = {"LD_LIBRARY_PATH": os.path.join(SOURCES_CACHE, "sysroot-arm64", "usr", "lib",
                                           "aarch64-linux-gnu"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([QEMU_AARCH64_BINFMT, binary, *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def aarch64_probe(tmp_path_factory):
    """The aarch64 build with the import-probe entry point (import_probe.py)."""
    return cross_build(str(tmp_path_factory.mktemp("aarch64") / "slr-probe"),
                       "--entry-point", "import_probe:main", "--extra-module", "import_probe",
                       "--path", sysconfig.get_path("purelib"), "--path", HERE)


def test_aarch64_binary_answers_like_the_native_slr(tmp_path):
    binary = cross_build(str(tmp_path / "slr"))
    for built in (binary, os.path.join(tmp_path, "libexec", "slruntime", "slr")):  # front, runtime
        with open(built, "rb") as elf:
            header = elf.read(20)
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64
    for args in (["--version"], ["features"], ["--help"], ["no-such-command"],
                 ["--root", str(tmp_path), "pool", "run", "p", "true"]):
        cross, native = qemu(binary, *args), subprocess.run(
            [VENV_SLR, *args], capture_output=True, text=True, timeout=60)
        assert (cross.returncode, cross.stdout, cross.stderr) == (
            native.returncode, native.stdout, native.stderr), args


def test_every_module_imports_on_aarch64(aarch64_probe):
    assert_every_module_imports(aarch64_probe, lambda names: qemu(aarch64_probe, *names))
