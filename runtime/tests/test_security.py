"""The runtime's security properties, attacked from inside (and around) real containers:
fd leaks, the non-dumpable init (CVE-2019-5736 class), symlinked mount targets
(CVE-2021-30465 class), cwd escapes (CVE-2024-21626 class), a rootfs of /, --preserve-fds."""

import os
import subprocess

import pytest
from helpers import script_output



def _fds(pid):
    """A process's open descriptors, seen from the host: no shell inside adds its own."""
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def test_no_host_fd_leaks_into_the_container(slr, bundle, tmp_path):
    leaked_dir = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    leaked_file = os.open("/etc/hostname", os.O_RDONLY)
    try:
        os.set_inheritable(leaked_dir, True)
        os.set_inheritable(leaked_file, True)
        fds = (leaked_dir, leaked_file)
        slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True, pass_fds=fds)
        pid_file = tmp_path / "exec.pid"
        slr("exec", "-d", "--pid-file", str(pid_file), "c1", "sleep", "1001", check=True, pass_fds=fds)
        assert _fds(slr.state("c1")["pid"]) == [0, 1, 2]
        assert _fds(int(pid_file.read_text())) == [0, 1, 2]
    finally:
        os.close(leaked_dir)
        os.close(leaked_file)
        slr("delete", "-f", "c1")


def test_init_is_not_dumpable_until_exec(slr, bundle):
    """Before start, pid 1 is the runtime's Python: its exe, fds and memory are the host's."""
    slr("create", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    try:
        probe = slr("exec", "c1", "sh", "-c", "readlink /proc/1/exe || echo exe-denied; "
                    "readlink /proc/1/fd/0 || echo fd-denied; "
                    "head -c 1 /proc/1/mem >/dev/null 2>&1 || echo mem-denied; "
                    "echo x >> /proc/1/exe 2>/dev/null || echo write-denied; grep -c . /proc/1/environ 2>/dev/null || echo env-denied")
        with open(f"/proc/{slr.state('c1')['pid']}/cmdline", "rb") as f:
            assert not f.read().startswith(b"sleep")  # still the runtime's process
    finally:
        slr("delete", "-f", "c1", check=True)
    assert probe.stdout.split() == ["exe-denied", "fd-denied", "mem-denied", "write-denied", "env-denied"], probe.stderr


def test_symlinked_mount_targets_stay_in_the_rootfs(slr, bundle, state_root):
    with open("/proc/self/mountinfo") as f:
        host_mounts = f.read()

    def evil(config):
        root = config["root"]["path"]
        os.symlink("/", os.path.join(root, "hostroot"))
        os.symlink("../../../../../../../../etc", os.path.join(root, "hostetc"))
        config["root"]["readonly"] = False
        config["mounts"] += [{"destination": "/hostroot/etc", "type": "tmpfs", "source": "tmpfs", "options": ["size=1k"]},
                             {"destination": "/hostetc/passwd", "type": "bind", "source": "/etc/hostname",
                              "options": ["bind", "ro"]}]

    out = script_output(slr, bundle, "ls /etc | wc -l; cat /etc/passwd", edit=evil)
    assert out.split() == ["1", open("/etc/hostname").read().strip()]  # the rootfs's /etc got both mounts
    with open("/proc/self/mountinfo") as f:
        assert f.read().count("\n") == host_mounts.count("\n")
    with open("/etc/passwd") as f:
        assert "root:" in f.read()

    def loop(config):
        root = config["root"]["path"]
        os.symlink("b", os.path.join(root, "a"))
        os.symlink("a", os.path.join(root, "b"))
        config["mounts"].append({"destination": "/a/x", "type": "tmpfs", "source": "tmpfs"})

    result = slr("run", "-b", bundle(["true"], edit=loop), "c2")
    assert result.returncode == 1 and "mount /a/x" in result.stderr
    assert os.listdir(state_root) == []


def test_cwd_symlink_out_of_the_rootfs_stays_inside(slr, bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host-secret").write_text("secret\n")

    def cwd_link(config):
        root = config["root"]["path"]
        inside = os.path.join(root, str(outside).lstrip("/"))
        os.makedirs(inside)
        open(os.path.join(inside, "rootfs-file"), "w").close()
        os.symlink("../../../../../../../.." + str(outside), os.path.join(root, "wd"))
        config["process"]["cwd"] = "/wd"

    out = script_output(slr, bundle, "pwd -P; ls", edit=cwd_link)
    assert out.split() == [str(outside), "rootfs-file"]


def test_cwd_through_proc_self_fd_never_reaches_the_host(slr, bundle):
    """CVE-2024-21626: a runtime descriptor still open at chdir time would be a way out."""
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    results = []
    try:
        for fd in range(3, 10):
            results.append(slr("exec", "--cwd", f"/proc/self/fd/{fd}", "c1", "sh", "-c", "pwd -P; ls /"))
        for fd in range(3, 8):
            b = bundle(["sh", "-c", "pwd -P; ls /"], edit=lambda c: c["process"].update(cwd=f"/proc/self/fd/{fd}"))
            results.append(slr("run", "-b", b, f"r{fd}"))
    finally:
        slr("delete", "-f", "c1", check=True)
    rootfs_listing = sorted(os.listdir(os.path.join(b, "rootfs")))
    for result in results:
        if result.returncode == 0:  # only a directory of the container itself would do
            lines = result.stdout.split()
            assert lines[0].startswith("/") and "unreachable" not in result.stdout
            assert sorted(lines[1:]) == rootfs_listing, result.stdout
        else:
            assert "cwd" in result.stderr or "No such file" in result.stderr or "Not a directory" in result.stderr, result.stderr


@pytest.mark.parametrize("root_path", ["/", "//", "/.", "hostroot"])
def test_rootfs_of_slash_is_refused(slr, bundle, state_root, tmp_path, root_path):
    def host_root(config):
        os.symlink("/", str(tmp_path / "hostroot"))
        config["root"]["path"] = str(tmp_path / "hostroot") if root_path == "hostroot" else root_path

    result = slr("run", "-b", bundle(["true"], edit=host_root), "c1")
    assert result.returncode == 1
    assert "root.path" in result.stderr and "the host's / cannot be a container's rootfs" in result.stderr
    assert os.listdir(state_root) == []


def test_preserve_fds_passes_exactly_n(slr, bundle, tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(f"content-{name}\n")
    redirect = f'exec "$@" 3<{tmp_path}/a 4<{tmp_path}/b 5<{tmp_path}/c'
    command = ["sh", "-c", redirect, "sh", *slr.cmd("run", "-d", "--preserve-fds", "2", "-b", bundle(["sleep", "1000"]), "c1")]
    with open(tmp_path / "out", "w") as out:
        assert subprocess.run(command, stdout=out, stderr=out, timeout=60).returncode == 0, (tmp_path / "out").read_text()
    try:
        pid = slr.state("c1")["pid"]
        assert _fds(pid) == [0, 1, 2, 3, 4]
        assert [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (3, 4)] == [str(tmp_path / "a"), str(tmp_path / "b")]
    finally:
        slr("delete", "-f", "c1", check=True)
