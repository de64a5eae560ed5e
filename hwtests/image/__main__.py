"""python3 -m hwtests.image build|env --arch x86_64|aarch64"""
import argparse
import shlex
import subprocess
import sys

from . import build as builder
from .apt import DEBIAN_ARCH, AptError
from .initramfs import ModuleError
from .rootfs import ImageError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m hwtests.image",
                                     description="Build the QEMU CI image of slruntime.")
    parser.add_argument("command", choices=["build", "env"],
                        help="build: build (or reuse) the image and print its directory; "
                             "env: also print the LG_* variables labgrid's env files use")
    parser.add_argument("--arch", choices=sorted(DEBIAN_ARCH), required=True)
    parser.add_argument("--cache", default=builder.DEFAULT_CACHE,
                        help="cache and output directory (default: build/hwtests)")
    parser.add_argument("--layout", default=builder.LAYOUT_FILES,
                        help="the layer's layout files directory (with layout.manifest)")
    parser.add_argument("--refresh", action="store_true",
                        help="refresh the Debian package lists even if they are recent")
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            from ..qemu import lg_variables
            log = lambda *a: print(*a, file=sys.stderr)
            variables = lg_variables(args.arch, log=log, cache_dir=args.cache,
                                     layout_dir=args.layout, refresh=args.refresh)
            for name, value in sorted(variables.items()):
                print(f"export {name}={shlex.quote(value)}")
        else:
            image = builder.build(args.arch, args.cache, args.layout, args.refresh,
                                  log=lambda *a: print(*a, flush=True))
            print(image.directory)
    except (AptError, ImageError, ModuleError, FileNotFoundError,
            subprocess.CalledProcessError) as error:
        print(f"image: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
