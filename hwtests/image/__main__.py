"""python3 -m hwtests.image build|env|contents --arch x86_64|aarch64"""
import argparse
import json
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
    parser.add_argument("command", choices=["build", "env", "contents"],
                        help="build: build (or reuse) the image and print its directory; "
                             "env: also print the LG_* variables labgrid's env files use; "
                             "contents: build, then print what each image holds (sizes, "
                             "files of 100 KiB or more) as markdown")
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
        elif args.command == "contents":
            image = builder.build(args.arch, args.cache, args.layout, args.refresh,
                                  log=lambda *a: print(*a, file=sys.stderr))
            with open(image.manifest) as f:
                print(contents_markdown(args.arch, json.load(f)["contents"]))
        else:
            image = builder.build(args.arch, args.cache, args.layout, args.refresh,
                                  log=lambda *a: print(*a, flush=True))
            print(image.directory)
    except (AptError, ImageError, ModuleError, FileNotFoundError,
            subprocess.CalledProcessError) as error:
        print(f"image: {error}", file=sys.stderr)
        return 1
    return 0


def contents_markdown(arch, contents):
    """One table per image file: its squashfs and installed size, and its files of
    at least 100 KiB."""
    lines = []
    for name, listing in contents.items():
        lines += [f"{arch} `{name}`: squashfs {listing['squashfs_bytes'] / 2**20:.2f} MiB,"
                  f" installed {listing['installed_bytes'] / 2**20:.2f} MiB in"
                  f" {listing['files']} files", "",
                  "| file | KiB |", "|---|---:|"]
        lines += [f"| `{entry['path']}` | {entry['bytes'] // 1024} |"
                  for entry in listing["large_files"]]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
