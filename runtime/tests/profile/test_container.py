"""Generated profiles applied by the runtime itself: `slr profile --install`, then `slr run`."""

import json
import os
import shutil

from slruntime.profile import cli, syscalls

from python_app import PYTHON_APP_ARGS

NUMBERS = {name: number for number, name in syscalls.table("x86_64").items()}


def install_profile(bundle_dir, *args):
    assert cli.main(["--bundle", bundle_dir, "--install", *args]) == 0
    with open(os.path.join(bundle_dir, "config.json")) as stream:
        config = json.load(stream)
    assert "seccomp" not in config["linux"]
    return config


def test_busybox_container_runs_under_its_image_default_profile(slr, bundle):
    script = "echo hello; ls / | wc -l; grep ^Seccomp: /proc/self/status; sleep 0.1; echo done"
    b = bundle(["sh", "-c", script])
    install_profile(b)
    result = slr("run", "--bundle", b, "c1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "hello" and lines[-1] == "done"
    assert "Seccomp:\t2" in lines          # filter mode: the profile is in force


def test_python_app_container_runs_under_its_image_default_profile(slr, bundle, python_app_rootfs, tmp_path):
    # The python test app's bundle: its generated profile denies at least half of the
    # table, and `slr run` applies it (image default) while the app does its work:
    # threads, files in a tmpfs, a child process (itself), hashing, JSON.
    def tmpfs_tmp(config):
        config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["nosuid", "nodev", "mode=1777"]})

    b = bundle(PYTHON_APP_ARGS, rootfs=python_app_rootfs, edit=tmpfs_tmp)
    report_path = tmp_path / "report.json"
    install_profile(b, "--report", str(report_path))
    report = json.loads(report_path.read_text())
    assert report["denied"] >= report["table_size"] / 2, report["allowed_syscalls"]
    result = slr("run", "--bundle", b, "app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("records 12 child 12 first "), result.stdout
    # The profile in force is the generated one: without pipe2 (which subprocess needs)
    # the same app fails.
    profile_path = os.path.join(b, "seccomp.profile.json")
    with open(profile_path) as stream:
        profile = json.load(stream)
    profile["syscalls"][0]["names"].remove("pipe2")
    with open(profile_path, "w") as stream:
        json.dump(profile, stream)
    result = slr("run", "--bundle", b, "app2")
    assert result.returncode != 0 and "PermissionError" in result.stderr, (result.stdout, result.stderr)


def test_syscall_outside_the_profile_is_denied_in_a_container(slr, bundle, known_answers_static):
    getuid = NUMBERS["getuid"]
    b = bundle(["/known", str(getuid)])
    shutil.copy2(os.path.join(known_answers_static, "known"), os.path.join(b, "rootfs", "known"))
    # Without a profile getuid() works (uid 0 in the container)...
    result = slr("run", "--bundle", b, "c1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"syscall {getuid}: 0 errno 0\n")
    # ...with the profile generated for /known it fails with EPERM, the rest still works.
    install_profile(b, "--entry", "/known")
    with open(os.path.join(b, "seccomp.profile.json")) as stream:
        assert "getuid" not in json.load(stream)["syscalls"][0]["names"]
    result = slr("run", "--bundle", b, "c2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"pid 1\nppid 1\nsyscall {getuid}: -1 errno 1\n"


def test_dynamic_run_adds_what_static_analysis_cannot_see(slr, bundle, known_answers_static, tmp_path):
    # /known makes syscall(n) with n from its command line: invisible statically,
    # observed by --dynamic through seccomp user notification in a real container.
    getuid = NUMBERS["getuid"]
    b = bundle(["/known", str(getuid)])
    shutil.copy2(os.path.join(known_answers_static, "known"), os.path.join(b, "rootfs", "known"))
    report_path = tmp_path / "report.json"
    install_profile(b, "--entry", "/known", "--dynamic", "--report", str(report_path))
    report = json.loads(report_path.read_text())
    assert report["dynamic"]["exit_code"] == 0 and not report["dynamic"]["timed_out"]
    assert "getuid" in report["dynamic"]["observed"]
    assert report["added"]["getuid"].startswith("observed at run time")
    result = slr("run", "--bundle", b, "c1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"pid 1\nppid 1\nsyscall {getuid}: 0 errno 0\n"
