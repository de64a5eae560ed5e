"""The image layout files (meta-slruntime/recipes-core/slruntime-rootfs-config/files),
read through layout.manifest as both image builders read them."""
import ctypes
import errno
import json
import os
import shutil
import subprocess
import sys

import pytest

from layer_paths import LAYOUT_DIR, read

MANIFEST = os.path.join(LAYOUT_DIR, "layout.manifest")


def manifest_entries():
    """(source, destination, mode) of every line; source is "dir" for directories."""
    entries = []
    for line in read(MANIFEST).splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            assert len(fields) == 3, f"layout.manifest: expected 3 fields in {line!r}"
            entries.append((fields[0], fields[1], int(fields[2], 8)))
    return entries


def install_layout(root):
    """What the recipe's do_install and hwtests' install_layout do."""
    for source, destination, mode in manifest_entries():
        target = os.path.join(root, destination.lstrip("/"))
        if source == "dir":
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(LAYOUT_DIR, source), target)
        os.chmod(target, mode)


def test_manifest_lists_existing_files_with_absolute_destinations():
    entries = manifest_entries()
    destinations = [destination for _, destination, _ in entries]
    assert len(destinations) == len(set(destinations)), "a destination is listed twice"
    for source, destination, mode in entries:
        assert destination.startswith("/") and ".." not in destination.split("/")
        assert 0 <= mode <= 0o7777
        if source != "dir":
            assert os.path.isfile(os.path.join(LAYOUT_DIR, source)), source


def test_every_layout_file_is_in_the_manifest():
    listed = {source for source, _, _ in manifest_entries()}
    for name in os.listdir(LAYOUT_DIR):
        if name not in ("layout.manifest", "README.md"):
            assert name in listed, f"{name} is in the layout directory but not installed"


def fstab():
    table = {}
    for line in read(os.path.join(LAYOUT_DIR, "fstab")).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            assert len(fields) == 6, f"fstab: expected 6 fields in {line!r}"
            table[fields[1]] = fields
    return table


def test_fstab_keeps_the_root_read_only_and_state_on_tmpfs():
    table = fstab()
    assert "ro" in table["/"][3].split(",")
    for mountpoint in ("/run", "/var/volatile", "/tmp", "/var/lib/slr"):
        assert table[mountpoint][2] == "tmpfs", mountpoint
    assert table["/sys/fs/cgroup"][2] == "cgroup2"
    # Every tmpfs mount point exists in the read-only image.
    directories = {destination for source, destination, _ in manifest_entries() if source == "dir"}
    assert {"/run", "/var/volatile", "/tmp", "/var/lib/slr"} <= directories


def test_slr_conf_has_the_documented_keys():
    settings = {}
    for line in read(os.path.join(LAYOUT_DIR, "slr.conf")).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, sep, value = line.partition("=")
            assert sep, f"slr.conf: not key=value: {line!r}"
            settings[key] = value
    assert settings == {"root": "/run/slr", "log-format": "text",
                        "seccomp-default": "/etc/slr/seccomp/default.json"}
    destinations = {source: destination for source, destination, _ in manifest_entries()}
    assert destinations["seccomp-default.json"] == settings["seccomp-default"]


def test_inittab_runs_sysinit_and_a_login_prompt():
    lines = [l for l in read(os.path.join(LAYOUT_DIR, "inittab")).splitlines()
             if l and not l.startswith("#")]
    destinations = {source: destination for source, destination, _ in manifest_entries()}
    assert f"::sysinit:{destinations['slr-sysinit']}" in lines
    # The busybox-inittab bbappend removes this exact line in favour of SERIAL_CONSOLES.
    assert any(l.startswith("console::respawn:/sbin/getty ") for l in lines)


BUSYBOX = shutil.which("busybox")


@pytest.mark.root
@pytest.mark.skipif(BUSYBOX is None, reason="busybox-static is not installed (tools/deps)")
def test_sysinit_boots_a_read_only_root(tmp_path):
    """slr-sysinit on a busybox root laid out from the manifest, in fresh mount, PID and
    UTS namespaces: the mounts of a booted image appear and / stays read-only."""
    root = tmp_path / "root"
    root.mkdir()
    check = r"""
set -e
root=$1 busybox=$2
mount -t tmpfs -o mode=0755 tmpfs "$root"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/etc" "$root/var"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"; done
python3 -c 'import sys; sys.path.insert(0, sys.argv[2]); import test_layout; test_layout.install_layout(sys.argv[1])' "$root" "$3"
# base-files' part of the layout: /var/log and /var/tmp point into /var/volatile.
ln -s volatile/log "$root/var/log"; ln -s volatile/tmp "$root/var/tmp"
echo slr-layout-test > "$root/etc/hostname"
chroot "$root" /etc/init.d/slr-sysinit
chroot "$root" /bin/sh -c 'cat /proc/mounts; echo "hostname=$(hostname)";
    touch /var/log/ok /tmp/ok /var/lib/slr/ok /run/slr/ok && echo writable=yes;
    touch /etc/nope 2>/dev/null || echo etc-writable=no;
    stat -c "run-slr-mode=%a" /run/slr'
"""
    result = subprocess.run(
        ["unshare", "--mount", "--uts", "--pid", "--fork", "--propagation", "private",
         "sh", "-c", check, "sh", str(root), BUSYBOX, os.path.dirname(__file__)],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PATH=os.path.dirname(sys.executable) + ":" + os.environ["PATH"]))
    assert result.returncode == 0, result.stderr
    mounts = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 6:
            mounts[fields[1]] = (fields[2], fields[3].split(","))
    assert "ro" in mounts["/"][1]
    for path in ("/run", "/tmp", "/var/volatile", "/var/lib/slr", "/dev/shm"):
        assert mounts[path][0] == "tmpfs", path
    assert mounts["/proc"][0] == "proc" and mounts["/sys"][0] == "sysfs"
    assert mounts["/dev/pts"][0] == "devpts"
    assert mounts["/sys/fs/cgroup"][0] == "cgroup2"
    assert "hostname=slr-layout-test" in result.stdout
    assert "writable=yes" in result.stdout and "etc-writable=no" in result.stdout
    assert "run-slr-mode=700" in result.stdout


def default_profile():
    return json.loads(read(os.path.join(LAYOUT_DIR, "seccomp-default.json")))


def test_seccomp_profile_names_only_known_system_calls():
    import pyseccomp

    profile = default_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    arches = [getattr(pyseccomp.Arch, a[len("SCMP_ARCH_"):]) for a in profile["architectures"]]
    assert set(profile["architectures"]) == {"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}
    for rule in profile["syscalls"]:
        for name in rule["names"]:
            known = []
            for arch in arches:
                try:
                    known.append(pyseccomp.resolve_syscall(arch, name) >= 0)
                except ValueError:
                    known.append(False)
            assert any(known), f"{name} is a system call of neither architecture"


def run_under_default_profile(code):
    """Runs code in a child that loaded the default profile through the runtime's own
    seccomp module; returns the child's stdout."""
    program = f"""
import ctypes, json, os, sys
from slruntime import seccomp, spec
profile = json.load(open({os.path.join(LAYOUT_DIR, 'seccomp-default.json')!r}))
flt = seccomp.build(spec.parse_seccomp(profile, "linux.seccomp"))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: unprivileged filters need it
seccomp.load(flt)
{code}
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_seccomp_profile_allows_ordinary_programs():
    out = run_under_default_profile("""
import subprocess, threading, tempfile
t = threading.Thread(target=lambda: None); t.start(); t.join()
with tempfile.TemporaryFile() as f:
    f.write(b"x")
print(subprocess.run(["true"]).returncode, "ok")
""")
    assert out.split() == ["0", "ok"]


def test_seccomp_profile_blocks_namespaces_and_gives_enosys_for_clone3():
    out = run_under_default_profile("""
import errno
CLONE_NEWUTS = 0x04000000
r = libc.unshare(CLONE_NEWUTS)
print("unshare", errno.errorcode[ctypes.get_errno()] if r < 0 else "allowed")
nr_clone3 = 435  # the same number on x86_64 and aarch64
r = libc.syscall(nr_clone3, 0, 0)
print("clone3", errno.errorcode[ctypes.get_errno()] if r < 0 else "allowed")
""")
    assert out.split() == ["unshare", "EPERM", "clone3", "ENOSYS"]
