"""OCI hooks: all six at their lifecycle points, in order, with the state on stdin;
timeouts and failures (create fails and leaves nothing behind; poststart/poststop warn)."""

import json
import os
import time
import uuid

from slruntime.cgroups import default_path

HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Records the state it reads on stdin as <dir>/<name>.json and appends its name to <dir>/order.
RECORD = 'cat > "$1/$2.json"; echo "$2 $HOOK_VAR" >> "$1/order"'


def _hook(log_dir, name, argv0="recorder", delay="0", **extra):
    return dict({"path": "/bin/sh", "args": [argv0, "-c", f"sleep {delay}; {RECORD}", "sh", log_dir, name],
                 "env": ["PATH=/usr/bin:/bin", f"HOOK_VAR=var-{name}"]}, **extra)


def _failing(status, message="", **extra):
    return dict({"path": "/bin/sh", "args": ["sh", "-c", f"echo '{message}' >&2; exit {status}"]}, **extra)


def _leftovers(slr, bundle_dir, container_id):
    """Whatever a failed create could leave: state, cgroup directories, processes."""
    found = list(slr.ids())
    cgroup = default_path(slr.root, container_id)
    found += [c for c in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{c}{cgroup}")]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if bundle_dir.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def test_all_six_hooks_in_order_with_state_on_stdin(slr, bundle, tmp_path):
    log = tmp_path / "hooks"
    log.mkdir()

    def hooks(config):
        config["hooks"] = {name: [_hook(str(log), name)] for name in HOOK_NAMES}
        # startContainer runs in the container after pivot_root: it sees the log through a bind mount.
        # (Its /bin/sh is the image's busybox, which needs argv[0] to name the applet.)
        # Slow on purpose: poststart must still wait until the process is executed.
        config["hooks"]["startContainer"] = [_hook("/hooklog", "startContainer", argv0="sh", delay="0.3")]
        config["mounts"].append({"destination": "/hooklog", "type": "bind", "source": str(log), "options": ["rbind"]})
        config["annotations"] = {"org.example.test": "hooks"}

    b = bundle(["sleep", "1000"], edit=hooks)
    slr("create", "-b", b, "c1", check=True)
    pid = slr.state("c1")["pid"]
    assert (log / "order").read_text().split("\n")[:-1] == [
        "prestart var-prestart", "createRuntime var-createRuntime", "createContainer var-createContainer"]
    slr("start", "c1", check=True)
    assert (log / "order").read_text().split()[6::2] == ["startContainer", "poststart"]
    slr("kill", "c1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while slr.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    slr("delete", "c1", check=True)
    assert (log / "order").read_text().split()[::2] == list(HOOK_NAMES)

    states = {name: json.loads((log / f"{name}.json").read_text()) for name in HOOK_NAMES}
    for name, state in states.items():
        assert state["id"] == "c1" and state["bundle"] == b, name
        assert state["annotations"] == {"org.example.test": "hooks"}, name
        assert state["ociVersion"], name
    # status: "created" once the environment is built (runtime-spec's lifecycle: after step 2;
    # runtime-tools' hooks_stdin); pid: the host's view in the runtime's namespaces, the container's in its own
    expected = {
        "prestart": ("created", pid), "createRuntime": ("created", pid), "createContainer": ("created", 1),
        "startContainer": ("created", 1), "poststart": ("running", pid), "poststop": ("stopped", None),
    }
    assert {name: (s["status"], s.get("pid")) for name, s in states.items()} == expected


def test_hook_timeout_fails_create_and_leaves_nothing(slr, bundle):
    b = bundle(["true"], edit=lambda c: c.update(hooks={"prestart": [
        {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}))
    container_id = f"timeout-{uuid.uuid4().hex[:8]}"
    result = slr("create", "-b", b, container_id, timeout=20)
    assert result.returncode == 1
    assert "prestart hook #0 (/bin/sleep) timed out after 1s" in result.stderr
    assert _leftovers(slr, b, container_id) == []


def test_failing_hooks_fail_create_and_leave_nothing(slr, bundle, tmp_path):
    marker = tmp_path / "second-ran"
    for name in ("prestart", "createRuntime", "createContainer"):
        b = bundle(["true"], edit=lambda c: c.update(hooks={name: [
            _failing(3, f"{name} says no"), {"path": "/bin/touch", "args": ["touch", str(marker)]}]}))
        container_id = f"{name}-{uuid.uuid4().hex[:8]}"
        result = slr("create", "-b", b, container_id)
        assert result.returncode == 1, name
        assert f"{name} hook #0 (/bin/sh) failed with status 3: {name} says no" in result.stderr
        assert _leftovers(slr, b, container_id) == [], name
        assert not marker.exists()  # the first failure stops the rest


def test_failing_start_container_hook_stops_the_container(slr, bundle, tmp_path):
    marker = tmp_path / "ran"
    b = bundle(["touch", "/hooklog/ran"], edit=lambda c: c.update(hooks={"startContainer": [_failing(4, "not now")]})
               or c["mounts"].append({"destination": "/hooklog", "type": "bind", "source": str(tmp_path), "options": ["bind"]}))
    result = slr("run", "-b", b, "c1")
    assert result.returncode == 1
    assert "startContainer hook #0 (/bin/sh) failed with status 4: not now" in result.stderr
    assert not marker.exists()  # the container's process never ran
    assert slr.ids() == []


def test_poststart_and_poststop_failures_only_warn(slr, bundle, tmp_path):
    log = tmp_path / "hooks"
    log.mkdir()
    b = bundle(["sleep", "1000"], edit=lambda c: c.update(hooks={
        "poststart": [_failing(5, "poststart trouble"), _hook(str(log), "poststart")],
        "poststop": [_failing(6, "poststop trouble"), _hook(str(log), "poststop")]}))
    started = slr("run", "-d", "-b", b, "c1")
    assert started.returncode == 0
    assert "poststart hook #0 (/bin/sh) failed with status 5: poststart trouble" in started.stderr
    assert slr.state("c1")["status"] == "running"
    deleted = slr("delete", "-f", "c1")
    assert deleted.returncode == 0
    assert "poststop hook #0 (/bin/sh) failed with status 6: poststop trouble" in deleted.stderr
    assert slr.ids() == []
    # A warning does not stop the hooks after it (the spec: log and continue).
    assert (log / "order").read_text().split()[::2] == ["poststart", "poststop"]


def test_start_container_hook_runs_as_the_container_process(slr, bundle):
    """startContainer hooks come from the image and run in the container: they ran with
    every capability of the runtime, as uid 0, without no_new_privs or seccomp (with
    CAP_DAC_READ_SEARCH, open_by_handle_at reaches the host's files). They must get
    what the process gets, as in runc: user and groups, the five capability sets,
    no_new_privs, the seccomp filter."""
    fields = "^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp|Seccomp_filters):"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"grep -E '{fields}' /proc/self/status > /dev/shm/hook; "
                                              "mkdir /dev/shm/by-hook 2>> /dev/shm/hook; true"]}

    def confined(config):
        config["process"].update(user={"uid": 1000, "gid": 1001, "additionalGids": [10]}, capabilities={
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]}  # EXDEV
        config["hooks"] = {"startContainer": [hook]}

    b = bundle(["sh", "-c", f"cat /dev/shm/hook; echo process; grep -E '{fields}' /proc/self/status"], edit=confined)
    result = slr("run", "-b", b, "c1")
    assert result.returncode == 0, result.stderr
    seen_by_hook, _, seen_by_process = result.stdout.partition("process\n")
    assert seen_by_hook.splitlines()[-1].endswith("Invalid cross-device link")  # the filter applies
    assert seen_by_hook.splitlines()[:-1] == seen_by_process.splitlines()
    status = dict(line.split(":\t", 1) for line in seen_by_process.splitlines())
    assert status["Uid"].split()[0] == "1000" and status["CapEff"] == "0000000000000020"  # CAP_KILL
    assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")
