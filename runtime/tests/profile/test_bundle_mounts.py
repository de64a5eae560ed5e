"""Bundles whose programs come in through bind mounts (the Yocto test bundle binds the
image's busybox and libraries into an almost empty rootfs): the profile covers what the
container sees, rootfs and mounts together, and the container runs under it."""

import json
import os
import shutil

from slruntime.profile import cli

BIND = ["rbind", "ro", "nosuid", "nodev"]
TMPFS_TMP = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}


def shell_bundle(bundle, program, binary_source, args=(), library_sources=(), extra_mounts=()):
    """Turn a test bundle into one whose rootfs holds only mount points: `program` is
    bound from `binary_source` and run with `args`, each (destination, source) of
    library_sources is bound too."""
    config_path = os.path.join(bundle, "config.json")
    with open(config_path) as stream:
        config = json.load(stream)
    rootfs = os.path.join(bundle, "empty-rootfs")
    for directory in ("bin", "proc", "dev", "tmp", "lib", "lib64", "sys"):
        os.makedirs(os.path.join(rootfs, directory))
    open(os.path.join(rootfs, program.lstrip("/")), "w").close()
    config["root"]["path"] = rootfs
    config["process"]["args"] = [program, *args]
    config["mounts"] += [{"destination": program, "type": "bind", "source": binary_source, "options": BIND}]
    config["mounts"] += [{"destination": d, "type": "bind", "source": s, "options": BIND}
                         for d, s in library_sources]
    config["mounts"] += list(extra_mounts)
    with open(config_path, "w") as stream:
        json.dump(config, stream)
    return config


def profile(bundle, tmp_path, *args):
    report_path = tmp_path / f"report{len(list(tmp_path.glob('report*')))}.json"
    assert cli.main(["--bundle", bundle, "--install", "--report", str(report_path), *args]) == 0
    with open(os.path.join(bundle, "seccomp.profile.json")) as stream:
        return json.load(stream), json.loads(report_path.read_text())


def test_static_program_bound_from_the_host(slr, bundle, tmp_path):
    # The test bundle's shape: the image's (here the host's) static busybox bound in.
    b = bundle()
    shell_bundle(b, "/bin/busybox", "/bin/busybox",
                 ["sh", "-c", "echo in; grep ^Seccomp: /proc/self/status; echo out"])
    seccomp, report = profile(b, tmp_path)
    assert list(report["entries"]) == ["/bin/busybox"]
    assert report["denied"] >= report["table_size"] / 2
    result = slr("run", "--bundle", b, "bound")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "in\nSeccomp:\t2\nout\n"


def test_dynamic_program_and_its_libraries_bound_in(slr, bundle, tmp_path, glibc_rootfs):
    image = glibc_rootfs
    b = bundle()
    shell_bundle(b, "/bin/workload", f"{image}/bin/workload",
                 library_sources=[("/lib", f"{image}/lib"), ("/lib64", f"{image}/lib64")],
                 extra_mounts=[TMPFS_TMP])
    seccomp, report = profile(b, tmp_path)
    entry = report["entries"]["/bin/workload"]
    # The loader and libc are found through the mounts, at their container paths.
    assert "/lib/x86_64-linux-gnu/libc.so.6" in entry["objects"]
    assert "/lib64/ld-linux-x86-64.so.2" in entry["objects"]
    assert not entry["missing_libraries"]
    assert {"clone", "wait4", "openat"} <= set(report["allowed_syscalls"])
    result = slr("run", "--bundle", b, "workload")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "read written\nchild 7\nclock 1\n"


def test_host_root_looks_bind_sources_up_in_an_image_tree(bundle, tmp_path, glibc_rootfs):
    # At build time the sources are paths of the image being built, not of the build host.
    absolute = bundle()
    shell_bundle(absolute, "/bin/workload", f"{glibc_rootfs}/bin/workload",
                 library_sources=[("/lib", f"{glibc_rootfs}/lib"), ("/lib64", f"{glibc_rootfs}/lib64")])
    relative_to_image = bundle()
    config = shell_bundle(relative_to_image, "/bin/workload", "/bin/workload",
                          library_sources=[("/lib", "/lib"), ("/lib64", "/lib64")])
    # As in an image: root.path relative to the bundle (an absolute one is an image path).
    config["root"]["path"] = "empty-rootfs"
    with open(os.path.join(relative_to_image, "config.json"), "w") as stream:
        json.dump(config, stream)
    expected, _ = profile(absolute, tmp_path)
    seccomp, report = profile(relative_to_image, tmp_path, "--host-root", glibc_rootfs)
    assert seccomp == expected
    assert "/lib/x86_64-linux-gnu/libc.so.6" in report["entries"]["/bin/workload"]["objects"]


def test_mounts_hide_what_the_rootfs_has_below_them(bundle, tmp_path, glibc_rootfs):
    # A program under /tmp of the rootfs is covered by the tmpfs on /tmp: not analysed.
    b = bundle()
    shell_bundle(b, "/bin/busybox", "/bin/busybox", ["true"], extra_mounts=[TMPFS_TMP])
    rootfs = os.path.join(b, "empty-rootfs")
    shutil.copy2(os.path.join(glibc_rootfs, "bin", "workload"), os.path.join(rootfs, "tmp", "hidden"))
    _, report = profile(b, tmp_path)
    assert list(report["entries"]) == ["/bin/busybox"]
    # Without the tmpfs it is part of the container's view.
    config = json.loads(open(os.path.join(b, "config.json")).read())
    config["mounts"].remove(TMPFS_TMP)
    open(os.path.join(b, "config.json"), "w").write(json.dumps(config))
    _, report = profile(b, tmp_path)
    assert sorted(report["entries"]) == ["/bin/busybox", "/tmp/hidden"]


def test_missing_bind_source_is_a_one_line_error(bundle, tmp_path, capsys):
    b = bundle()
    shell_bundle(b, "/bin/busybox", "/bin/busybox", library_sources=[("/lib", "/no/such/lib")])
    assert cli.main(["--bundle", b]) == 1
    err = capsys.readouterr().err
    assert err == "slr profile: bind mount source /no/such/lib of /lib is not found under /\n"
    assert not os.path.exists(os.path.join(b, "seccomp.profile.json"))


def test_dynamic_cannot_use_another_host_root(bundle, tmp_path, capsys):
    b = bundle()
    assert cli.main(["--bundle", b, "--dynamic", "--host-root", str(tmp_path)]) == 1
    assert "--dynamic runs the bundle on this host" in capsys.readouterr().err


def test_mount_destination_through_a_symlink_of_the_rootfs(slr, bundle, tmp_path, glibc_rootfs):
    # The rootfs has /lib -> usr/lib (merged /usr): the runtime mounts /lib on /usr/lib,
    # and the analysis finds libc there too.
    b = bundle()
    shell_bundle(b, "/bin/workload", f"{glibc_rootfs}/bin/workload",
                 library_sources=[("/lib", f"{glibc_rootfs}/lib"), ("/lib64", f"{glibc_rootfs}/lib64")],
                 extra_mounts=[TMPFS_TMP])
    rootfs = os.path.join(b, "empty-rootfs")
    os.rmdir(os.path.join(rootfs, "lib"))
    os.makedirs(os.path.join(rootfs, "usr", "lib"))
    os.symlink("usr/lib", os.path.join(rootfs, "lib"))
    _, report = profile(b, tmp_path)
    assert "/usr/lib/x86_64-linux-gnu/libc.so.6" in report["entries"]["/bin/workload"]["objects"]
    result = slr("run", "--bundle", b, "merged-usr")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "read written\nchild 7\nclock 1\n"
