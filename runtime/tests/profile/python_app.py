"""The python test app's bundle: Debian's python3, exactly the standard-library and
extension modules the app (pyapp/app.py) imports, and the libraries they link."""

import json
import os
import shutil
import subprocess

from rootfs_copy import copy_with_libraries

PYTHON = "/usr/bin/python3"
APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyapp", "app.py")
# The app's command line in its bundle (-I: no user site directory, no PYTHON* variables).
PYTHON_APP_ARGS = [PYTHON, "-I", "/app/app.py"]
# Where each module comes from, asked of the interpreter itself.
_MODULE_ORIGINS = """
import importlib.util, json, sys
origins = {}
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    origins[name] = spec.origin if spec else None
print(json.dumps(origins))
"""


def import_closure(work_dir):
    """Files of the interpreter's library the app imports when it runs, as `python -X
    importtime` reports them (frozen modules off: their sources are shipped too, and
    os.py is the interpreter's landmark). The host's site-packages and sitecustomize,
    which the host's site.py pulls in, are not the app's."""
    stdlib = subprocess.run([PYTHON, "-I", "-S", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    run = subprocess.run([PYTHON, "-I", "-X", "importtime", "-X", "frozen_modules=off", APP],
                         capture_output=True, text=True, check=True, cwd=work_dir)
    names = sorted({line.split("|")[2].strip() for line in run.stderr.splitlines()
                    if line.startswith("import time:") and "imported package" not in line})
    origins = json.loads(subprocess.run([PYTHON, "-I", "-S", "-X", "frozen_modules=off", "-c", _MODULE_ORIGINS, *names],
                                        capture_output=True, text=True, check=True).stdout)
    files = []
    for origin in origins.values():
        if origin and origin.startswith("/"):          # not built in, not frozen
            real = os.path.realpath(origin)
            if real.startswith(stdlib + "/") and "-packages/" not in real:
                files.append(origin)
    return sorted(files)


def build_rootfs(rootfs, work_dir):
    """python3 and its libraries, the app's import closure (extension modules with their
    libraries), compiled to bytecode as an image would ship it, the app at /app/app.py."""
    copy_with_libraries(os.path.realpath(PYTHON), rootfs, PYTHON)
    for path in import_closure(work_dir):
        if path.endswith(".so"):
            copy_with_libraries(path, rootfs, path)
        else:
            os.makedirs(os.path.dirname(rootfs + path), exist_ok=True)
            shutil.copy2(path, rootfs + path)
    os.makedirs(os.path.join(rootfs, "app"))
    shutil.copy2(APP, os.path.join(rootfs, "app", "app.py"))
    subprocess.run([PYTHON, "-I", "-m", "compileall", "-q", rootfs], check=True)
    os.makedirs(os.path.join(rootfs, "tmp"))
