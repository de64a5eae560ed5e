"""Ways out of a container that a hostile image (or a hostile caller environment) tried
against slr, found by an adversarial audit; each was a real escape or leak before its fix.

- a /dev/null in the image that is a symlink into /proc: masking bound the target
  (writable /proc/sys/kernel/core_pattern) over every masked file (CVE-2025-31133 class)
- a program, "#!" interpreter or startContainer hook reached through /proc/self/exe: the
  container ran the host's Python interpreter and held a descriptor to its binary
  (CVE-2019-5736 class)
- without a procfs at /proc, files of the image stood in for the kernel's: a fake
  cap_last_cap kept every capability in the bounding set, a fake setgroups "deny" left
  the caller's supplementary groups to the container
- a state root another user can write in (their own /tmp/slr-UID)
- a symlink planted at the pid file's predictable temporary name
- `exec` flags for groups and confinement, accepted and ignored
- an image whose /proc (or /sys, /dev...) is a symlink: procfs was mounted where it
  pointed, while masked and read-only paths were resolved again after pivot_root (and
  skipped when missing); two containers sharing a writable rootfs could race the link
  into an unmasked, writable /proc/sys/kernel/core_pattern; without a procfs, sysctls
  went to the image's files
- a process started from a terminal (`slr run` in the foreground, `slr exec` without
  --tty, `slr create`) kept the caller's controlling terminal: it opened /dev/tty and
  queued commands with TIOCSTI that the operator's shell ran as root once slr returned
- every container process shared the caller's session keyring, and so read its keys
  (disk encryption, NFS, Kerberos...): keys are not namespaced
- `slr ps` printed a container's command line raw: a newline forged rows (a host pid
  for the operator to kill), escape sequences drove the operator's terminal
- `slr spec` in a shared directory created the target of a dangling symlink planted as
  config.json (runc's spec has the same check-then-write)
"""

import itertools
import json
import os
import stat
import subprocess
import threading
import time

import pytest
from helpers import Slr


def _without_mounts(config, *destinations):
    config["mounts"] = [m for m in config["mounts"]
                        if not any(m["destination"] == d or m["destination"].startswith(d + "/") for d in destinations)]


def _host_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _state_root_is_empty(state_root):
    return os.listdir(state_root) == []


# --- masked paths and the image's /dev/null --------------------------------------------

@pytest.mark.parametrize("dev_null", ["symlink-to-core-pattern", "regular-file"])
def test_masking_never_binds_what_the_images_dev_null_points_to(slr, bundle, state_root, dev_null):
    """Without a /dev of the container's own, /dev/null is the image's. Masking bound the
    path "/dev/null" over each masked file: a symlink to /proc/sys/kernel/core_pattern
    made /proc/keys a writable view of the host's core_pattern."""
    with open("/proc/self/mountinfo") as f:
        host_mounts = f.read().count("\n")

    def hostile(config):
        _without_mounts(config, "/dev")
        null = os.path.join(config["root"]["path"], "dev", "null")
        if dev_null == "regular-file":
            open(null, "w").close()
        else:
            os.symlink("/proc/sys/kernel/core_pattern", null)

    b = bundle(["sh", "-c", "test -w /proc/keys && echo WRITABLE; cat /proc/keys"], edit=hostile)
    result = slr("run", "-b", b, "c1")
    assert (result.returncode, result.stdout) == (1, ""), result.stdout
    assert result.stderr == "slr: masked paths: /dev/null in the container is not the null device\n"
    assert _state_root_is_empty(state_root)
    with open("/proc/self/mountinfo") as f:
        assert f.read().count("\n") == host_mounts


def test_masking_with_the_images_own_null_device(slr, bundle):
    """The image's /dev/null, when it is the null device, still masks files."""
    def own_dev(config):
        _without_mounts(config, "/dev")
        os.mknod(os.path.join(config["root"]["path"], "dev", "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))

    result = slr("run", "-b", bundle(["sh", "-c", "wc -c < /proc/keys; grep -c ' /proc/keys ' /proc/self/mountinfo"],
                                     edit=own_dev), "c1")
    assert (result.returncode, result.stdout.split()) == (0, ["0", "1"]), result.stderr


# --- the runtime's own binary (/proc/self/exe) -------------------------------------------

def _host_python_libraries(config):
    """Bind the host's libraries read-only, as an image with its own glibc and Python
    stdlib would have them: the host's Python, once run in the container, then starts
    (and the witness script below would print its inode)."""
    root = config["root"]["path"]
    for path in ("/usr/lib", "/lib64"):  # (the ELF interpreter is in /lib64 on x86_64)
        if os.path.isdir(path):
            config["mounts"].append({"destination": path, "type": "bind", "source": os.path.realpath(path),
                                     "options": ["rbind", "ro"]})
    if not os.path.lexists(os.path.join(root, "lib")):
        os.symlink("usr/lib", os.path.join(root, "lib"))


WITNESS = ("#!/proc/self/exe\nimport os\nst = os.stat('/proc/self/exe')\n"
           "print('host binary reached', st.st_ino, st.st_dev)\n")


def _runtime_binary_traps(config):
    _host_python_libraries(config)
    root = config["root"]["path"]
    scripts = {"evil": WITNESS, "evil-with-arg": "#!  /evil   -x\n", "evil-via-link": "#!/bin/py\n"}
    for name, text in scripts.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(root, name), 0o755)
    os.symlink("/proc/1/exe", os.path.join(root, "bin", "py"))


TRAPS = {  # args[0] -> the path the refusal names
    "/evil": "/proc/self/exe", "/evil-with-arg": "/proc/self/exe", "/evil-via-link": "/bin/py",
    "py": "/usr/bin/py", "/proc/self/exe": "/proc/self/exe",
}


def _refusal(program, link):
    return f"slr: exec: \"{program}\": {link} leads through a /proc magic link, which would run the runtime's own binary\n"


@pytest.mark.parametrize("program", sorted(TRAPS))
def test_container_process_never_runs_the_runtimes_binary(slr, bundle, state_root, program):
    b = bundle([program], edit=_runtime_binary_traps)
    result = slr("run", "-b", b, "c1")
    assert "host binary reached" not in result.stdout
    assert (result.returncode, result.stderr) == (1, _refusal(program, TRAPS[program]))
    assert _state_root_is_empty(state_root)


def test_exec_never_runs_the_runtimes_binary(slr, bundle):
    slr("run", "-d", "-b", bundle(["sleep", "1000"], edit=_runtime_binary_traps), "c1", check=True)
    try:
        results = {program: slr("exec", "c1", program) for program in sorted(TRAPS)}
        ordinary = slr("exec", "c1", "sh", "-c", "echo still fine")
    finally:
        slr("delete", "-f", "c1", check=True)
    for program, result in results.items():
        assert "host binary reached" not in result.stdout
        assert (result.returncode, result.stderr) == (1, _refusal(program, TRAPS[program]))
    assert ordinary.stdout == "still fine\n"


def test_the_check_of_the_program_never_opens_a_fifo_or_device(slr, bundle, state_root):
    """Reading the program's "#!" line must not block on a FIFO (or act on a device)."""
    b = bundle(["/fifo"], edit=lambda config: os.mkfifo(os.path.join(config["root"]["path"], "fifo")))
    result = slr("run", "-b", b, "c1", timeout=30)
    assert (result.returncode, result.stderr) == (1, 'slr: exec: "/fifo": Permission denied\n')
    assert _state_root_is_empty(state_root)


def test_start_container_hook_never_runs_the_runtimes_binary(slr, bundle, state_root):
    """startContainer hooks run in the container, started by the init (still the
    runtime's Python): a hook path of the image with "#!/proc/self/exe" ran it there."""
    def hook_trap(config):
        _runtime_binary_traps(config)
        config["hooks"] = {"startContainer": [{"path": "/evil"}]}

    result = slr("run", "-b", bundle(["echo", "the process ran"], edit=hook_trap), "c1")
    assert "host binary reached" not in result.stdout and "the process ran" not in result.stdout
    assert (result.returncode, result.stderr) == (1, "slr: startContainer hook #0 (/evil): /proc/self/exe leads "
                                                     "through a /proc magic link, which would run the runtime's own binary\n")
    assert _state_root_is_empty(state_root)


# --- no procfs at /proc: the image's files stand in for the kernel's ---------------------

def _fake_proc(files):
    def edit(config):
        _without_mounts(config, "/proc")
        # Masking and read-only paths mount on /proc/self/fd/N after pivot_root: they
        # need a procfs (without one, create fails naming the path).
        config["linux"]["maskedPaths"] = config["linux"]["readonlyPaths"] = []
        root = config["root"]["path"]
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
    return edit


def test_bounding_set_ignores_a_fake_cap_last_cap(slr, bundle):
    """drop_bounding read cap_last_cap in the container: "0" kept every capability above
    CAP_CHOWN, and a root process without noNewPrivileges got them all at execve."""
    def edit(config):
        _fake_proc({"proc/sys/kernel/cap_last_cap": "0\n"})(config)
        config["process"]["noNewPrivileges"] = False

    b = bundle(["sleep", "1000"], edit=edit)
    with open(os.path.join(b, "config.json")) as f:
        wanted = json.load(f)["process"]["capabilities"]["bounding"]
    from slruntime.spec import CAPABILITIES

    mask = f"{sum(1 << CAPABILITIES.index(c) for c in wanted):016x}"
    slr("run", "-d", "-b", b, "c1", check=True)
    try:
        init = _host_status(slr.state("c1")["pid"])
        slr("exec", "-d", "--pid-file", os.path.join(b, "exec.pid"), "c1", "sleep", "1001", check=True)
        with open(os.path.join(b, "exec.pid")) as f:
            executed = _host_status(int(f.read()))
    finally:
        slr("delete", "-f", "c1", check=True)
    for status in (init, executed):
        assert (status["CapBnd"], status["CapPrm"], status["CapEff"]) == (mask, mask, mask)


def test_callers_supplementary_groups_never_reach_the_container(slr, bundle):
    """A fake /proc/self/setgroups saying "deny" made slr skip setgroups(2): the
    container process kept the groups of whoever ran slr."""
    def edit(config):
        _fake_proc({"proc/self/setgroups": "deny\n"})(config)
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    b = bundle(["sleep", "1000"], edit=edit)
    slr("run", "-d", "-b", b, "c1", check=True, extra_groups=[6, 27])
    try:
        init = _host_status(slr.state("c1")["pid"])
        slr("exec", "-d", "--pid-file", os.path.join(b, "exec.pid"), "c1", "sleep", "1001", check=True,
            extra_groups=[6, 27])
        with open(os.path.join(b, "exec.pid")) as f:
            executed = _host_status(int(f.read()))
    finally:
        slr("delete", "-f", "c1", check=True)
    assert init["Groups"].strip() == "" and executed["Groups"].strip() == ""
    assert init["Gid"].split()[0] == executed["Gid"].split()[0] == "1000"


def test_sysctl_without_a_procfs_sets_the_kernels_value_not_the_images_file(slr, bundle):
    """Sysctls were written to /proc/sys/... after pivot_root: without a procfs at /proc
    that is a file of the image, and the container's namespace kept the kernel's value."""
    def edit(config):
        _fake_proc({"proc/sys/kernel/shmmax": "fake\n"})(config)
        config["root"]["readonly"] = False
        config["linux"]["sysctl"] = {"kernel.shmmax": "123456789"}

    b = bundle(["sleep", "1000"], edit=edit)
    slr("run", "-d", "-b", b, "c1", check=True)
    try:
        seen = subprocess.run(["nsenter", "-t", str(slr.state("c1")["pid"]), "-i", "cat", "/proc/sys/kernel/shmmax"],
                              capture_output=True, text=True, timeout=30)
    finally:
        slr("delete", "-f", "c1", check=True)
    assert seen.stdout == "123456789\n", seen.stderr  # in the container's ipc namespace
    with open(os.path.join(b, "rootfs", "proc", "sys", "kernel", "shmmax")) as f:
        assert f.read() == "fake\n"


# --- the state root ---------------------------------------------------------------------

@pytest.mark.parametrize("owner,mode", [(65534, 0o755), (0, 0o777), (0, 0o775)])
def test_state_root_others_can_write_to_is_refused(slr_bin, bundle, tmp_path, owner, mode):
    """Whoever can write in the state root can plant a state.json naming any pid for
    `kill`, or a config.json whose poststop hooks `delete` runs."""
    root = tmp_path / "foreign"
    root.mkdir()
    os.chown(root, owner, 0)
    os.chmod(root, mode)
    foreign = Slr(slr_bin, str(root))
    expected = (f"slr: state root {root} belongs to uid {owner}, not to this user\n" if owner
                else f"slr: state root {root} is writable by other users (mode {mode:o})\n")
    for argv in (("create", "-b", bundle(["true"]), "c1"), ("list",), ("delete", "-f", "c1"), ("state", "c1")):
        result = foreign(*argv)
        assert (result.returncode, result.stderr) == (1, expected), argv
    assert os.listdir(root) == []


def test_state_root_through_a_symlink_to_our_own_directory(slr_bin, bundle, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    linked = Slr(slr_bin, str(tmp_path / "link"))
    linked("run", "-b", bundle(["true"]), "c1", check=True)
    assert linked("list", "-q", check=True).stdout == "" and os.listdir(real) == []


# --- the pid file ------------------------------------------------------------------------

def test_pid_file_is_never_written_through_a_planted_symlink(slr, bundle, tmp_path):
    """The temporary name next to --pid-file is predictable (its pid): in a shared
    directory, a symlink planted there made slr, as root, overwrite any file."""
    precious = tmp_path / "precious"
    precious.write_text("precious\n")
    pid_file = tmp_path / "c1.pid"
    plant_then_run = ['sh', '-c', 'ln -s "$1" "$2.tmp$$" || exit 99; shift 2; exec "$@"', "sh", str(precious),
                      str(pid_file), *slr.cmd("run", "-d", "--pid-file", str(pid_file), "-b", bundle(["sleep", "1000"]), "c1")]
    with open(tmp_path / "out", "w") as out:
        code = subprocess.run(plant_then_run, stdout=out, stderr=out, timeout=60).returncode
    try:
        assert code == 0, (tmp_path / "out").read_text()
        assert precious.read_text() == "precious\n"
        assert not pid_file.is_symlink() and int(pid_file.read_text()) == slr.state("c1")["pid"]
        assert sorted(os.listdir(tmp_path)) == sorted(["precious", "c1.pid", "out", "bundle1", "state"])
    finally:
        slr("delete", "-f", "c1")


# --- exec flags that change who the process is ---------------------------------------------

def test_exec_flags_for_groups_and_profiles_are_applied_or_refused(slr, bundle):
    """--additional-gids, --apparmor, --process-label and --cgroup were accepted and
    silently ignored: the process ran without the groups or confinement asked for."""
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c1", check=True)
    try:
        groups = slr("exec", "-g", "10", "-g", "20", "--user", "1000:1000", "c1", "id")
        refused = {flag: slr("exec", *flag, "c1", "id") for flag in (
            ("-g", "wheel"), ("--cgroup", "sub"), ("-g", "4294967295"))}
        profile = slr("exec", "--apparmor", "slr-test-profile", "c1", "id")
    finally:
        slr("delete", "-f", "c1", check=True)
    assert (groups.returncode, groups.stdout) == (0, "uid=1000 gid=1000 groups=10,20\n"), groups.stderr
    assert {flag: (r.returncode, r.stderr) for flag, r in refused.items()} == {
        ("-g", "wheel"): (1, "slr: exec: --additional-gids wheel: must be numeric group ids\n"),
        ("--cgroup", "sub"): (1, "slr: exec: --cgroup is not supported: the process joins the container's cgroup\n"),
        ("-g", "4294967295"): (1, "slr: exec: process.user.additionalGids[0]: 4294967295 is out of range [0, 4294967294]\n"),
    }
    # A profile this host cannot enforce (no AppArmor, or no such profile loaded) is an
    # error, not an unconfined process.
    assert (profile.returncode, profile.stdout) == (1, ""), profile.stdout
    from slruntime import lsm

    if not lsm.apparmor_enabled():
        assert "AppArmor is not enabled on this host" in profile.stderr


# --- special mounts and masked paths: resolved once, without symlinks ----------------------

def _host_mounts_in(directory):
    """Mount points of the host under `directory` (other work may mount elsewhere meanwhile)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(directory)]


def _own_dev_removed(config):
    """No /dev tmpfs: /dev/pts, /dev/shm and /dev/mqueue are then the image's directories."""
    _without_mounts(config, "/dev")
    config["mounts"] += [m for m in _default_dev_submounts()]
    config["linux"]["maskedPaths"] = []


def _default_dev_submounts():
    from helpers import default_config

    return [m for m in default_config(["true"], "/")["mounts"] if m["destination"].startswith("/dev/")]


def _symlink_at(path, target):
    def edit(config):
        full = os.path.join(config["root"]["path"], path.lstrip("/"))
        if os.path.isdir(full):
            os.rename(full, full + ".real")
        os.makedirs(os.path.join(config["root"]["path"], target.lstrip("/")), exist_ok=True)
        os.symlink(target, full)
    return edit


SYMLINKED_DESTINATIONS = {  # what the image does -> the one line create prints
    "proc": (_symlink_at("/proc", "/fakeproc"), "mount proc on /proc: /proc is a symbolic link"),
    "sysfs": (_symlink_at("/sys", "/fakesys"), "mount sysfs on /sys: /sys is a symbolic link"),
    "dev-tmpfs": (_symlink_at("/dev", "/fakedev"), "mount tmpfs on /dev: /dev is a symbolic link"),
    "devpts-below-a-link": (lambda c: (_own_dev_removed(c), _symlink_at("/dev", "/fakedev")(c)),
                            "mount devpts on /dev/pts: /dev is a symbolic link"),
    "mqueue": (lambda c: (_own_dev_removed(c), os.makedirs(os.path.join(c["root"]["path"], "dev", "pts")),
                          os.makedirs(os.path.join(c["root"]["path"], "dev", "shm")),
                          _symlink_at("/dev/mqueue", "/fakemq")(c)),
               "mount mqueue on /dev/mqueue: /dev/mqueue is a symbolic link"),
    "proc-a-file": (lambda c: (os.rmdir(os.path.join(c["root"]["path"], "proc")),
                               open(os.path.join(c["root"]["path"], "proc"), "w").close()),
                    "mount proc on /proc: /proc is not a directory"),
}


@pytest.mark.parametrize("case", sorted(SYMLINKED_DESTINATIONS))
def test_kernel_filesystems_are_mounted_only_on_ordinary_directories(slr, bundle, state_root, case):
    """procfs went where an image's /proc symlink pointed (and so did sysfs, devpts,
    mqueue, a /dev tmpfs), while the masks were applied to whatever /proc was after
    pivot_root. runc refuses a proc or sysfs destination that is not a directory."""
    edit, message = SYMLINKED_DESTINATIONS[case]
    b = bundle(["sh", "-c", "cat /proc/self/mountinfo"], edit=edit)
    result = slr("run", "-b", b, "c1")
    assert (result.returncode, result.stderr) == (1, f"slr: {message}\n"), result.stdout
    assert _state_root_is_empty(state_root) and _host_mounts_in(b) == []


@pytest.mark.parametrize("kind", ["maskedPaths", "readonlyPaths"])
def test_masked_and_readonly_paths_never_follow_a_symlink(slr, bundle, state_root, kind):
    """A masked (or read-only) path that is a symlink in the image covered its target."""
    def linked(config):
        config["root"]["readonly"] = False
        os.symlink("/etc/passwd", os.path.join(config["root"]["path"], "etc", "secret"))
        config["linux"][kind].append("/etc/secret")

    result = slr("run", "-b", bundle(["cat", "/etc/passwd"], edit=linked), "c1")
    what = "masked path" if kind == "maskedPaths" else "readonly path"
    assert (result.returncode, result.stderr) == (1, f"slr: {what} /etc/secret: /etc/secret is a symbolic link\n")
    assert _state_root_is_empty(state_root)


def _procfs_children(mountinfo):
    """{procfs mount id: {name of each mount on it: its mount options}}. By mount id, not
    path: the other container keeps renaming /proc while the kernel prints mountinfo in
    chunks, so one read can show the procfs as /proc.real and its masks below /proc."""
    records = []
    for line in mountinfo.splitlines():
        fields = line.split()
        sep = fields.index("-")
        records.append((fields[0], fields[1], fields[4], fields[5].split(","), fields[sep + 1], fields[3]))
    procfs = {mount_id for mount_id, _, _, _, fstype, root in records if (fstype, root) == ("proc", "/")}
    return {mount_id: {os.path.basename(point): options for _, parent, point, options, _, _ in records
                       if parent == mount_id}
            for mount_id in procfs}


def test_racing_proc_symlink_never_leaves_proc_unmasked(slr, bundle, state_root):
    """Containers sharing a writable rootfs: one of them swaps /proc between the real
    directory and a symlink to a directory of fake files while another is created.
    Each create must fail cleanly or give its container procfs only with every mask and
    read-only path on it. (Read from the host: a rename by the other container later
    moves that procfs, with its masks, to another name in this one.)"""
    def fake_proc(config):
        root = config["root"]["path"]
        os.makedirs(os.path.join(root, "fakeproc", "sys", "kernel"))
        for name in ("kcore", "keys", "timer_list", "sysrq-trigger"):
            open(os.path.join(root, "fakeproc", name), "w").close()
        # Descriptors reached through the fake /proc are the real procfs's, moved aside.
        os.symlink("/proc.real/self", os.path.join(root, "fakeproc", "self"))
        config["root"]["readonly"] = False

    b = bundle(["sleep", "1000"], edit=fake_proc)
    root = os.path.join(b, "rootfs")
    proc, real = os.path.join(root, "proc"), os.path.join(root, "proc.real")
    stop = threading.Event()

    def racer():  # what a container with this rootfs can do to it: swap, hold, swap back, hold
        holds = itertools.cycle([0.0005, 0.002, 0.001, 0.004, 0.003])
        while not stop.is_set():
            for step in (lambda: os.rename(proc, real), lambda: os.symlink("/fakeproc", proc), lambda: next(holds),
                         lambda: os.unlink(proc), lambda: os.rename(real, proc), lambda: next(holds)):
                try:
                    hold = step()
                except OSError:
                    continue
                if hold:
                    time.sleep(hold)

    thread = threading.Thread(target=racer)
    thread.start()
    refused, created = [], []
    try:
        for i in range(16):
            result = slr("create", "-b", b, f"r{i}")
            if result.returncode != 0:
                refused.append(result.stderr)
                continue
            with open(f"/proc/{slr.state(f'r{i}')['pid']}/mountinfo") as f:
                created.append(f.read())
            slr("delete", "-f", f"r{i}", check=True)
    finally:
        stop.set()
        thread.join()
    for stderr in refused:  # one line, about the proc mount (or what was mounted on it)
        assert stderr.startswith(("slr: mount proc on /proc: ", "slr: masked path /proc/", "slr: readonly path /proc/")) \
            and stderr.count("\n") == 1, stderr
    for mountinfo in created:
        # (No procfs at all when the other container replaced the directory it was mounted
        # on: the kernel then detaches the procfs with its masks, and /proc shows plain files.)
        for children in _procfs_children(mountinfo).values():
            assert "keys" in children and "timer_list" in children, mountinfo
            assert "ro" in children["sys"], mountinfo
    assert _state_root_is_empty(state_root) and _host_mounts_in(b) == []


# --- the caller's terminal -----------------------------------------------------------

# What a container process learns of a controlling terminal: tty_nr of /proc/self/stat
# (0: none), and whether /dev/tty opens (ENXIO without one). With the caller's terminal
# it could read the operator's keystrokes and queue commands for their shell (TIOCSTI).
TTY_PROBE = ("echo tty_nr=$(cut -d' ' -f7 /proc/self/stat); "
             "(: > /dev/tty) 2>/dev/null && echo dev-tty=opened || echo dev-tty=refused")


def _on_a_terminal(command):
    """Run `command` with a new pty as stdio and controlling terminal (an operator's
    shell); returns what it wrote there."""
    import pty
    import select

    pid, master = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    output = b""
    while True:
        readable, _, _ = select.select([master], [], [], 30)
        if not readable:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the command exited
            break
        if not data:
            break
        output += data
    os.close(master)
    os.waitpid(pid, 0)
    return output.decode(errors="replace").replace("\r\n", "\n")


def test_container_processes_never_get_the_callers_terminal(slr, bundle):
    """runc's init calls setsid() for every container process: so does slr now."""
    b = bundle(["sh", "-c", TTY_PROBE])
    run = _on_a_terminal(slr.cmd("run", "-b", b, "c1"))
    slr("run", "-d", "-b", bundle(["sleep", "1000"]), "c2", check=True)
    try:
        exec_output = _on_a_terminal(slr.cmd("exec", "c2", "sh", "-c", TTY_PROBE))
    finally:
        slr("delete", "-f", "c2", check=True)
    assert "tty_nr=0\ndev-tty=refused\n" in run, run
    assert "tty_nr=0\ndev-tty=refused\n" in exec_output, exec_output


# --- the caller's session keyring ------------------------------------------------------


def _with_a_secret_in_our_session_keyring():
    """preexec_fn: a new session keyring of the caller's, holding a key that only its
    possessors may view (perm 0x3f000000): what an operator's or a service's keyring
    holds (disk encryption keys, NFS or Kerberos credentials)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    keyctl, add_key = {"x86_64": (250, 248), "aarch64": (219, 217)}[os.uname().machine]
    assert libc.syscall(keyctl, 1, b"slr-test-session") > 0  # KEYCTL_JOIN_SESSION_KEYRING
    key = libc.syscall(add_key, b"user", b"slr-test-secret", b"hunter2", 7, -3)  # KEY_SPEC_SESSION_KEYRING
    assert key > 0
    assert libc.syscall(keyctl, 5, key, 0x3F000000) == 0  # KEYCTL_SETPERM: possessor only


def _keys_seen_by_an_unprivileged_user(config):
    """Run as uid 1000, which may view a key only by possessing it, with /proc/keys
    (which lists the keys its reader may view) unmasked."""
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["linux"]["maskedPaths"].remove("/proc/keys")


def test_container_processes_never_get_the_callers_session_keyring(slr, bundle):
    """runc joins a new session keyring for every container process: so does slr now
    (not with --no-new-keyring, which keeps the caller's, as runc)."""
    if not os.path.exists("/proc/keys"):
        pytest.skip("a kernel without keys (CONFIG_KEYS=n): nothing to leak")
    def run(*args):
        return subprocess.run(slr.cmd(*args), capture_output=True, text=True, timeout=60,
                              preexec_fn=_with_a_secret_in_our_session_keyring)

    probe = bundle(["cat", "/proc/keys"], edit=_keys_seen_by_an_unprivileged_user)
    seen = run("run", "-b", probe, "c1")
    kept = run("run", "--no-new-keyring", "-b", probe, "c2")
    slr("run", "-d", "-b", bundle(["sleep", "1000"], edit=_keys_seen_by_an_unprivileged_user), "c3", check=True)
    try:
        exec_seen = run("exec", "c3", "cat", "/proc/keys")
    finally:
        slr("delete", "-f", "c3", check=True)
    for result in (seen, kept, exec_seen):
        assert result.returncode == 0, result.stderr
    assert "slr-test-secret" not in seen.stdout
    assert "slr-test-secret" not in exec_seen.stdout
    assert "slr-test-secret" in kept.stdout  # the probe sees a possessed key


# --- what `slr ps` shows of a container --------------------------------------------------


def test_ps_never_prints_what_a_container_writes_in_its_command_line_raw(slr, bundle):
    """A container's command line is its own: a newline there forged a row of `slr ps`
    (a host pid for the operator to kill), an escape sequence reached their terminal."""
    forged = "x\n1     /sbin/init\x1b]0;pwned\x07"
    slr("run", "-d", "-b", bundle(["sh", "-c", "sleep 1000; true", forged]), "c1", check=True)
    try:
        table = slr("ps", "c1", check=True).stdout
    finally:
        slr("delete", "-f", "c1", check=True)
    rows = table.splitlines()
    assert rows[0] == "PID   CMD" and len(rows) == 3, table  # sh and its sleep
    assert not any(c in table for c in "\x1b\x07")
    assert any(row.endswith("sh -c sleep 1000; true x?1     /sbin/init?]0;pwned?") for row in rows), table


# --- files slr writes where others may write -------------------------------------------


@pytest.mark.parametrize("planted", ["dangling", "existing"])
def test_spec_never_writes_through_a_planted_config_symlink(slr, tmp_path, planted):
    """`slr spec` in a shared directory: a symlink planted as config.json made root
    create its target (checked with exists(), which a dangling link fails, then opened)."""
    target = tmp_path / "elsewhere"
    if planted == "existing":
        target.write_text("keep")
    os.symlink(target, tmp_path / "config.json")
    result = slr("spec", "--bundle", str(tmp_path))
    assert (result.returncode, result.stderr) == (1, f"slr: File {tmp_path}/config.json exists. Remove it first\n")
    assert (target.read_text() == "keep") if planted == "existing" else not target.exists()
