"""Paths and readers shared by the layer checks (run by tools/checks/30-layer)."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYER = os.path.join(REPO, "meta-slruntime")
TESTS_LAYER = os.path.join(REPO, "recipes-tests")
LAYOUT_DIR = os.path.join(LAYER, "recipes-core", "slruntime-rootfs-config", "files")
KAS_DIR = os.path.join(REPO, "kas")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def layer_files(*suffixes, roots=(LAYER, TESTS_LAYER)):
    """Every file under the two layers whose name ends with one of suffixes."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            found += [os.path.join(dirpath, n) for n in filenames if n.endswith(suffixes)]
    return sorted(found)


def conf_assignments(path):
    """NAME -> value of the simple `NAME = "value"` / `NAME ?= "value"` / `NAME += ...`
    lines of a BitBake configuration file, continuation lines joined."""
    text = read(path).replace("\\\n", " ")
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for op in ("?=", "+=", ".=", ":=", "="):
            name, sep, value = line.partition(f" {op} ")
            if sep:
                value = value.strip().strip('"')
                values[name.strip()] = " ".join(value.split())
                break
    return values
