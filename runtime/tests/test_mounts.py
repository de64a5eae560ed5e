"""mounts, propagation, masked/read-only paths, devices and the read-only root, seen from inside."""

import os
import subprocess

from helpers import run_script, script_output


def _mountinfo(text):
    """mountinfo lines -> {mount point: (options, optional fields, fstype, super options)}."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        sep = fields.index("-")
        mounts[fields[4]] = (fields[5].split(","), fields[6:sep], fields[sep + 1], fields[sep + 3].split(","))
    return mounts


def _add_mounts(*mounts):
    return lambda c: c["mounts"].extend(mounts)


def _writable_root(config):
    config["root"]["readonly"] = False


def test_standard_filesystems(slr, bundle):
    mounts = _mountinfo(script_output(slr, bundle, "cat /proc/self/mountinfo"))
    types = {point: m[2] for point, m in mounts.items()}
    assert types["/proc"] == "proc" and types["/dev"] == "tmpfs" and types["/dev/pts"] == "devpts"
    assert types["/dev/shm"] == "tmpfs" and types["/dev/mqueue"] == "mqueue" and types["/sys"] == "sysfs"
    assert "ro" in mounts["/sys"][0] and "ro" in mounts["/"][0]  # `slr spec`: ro sysfs, read-only root
    assert {"nosuid", "nodev", "noexec"} <= set(mounts["/dev/shm"][0])
    assert "ptmxmode=666" in mounts["/dev/pts"][3] and "size=65536k" in mounts["/dev"][3]


def test_bind_mounts_ro_rw_and_rbind(slr, bundle, tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "hello").write_text("from the host\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(source / "sub")], check=True)
    try:
        (source / "sub" / "inner").write_text("submount\n")
        script = ("cat /ro/hello; echo x > /ro/new || echo ro-denied; echo written > /rw/new; "
                  "cat /rbind/sub/inner; ls /bind/sub | wc -l; cat /file")
        out = script_output(slr, bundle, script, edit=_add_mounts(
            {"destination": "/ro", "type": "bind", "source": str(source), "options": ["bind", "ro"]},
            {"destination": "/rw", "type": "none", "source": str(source), "options": ["bind"]},
            {"destination": "/rbind", "type": "none", "source": str(source), "options": ["rbind"]},
            {"destination": "/bind", "type": "none", "source": str(source), "options": ["bind"]},
            {"destination": "/file", "type": "none", "source": str(source / "hello"), "options": ["bind", "ro"]}))
    finally:
        subprocess.run(["umount", str(source / "sub")], check=True)
    assert out.split("\n") == ["from the host", "ro-denied", "submount", "0", "from the host", ""]
    assert (source / "new").read_text() == "written\n"


def test_tmpfs_options(slr, bundle):
    out = script_output(slr, bundle, "stat -c %a /scratch; cat /proc/self/mountinfo", edit=_add_mounts(
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "noexec", "nodev", "size=1m", "mode=1770"]}))
    mode, _, mountinfo = out.partition("\n")
    assert mode == "1770"
    options, _, fstype, super_options = _mountinfo(mountinfo)["/scratch"]
    assert fstype == "tmpfs" and "size=1024k" in super_options
    assert {"nosuid", "noexec", "nodev"} <= set(options)


def test_rootfs_propagation_shared(slr, bundle):
    mounts = _mountinfo(script_output(slr, bundle, "cat /proc/self/mountinfo",
                                      edit=lambda c: c["linux"].update(rootfsPropagation="shared")))
    assert any(tag.startswith("shared:") for tag in mounts["/"][1])


def test_mount_propagation_slave_sees_host_mounts_private_does_not(slr, bundle, tmp_path):
    source = tmp_path / "shared"
    source.mkdir()
    # A shared mount of our own, so the test does not depend on the host's propagation.
    subprocess.run(["mount", "--bind", str(source), str(source)], check=True)
    late = source / "late"
    try:
        subprocess.run(["mount", "--make-shared", str(source)], check=True)
        late.mkdir()
        b = bundle(["sleep", "1000"], edit=_add_mounts(
            {"destination": "/slave", "type": "bind", "source": str(source), "options": ["rbind", "rslave"]},
            {"destination": "/private", "type": "bind", "source": str(source), "options": ["rbind", "rprivate"]}))
        slr("run", "-d", "-b", b, "c1", check=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(late)], check=True)
        (late / "marker").write_text("late\n")
        out = slr("exec", "c1", "sh", "-c", "cat /slave/late/marker; ls /private/late | wc -l; "
                  "cat /proc/self/mountinfo", check=True).stdout
    finally:
        slr("delete", "-f", "c1")
        subprocess.run(["umount", "-R", str(source)], check=True)
    lines = out.split("\n", 2)
    assert lines[:2] == ["late", "0"]
    mounts = _mountinfo(lines[2])
    assert any(tag.startswith("master:") for tag in mounts["/slave"][1])
    assert mounts["/private"][1] == []
    assert "/slave/late" in mounts and "/private/late" not in mounts


def test_masked_and_readonly_paths(slr, bundle):
    def secrets(config):
        _writable_root(config)
        root = config["root"]["path"]
        os.makedirs(os.path.join(root, "secretdir"))
        with open(os.path.join(root, "secretdir", "key"), "w") as f:
            f.write("top secret\n")
        with open(os.path.join(root, "etc", "secret"), "w") as f:
            f.write("top secret\n")
        config["linux"]["maskedPaths"] += ["/etc/secret", "/secretdir", "/does/not/exist"]
        config["linux"]["readonlyPaths"] += ["/etc", "/does/not/exist/either"]

    script = ("wc -c < /proc/keys; ls /sys/firmware | wc -l; wc -c < /etc/secret; ls /secretdir | wc -l; "
              "echo x > /secretdir/new || echo masked-ro; echo 1 > /proc/sys/kernel/ostype || echo sys-ro; "
              "touch /etc/new || echo etc-ro; touch /tmp/new && echo tmp-rw")
    out = script_output(slr, bundle, script, edit=secrets)
    assert out.split() == ["0", "0", "0", "0", "masked-ro", "sys-ro", "etc-ro", "tmp-rw"]


def test_readonly_root(slr, bundle):
    result = run_script(slr, bundle, "touch /created")
    assert result.returncode == 1 and "Read-only file system" in result.stderr
    b = bundle(["sh", "-c", "touch /created"], edit=_writable_root)
    slr("run", "-b", b, "c2", check=True)
    assert os.path.exists(os.path.join(b, "rootfs", "created"))


def test_default_and_configured_devices(slr, bundle):
    devices = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/blk", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600},
        {"path": "/dev/pipe", "type": "p", "fileMode": 0o620},
    ]
    script = ("for d in null zero full random urandom tty fuse sub/blk pipe; do "
              "stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; "
              "for l in fd stdin stdout stderr ptmx; do echo /dev/$l=$(readlink /dev/$l); done; "
              "echo ok > /dev/null && head -c 3 /dev/zero | wc -c; echo x > /dev/full || echo full")
    out = script_output(slr, bundle, script, edit=lambda c: c["linux"].update(devices=devices))
    lines = out.splitlines()
    assert lines[:9] == [
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666 0:0",
        "/dev/full character special file 1:7 666 0:0",
        "/dev/random character special file 1:8 666 0:0",
        "/dev/urandom character special file 1:9 666 0:0",
        "/dev/tty character special file 5:0 666 0:0",
        "/dev/fuse character special file a:e5 640 1000:1001",
        "/dev/sub/blk block special file 7:0 600 0:0",
        "/dev/pipe fifo 0:0 620 0:0",
    ]
    assert lines[9:14] == ["/dev/fd=/proc/self/fd", "/dev/stdin=/proc/self/fd/0", "/dev/stdout=/proc/self/fd/1",
                           "/dev/stderr=/proc/self/fd/2", "/dev/ptmx=pts/ptmx"]
    assert lines[14:] == ["3", "full"]


def test_mount_target_symlinks_stay_in_the_rootfs(slr, bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()

    def evil_links(config):
        root = config["root"]["path"]
        # A relative link climbing out, and an absolute one naming the host directory.
        os.symlink("../../../../../../../../" + str(outside).lstrip("/"), os.path.join(root, "climb"))
        os.symlink(str(outside), os.path.join(root, "abs"))
        config["mounts"] += [{"destination": "/climb/t1", "type": "tmpfs", "source": "tmpfs"},
                             {"destination": "/abs/t2", "type": "tmpfs", "source": "tmpfs"}]

    b = bundle(["sh", "-c", "cat /proc/self/mountinfo"], edit=evil_links)
    out = slr("run", "-b", b, "c1", check=True).stdout
    assert os.listdir(outside) == []  # nothing created, nothing mounted on the host
    mounts = _mountinfo(out)
    assert f"{outside}/t1" in mounts and f"{outside}/t2" in mounts  # both landed inside the rootfs
    assert os.path.isdir(os.path.join(b, "rootfs", str(outside).lstrip("/"), "t1"))
    with open("/proc/self/mountinfo") as f:
        assert str(outside) not in f.read()
