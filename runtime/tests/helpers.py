"""Shared helpers for the runtime tests (importable from test modules)."""

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import tempfile
import termios
import time

BUSYBOX = "/bin/busybox"


def build_busybox_rootfs(root):
    os.makedirs(os.path.join(root, "bin"))
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "mnt", "var", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(BUSYBOX, "rb") as src, open(os.path.join(root, "bin", "busybox"), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", applet))
    os.symlink("bin", os.path.join(root, "sbin"))
    os.makedirs(os.path.join(root, "usr"))
    os.symlink("../bin", os.path.join(root, "usr", "bin"))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")


def default_config(args, rootfs, rootless=False):
    """`slr spec` defaults with a non-terminal process running `args`."""
    from slruntime.specgen import default_config as spec_default

    config = spec_default(rootless=rootless, args=args, terminal=False)
    config["root"]["path"] = rootfs
    return config


class Slr:
    """Runs the slr binary under test against a private state root."""

    def __init__(self, binary, root, user=None):
        self.binary = binary
        self.root = root
        self.user = user

    def cmd(self, *args):
        return [self.binary, "--root", self.root, *args]

    def __call__(self, *args, check=False, timeout=60, **kwargs):
        """Run slr; stdout/stderr go through files, not pipes: a detached container
        keeps its stdio open, and a pipe would never reach end-of-file."""
        if "capture_output" in kwargs or "stdout" in kwargs:
            result = subprocess.run(self.cmd(*args), timeout=timeout, text=True, **kwargs)
        else:
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                completed = subprocess.run(self.cmd(*args), timeout=timeout, stdout=out, stderr=err,
                                           stdin=kwargs.pop("stdin", subprocess.DEVNULL), **kwargs)
                out.seek(0)
                err.seek(0)
                result = subprocess.CompletedProcess(completed.args, completed.returncode,
                                                     out.read().decode(errors="replace"),
                                                     err.read().decode(errors="replace"))
        if check and result.returncode != 0:
            raise AssertionError(f"slr {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def state(self, container_id):
        return json.loads(self("state", container_id, check=True).stdout)

    def ids(self):
        return self("list", "-q", check=True).stdout.split()

    def cleanup(self):
        """Force-delete everything; returns what was still there."""
        leftovers = self.ids() if os.path.isdir(self.root) else []
        for container_id in leftovers:
            self("delete", "--force", container_id)
        return leftovers


# --- helpers for the feature tests (one container run checks several things) ---------


def run_script(slr, bundle, script, edit=None, container_id="c1", extra=()):
    """Run `sh -c script` in a new container in the foreground (slr run); returns the
    CompletedProcess. The container is deleted by `slr run` itself."""
    return slr("run", *extra, "-b", bundle(["sh", "-c", script], edit=edit), container_id)


def script_output(slr, bundle, script, edit=None, extra=()):
    """Like run_script, but the run must succeed; returns stdout."""
    result = run_script(slr, bundle, script, edit=edit, extra=extra)
    assert result.returncode == 0, f"container failed ({result.returncode}): {result.stderr}{result.stdout}"
    return result.stdout


def status_fields(text):
    """'Key:\\tvalue' lines (as in /proc/self/status) -> dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cap_mask(names):
    """Capability names -> the hex mask /proc/self/status shows."""
    from slruntime.spec import CAPABILITIES

    return f"{sum(1 << CAPABILITIES.index(n) for n in names):016x}"


def edits(*functions):
    """Compose several config edits into one `edit=` function."""
    def apply(config):
        for function in functions:
            function(config)
    return apply


def cgroup2_view(slr_bin, directory):
    """An `slr` that sees only cgroup v2, as the target does: slr_bin itself on a v2 host;
    on a hybrid host (v2 at /sys/fs/cgroup/unified) a wrapper running it in a mount
    namespace of its own with the v2 hierarchy mounted on /sys/fs/cgroup (the same
    hierarchy: every call sees the same cgroups). None on a v1-only host.
    Returns (binary, where the test sees that v2 hierarchy)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return slr_bin, "/sys/fs/cgroup"
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        return None, None
    wrapper = os.path.join(directory, "slr-cgroup2")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                "exec unshare --mount --propagation private sh -c "
                "'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$0\" \"$@\"' "
                f"'{slr_bin}' \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return wrapper, "/sys/fs/cgroup/unified"


class Terminal:
    """A pty whose slave is a client's stdin, stdout and stderr, of ROWS x COLUMNS."""

    def __init__(self, rows, columns):
        self.master, self.slave = pty.openpty()
        self.resize(rows, columns)
        self.output = b""

    def resize(self, rows, columns):
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def start(self, argv):
        return subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                env=dict(os.environ, SLR_CONFIG=""))

    def read_until(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                self.output += os.read(self.master, 65536)
        return text.encode() in self.output

    def close(self):
        os.close(self.master)
        os.close(self.slave)
