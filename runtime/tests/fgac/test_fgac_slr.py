"""The FGAC server serving a real rootless `slr run` container: the runtime sends
the notify descriptor itself (linux.seccomp.listenerPath)."""

import json
import os
import subprocess

POLICY = """
container uid=fgac-test id=fgac-slr-*
  mount fstype=tmpfs source=tmpfs target=/mnt/allowed flags=nosuid,nodev data=size=*
  mknod path=/data/null type=c dev=1:3 mode=0666
"""

SCRIPT = """
bb=/bin/busybox
$bb mount -t tmpfs -o nosuid,size=1m tmpfs /mnt/allowed; echo "mount=$?"
$bb grep -c ' /mnt/allowed tmpfs ' /proc/mounts
umask 0; $bb mknod /data/null c 1 3; echo "mknod=$?"
$bb stat -c 'node=%F %t:%T %a %u' /data/null
echo discarded > /data/null && echo "write=ok"
$bb mount -t ramfs ramfs /mnt/other 2>/tmp/err; echo "denied=$?"
"""


def as_user(user, cmd, **kwargs):
    return subprocess.run(cmd, user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True,
                          text=True, timeout=60, **kwargs)


def make_bundle(workdir, rootfs, user, slr_bin, socket_path, script):
    """`slr spec --rootless` run as the user, then pointed at the test rootfs and
    given the seccomp section `slr spec --fgac` adds."""
    from slruntime.fgac.spec_helper import add_seccomp_notify

    bundle, state_root = os.path.join(workdir, "bundle"), os.path.join(workdir, "state")
    for d in (bundle, state_root):
        os.mkdir(d)
        os.chown(d, user.pw_uid, user.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "XDG_RUNTIME_DIR": state_root}
    spec = as_user(user, [slr_bin, "spec", "--rootless", "--bundle", bundle], env=env, cwd=bundle)
    assert spec.returncode == 0, spec.stderr
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["root"] = {"path": rootfs, "readonly": False}
    config["process"]["args"] = ["/bin/sh", "-c", script]
    config["process"]["terminal"] = False
    add_seccomp_notify(config, socket_path)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return [slr_bin, "--root", state_root, "run", "--bundle", bundle], env, bundle


def test_rootless_slr_container_served_by_fgac(fgac, rootfs, workdir, test_user, slr_bin):
    server = fgac(POLICY)
    run_cmd, env, bundle = make_bundle(workdir, rootfs, test_user, slr_bin, server.socket, SCRIPT)
    run = as_user(test_user, run_cmd + ["fgac-slr-1"], env=env, cwd=bundle)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split()
    assert lines[:2] == ["mount=0", "1"], run.stdout
    assert "mknod=0" in lines and "write=ok" in lines and "denied=1" in lines, run.stdout
    assert "node=character special file 1:3 666 0" in run.stdout
    decisions = server.decisions("fgac-slr-1")
    assert [(d["syscall"], d["decision"]) for d in decisions] == [
        ("mount", "allow"), ("mknodat", "allow"), ("mount", "deny")]
    (registered,) = server.records("register")
    assert registered["peer_uid"] == test_user.pw_uid and registered["bundle"] == bundle


def test_slr_container_gets_enosys_once_the_server_is_killed(fgac, rootfs, workdir, test_user, slr_bin):
    server = fgac(POLICY)
    script = ("while [ ! -e /data/go ]; do /bin/busybox sleep 0.05; done; "
              "/bin/busybox mount -t tmpfs tmpfs /mnt/allowed; echo \"mount=$?\"")
    run_cmd, env, bundle = make_bundle(workdir, rootfs, test_user, slr_bin, server.socket, script)
    proc = subprocess.Popen(run_cmd + ["fgac-slr-2"], user=test_user.pw_uid, group=test_user.pw_gid,
                            extra_groups=[], env=env, cwd=bundle, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        server.wait_for(lambda r: r["event"] == "register")
        server.proc.kill()
        server.proc.wait()
        open(os.path.join(rootfs, "data/go"), "w").close()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "mount=0" not in out and "Function not implemented" in err, (out, err)
