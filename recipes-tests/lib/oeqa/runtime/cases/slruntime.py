# On-target checks of slruntime images, run by `bitbake -c testimage slruntime-image-test`
# (TEST_SUITES names this module "slruntime").
import json

from oeqa.core.decorator.depends import OETestDepends
from oeqa.runtime.case import OERuntimeTestCase
from oeqa.runtime.decorator.package import OEHasPackage

BUNDLE = "/usr/share/slr/bundles/busybox"


class SlruntimeImageTest(OERuntimeTestCase):
    """The image layout of recipes-core/slruntime-rootfs-config/files."""

    def run_ok(self, command):
        status, output = self.target.run(command)
        self.assertEqual(status, 0, msg=f"{command!r} failed ({status}): {output}")
        return output

    def mounts(self):
        table = {}
        for line in self.run_ok("cat /proc/mounts").splitlines():
            fields = line.split()
            table[fields[1]] = (fields[2], fields[3].split(","))
        return table

    def test_root_is_read_only(self):
        fstype, options = self.mounts()["/"]
        self.assertIn("ro", options, msg=f"/ is mounted {options}")
        status, output = self.target.run("touch /etc/slr/write-test")
        self.assertNotEqual(status, 0, msg="/etc is writable on a read-only image")

    def test_state_is_on_tmpfs(self):
        mounts = self.mounts()
        for path in ("/run", "/tmp", "/var/volatile", "/var/lib/slr"):
            self.assertIn(path, mounts, msg=f"{path} is not a mount point")
            self.assertEqual(mounts[path][0], "tmpfs", msg=f"{path} is {mounts[path][0]}")
        self.run_ok("touch /var/log/slr-test /var/lib/slr/slr-test /run/slr/slr-test")

    def test_cgroup2_controllers_delegated(self):
        fstype, options = self.mounts()["/sys/fs/cgroup"]
        self.assertEqual(fstype, "cgroup2")
        enabled = self.run_ok("cat /sys/fs/cgroup/cgroup.subtree_control").split()
        for controller in ("cpu", "memory", "pids"):
            self.assertIn(controller, enabled)

    def test_default_configuration(self):
        conf = self.run_ok("cat /etc/slr/slr.conf")
        self.assertIn("root=/run/slr", conf.splitlines())
        profile = json.loads(self.run_ok("cat /etc/slr/seccomp/default.json"))
        self.assertEqual(profile["defaultAction"], "SCMP_ACT_ERRNO")

    def test_no_package_manager(self):
        for tool in ("opkg", "rpm", "dnf", "apt-get"):
            status, _ = self.target.run(f"command -v {tool}")
            self.assertNotEqual(status, 0, msg=f"{tool} is installed")


class SlruntimeRunTest(OERuntimeTestCase):
    """Real containers from the busybox test bundle."""

    def run_bundle(self, slr, container_id):
        status, output = self.target.run(f"{slr} run --bundle {BUNDLE} {container_id}", timeout=300)
        self.assertEqual(status, 0, msg=f"{slr} run failed ({status}): {output}")
        self.assertIn("slruntime-bundle-ok", output)
        self.assertIn("Seccomp:\t2", output, msg="the default seccomp profile was not applied")
        self.assertIn("NoNewPrivs:\t1", output)
        status, output = self.target.run(f"{slr} list")
        self.assertNotIn(container_id, output, msg="the container's state was left behind")

    @OEHasPackage(["slruntime-compact"])
    def test_slr_version(self):
        status, output = self.target.run("slr --version", timeout=120)
        self.assertEqual(status, 0, msg=output)

    @OETestDepends(["slruntime.SlruntimeRunTest.test_slr_version"])
    @OEHasPackage(["slruntime-test-bundles"])
    def test_run_busybox_bundle(self):
        # /usr/bin/slr: the frozen runtime of slruntime-compact, what product images run.
        self.run_bundle("slr", "oeqa-compact")

    @OEHasPackage(["slruntime", "slruntime-test-bundles"])
    def test_run_busybox_bundle_python(self):
        # slr-python: the Python package of the test image's slruntime-python feature.
        self.run_bundle("slr-python", "oeqa-python")

    @OEHasPackage(["slruntime-test-bundles"])
    def test_bundle_carries_its_build_time_profile(self):
        # slruntime_seccomp_profile (the image's ROOTFS_POSTPROCESS_COMMAND) profiled the
        # bundle from the image's busybox: an allow list (test_run_busybox_bundle runs
        # the bundle under it).
        status, output = self.target.run(f"cat {BUNDLE}/config.json")
        self.assertEqual(status, 0, msg=output)
        name = json.loads(output).get("annotations", {}).get("org.slruntime.seccomp.profile")
        self.assertEqual(name, "seccomp.profile.json", msg="no image-default profile annotation")
        status, output = self.target.run(f"cat {BUNDLE}/{name}")
        self.assertEqual(status, 0, msg=output)
        profile = json.loads(output)
        self.assertEqual(profile["defaultAction"], "SCMP_ACT_ERRNO")
        self.assertIn("wait4", profile["syscalls"][0]["names"])
