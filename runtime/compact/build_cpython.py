#!/usr/bin/env python3
"""Builds a newer CPython than the host's from a Debian release's source package, once
per version, for testing the runtime and the compact binary on it:

    build_cpython.py --cache build/cpython [--release trixie] [--series 3.13]

prints the installation prefix (CACHE/VERSION, e.g. build/cpython/3.13.5) holding
`bin/python3` (-> pythonX.Y), the static `libpythonX.Y.a` under `lib/pythonX.Y/config-X.Y-*/`, and
`src/`, the unpacked upstream source whose `Modules/` the compact build compiles from
(`build_compact.py --python-src PREFIX/src`): interpreter, library and C sources are of
exactly one version. The upstream tarball (Debian's `.orig.tar.xz`, without Debian's
patches) comes through `apt-get source` with a private deb-src list (sources.py); the host
needs the C toolchain and the -dev packages of tools/deps/runtime-newest.apt.

Why not the interpreters some hosts carry (pyenv's): their sources are not on this
network (only PyPI and Debian's archive are reachable), and they live under /root, which
the rootless tests' unprivileged user cannot read.
"""

import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import sources  # noqa: E402  (module of this tool, next to it)

# Configure options: a plain static interpreter (libpythonX.Y.a, no libpython.so), no
# PGO/LTO (minutes more of build for a test interpreter), no pip in the prefix (venvs
# get theirs from ensurepip's bundled wheel).
CONFIGURE = ("--disable-shared", "--with-ensurepip=no", "--without-doc-strings")
DONE = ".complete"  # written last: a prefix without it is an interrupted build


def build(cache, release, series):
    """The prefix of the newest CPython `series` (3.13) of Debian `release`, built once."""
    cache = os.path.abspath(cache)
    package = f"python{series}"
    apt = sources.PrivateApt(os.path.join(cache, f"apt-{release}"), "deb-src",
                             codename=release)
    versions = sources.upstream_versions(apt, package)
    if not versions:
        raise sources.FetchError(f"Debian {release} has no source package {package}")
    version = sources.upstream(versions[0])
    prefix = os.path.join(cache, version)
    if os.path.isfile(os.path.join(prefix, DONE)):
        return prefix
    tarball = sources.cpython_tarball(apt, package, version,
                                      os.path.join(cache, "download"), release)
    shutil.rmtree(prefix, ignore_errors=True)
    source = os.path.join(prefix, "src")
    sources.extract(tarball, source)
    work = os.path.join(cache, f"build-{version}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    jobs = str(len(os.sched_getaffinity(0)))
    for command in ([os.path.join(source, "configure"), f"--prefix={prefix}", *CONFIGURE],
                    ["make", "-j", jobs], ["make", "install"]):
        log = os.path.join(work, f"{os.path.basename(command[0])}.log")
        with open(log, "a", encoding="utf-8") as output:
            result = subprocess.run(command, cwd=work, stdout=output,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise sources.FetchError(f"{' '.join(command[:2])} failed, see {log}")
    shutil.rmtree(work)
    open(os.path.join(prefix, DONE), "w").close()
    return prefix


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="where builds are kept, by version")
    parser.add_argument("--release", default="trixie", help="Debian release (%(default)s)")
    parser.add_argument("--series", default="3.13", help="CPython X.Y (%(default)s)")
    args = parser.parse_args(argv)
    try:
        print(build(args.cache, args.release, args.series))
    except sources.FetchError as error:
        print(f"build_cpython: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
