"""Debian packages of a foreign architecture, fetched with the host's apt-get.

apt runs against a private state directory (its own package lists and an empty
dpkg status), so the host's dpkg database is never touched and no foreign
architecture has to be added to it.  Only `apt-get update`, `apt-cache show`
and `apt-get download` are used: nothing is installed or executed.
"""
import hashlib
import os
import subprocess
import time

DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}

# Package lists older than this are refreshed; a failing refresh with lists
# present only warns, so an offline rebuild from the cache still works.
LISTS_MAX_AGE = 24 * 3600


class AptError(Exception):
    pass


class TargetApt:
    def __init__(self, arch, cache_dir):
        self.debian_arch = DEBIAN_ARCH[arch]
        self.root = os.path.join(cache_dir, "apt", self.debian_arch)
        self.debs = os.path.join(cache_dir, "debs", self.debian_arch)
        for sub in ("lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        os.makedirs(self.debs, exist_ok=True)
        status = os.path.join(self.root, "status")
        if not os.path.exists(status):
            open(status, "w").close()
        self._options = [
            "-o", f"APT::Architecture={self.debian_arch}",
            "-o", f"APT::Architectures::={self.debian_arch}",
            "-o", f"Dir::State::Lists={self.root}/lists",
            "-o", f"Dir::State::status={status}",
            "-o", f"Dir::Cache={self.root}/cache",
            "-o", "Debug::NoLocking=1",
        ]

    def _run(self, tool, *args, cwd=None):
        proc = subprocess.run([tool, "-q", *self._options, *args], cwd=cwd,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise AptError(f"{tool} {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def update(self, force=False):
        lists = os.path.join(self.root, "lists")
        have = [n for n in os.listdir(lists) if n.endswith("_Packages")]
        if have and not force:
            age = time.time() - min(os.path.getmtime(os.path.join(lists, n)) for n in have)
            if age < LISTS_MAX_AGE:
                return
        try:
            self._run("apt-get", "update")
        except AptError as error:
            if not have:
                raise
            print(f"image: warning: keeping old package lists ({error})")

    def show(self, packages):
        """Candidate version, pool file name and SHA256 of each package."""
        out = self._run("apt-cache", "show", "--no-all-versions", *packages)
        found = {}
        for stanza in out.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line and not line[0].isspace() and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "Package" in fields:
                found[fields["Package"]] = fields
        missing = sorted(set(packages) - set(found))
        if missing:
            raise AptError(f"no {self.debian_arch} package named {', '.join(missing)}")
        return found

    def download(self, packages):
        """Returns {package: path of its .deb}, fetching only what the cache lacks."""
        info = self.show(packages)
        pinned = [f"{name}={fields['Version']}" for name, fields in info.items()]
        # --print-uris names the file apt-get download saves (epochs become %3a).
        saved_as = {}
        for line in self._run("apt-get", "--print-uris", "download", *pinned).splitlines():
            _uri, filename, _size, checksum = line.split()
            saved_as[filename.split("_", 1)[0]] = (filename, checksum.partition(":")[2])
        paths = {}
        wanted = []
        for name in info:
            filename, checksum = saved_as[name]
            paths[name] = os.path.join(self.debs, filename)
            if not (os.path.exists(paths[name]) and _sha256(paths[name]) == checksum):
                wanted.append(f"{name}={info[name]['Version']}")
        if wanted:
            self._run("apt-get", "download", *wanted, cwd=self.debs)
        for name, path in paths.items():
            if _sha256(path) != saved_as[name][1]:
                raise AptError(f"{path}: checksum differs from the archive's")
        return paths


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
