#!/usr/bin/env python3
"""Cross-builds the compact slr for another architecture on a Debian host: the target's
libpython3.X-dev, libffi-dev, libcap-dev (and the -dev packages of the libraries its
libpython links) are downloaded with apt and unpacked into a sysroot in the cache, then
build_compact.py runs with the Debian cross compiler (gcc-<triplet>, from
tools/deps/compact.apt). Run the result with qemu-user, through a binfmt_misc instance
of its own so that the front can execute the frozen runtime:
`runtime/tests/qemu-aarch64-binfmt build/compact/aarch64/slr --version` (README.md).

    cross_build.py --arch aarch64 --output PATH --sources-cache DIR [build_compact options]
"""

import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import build_compact  # noqa: E402  (modules of this tool, next to it)
import sources  # noqa: E402

# uname -m -> (Debian architecture, GNU triplet)
ARCHITECTURES = {
    "aarch64": ("arm64", "aarch64-linux-gnu"),
    "armv7l": ("armhf", "arm-linux-gnueabihf"),
    "riscv64": ("riscv64", "riscv64-linux-gnu"),
    "x86_64": ("amd64", "x86_64-linux-gnu"),
}
# libseccomp2 is not linked: tests running the binary under qemu-user load it from here.
SYSROOT_PACKAGES = ("libpython{v}-dev", "libffi-dev", "libcap-dev", "zlib1g-dev",
                    "libexpat1-dev", "libseccomp2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES))
    parser.add_argument("--output", required=True)
    parser.add_argument("--sources-cache", required=True)
    args, rest = parser.parse_known_args(argv)
    debian_arch, triplet = ARCHITECTURES[args.arch]
    compiler = f"{triplet}-gcc"
    if shutil.which(compiler) is None:
        print(f"cross_build: {compiler} not found (package gcc-{triplet})", file=sys.stderr)
        return 1
    version = "%d.%d" % sys.version_info[:2]
    try:
        sysroot = sources.debian_sysroot(os.path.abspath(args.sources_cache), debian_arch,
                                         [p.format(v=version) for p in SYSROOT_PACKAGES])
    except sources.FetchError as error:
        print(f"cross_build: {error}", file=sys.stderr)
        return 1
    include, libdir = f"{sysroot}/usr/include", f"{sysroot}/usr/lib/{triplet}"
    # Debian's pyconfig.h includes <TRIPLET/pythonX.Y/pyconfig.h>; ffi.h lives there too.
    os.environ["CFLAGS"] = f"-I{include} -I{include}/{triplet} " + os.environ.get("CFLAGS", "")
    os.environ["LDFLAGS"] = f"-L{libdir} " + os.environ.get("LDFLAGS", "")
    return build_compact.main([
        "--output", args.output, "--sources-cache", args.sources_cache, "--cc", compiler,
        "--python-include", f"{include}/python{version}",
        "--libpython", f"{sysroot}/usr/lib/python{version}/config-{version}-{triplet}/"
                       f"libpython{version}.a",
    ] + rest)


if __name__ == "__main__":
    sys.exit(main())
