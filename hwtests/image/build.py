"""Builds the QEMU CI image of one architecture: kernel, initramfs, squashfs root.

The result lives in build/hwtests/image/<arch>-<key>/ where the key hashes
every input (the exact .deb files, the layer's layout files, the runtime
sources (`slr profile` runs on the build host), the compact binary, this
builder's code, SOURCE_DATE_EPOCH); a stable link build/hwtests/image/<arch>
points at the newest one.

The product root (rootfs.squashfs) holds the compact slr as the Yocto recipe installs
it, the static front as /usr/bin/slr and the frozen runtime it executes as
/usr/libexec/slruntime/slr (runtime/compact/README.md, "Two files"), and no Python; overlay-bench.squashfs, a separate disk attached only for
benchmark runs, holds runc and crun; overlay-tests.squashfs holds python3, pytest and
the runtime's tests (hwtests/overlays.py mounts them in the guest).  The same
inputs give the same bytes (tested by hwtests/test_image_build.py).
"""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from . import initramfs, rootfs, tests_overlay
from .apt import TargetApt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Both can be moved with environment variables (e.g. a cache shared by several
# clones, or the layout files of another checkout of the layer).
DEFAULT_CACHE = os.environ.get("HWTESTS_CACHE") or os.path.join(REPO, "build", "hwtests")
LAYOUT_FILES = os.environ.get("HWTESTS_LAYOUT_DIR") or os.path.join(
    REPO, "meta-slruntime/recipes-core/slruntime-rootfs-config/files")
RUNTIME_PACKAGE = os.path.join(REPO, "runtime/slruntime")
RUNTIME_TESTS = os.path.join(REPO, "runtime/tests")
BUILD_COMPACT = os.path.join(REPO, "tools/build-compact")
COMPACT_TOOL = os.path.join(REPO, "runtime/compact")
# The compiler of the image's front (built here: it has the image's path of the frozen
# runtime built in); Debian's cross compilers, as runtime/compact/cross_build.py uses.
FRONT_COMPILERS = {"x86_64": "x86_64-linux-gnu-gcc", "aarch64": "aarch64-linux-gnu-gcc"}

# Overlays: separate squashfs disks the guest mounts under /run/hwtests (never
# part of the product root), by name.
OVERLAYS = {"bench": rootfs.BENCH_PACKAGES, "tests": tests_overlay.PACKAGES}

KERNEL_METAPACKAGE = {"x86_64": "linux-image-cloud-amd64", "aarch64": "linux-image-cloud-arm64"}
HOSTNAME = "slr-ci"
# Used when SOURCE_DATE_EPOCH is unset: a constant, so that rebuilding
# unchanged inputs in a new clone hits the cache (2023-11-14).
DEFAULT_EPOCH = 1700000000


class Image:
    """Paths of a built image."""

    def __init__(self, directory):
        self.directory = directory
        self.kernel = os.path.join(directory, "vmlinuz")
        self.initrd = os.path.join(directory, "initrd.img")
        self.rootfs = os.path.join(directory, "rootfs.squashfs")
        self.manifest = os.path.join(directory, "manifest.json")

    def overlay(self, name):
        """The squashfs of an overlay (OVERLAYS), a disk of its own."""
        return os.path.join(self.directory, f"overlay-{name}.squashfs")


def build(arch, cache_dir=DEFAULT_CACHE, layout_dir=LAYOUT_FILES, refresh=False, log=print,
          images=None, runtime_dir=RUNTIME_PACKAGE, compact=None):
    """Builds (or finds in the cache) the image of arch; `images` is where
    image directories go (default: cache_dir/image); `compact` is the
    compact slr's frozen runtime (default: tools/build-compact's, built when its inputs
    changed); the image's front is built from runtime/compact."""
    os.umask(0o022)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    apt = TargetApt(arch, cache_dir)
    apt.update(force=refresh)
    kernel_package = _kernel_package(apt, arch)
    debs = apt.download(rootfs.PRODUCT_PACKAGES + [kernel_package])
    overlay_debs = {name: apt.download(packages) for name, packages in OVERLAYS.items()}
    host_busybox = _host_busybox(cache_dir, apt, debs["busybox-static"])
    compact = compact or compact_binary(arch)
    wheel = tests_overlay.pyseccomp_wheel(cache_dir)

    inputs = {
        "arch": arch,
        "epoch": epoch,
        "debs": {name: _sha256_file(path) for name, path in sorted(debs.items())},
        "overlays": {overlay: {name: _sha256_file(path) for name, path in sorted(found.items())}
                     for overlay, found in sorted(overlay_debs.items())},
        "layout": _tree_digest(layout_dir),
        "runtime": _tree_digest(runtime_dir),
        "runtime_tests": _tree_digest(RUNTIME_TESTS),
        "pyseccomp": _sha256_file(wheel),
        "compact": _sha256_file(compact),
        "compact_tool": _tree_digest(COMPACT_TOOL),
        "builder": _tree_digest(os.path.dirname(os.path.abspath(__file__))),
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    images = images or os.path.join(cache_dir, "image")
    final = os.path.join(images, f"{arch}-{key}")
    if os.path.exists(os.path.join(final, "manifest.json")):
        log(f"image: {arch} up to date: {final}")
    else:
        log(f"image: building {arch} ({key})")
        os.makedirs(images, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".{arch}-", dir=images)
        try:
            _assemble(work, arch, debs, overlay_debs, kernel_package, host_busybox, compact,
                      wheel, layout_dir, runtime_dir, epoch, inputs)
            shutil.rmtree(final, ignore_errors=True)
            os.rename(os.path.join(work, "out"), final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    link = os.path.join(images, arch)
    tmp_link = link + ".new"
    if os.path.lexists(tmp_link):
        os.remove(tmp_link)
    os.symlink(os.path.basename(final), tmp_link)
    os.replace(tmp_link, link)
    return Image(final)


def _assemble(work, arch, debs, overlay_debs, kernel_package, host_busybox, compact,
              pyseccomp_wheel, layout_dir, runtime_dir, epoch, inputs):
    root = os.path.join(work, "root")
    kernel_tree = os.path.join(work, "kernel")
    out = os.path.join(work, "out")
    os.makedirs(out)

    rootfs.unpack([p for n, p in debs.items() if n != kernel_package], root)
    rootfs.prune(root)
    rootfs.link_applets(root, rootfs.busybox_applets(host_busybox))
    rootfs.install_slr(root, _front(work, arch), compact)
    rootfs.install_base_files(root, HOSTNAME, arch)
    layout = rootfs.install_layout(root, layout_dir)
    rootfs.install_bundle(root)
    rootfs.install_first_container(root)
    rootfs.profile_bundle(root, arch, runtime_dir, os.path.join(out, "bundle-profile.txt"))
    rootfs.check_libraries(root)
    _squashfs(root, os.path.join(out, "rootfs.squashfs"), epoch)
    contents = {"rootfs.squashfs": rootfs.contents(root)}

    for name, found in overlay_debs.items():
        tree = os.path.join(work, f"overlay-{name}")
        rootfs.unpack(found.values(), tree)
        rootfs.prune(tree)
        if name == "tests":
            tests_overlay.assemble(tree, runtime_dir, RUNTIME_TESTS, pyseccomp_wheel)
        rootfs.check_libraries(tree, providers=[root])
        _squashfs(tree, os.path.join(out, f"overlay-{name}.squashfs"), epoch)
        contents[f"overlay-{name}.squashfs"] = rootfs.contents(tree)

    subprocess.run(["dpkg-deb", "-x", debs[kernel_package], kernel_tree], check=True)
    kernel_version = kernel_package.removeprefix("linux-image-")
    shutil.copyfile(os.path.join(kernel_tree, f"boot/vmlinuz-{kernel_version}"),
                    os.path.join(out, "vmlinuz"))
    modules = initramfs.build(
        os.path.join(out, "initrd.img"), os.path.join(root, "bin/busybox"),
        os.path.join(kernel_tree, "lib/modules", kernel_version), epoch)

    images = ["vmlinuz", "initrd.img", "rootfs.squashfs"] + [
        f"overlay-{name}.squashfs" for name in sorted(overlay_debs)]
    for name, listing in contents.items():
        listing["squashfs_bytes"] = os.path.getsize(os.path.join(out, name))
    manifest = dict(inputs, kernel=kernel_version, initramfs_modules=modules,
                    layout_files=layout, contents=contents,
                    files={name: _sha256_file(os.path.join(out, name)) for name in images})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


def _squashfs(tree, image, epoch):
    """A reproducible squashfs of tree: every file owned by root, one timestamp."""
    subprocess.run(
        ["mksquashfs", tree, image, "-noappend", "-quiet", "-no-progress",
         "-comp", "gzip", "-reproducible", "-all-root", "-mkfs-time", str(epoch),
         "-all-time", str(epoch), "-no-xattrs"],
        check=True, stdout=subprocess.DEVNULL)


def _kernel_package(apt, arch):
    depends = apt.show([KERNEL_METAPACKAGE[arch]])[KERNEL_METAPACKAGE[arch]]["Depends"]
    return depends.split(",")[0].split()[0]


def _host_busybox(cache_dir, target_apt, target_deb):
    """The host-architecture busybox-static of the same version, to list applets."""
    host_arch = platform.machine()
    if target_apt.debian_arch == {"x86_64": "amd64", "aarch64": "arm64"}.get(host_arch):
        deb = target_deb
    else:
        version = target_apt.show(["busybox-static"])["busybox-static"]["Version"]
        host_apt = TargetApt(host_arch, cache_dir)
        host_apt.update()
        deb = host_apt.download(["busybox-static"])["busybox-static"]
        if host_apt.show(["busybox-static"])["busybox-static"]["Version"] != version:
            raise rootfs.ImageError(f"no host busybox-static {version} to list applets")
    tree = os.path.join(cache_dir, "host-busybox", os.path.basename(deb))
    if not os.path.exists(os.path.join(tree, "bin/busybox")):
        os.makedirs(tree, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", deb, tree], check=True)
    return os.path.join(tree, "bin/busybox")


def compact_binary(arch):
    """The compact slr's frozen runtime of arch, from tools/build-compact (which
    rebuilds it only when its inputs changed; the first build fetches CPython's
    sources). It prints the front, then the frozen runtime."""
    built = subprocess.run([sys.executable, BUILD_COMPACT, "--arch", arch],
                           stdout=subprocess.PIPE, text=True)
    if built.returncode != 0:
        raise rootfs.ImageError(f"tools/build-compact --arch {arch} failed")
    return built.stdout.strip().splitlines()[-1]


def _front(work, arch):
    """The compact slr's static front for the image: executes the frozen runtime from
    its path in the image (rootfs.FROZEN_RUNTIME)."""
    front = os.path.join(work, "front", "slr")
    compiler = "cc" if arch == platform.machine() else FRONT_COMPILERS[arch]
    built = subprocess.run([sys.executable, os.path.join(COMPACT_TOOL, "build_compact.py"),
                            "--front-only", "--output", front, "--cc", compiler,
                            "--frozen-path", rootfs.FROZEN_RUNTIME],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if built.returncode != 0:
        raise rootfs.ImageError(f"the compact slr's front: {built.stderr.strip()}")
    return front


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_digest(directory):
    """Hash of the names, modes and contents of the files under directory."""
    digest = hashlib.sha256()
    if not os.path.isdir(directory):
        return None
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            path = os.path.join(dirpath, name)
            digest.update(os.path.relpath(path, directory).encode() + b"\0")
            digest.update(oct(os.stat(path).st_mode & 0o777).encode())
            digest.update(_sha256_file(path).encode())
    return digest.hexdigest()
