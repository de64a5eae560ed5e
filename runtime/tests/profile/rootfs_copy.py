"""Copying host programs into test rootfs trees."""

import os
import shutil
import subprocess


def copy_with_libraries(binary, rootfs, inside):
    """Copy a host program and the libraries it loads (by ldd) into rootfs."""
    target = os.path.join(rootfs, inside.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(binary, target)
    listing = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 3 else parts[0]
        if path.startswith("/"):
            destination = os.path.join(rootfs, path.lstrip("/"))
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copy2(os.path.realpath(path), destination)
