"""/etc/slr/slr.conf (here through SLR_CONFIG): defaults, seccomp-default, housekeeping CPUs."""

import os

import pytest

from helpers import Slr

LAYER_FILES = os.path.join(os.path.dirname(__file__), "..", "..", "meta-slruntime", "recipes-core",
                           "slruntime-rootfs-config", "files")


@pytest.fixture
def configured(slr_bin, tmp_path, monkeypatch):
    def make(text):
        path = tmp_path / "slr.conf"
        path.write_text(text)
        monkeypatch.setenv("SLR_CONFIG", str(path))
        return Slr(slr_bin, str(tmp_path / "state"))
    return make


def test_root_and_default_seccomp_profile_from_the_layer(configured, bundle, tmp_path):
    profile = os.path.abspath(os.path.join(LAYER_FILES, "seccomp-default.json"))
    root = tmp_path / "confroot"
    runtime = configured(f"# comment\nroot={root}\nseccomp-default={profile}\n")
    import subprocess

    b = bundle(["sh", "-c", "grep '^Seccomp:' /proc/self/status"])
    # No --root on these command lines: the file's root is used.
    result = subprocess.run([runtime.binary, "run", "-d", "-b", b, "x"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr
    assert os.path.isdir(root / "x")  # state under the configured root
    subprocess.run([runtime.binary, "delete", "-f", "x"], check=True)
    fg = subprocess.run([runtime.binary, "run", "-b", b, "y"], capture_output=True, text=True)
    assert "Seccomp:\t2" in fg.stdout  # the layer's default profile applies
    explicit = bundle(["sh", "-c", "grep '^Seccomp:' /proc/self/status"],
                      edit=lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW"}))
    fg = subprocess.run([runtime.binary, "run", "-b", explicit, "z"], capture_output=True, text=True)
    assert "Seccomp:\t2" in fg.stdout  # config.json's own profile (allow-all) replaces it


def test_housekeeping_cpus_pin_the_runtime_not_the_container(configured, bundle, tmp_path):
    if os.cpu_count() < 2:
        pytest.skip("needs two CPUs")
    runtime = configured("housekeeping-cpus=1\n")
    out = tmp_path / "hook.out"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"grep Cpus_allowed_list /proc/self/status > {out}"]}
    b = bundle(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
               edit=lambda c: c.update(hooks={"createRuntime": [hook]}))
    result = runtime("run", "-b", b, "rt")
    assert result.returncode == 0, result.stderr
    assert out.read_text().split()[-1] == "1"  # the runtime's own work: housekeeping CPU
    assert result.stdout.split()[-1] == f"0-{os.cpu_count() - 1}"  # the container: all CPUs


def test_malformed_config_file_names_the_line(configured):
    runtime = configured("root=/tmp/x\nnot a setting\n")
    result = runtime("list")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(":2: expected one of root, log, log-format, seccomp-default, "
                                          "housekeeping-cpus as key=value, got 'not a setting'")
