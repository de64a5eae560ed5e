"""Looking at a rootfs from the inside: paths resolved as the container will see them.

Symlinks are followed relative to the rootfs (an absolute link target means the rootfs's
own root, `..` stops at it), so analysing a rootfs never reads files of the host.
"""

import glob
import os
import stat

_MAX_LINKS = 40
_ELF_MAGIC = b"\x7fELF"
# Library directories the dynamic loaders search by default (glibc: multiarch and lib64;
# musl: /lib, /usr/local/lib, /usr/lib).
_DEFAULT_LIBDIRS = {
    "x86_64": ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"],
    "aarch64": ["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"],
}
_COMMON_LIBDIRS = ["/lib", "/usr/lib", "/usr/local/lib"]


class Rootfs:
    def __init__(self, root):
        if not os.path.isdir(root):
            raise ValueError(f"rootfs is not a directory: {root}")
        self.root = os.path.abspath(root)
        self._ld_conf = None

    def resolve(self, path):
        """Host path of `path` inside the rootfs, all symlinks followed; None if absent."""
        parts = [p for p in path.split("/") if p and p != "."]
        resolved = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.root, *resolved, part)
            try:
                mode = os.lstat(candidate).st_mode
            except OSError:
                return None
            if stat.S_ISLNK(mode):
                links += 1
                if links > _MAX_LINKS:
                    return None
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            resolved.append(part)
        return os.path.join(self.root, *resolved)

    def inside(self, host_path):
        """The rootfs-relative absolute path of a host path returned by resolve()."""
        relative = os.path.relpath(host_path, self.root)
        return "/" if relative == "." else "/" + relative

    def find_program(self, name, search_path):
        """Host path of a program named like process.args[0] (searched in PATH when bare)."""
        if "/" in name:
            return self.resolve(name)
        for directory in search_path.split(":"):
            if directory:
                found = self.resolve(os.path.join(directory, name))
                if found and os.path.isfile(found):
                    return found
        return None

    def library_dirs(self, arch):
        """Directories searched for DT_NEEDED after RPATH/RUNPATH: ld.so.conf, defaults."""
        if self._ld_conf is None:
            self._ld_conf = []
            self._read_ld_conf("/etc/ld.so.conf", 0)
            for musl_path in glob.glob(os.path.join(self.root, "etc", "ld-musl-*.path")):
                with open(musl_path) as stream:
                    self._ld_conf += stream.read().replace(":", "\n").split()
        return self._ld_conf + _DEFAULT_LIBDIRS[arch] + _COMMON_LIBDIRS

    def _read_ld_conf(self, path, depth):
        host = self.resolve(path)
        if host is None or depth > 8 or not os.path.isfile(host):
            return
        with open(host) as stream:
            for line in stream:
                line = line.split("#")[0].strip()
                if line.startswith("include "):
                    pattern = line.split(None, 1)[1]
                    if not pattern.startswith("/"):
                        pattern = os.path.join(os.path.dirname(path), pattern)
                    for match in sorted(glob.glob(os.path.join(self.root, pattern.lstrip("/")))):
                        self._read_ld_conf(self.inside(match), depth + 1)
                elif line:
                    self._ld_conf.append(line)

    def elf_files(self):
        """Rootfs paths of regular ELF files: (executables, shared libraries).

        Executables are ELF files with an execute bit and without a DT_SONAME-looking
        name; the rest (lib*.so*, Python extension modules, ...) are libraries.
        """
        executables, libraries = [], []
        for directory, subdirs, files in os.walk(self.root):
            subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
            for name in files:
                host = os.path.join(directory, name)
                try:
                    info = os.lstat(host)
                    if not stat.S_ISREG(info.st_mode) or info.st_size < 64:
                        continue
                    with open(host, "rb") as stream:
                        if stream.read(4) != _ELF_MAGIC:
                            continue
                except OSError:
                    continue
                if ".so" in name:
                    libraries.append(self.inside(host))
                elif info.st_mode & 0o111:
                    executables.append(self.inside(host))
        return sorted(executables), sorted(libraries)

