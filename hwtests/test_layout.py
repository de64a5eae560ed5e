"""The image layout: read-only root, state on tmpfs, nothing writable on the
boot medium (no flash wear from the runtime or the system), and no Python: the
runtime is the compact frozen slr.  Written for any image (the CI image, a kas
build, a board): only busybox tools, and `find -xdev` keeps to the root file
system (overlay disks mounted under /run are not the product)."""
import pytest

# Block-device name prefixes of boot media: QEMU virtio, SD/eMMC, USB/SATA, NVMe.
BOOT_MEDIA = ("/dev/vd", "/dev/mmcblk", "/dev/sd", "/dev/nvme", "/dev/root")
# Where state goes (the layer's fstab and slr.conf); /var/log and /var/tmp are
# symlinks into the /var/volatile tmpfs, as oe-core's base-files makes them.
STATE_DIRS = ["/run", "/run/slr", "/tmp", "/var/volatile", "/var/log", "/var/tmp", "/var/lib/slr"]
# File systems that live in memory (or are kernel interfaces).
VIRTUAL_FS = {"tmpfs", "proc", "sysfs", "devtmpfs", "devpts", "cgroup2", "cgroup", "mqueue",
              "securityfs", "debugfs", "tracefs", "configfs", "bpf", "pstore", "fusectl",
              "hugetlbfs", "ramfs", "binfmt_misc", "nsfs"}


def test_root_is_mounted_read_only(guest):
    source, point, fstype, options = guest.mount_of("/")
    assert "ro" in options.split(","), f"/ is mounted {options} ({source}, {fstype})"
    code, out = guest.status("touch /hwtests-probe")
    assert code != 0, "creating a file in / succeeded"
    assert "Read-only file system" in "\n".join(out)


@pytest.mark.parametrize("path", STATE_DIRS)
def test_state_directory_is_on_tmpfs(guest, path):
    resolved = guest.text(f"readlink -f {path}")
    guest.run(f"test -d {resolved}")
    source, point, fstype, options = guest.mount_of(resolved)
    assert fstype == "tmpfs", f"{path} is on {source} ({fstype}, mounted at {point})"


def test_nothing_writable_on_the_boot_medium(guest):
    writable = [entry for entry in guest.mounts()
                if entry[0].startswith(BOOT_MEDIA) and "rw" in entry[3].split(",")]
    assert writable == [], f"boot medium mounted writable: {writable}"


def test_every_writable_mount_is_in_memory(guest):
    writable = [entry for entry in guest.mounts()
                if "rw" in entry[3].split(",") and entry[2] not in VIRTUAL_FS]
    assert writable == [], f"writable mounts backed by storage: {writable}"


def test_no_swap(guest):
    # Swap on the boot medium would be writes under memory pressure.
    assert guest.run("cat /proc/swaps")[1:] == []


def test_cgroup2_has_the_controllers_slr_needs(guest):
    source, point, fstype, options = guest.mount_of("/sys/fs/cgroup")
    assert (point, fstype) == ("/sys/fs/cgroup", "cgroup2")
    controllers = guest.text("cat /sys/fs/cgroup/cgroup.controllers").split()
    assert {"cpu", "memory", "pids"} <= set(controllers)


def test_slr_is_the_frozen_executable(guest):
    assert guest.text("command -v slr") == "/usr/bin/slr"
    # ELF executables, not scripts run by an interpreter: the compact slr's static front
    # and the frozen runtime it executes (runtime/compact/README.md, "Two files").
    for path in ("/usr/bin/slr", "/usr/libexec/slruntime/slr"):
        assert guest.text(f"head -c 4 {path} | od -An -c | tr -d ' '") == "177ELF", path
    assert guest.text("slr --version").startswith("slr version ")
    guest.run("test -x /usr/share/slr/bundles/busybox/rootfs/bin/busybox")


def test_rootfs_has_no_python(guest):
    interpreters = guest.run("find / -xdev -name 'python*' ! -type d | head -20")
    assert interpreters == [], f"Python executables or links in the root: {interpreters}"
    stdlib = guest.run("find / -xdev -type d -path '*/lib*/python3*' | head -20")
    assert stdlib == [], f"Python library directories in the root: {stdlib}"
    sources = guest.run("find / -xdev -type f \\( -name '*.py' -o -name '*.pyc' \\)"
                        " | head -20")
    assert sources == [], f"Python files in the root: {sources}"
    assert guest.status("command -v python3")[0] != 0
