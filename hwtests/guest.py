"""Running things in the guest through labgrid's ShellDriver (serial console)."""
import json
import shlex

from .image.rootfs import BUNDLE, bundle_config

# The image's read-only test bundle; per-test bundles reuse its rootfs.
BUNDLE_ROOTFS = f"/{BUNDLE}/rootfs"
# Where tests put their bundles: tmpfs, so nothing reaches the boot medium.
SCRATCH = "/tmp/hwtests"
# busybox ash's line editor keeps at most 1024 bytes of a command line (and a
# tty 4096): files are sent in pieces small enough with the quoting around them.
CHUNK = 512


class GuestError(AssertionError):
    pass


class Guest:
    def __init__(self, shell):
        self.shell = shell

    def run(self, command, timeout=120):
        """Output lines of command; fails the test if it exits non-zero."""
        out, _err, code = self.shell.run(command, timeout=timeout)
        if code != 0:
            raise GuestError(f"guest: `{command}` exited {code}:\n" + "\n".join(out))
        return out

    def status(self, command, timeout=120):
        """(exit code, output lines) of command."""
        out, _err, code = self.shell.run(command, timeout=timeout)
        return code, out

    def text(self, command, timeout=120):
        return "\n".join(self.run(command, timeout=timeout))

    def exists(self, path):
        return self.status(f"test -e {shlex.quote(path)}")[0] == 0

    def write_file(self, path, text):
        self.run(f": > {shlex.quote(path)}")
        for start in range(0, len(text), CHUNK):
            piece = text[start:start + CHUNK]
            self.run(f"printf %s {shlex.quote(piece)} >> {shlex.quote(path)}")

    def make_bundle(self, name, args, config=None):
        """A bundle in /tmp/hwtests/<name> whose config.json runs args on the
        image's busybox rootfs; `config` edits the default config in place."""
        spec = bundle_config(args)
        spec["root"]["path"] = BUNDLE_ROOTFS
        if config:
            config(spec)
        bundle = f"{SCRATCH}/{name}"
        self.run(f"mkdir -p {bundle}")
        self.write_file(f"{bundle}/config.json", json.dumps(spec, separators=(",", ":")))
        return bundle

    def mounts(self):
        """[(source, mountpoint, fstype, options)] from /proc/mounts."""
        return [tuple(line.split()[:4]) for line in self.run("cat /proc/mounts") if line.strip()]

    def mount_of(self, path):
        """The /proc/mounts entry that holds path (longest mountpoint prefix)."""
        best = None
        for entry in self.mounts():
            point = entry[1]
            if path == point or path.startswith(point.rstrip("/") + "/") or point == "/":
                if best is None or len(point) >= len(best[1]):
                    best = entry
        return best
