"""Assembles the read-only root file system of the CI image in a directory.

Everything comes from Debian packages unpacked with `dpkg-deb -x`, the
layer's layout files (read through its layout.manifest, never copied), the
compact slr (runtime/compact: its static front and frozen runtime), and a few generated base files: no Python
interpreter, stdlib or .py/.pyc file.  No
target binary is executed: ELF files are only read (see elf.py).
"""
import json
import os
import shutil
import stat
import subprocess
import sys

from slruntime.specgen import default_config

from . import elf

# The packages of the product root file system, for every architecture: what the
# compact slr needs (libc, libm, libz; libseccomp, which it loads by soname) and
# busybox for init, the shell and the tools.  Their shared-library closure is checked
# after unpacking (check_libraries), so a missing library fails the build with its name.
PRODUCT_PACKAGES = ["libc6", "busybox-static", "libseccomp2", "zlib1g"]

# The benchmark overlay: the runtimes slr is compared with, and their libraries beyond
# the product's.  Never part of the product root; the guest mounts it only for
# benchmark runs (hwtests/overlays.py).
BENCH_PACKAGES = ["runc", "crun", "libyajl2", "libsystemd0", "libgcrypt20", "libgpg-error0",
                  "liblz4-1", "libzstd1", "liblzma5", "libcap2"]

# Where the compact slr's front (/usr/bin/slr) executes the frozen runtime from: the
# Yocto recipe's ${libexecdir}/slruntime/slr.
FROZEN_RUNTIME = "/usr/libexec/slruntime/slr"

# contents(): files at least this large are listed in the image's manifest.
CONTENTS_THRESHOLD = 100 * 1024

SHARE_PRUNE = ["doc", "man", "info", "locale", "lintian", "bug", "bash-completion",
               "zsh", "fish", "gdb", "apport"]

BUNDLE = "usr/share/slr/bundles/busybox"
# The container the image starts at boot (install_first_container), and what it prints.
FIRST_BUNDLE = "usr/share/slr/bundles/first"
FIRST_OUTPUT = "slr-ci: first container says hello"
FIRST_CONTAINER_SCRIPT = f"""#!/bin/sh
# Started by slr-sysinit (`S90first-container start`): the image's first container.
[ "$1" = start ] || exit 0
slr run --bundle /{FIRST_BUNDLE} first || echo "first-container: slr exited $?"
"""
# Applets the test bundle's rootfs offers to its containers.
BUNDLE_APPLETS = ["sh", "true", "false", "sleep", "cat", "echo", "ls", "id", "env",
                  "mkdir", "rm", "touch", "dd", "head", "grep", "sed", "ps",
                  "kill", "hostname", "wc", "yes", "seq", "uname", "mount", "stat"]

class ImageError(Exception):
    pass


def unpack(debs, root):
    for deb in sorted(debs):
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)


def prune(root):
    share = os.path.join(root, "usr/share")
    for name in SHARE_PRUNE:
        shutil.rmtree(os.path.join(share, name), ignore_errors=True)
    # glibc's iconv modules: nothing in the image converts character sets.
    for multiarch in os.listdir(os.path.join(root, "usr/lib")):
        shutil.rmtree(os.path.join(root, "usr/lib", multiarch, "gconv"), ignore_errors=True)


def busybox_applets(host_busybox):
    """Applet install paths (e.g. 'sbin/init') of this busybox version.

    The list comes from the host-architecture build of the same Debian
    version (Debian configures busybox-static identically on every
    architecture), so no target binary runs.
    """
    out = subprocess.run([host_busybox, "--list-full"], check=True,
                         capture_output=True, text=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def link_applets(root, applets):
    for applet in applets:
        path = os.path.join(root, applet)
        if os.path.lexists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(os.path.relpath(os.path.join(root, "bin/busybox"), os.path.dirname(path)), path)


def install_slr(root, front, frozen_runtime):
    """The compact slr (runtime/compact) is the image's slr, as the Yocto recipe installs
    it: the static front as /usr/bin/slr, executing the frozen runtime from
    FROZEN_RUNTIME (its path is built into the front); no interpreter, no Python files."""
    for binary, path in ((front, "/usr/bin/slr"), (frozen_runtime, FROZEN_RUNTIME)):
        target = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(binary, target)
        os.chmod(target, 0o755)


def install_layout(root, files_dir):
    """Installs the layer's layout files as its layout.manifest lists them:
    `<file> <dest> <mode>` or `dir <path> <mode>`, one per line."""
    manifest = os.path.join(files_dir, "layout.manifest")
    if not os.path.exists(manifest):
        raise ImageError(f"{manifest} is missing: the layer's layout files are required")
    installed = []
    with open(manifest) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 3:
                raise ImageError(f"{manifest}:{number}: expected 3 fields, got {line!r}")
            source, dest, mode = fields[0], fields[1].lstrip("/"), int(fields[2], 8)
            target = os.path.join(root, dest)
            if source == "dir":
                os.makedirs(target, exist_ok=True)
                os.chmod(target, mode)
            else:
                path = os.path.join(files_dir, source)
                if not os.path.isfile(path):
                    raise ImageError(f"{manifest}:{number}: {source} does not exist")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.lexists(target):
                    os.remove(target)
                shutil.copyfile(path, target)
                os.chmod(target, mode)
            installed.append("/" + dest)
    return installed


def install_base_files(root, hostname, arch):
    """What base-files and base-passwd give a Yocto image: accounts, names,
    mount points.  The layer's layout files are installed afterwards and win."""
    write(root, "etc/passwd", "root::0:0:root:/root:/bin/sh\n", 0o644)
    write(root, "etc/group", "root:x:0:\n", 0o644)
    write(root, "etc/hostname", hostname + "\n", 0o644)
    write(root, "etc/os-release",
          'NAME="slruntime CI image"\nID=slruntime-ci\n'
          f'PRETTY_NAME="slruntime CI image ({arch}, Debian packages)"\n', 0o644)
    write(root, "etc/profile",
          "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
          # busybox ash's \u prompt escape stays empty here; login sets USER.
          "PS1=\"${USER:-root}\"'@\\h:\\w\\$ '\n", 0o644)
    for mountpoint in ("proc", "sys", "dev", "run", "tmp", "root", "mnt", "var/volatile"):
        os.makedirs(os.path.join(root, mountpoint), exist_ok=True)
    # As oe-core's base-files: the writable parts of /var live on the
    # /var/volatile tmpfs of the layer's fstab.
    for name in ("log", "tmp"):
        os.symlink(f"volatile/{name}", os.path.join(root, "var", name))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.chmod(os.path.join(root, "root"), 0o700)


def install_bundle(root):
    """A busybox OCI bundle under /usr/share/slr/bundles/busybox: a static
    busybox and the applets the tests use.  Its config.json is what
    `runc spec` gives, made read-only and non-interactive."""
    bundle = os.path.join(root, BUNDLE)
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copyfile(os.path.join(root, "bin/busybox"), os.path.join(rootfs, "bin/busybox"))
    os.chmod(os.path.join(rootfs, "bin/busybox"), 0o755)
    for applet in BUNDLE_APPLETS:
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    for mountpoint in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, mountpoint), exist_ok=True)
    write(rootfs, "etc/passwd", "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644)
    write(rootfs, "etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)
    write(bundle, "config.json", json.dumps(bundle_config(), indent=2) + "\n", 0o644)


def install_first_container(root):
    """A start script that runs one container at boot, as a product starts its
    application: the bundle `first` (the busybox bundle's rootfs, slr.conf's default
    seccomp profile) prints FIRST_OUTPUT on the console, before the login prompt.
    SlrStrategy times it from QEMU's start (boot to the first container's output)."""
    config = bundle_config(["echo", FIRST_OUTPUT])
    config["root"]["path"] = f"/{BUNDLE}/rootfs"
    write(root, FIRST_BUNDLE + "/config.json", json.dumps(config, indent=2) + "\n", 0o644)
    write(root, "etc/rcS.d/S90first-container", FIRST_CONTAINER_SCRIPT, 0o755)


def profile_bundle(root, arch, runtime_package, report):
    """Generates the bundle's seccomp profile from the image's own binaries and names it
    in config.json (the image default slr applies), as the layer's
    slruntime_seccomp_profile class does at build time; the text report goes to `report`."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(runtime_package)))
    subprocess.run(
        [sys.executable, "-m", "slruntime.profile", "--bundle", os.path.join(root, BUNDLE),
         "--host-root", root, "--arch", arch, "--install", "--report", report],
        check=True, env=env)


def bundle_config(args=("sh",)):
    """The OCI config of the test bundle: `slr spec`'s defaults (specgen.default_config)
    with a non-interactive process, PATH=/bin, no cgroup namespace or cgroup mount (the
    image has no cgroup v1 hierarchy), devpts without gid=5 (no tty group in the image)
    and a tmpfs /tmp (the bundle's rootfs is read-only).
    ociVersion 1.0.2: crun <= 1.8 rejects newer versions."""
    config = default_config(args=args, terminal=False)
    config["ociVersion"] = "1.0.2"
    config["process"]["env"] = ["PATH=/bin", "TERM=xterm"]
    mounts = []
    for mount in config["mounts"]:
        if mount["destination"] == "/sys/fs/cgroup":
            continue
        if mount["destination"] == "/dev/pts":
            mount["options"] = [o for o in mount["options"] if o != "gid=5"]
        mounts.append(mount)
    mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]})
    config["mounts"] = mounts
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "cgroup"]
    return config


def check_libraries(root, providers=()):
    """Every dynamically linked ELF file under root must find its interpreter and
    each DT_NEEDED library in the library directories of root or of the
    `providers` (the product root, for an overlay whose programs run with it)."""
    available = set()
    for tree in (root, *providers):
        available.update(_sonames(tree))
    problems = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.stat(path).st_mode & 0o111 and ".so" not in name:
                continue
            try:
                binary = elf.Elf(path)
            except (elf.NotElf, OSError):
                continue
            interp = binary.interpreter()
            if interp and not any(os.path.exists(os.path.join(tree, interp.lstrip("/")))
                                  for tree in (root, *providers)):
                problems.append(f"/{os.path.relpath(path, root)}: no interpreter {interp}")
            for soname in binary.needed():
                if soname not in available:
                    problems.append(f"/{os.path.relpath(path, root)}: needs {soname}")
    if problems:
        raise ImageError("missing libraries (add their packages to the package list):\n  "
                         + "\n  ".join(sorted(problems)))


def library_dirs(root):
    """The directories the dynamic loader searches by default, relative to root."""
    libdirs = ["lib", "usr/lib", "lib64", "usr/lib64"]
    for parent in ("lib", "usr/lib"):
        if os.path.isdir(os.path.join(root, parent)):
            libdirs += [f"{parent}/{d}" for d in sorted(os.listdir(os.path.join(root, parent)))
                        if d.endswith("-linux-gnu")]
    return [d for d in libdirs if os.path.isdir(os.path.join(root, d))]


def _sonames(root):
    names = set()
    for d in library_dirs(root):
        names.update(os.listdir(os.path.join(root, d)))
    return names


def contents(root, threshold=CONTENTS_THRESHOLD):
    """What the image holds: the installed size (bytes of regular files and
    symlinks, as `du --apparent-size` counts them), the number of files, and
    every regular file of at least `threshold` bytes, largest first."""
    installed, files, large = 0, 0, []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            installed += info.st_size
            files += 1
            if stat.S_ISREG(info.st_mode) and info.st_size >= threshold:
                large.append(("/" + os.path.relpath(path, root), info.st_size))
    large.sort(key=lambda entry: (-entry[1], entry[0]))
    return {"installed_bytes": installed, "files": files,
            "large_files": [{"path": p, "bytes": n} for p, n in large]}


def write(root, relpath, text, mode):
    path = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)

