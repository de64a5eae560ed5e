"""What the compact-binary tests share: builds with this Python, the module manifest of
a build, the import probe's check, Python-free machine views (conftest.py's fixtures
use them too)."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
BUILD_TOOL = os.path.join(REPO, "runtime", "compact", "build_compact.py")
SOURCES_CACHE = os.path.join(REPO, "build", "compact", "sources")
VIEW_TOOL = os.path.join(HERE, "python-free-view")


# The CPython source of this Python's exact version when the build cannot fetch it from
# the host's Debian release (the newest Python, built by runtime/compact/build_cpython.py).
PYTHON_SRC = os.environ.get("COMPACT_PYTHON_SRC")


def build_compact(output, *extra):
    """Runs the build tool with this Python; returns the CompletedProcess."""
    source = ["--python-src", PYTHON_SRC] if PYTHON_SRC else []
    return subprocess.run([sys.executable, BUILD_TOOL, "--output", output,
                           "--sources-cache", SOURCES_CACHE, *source, *extra],
                          capture_output=True, text=True, timeout=600)


def read_manifest(binary):
    """modules.txt of a build with the default build directory: {kind: {name: importer}}."""
    kinds = {}
    with open(binary + ".build/modules.txt", encoding="utf-8") as manifest:
        for line in manifest:
            if line.startswith("#"):
                continue
            kind, name, _, importer = line.split()
            kinds.setdefault(kind, {})[name] = importer
    return kinds


def assert_every_module_imports(probe_binary, run_probe):
    """Runs a probe build (import_probe.py as entry point) on every frozen and builtin
    module of its manifest; the only failures allowed are imports of modules the manifest
    lists as left out, excluded or not found. run_probe(args) -> CompletedProcess."""
    kinds = read_manifest(probe_binary)
    names = sorted(set(kinds["frozen"]) | set(kinds["frozen-in-libpython"])
                   | set(kinds["builtin"]) | set(kinds.get("builtin-compiled", {})))
    absent = set()
    for kind in ("left-out", "excluded", "not-found-optional"):
        absent |= set(kinds.get(kind, {}))
    # pyseccomp needs ctypes.util.find_library, which finds nothing without ldconfig: the
    # runtime imports it through slruntime.seccomp, which supplies the soname unless
    # ctypes.util is already imported (the runtime never imports it): first, then.
    names.remove("pyseccomp")
    names.insert(0, "slruntime.seccomp:_pyseccomp")
    result = run_probe(names)
    assert result.returncode == 0, result.stderr
    reports = [line.split(" ", 3) for line in result.stdout.splitlines()]
    assert [r[1] for r in reports] == names
    failures = [r for r in reports if r[0] == "error" or (
        r[0] == "missing" and not any(r[2] == a or r[2].startswith(a + ".") for a in absent))]
    assert failures == []
    imported = {r[1] for r in reports if r[0] == "ok"}
    assert {"slruntime.cli", "_ctypes", "_json", "_prctl"} <= imported


def make_view(binary, directory):
    """A Python-free machine view of `binary`; returns the path of its slr wrapper."""
    subprocess.run([VIEW_TOOL, binary, directory], check=True, timeout=120)
    return os.path.join(directory, "slr")
