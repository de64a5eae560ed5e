"""Runs slr's entry point on the normal interpreter like the venv's `slr` does, appending
the name of every module import it attempts (processes it forks included) to a log.

Usage: python -I -S import_recorder.py LOG RUNTIME_DIR SITE_PACKAGES [slr arguments]
(-I -S: no site, so the log holds what slr imports, not what the venv's start-up does).
"""

import os
import sys


def main():
    log, runtime_dir, site_packages = sys.argv[1:4]

    def record(event, args):
        if event == "import":
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, args[0].encode() + b"\n")
            os.close(fd)

    sys.addaudithook(record)
    sys.path[:0] = [runtime_dir, site_packages]
    sys.argv = ["slr"] + sys.argv[4:]
    from slruntime.cli import main as slr_main

    return slr_main()


if __name__ == "__main__":
    sys.exit(main())
