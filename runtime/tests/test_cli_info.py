"""`slr spec`, `features`, `version`, `--help`: runc-shaped output."""

import json
import os


def test_spec_writes_runc_like_defaults_and_refuses_to_overwrite(slr, tmp_path):
    slr("spec", "--bundle", str(tmp_path), check=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert {n["type"] for n in config["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount", "cgroup"}
    again = slr("spec", "--bundle", str(tmp_path))
    assert again.returncode == 1 and "exists" in again.stderr


def test_spec_rootless_and_fgac(slr, tmp_path):
    slr("spec", "--rootless", "--fgac", "/run/fgac.sock", "--bundle", str(tmp_path), check=True)
    config = json.loads((tmp_path / "config.json").read_text())
    linux = config["linux"]
    assert {"type": "user"} in linux["namespaces"] and "resources" not in linux
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    seccomp = linux["seccomp"]
    assert seccomp["listenerPath"] == "/run/fgac.sock"
    notified = {name for rule in seccomp["syscalls"] if rule["action"] == "SCMP_ACT_NOTIFY" for name in rule["names"]}
    assert {"mount", "mknod", "mknodat"} <= notified


def test_features_document(slr):
    features = json.loads(slr("features", check=True).stdout)
    assert features["ociVersionMin"] == "1.0.0" and features["ociVersionMax"].startswith("1.")
    assert "SCMP_ACT_NOTIFY" in features["linux"]["seccomp"]["actions"]
    assert "time" in features["linux"]["namespaces"] and "poststop" in features["hooks"]
    assert features["linux"]["cgroup"]["systemd"] is False


def test_version_help_and_usage_errors(slr):
    assert slr("--version", check=True).stdout.startswith("slr version ")
    assert "Commands:" in slr("--help", check=True).stdout
    assert "--pid-file" in slr("create", "--help", check=True).stdout
    unknown = slr("frobnicate")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "slr: unknown command 'frobnicate'; run `slr --help`"
    bad_flag = slr("create", "--bogus", "x")
    assert bad_flag.returncode == 1 and "flag provided but not defined: --bogus" in bad_flag.stderr
    systemd = slr("--systemd-cgroup", "list")
    assert systemd.returncode == 1 and "--systemd-cgroup is not supported" in systemd.stderr


def test_log_json_for_engines(slr, tmp_path):
    log = tmp_path / "log.json"
    result = slr("--log", str(log), "--log-format", "json", "state", "missing")
    assert result.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container does not exist: missing" and entry["time"]
