"""The image-default profile stored with a bundle, and the CLI around it."""

import json
import os
import subprocess
import sys

import pytest

from slruntime.profile import image_default

ANNOTATION = image_default.ANNOTATION
PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
           "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}


def test_no_annotation_means_no_image_default(tmp_path):
    assert image_default.load(str(tmp_path), {}) is None
    assert image_default.load(str(tmp_path), None) is None


def test_annotation_names_a_profile_in_the_bundle(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.json").write_text(json.dumps(PROFILE))
    assert image_default.load(str(tmp_path), {ANNOTATION: "profiles/p.json"}) == PROFILE


@pytest.mark.parametrize("setup, value, message", [
    (None, "missing.json", "cannot read missing.json"),
    ("{not json", "p.json", "p.json is not valid JSON"),
    ('["a list"]', "p.json", "is not a linux.seccomp object"),
    (None, "../outside.json", "escapes the bundle directory"),
    (None, "/etc/passwd", "must be a path relative to the bundle"),
    (None, "", "must be a path relative to the bundle"),
    ("link", "p.json", "escapes the bundle directory"),
])
def test_bad_image_default_is_a_one_line_error(tmp_path, setup, value, message):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (tmp_path / "outside.json").write_text(json.dumps(PROFILE))
    if setup == "link":
        os.symlink("../outside.json", bundle / "p.json")
    elif setup is not None:
        (bundle / "p.json").write_text(setup)
    with pytest.raises(ValueError) as err:
        image_default.load(str(bundle), {ANNOTATION: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_path_swapped_for_a_symlink_never_reads_outside_the_bundle(tmp_path):
    """A container sharing the bundle's rootfs (a pool, a second run) swaps a directory
    on the profile's path for a symlink to the host while the runtime reads it: the file
    is opened below the bundle in one step, never found first and opened again."""
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "etc").mkdir(parents=True)
    (bundle / "rootfs" / "etc" / "p.json").write_text(json.dumps(PROFILE))
    host = tmp_path / "host"
    host.mkdir()
    (host / "p.json").write_text(json.dumps(dict(PROFILE, defaultAction="SCMP_ACT_ALLOW")))
    etc, parked = bundle / "rootfs" / "etc", bundle / "rootfs" / "etc.parked"
    # In a process of its own, as the container's would be (a thread would take turns
    # with the reader under the GIL, every few milliseconds, and rarely meet it midway).
    swapper = subprocess.Popen([sys.executable, "-c", f"""
import os
while True:
    os.rename({str(etc)!r}, {str(parked)!r})
    os.symlink({str(host)!r}, {str(etc)!r})
    os.unlink({str(etc)!r})
    os.rename({str(parked)!r}, {str(etc)!r})
"""])
    seen = set()
    try:
        for _ in range(5000):
            try:
                seen.add(image_default.load(str(bundle), {ANNOTATION: "rootfs/etc/p.json"})["defaultAction"])
            except ValueError:
                pass  # caught mid-swap: refused (escapes the bundle) or missing
    finally:
        swapper.kill()
        swapper.wait()
    assert "SCMP_ACT_ALLOW" not in seen
    assert seen == {"SCMP_ACT_ERRNO"}


def test_install_writes_the_annotation_and_keeps_the_config(tmp_path):
    config = {"ociVersion": "1.2.0", "process": {"args": ["/bin/sh"]}, "annotations": {"a": "b"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    os.chmod(tmp_path / "config.json", 0o640)
    image_default.install(str(tmp_path))
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["annotations"] == {"a": "b", ANNOTATION: "seccomp.profile.json"}
    assert written["process"] == config["process"]
    assert os.stat(tmp_path / "config.json").st_mode & 0o777 == 0o640


def _bundle(tmp_path, rootfs, args):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = {"ociVersion": "1.2.0", "root": {"path": rootfs},
              "process": {"args": args, "env": ["PATH=/usr/bin:/"], "cwd": "/"}}
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def test_cli_bundle_install(tmp_path, known_answers_static):
    bundle = _bundle(tmp_path, known_answers_static, ["known"])
    result = subprocess.run(["slr", "profile", "--bundle", str(bundle), "--install", "--report", "-"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("architecture x86_64: ")
    assert "/known: " in result.stdout
    config = json.loads((bundle / "config.json").read_text())
    assert config["annotations"][ANNOTATION] == "seccomp.profile.json"
    profile = image_default.load(str(bundle), config["annotations"])
    assert "getpid" in profile["syscalls"][0]["names"]


@pytest.mark.parametrize("args, message", [
    (["--rootfs", "/nonexistent"], "rootfs is not a directory: /nonexistent"),
    (["--rootfs", "/", "--entry", "/no/such/program"], "entry not found in the rootfs: /no/such/program"),
    (["--rootfs", "/", "--install"], "--install, --dynamic and --host-root need --bundle"),
    (["--rootfs", "/", "--dynamic"], "--install, --dynamic and --host-root need --bundle"),
    (["--rootfs", "/", "--host-root", "/tmp"], "--install, --dynamic and --host-root need --bundle"),
    (["--bundle", "/nonexistent"], "cannot read /nonexistent/config.json"),
    (["--rootfs", "/", "--entry", "/etc/passwd"], "not a valid ELF file"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    output = tmp_path / "out.json"
    result = subprocess.run(["python", "-m", "slruntime.profile", *args, "--output", str(output)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not output.exists()
