"""What the benchmark runs: one Variant per way of starting the same container.

A variant is either available (it has a command line) or not (it has a reason); an
available variant that fails at run time is reported as failed by the driver.
"""

import os
import shutil
import subprocess

from bench import faststart
from bench.bundle import SECCOMP_PROFILE
from bench.variant import Variant

FLOOR_PYTHON = "/usr/bin/python3"  # Debian's interpreter, the one the venv is made from


def _first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"unknown ({exc.strerror})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _oci_runtime(name, label, binary, root, bundle, hide_cgroup2=False, package=None, **how):
    if not binary:
        package = package or name
        return Variant(name, label, unavailable=f"{package} is not installed (Debian package {package})")
    return Variant(name, label,
                   argv=[binary, "--root", root, "run", "--bundle", bundle, "{id}"],
                   delete_argv=[binary, "--root", root, "delete", "--force", "{id}"],
                   version=_first_line([binary, "--version"]), hide_cgroup2=hide_cgroup2, **how)


def _slr_version(python):
    return _first_line([python, "-c", "import slruntime; print('slruntime', slruntime.__version__)"])


def _isolated_boot(python):
    """The -c program that starts slr under `python -I -S`: without site there is no
    sys.path entry for the venv, so it names the package's and the venv's directories."""
    out = subprocess.run(
        [python, "-c", "import os, sysconfig, slruntime\n"
                       "print(os.path.dirname(os.path.dirname(slruntime.__file__)))\n"
                       "print(sysconfig.get_path('purelib'))\nprint(sysconfig.get_path('platlib'))"],
        capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "cannot import slruntime"
    paths = list(dict.fromkeys(out.stdout.split()))
    return (f"import sys; sys.path[:0] = {paths!r}; from slruntime.cli import main; "
            "sys.exit(main())"), None


def page_in_from_disk(path):
    """Drop the file's pages from the page cache (written back first), so that the session
    reads it from disk, as a device does after boot. Right after a build, the pages the
    linker wrote stay cached as it wrote them, and a process mapping them had ~0.9 MiB
    more resident: the same compact binary peaked at 10.8 MiB in `slr run` (8.4 in
    --version) as linked, 9.9 (8.1) once read back from disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def discover(repo, root_dir, bundle, pool_bundle, seccomp_bundle=None, seccomp_unavailable=None):
    """All variants, in the order of the report; root_dir holds one state root per runtime.

    seccomp_bundle: the bundle with the layer's seccomp profile, or None with
    seccomp_unavailable saying why.
    """
    venv_python = os.path.join(repo, ".venv", "bin", "python")
    slr = os.path.join(repo, ".venv", "bin", "slr")
    compact = os.path.join(repo, "build", "compact", os.uname().machine, "slr")

    def root(name):
        return os.path.join(root_dir, name)

    variants = []
    if os.access(FLOOR_PYTHON, os.X_OK):
        variants.append(Variant("python-floor", "python3 -I -S -c pass",
                                argv=[FLOOR_PYTHON, "-I", "-S", "-c", "pass"],
                                version=_first_line([FLOOR_PYTHON, "--version"])))
    else:
        variants.append(Variant("python-floor", "python3 -I -S -c pass",
                                unavailable=f"{FLOOR_PYTHON} not found"))
    variants.append(_oci_runtime("runc", "runc run", shutil.which("runc"), root("runc"), bundle))
    variants.append(_oci_runtime("crun", "crun run", shutil.which("crun"), root("crun"), bundle,
                                 hide_cgroup2=True))

    slr_run = compact_run = None  # (binary, version) for the seccomp variants
    if os.access(slr, os.X_OK):
        run_args = ["--root", root("slr"), "run", "--bundle", bundle, "{id}"]
        delete_args = ["--root", root("slr"), "delete", "--force", "{id}"]
        version = _slr_version(venv_python)
        slr_run = (slr, version)
        variants.append(Variant("slr-start", "slr --version", argv=[slr, "--version"], version=version))
        variants.append(Variant("slr", "slr run", argv=[slr] + run_args,
                                delete_argv=[slr] + delete_args, version=version))
        boot, error = _isolated_boot(venv_python)
        if boot:
            variants.append(Variant("slr-isolated", "python3 -I -S slr run",
                                    argv=[venv_python, "-I", "-S", "-c", boot] + run_args,
                                    delete_argv=[slr] + delete_args, version=version))
        else:
            variants.append(Variant("slr-isolated", "python3 -I -S slr run",
                                    unavailable=f"slruntime not importable: {error}"))
    else:
        for name, label in (("slr-start", "slr --version"), ("slr", "slr run"),
                            ("slr-isolated", "python3 -I -S slr run")):
            variants.append(Variant(name, label, unavailable=f"{slr} not found (run tools/setup)"))

    compact_missing = None
    if os.access(compact, os.X_OK):
        page_in_from_disk(compact)
        version = _first_line([compact, "--version"])
        compact_run = (compact, version)
        variants.append(Variant("slr-compact-start", "compact slr --version", argv=[compact, "--version"],
                                version=version))
        variants.append(Variant("slr-compact", "compact slr run",
                                argv=[compact, "--root", root("slr-compact"), "run", "--bundle", bundle, "{id}"],
                                delete_argv=[compact, "--root", root("slr-compact"), "delete", "--force", "{id}"],
                                version=version))
    else:
        compact_missing = f"{os.path.relpath(compact, repo)} not built (runtime/compact)"
        for name, label in (("slr-compact-start", "compact slr --version"), ("slr-compact", "compact slr run")):
            variants.append(Variant(name, label, unavailable=compact_missing))
        compact = None

    variants.extend(faststart.variants(venv_python, slr, root("slr-fast"), pool_bundle, compact, compact_missing))
    variants.extend(_seccomp_variants(seccomp_bundle, seccomp_unavailable, root, slr_run, compact_run,
                                      f"{slr} not found (run tools/setup)", compact_missing))
    return variants


SECCOMP_VARIANTS = (  # name, label
    ("runc-seccomp", "runc run + seccomp"),
    ("crun-seccomp", "crun run + seccomp"),
    ("slr-seccomp", "slr run + seccomp (warm cache)"),
    ("slr-seccomp-cold", "slr run + seccomp (cold cache)"),
    ("slr-compact-seccomp", "compact slr run + seccomp (warm cache)"),
)
SECCOMP_REFERENCES = ("runc-seccomp", "crun-seccomp")


def _seccomp_variants(bundle, unavailable, root, slr, compact, slr_missing, compact_missing):
    """runc, crun, slr and the compact binary running `bundle` (the layer's default seccomp
    profile); slr with its cache of compiled programs warm (every run after the first)
    and cold (emptied before each run). slr, compact: (binary, version), or None when
    missing (slr_missing, compact_missing say why)."""
    labels = dict(SECCOMP_VARIANTS)
    if bundle is None:
        return [Variant(name, label, unavailable=unavailable) for name, label in SECCOMP_VARIANTS]
    how = {"references": SECCOMP_REFERENCES,
           "config_change": f"linux.seccomp: the layer's default profile ({SECCOMP_PROFILE}, applied to "
                            "every container on the target image by /etc/slr/slr.conf's seccomp-default)"}

    def slr_variant(name, runtime, missing, cold=False):
        if runtime is None:
            return Variant(name, labels[name], unavailable=missing)
        binary, version = runtime
        return Variant(name, labels[name], argv=[binary, "--root", root(name), "run", "--bundle", bundle, "{id}"],
                       delete_argv=[binary, "--root", root(name), "delete", "--force", "{id}"],
                       version=version, before_run=_empty_seccomp_cache(root(name)) if cold else None, **how)

    return [
        _oci_runtime("runc-seccomp", labels["runc-seccomp"], shutil.which("runc"), root("runc-seccomp"), bundle,
                     package="runc", **how),
        _oci_runtime("crun-seccomp", labels["crun-seccomp"], shutil.which("crun"), root("crun-seccomp"), bundle,
                     hide_cgroup2=True, package="crun", **how),
        slr_variant("slr-seccomp", slr, slr_missing),
        slr_variant("slr-seccomp-cold", slr, slr_missing, cold=True),
        slr_variant("slr-compact-seccomp", compact, compact_missing),
    ]


def _empty_seccomp_cache(state_root):
    """slr-seccomp-cold's before_run: removes the state root's compiled programs, after
    checking that the previous run stored one (else cold and warm would measure the same)."""
    from slruntime.seccomp import CACHE_DIR  # the driver runs in the venv, with slr

    cache = os.path.join(state_root, CACHE_DIR)
    first = True

    def before_run():
        nonlocal first
        if not first and not any(entry.endswith(".bpf") for entry in _listdir(cache)):
            return f"the previous run stored no compiled program in {cache}"
        first = False
        shutil.rmtree(cache, ignore_errors=True)
        return None
    return before_run


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
