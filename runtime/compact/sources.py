"""Fetches what the compact build compiles from, on a Debian host, into a cache:

- CPython's Modules/ (for _json, _ctypes and plain stdlib modules missing from the static
  libpython) from the Debian source package matching the headers' version, with
  `apt-get source` and a private deb-src list (the host may have no deb-src lines, and its
  apt configuration is not ours to change);
- python-prctl's sdist (for _prctl and prctl.py) with `pip download --no-binary`.

- for cross builds on this host, a foreign architecture's -dev packages unpacked into a
  sysroot (cross_build.py).

Yocto builds pass --python-src and --prctl-src instead and never fetch.
"""

import glob
import os
import shutil
import subprocess
import sys
import tarfile


class FetchError(Exception):
    """A source could not be fetched."""


def os_codename():
    with open("/etc/os-release", encoding="utf-8") as release:
        for line in release:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise FetchError("cannot tell the Debian release from /etc/os-release")


class PrivateApt:
    """apt-get/apt-cache with their own source list, indexes and cache under `directory`:
    the host's apt configuration (which may lack deb-src lines or a foreign
    architecture) is neither needed nor changed. `kind` is "deb-src" or "deb"; `codename`
    the Debian release (default: the host's)."""

    def __init__(self, directory, kind, architecture=None, codename=None):
        self.directory = directory
        codename = codename or os_codename()
        option = f" [arch={architecture}]" if architecture else ""
        for sub in ("lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        with open(os.path.join(directory, "sources.list"), "w", encoding="utf-8") as lines:
            lines.write(f"{kind}{option} http://deb.debian.org/debian {codename} main\n"
                        f"{kind}{option} http://deb.debian.org/debian {codename}-updates main\n"
                        f"{kind}{option} http://deb.debian.org/debian-security "
                        f"{codename}-security main\n")
        open(os.path.join(directory, "status"), "a").close()
        self.options = [
            f"-oDir::Etc::SourceList={directory}/sources.list",
            "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State::Lists={directory}/lists",
            f"-oDir::State::status={directory}/status",
            f"-oDir::Cache={directory}/cache",
            "-oAPT::Sandbox::User=root",
        ]
        if architecture:
            self.options += [f"-oAPT::Architecture={architecture}",
                             f"-oAPT::Architectures::={architecture}"]
        self.run("apt-get", "-qq", "update")

    def run(self, program, *arguments, cwd=None):
        result = subprocess.run([program] + self.options + list(arguments), cwd=cwd,
                                capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["failed"])[-1]
            raise FetchError(f"{program} {' '.join(arguments)}: {last}")
        return result.stdout


def _safe(members):
    """Regular files and directories staying inside the extraction directory (this
    Python may predate tarfile's extraction filters)."""
    return [m for m in members
            if (m.isfile() or m.isdir()) and not os.path.isabs(m.name)
            and ".." not in m.name.split("/")]


def upstream_versions(apt, package):
    """Debian versions of the source `package` the private apt offers, newest first."""
    versions = [line.split(":", 1)[1].strip()
                for line in apt.run("apt-cache", "showsrc", package).splitlines()
                if line.startswith("Version:")]
    return sorted(versions, key=DebianVersion, reverse=True)


def upstream(debian_version):
    """The upstream part of a Debian version: 3.13.5 of 3.13.5-2+deb13u5."""
    return debian_version.split(":")[-1].rsplit("-", 1)[0]


class DebianVersion:
    """Orders Debian versions as dpkg does (dpkg --compare-versions)."""

    def __init__(self, text):
        self.text = text

    def __lt__(self, other):
        return subprocess.run(["dpkg", "--compare-versions", self.text, "lt", other.text]
                              ).returncode == 0


def cpython_tarball(apt, package, version, download, release):
    """The path of CPython `version`'s orig tarball of Debian's source `package`
    (pythonX.Y), downloaded into `download` once."""
    orig = _orig_tarball(download, package, version)
    if orig:
        return orig
    versions = upstream_versions(apt, package)
    # Every Debian revision of this upstream version has the same orig tarball; some
    # revisions may be missing from the mirror, so try them all.
    os.makedirs(download, exist_ok=True)
    for candidate in [v for v in versions if upstream(v) == version]:
        try:
            apt.run("apt-get", "-qq", "source", "--download-only", f"{package}={candidate}",
                    cwd=download)
            break
        except FetchError:
            continue
    orig = _orig_tarball(download, package, version)
    if not orig:
        raise FetchError(f"no source of {package} {version} in Debian {release} "
                         f"(versions offered: {', '.join(versions) or 'none'})")
    return orig


def _orig_tarball(download, package, version):
    """The upstream tarball apt-get source left in `download` (not its .asc), or None."""
    found = [path for path in glob.glob(os.path.join(download, f"{package}_{version}.orig.tar.*"))
             if not path.endswith(".asc")]
    return found[0] if found else None


def extract(tarball, target, keep=lambda parts: True):
    """Unpacks `tarball` without its top directory into `target` (made anew, atomically);
    `keep(path parts)` selects members."""
    with tarfile.open(tarball) as archive:
        members = [m for m in _safe(archive.getmembers())
                   if "/" in m.name and keep(m.name.split("/")[1:])]
        staging = target + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        for member in members:
            member.name = member.name.split("/", 1)[1]
        archive.extractall(staging, members=members)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)


def cpython_modules(cache, version):
    """A directory holding CPython `version`'s Modules/ tree (fetched once per cache)."""
    target = os.path.join(cache, f"cpython-{version}")
    if os.path.isfile(os.path.join(target, "Modules", "_json.c")):
        return target
    package = "python" + ".".join(version.split(".")[:2])
    apt = PrivateApt(os.path.join(cache, "apt-src"), "deb-src")
    tarball = cpython_tarball(apt, package, version, os.path.join(cache, "download"),
                              os_codename())
    extract(tarball, target, keep=lambda parts: parts[:1] == ["Modules"])
    return target


def debian_sysroot(cache, architecture, packages):
    """A directory holding `packages` (e.g. libpython3.11-dev) of a foreign Debian
    architecture unpacked, for cross builds on this host; made once per cache."""
    target = os.path.join(cache, f"sysroot-{architecture}")
    stamp = os.path.join(target, ".packages")
    if os.path.isfile(stamp) and open(stamp, encoding="utf-8").read() == " ".join(packages):
        return target
    apt = PrivateApt(os.path.join(cache, f"apt-{architecture}"), "deb", architecture)
    download = os.path.join(cache, f"download-{architecture}")
    shutil.rmtree(download, ignore_errors=True)
    os.makedirs(download)
    apt.run("apt-get", "-qq", "download", *[f"{p}:{architecture}" for p in packages],
            cwd=download)
    shutil.rmtree(target, ignore_errors=True)
    for deb in sorted(glob.glob(os.path.join(download, "*.deb"))):
        subprocess.run(["dpkg-deb", "-x", deb, target], check=True)
    with open(stamp, "w", encoding="utf-8") as done:
        done.write(" ".join(packages))
    return target


def prctl_source(cache, version):
    """A directory holding python-prctl `version`'s sdist (fetched once per cache)."""
    target = os.path.join(cache, f"python-prctl-{version}")
    if os.path.isfile(os.path.join(target, "_prctlmodule.c")):
        return target
    download = os.path.join(cache, "download")
    os.makedirs(download, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--no-deps", "--no-binary", ":all:", "-d", download, f"python-prctl=={version}"],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"pip download python-prctl=={version}: "
                         f"{result.stderr.strip().splitlines()[-1:]}")
    sdist = glob.glob(os.path.join(download, f"python-prctl-{version}.tar.gz"))
    if not sdist:
        raise FetchError(f"pip download left no python-prctl-{version}.tar.gz")
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(sdist[0]) as archive:
        archive.extractall(staging, members=_safe(archive.getmembers()))
    os.replace(os.path.join(staging, f"python-prctl-{version}"), target)
    shutil.rmtree(staging)
    return target
