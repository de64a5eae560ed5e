"""Assembles the read-only root file system of the CI image in a directory.

Everything comes from Debian packages unpacked with `dpkg-deb -x`, the
layer's layout files (read through its layout.manifest, never copied), the
slruntime sources compiled to .pyc, and a few generated base files.  No
target binary is executed: ELF files are only read (see elf.py).
"""
import compileall
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import zipfile

from . import elf

# The packages of the root file system, for every architecture.  Their
# shared-library closure is checked after unpacking (check_libraries), so a
# missing library fails the build with its name instead of at boot.
ROOTFS_PACKAGES = [
    "libc6", "libgcc-s1", "busybox-static",
    # python3.11 and the parts of its stdlib the runtime can use
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
    "libexpat1", "zlib1g", "libffi8", "libssl3", "libbz2-1.0", "liblzma5",
    "libuuid1", "libcrypt1",
    # slruntime's native dependencies
    "libseccomp2", "libcap2", "python3-prctl",
    # the runtimes it is compared with, and crun's libraries
    "runc", "crun", "libyajl2", "libsystemd0", "libgcrypt20", "libgpg-error0",
    "liblz4-1", "libzstd1",
]

# Stdlib parts an embedded container runtime never uses; the extension
# modules listed also need libraries (ncurses, readline, sqlite, db, nsl)
# the image does not ship.
PYTHON_PRUNE = [
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
    "pydoc_data", "sqlite3", "curses", "dbm/gnu.py", "dbm/ndbm.py",
    "turtle.py",
]
PYTHON_PRUNE_EXTENSIONS = re.compile(
    r"^(_curses|_curses_panel|_dbm|_sqlite3|nis|readline|_test\w*|_ctypes_test"
    r"|xxlimited\w*|_xxtestfuzz|_xxsubinterpreters|ossaudiodev|audioop)\.cpython-")
SHARE_PRUNE = ["doc", "man", "info", "locale", "lintian", "bug", "bash-completion",
               "zsh", "fish", "gdb"]

DIST_PACKAGES = "usr/lib/python3/dist-packages"
BUNDLE = "usr/share/slr/bundles/busybox"
# Applets the test bundle's rootfs offers to its containers.
BUNDLE_APPLETS = ["sh", "true", "false", "sleep", "cat", "echo", "ls", "id", "env",
                  "mkdir", "rm", "touch", "dd", "head", "grep", "sed", "ps",
                  "kill", "hostname", "wc", "yes", "seq", "uname", "mount", "stat"]

SLR_LAUNCHER = """#!/usr/bin/python3.11 -IS
# slr: the slruntime command line (-S: no site import, the path is set here;
# one option word: the kernel passes the rest of the line as one argument).
import sys
sys.path.append("/usr/lib/python3/dist-packages")
from slruntime.cli import main
sys.exit(main())
"""


class ImageError(Exception):
    pass


def unpack(debs, root):
    for deb in sorted(debs):
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)


def prune(root, python):
    share = os.path.join(root, "usr/share")
    for name in SHARE_PRUNE:
        shutil.rmtree(os.path.join(share, name), ignore_errors=True)
    # glibc's iconv modules: nothing in the image converts character sets.
    for multiarch in os.listdir(os.path.join(root, "usr/lib")):
        shutil.rmtree(os.path.join(root, "usr/lib", multiarch, "gconv"), ignore_errors=True)
    stdlib = os.path.join(root, "usr/lib", python)
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
    # Debian's maintainer-script helpers and egg-info metadata are not used at run time.
    for dirpath, dirnames, filenames in os.walk(root):
        for d in [d for d in dirnames if d.endswith((".egg-info", ".dist-info"))]:
            shutil.rmtree(os.path.join(dirpath, d))
            dirnames.remove(d)


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


def compile_stdlib(root, python):
    """Byte-compiles the stdlib ahead of time.  unchecked-hash .pyc are never
    compared with their source, so the read-only root costs no stat() per
    import and no write is ever attempted."""
    stdlib = os.path.join(root, "usr/lib", python)
    ok = compileall.compile_dir(
        stdlib, ddir=f"/usr/lib/{python}", quiet=2, workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        raise ImageError(f"byte-compiling {stdlib} failed")


def compile_sourceless(directory, ddir):
    """Compiles every .py under directory to a .pyc beside it and removes the
    source: the runtime and its Python dependencies ship as .pyc only."""
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in sorted(dirnames) if d != "__pycache__"]
        shutil.rmtree(os.path.join(dirpath, "__pycache__"), ignore_errors=True)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            source = os.path.join(dirpath, name)
            dfile = os.path.join(ddir, os.path.relpath(source, directory))
            py_compile.compile(
                source, cfile=source + "c", dfile=dfile, doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            os.remove(source)


def install_runtime(root, runtime_package, pyseccomp_wheel, compact_binary):
    dist = os.path.join(root, DIST_PACKAGES)
    os.makedirs(dist, exist_ok=True)
    shutil.copytree(runtime_package, os.path.join(dist, "slruntime"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    with zipfile.ZipFile(pyseccomp_wheel) as wheel:
        for member in sorted(wheel.namelist()):
            if not member.endswith("/") and ".dist-info/" not in member:
                wheel.extract(member, dist)
    compile_sourceless(dist, "/" + DIST_PACKAGES)
    write(root, "usr/bin/slr", SLR_LAUNCHER, 0o755)
    if compact_binary:
        shutil.copyfile(compact_binary, os.path.join(root, "usr/bin/slr-compact"))
        os.chmod(os.path.join(root, "usr/bin/slr-compact"), 0o755)


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
    """The default OCI config of the test bundle (runc spec's defaults).
    ociVersion 1.0.2: crun <= 1.8 rejects newer versions."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {kind: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                             for kind in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "slr",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def check_libraries(root):
    """Every dynamically linked ELF file must find its interpreter and each
    DT_NEEDED library in the image's library directories."""
    libdirs = ["lib", "usr/lib", "lib64", "usr/lib64"]
    multiarch = [d for d in os.listdir(os.path.join(root, "usr/lib")) if d.endswith("-linux-gnu")]
    libdirs += [f"lib/{m}" for m in multiarch] + [f"usr/lib/{m}" for m in multiarch]
    available = set()
    for d in libdirs:
        if os.path.isdir(os.path.join(root, d)):
            available.update(os.listdir(os.path.join(root, d)))
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
            if interp and not os.path.exists(os.path.join(root, interp.lstrip("/"))):
                problems.append(f"/{os.path.relpath(path, root)}: no interpreter {interp}")
            for soname in binary.needed():
                if soname not in available:
                    problems.append(f"/{os.path.relpath(path, root)}: needs {soname}")
    if problems:
        raise ImageError("missing libraries (add their packages to ROOTFS_PACKAGES):\n  "
                         + "\n  ".join(sorted(problems)))


def write(root, relpath, text, mode):
    path = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def python_of(root):
    names = [n for n in os.listdir(os.path.join(root, "usr/lib")) if re.fullmatch(r"python3\.\d+", n)]
    if len(names) != 1:
        raise ImageError(f"expected one python3.X stdlib in the image, found {names}")
    python = names[0]
    host = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if python != host:
        raise ImageError(f"the image has {python} but the builder runs {host}: "
                         f".pyc must be compiled by the target's Python version")
    return python
