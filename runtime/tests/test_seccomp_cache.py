"""The cache of compiled seccomp programs (<root>/@seccomp-cache, seccomp.prepare): the
first start stores the program, the next ones load it without pyseccomp or ctypes, a bad
entry is rebuilt, and the container is confined the same way in every case."""

import errno
import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest
from helpers import status_fields
from test_seccomp import _answer_one, _results, _rule, _seccomp, _syscall_number, _try

from slruntime import seccomp

LAYER_PROFILE = os.path.join(os.path.dirname(__file__), "..", "..", "meta-slruntime", "recipes-core",
                             "slruntime-rootfs-config", "files", "seccomp-default.json")
DENIED = "mkdir /dev/shm/a"
ALLOWED = "touch /dev/shm/f"
SCRIPT = (_try(DENIED) + _try(ALLOWED) + "grep -E '^Seccomp(_filters)?:' /proc/self/status")

# `slr ARGS` in-process, with os.execve wrapped: the container's init (a fork of this
# process) prints the modules it holds just before it becomes the container's program.
PROBE = """
import os, sys
real_execve = os.execve
def execve(path, args, env):
    os.write(2, ("EXEC-MODULES " + " ".join(sorted(sys.modules)) + "\\n").encode())
    real_execve(path, args, env)
os.execve = execve
from slruntime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def layer_profile_denying_mkdir(errno_ret=errno.EXDEV, also_out=()):
    """The layer's default profile (an allow list, ~300 system calls) with mkdir and
    mkdirat moved out of it, to a rule that fails them with errno_ret (and the system
    calls `also_out` just taken out)."""
    with open(LAYER_PROFILE) as f:
        profile = json.load(f)
    taken_out = ("mkdir", "mkdirat", *also_out)
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n not in taken_out]
    profile["syscalls"].append(_rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errnoRet=errno_ret))
    return profile


def run_probed(state_root, bundle_path, container_id="c1"):
    """`slr run` through PROBE; returns (CompletedProcess, the init's modules at exec)."""
    return slr_probed(state_root, "run", "-b", bundle_path, container_id)


def slr_probed(state_root, *args):
    """`slr ARGS` through PROBE; returns (CompletedProcess, the modules of the process
    that became the container's program, at its execve)."""
    result = subprocess.run([sys.executable, "-c", PROBE, "--root", state_root, *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("EXEC-MODULES ")]
    assert len(lines) == 1, result.stderr
    return result, set(lines[0].split()[1:])


def cache_dir(state_root):
    return os.path.join(state_root, seccomp.CACHE_DIR)


def entries(state_root):
    """{name: (inode, mtime_ns, content)} of the cache directory."""
    found = {}
    directory = cache_dir(state_root)
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        st = os.stat(path)
        with open(path, "rb") as f:
            found[name] = (st.st_ino, st.st_mtime_ns, f.read())
    return found


def assert_confined(out, errno_text="Invalid cross-device link"):
    (denied_out, denied_rc), (allowed_out, allowed_rc) = _results(out)[:2]
    assert errno_text in denied_out and denied_rc == "1", out
    assert allowed_rc == "0", out
    status = status_fields(out)
    assert status["Seccomp"] == "2" and status["Seccomp_filters"] == "1", out


def test_first_run_stores_the_program_next_runs_load_it_without_pyseccomp(state_root, bundle, slr):
    b = bundle(["sh", "-c", SCRIPT], edit=_seccomp_profile(layer_profile_denying_mkdir()))
    first, modules = run_probed(state_root, b)
    assert_confined(first.stdout)
    assert "pyseccomp" in modules  # compiled
    stored = entries(state_root)
    assert len(stored) == 1
    (name, (inode, mtime, content)), = stored.items()
    assert re.fullmatch(r"[0-9a-f]{64}\.bpf", name)
    assert os.stat(cache_dir(state_root)).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(cache_dir(state_root), name)).st_mode & 0o777 == 0o600
    program = content[:-32]
    assert len(program) % 8 == 0 and 100 < len(program) // 8 <= seccomp.BPF_MAXINSNS

    second, modules = run_probed(state_root, b)
    assert_confined(second.stdout)
    assert not modules & {"pyseccomp", "ctypes"}, sorted(modules & {"pyseccomp", "ctypes"})
    assert "slruntime.seccomp" in modules
    assert entries(state_root) == stored  # read, not rewritten: same inode, mtime and bytes


def test_exec_loads_the_program_the_container_stored(state_root, bundle, slr):
    b = bundle(["sleep", "60"], edit=_seccomp_profile(layer_profile_denying_mkdir()))
    slr("run", "-d", "--bundle", b, "c1", check=True)
    try:
        stored = entries(state_root)
        assert len(stored) == 1
        result, modules = slr_probed(state_root, "exec", "c1", "sh", "-c", SCRIPT)
        assert_confined(result.stdout)
        assert not modules & {"pyseccomp", "ctypes"}, sorted(modules & {"pyseccomp", "ctypes"})
        assert entries(state_root) == stored
    finally:
        slr("delete", "--force", "c1")


def _seccomp_profile(profile):
    def edit(config):
        config["linux"]["seccomp"] = profile
    return edit


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "group-writable", "symlink"])
def test_a_bad_entry_is_rebuilt_and_the_container_still_confined(state_root, bundle, slr, damage):
    b = bundle(["sh", "-c", SCRIPT], edit=_seccomp_profile(layer_profile_denying_mkdir()))
    assert_confined(slr("run", "-b", b, "c1", check=True).stdout)
    (name, (inode, _, content)), = entries(state_root).items()
    path = os.path.join(cache_dir(state_root), name)
    if damage == "truncated":
        # Whole instructions, ending on a return: only the digest tells it from a program.
        returns = [i for i in range(0, len(content) - 32, 8) if content[i] == 0x06]  # BPF_RET|BPF_K
        cut = returns[len(returns) // 2] + 8
        with open(path, "r+b") as f:
            f.truncate(cut)
    elif damage == "garbage":
        with open(path, "wb") as f:
            f.write(os.urandom(len(content)))
    elif damage == "empty":
        open(path, "wb").close()
    elif damage == "group-writable":
        os.chmod(path, 0o620)
    else:  # a link to a file with the right bytes: never followed
        other = os.path.join(os.path.dirname(state_root), "elsewhere.bpf")
        with open(other, "wb") as f:
            f.write(content)
        os.unlink(path)
        os.symlink(other, path)
    damaged_inode = os.lstat(path).st_ino

    result, modules = run_probed(state_root, b)
    assert_confined(result.stdout)
    assert "pyseccomp" in modules  # compiled again
    (name2, (inode2, _, content2)), = entries(state_root).items()
    assert name2 == name and content2 == content and inode2 != damaged_inode
    assert os.stat(path).st_mode & 0o777 == 0o600 and not os.path.islink(path)


def test_a_foreign_writable_cache_directory_is_not_used(state_root, bundle, slr):
    directory = cache_dir(state_root)
    os.mkdir(directory)
    os.chmod(directory, 0o777)
    b = bundle(["sh", "-c", SCRIPT], edit=_seccomp_profile(layer_profile_denying_mkdir()))
    for _ in range(2):
        result, modules = run_probed(state_root, b)
        assert_confined(result.stdout)
        assert "pyseccomp" in modules
    assert os.listdir(directory) == []


def test_each_profile_has_its_own_entry_and_key_order_does_not_matter(state_root, bundle, slr):
    rules = [_rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errnoRet=errno.EXDEV)]
    exdev = bundle(["sh", "-c", SCRIPT], edit=_seccomp(rules))
    assert_confined(slr("run", "-b", exdev, "c1", check=True).stdout)
    erofs = bundle(["sh", "-c", SCRIPT], edit=_seccomp([_rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO",
                                                                errnoRet=errno.EROFS)]))
    assert_confined(slr("run", "-b", erofs, "c1", check=True).stdout, "Read-only file system")
    two = entries(state_root)
    assert len(two) == 2

    def reordered(config):  # the same profile, its objects' keys in another order
        config["linux"]["seccomp"] = {"syscalls": [{"errnoRet": errno.EXDEV, "action": "SCMP_ACT_ERRNO",
                                                    "names": ["mkdir", "mkdirat"]}],
                                      "defaultAction": "SCMP_ACT_ALLOW"}
    again, modules = run_probed(state_root, bundle(["sh", "-c", SCRIPT], edit=reordered))
    assert_confined(again.stdout)
    assert "pyseccomp" not in modules and entries(state_root) == two


def test_oldest_entries_go_past_the_limit(state_root, bundle, slr):
    directory = cache_dir(state_root)
    os.mkdir(directory, 0o700)
    for i in range(seccomp.MAX_ENTRIES):
        path = os.path.join(directory, f"{i:064x}.bpf")
        with open(path, "wb") as f:
            f.write(b"\0" * 40)
        os.utime(path, ns=(10**18 + i, 10**18 + i))  # 0 is the oldest
    leftover = os.path.join(directory, f".{1:064x}.4242.tmp")  # a writer that died
    open(leftover, "wb").close()
    os.utime(leftover, ns=(1, 1))
    b = bundle(["sh", "-c", SCRIPT], edit=_seccomp([_rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO",
                                                            errnoRet=errno.EXDEV)]))
    assert_confined(slr("run", "-b", b, "c1", check=True).stdout)
    names = set(os.listdir(directory))
    assert len(names) == seccomp.MAX_ENTRIES
    assert f"{0:064x}.bpf" not in names and os.path.basename(leftover) not in names
    assert f"{1:064x}.bpf" in names and len([n for n in names if not n.startswith("0000")]) == 1


def test_notify_profile_through_the_cache(state_root, bundle, slr, tmp_path):
    """A SCMP_ACT_NOTIFY rule (with TSYNC): the listener gets the notify fd from a cached
    program too; listenerPath is not part of the key."""
    outputs = []
    for run in range(2):
        path = str(tmp_path / f"listener{run}.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        server.settimeout(20)
        b = bundle(["sh", "-c", "mkdir /dev/shm/a || echo refused"], edit=_seccomp(
            [_rule(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")], listenerPath=path,
            flags=["SECCOMP_FILTER_FLAG_TSYNC"]))
        result = {}
        runner = threading.Thread(target=lambda: result.update(run=run_probed(state_root, b)))
        runner.start()
        try:
            conn, _ = server.accept()
            msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
            notify_fd = int.from_bytes(ancdata[0][2][:4], sys.byteorder)
            assert json.loads(msg)["fds"] == ["seccompFd"]
            _, _, nr = _answer_one(notify_fd, errno.EXDEV)
            os.close(notify_fd)
            conn.close()
        finally:
            runner.join(60)
            server.close()
        completed, modules = result["run"]
        assert nr in (_syscall_number("mkdir"), _syscall_number("mkdirat"))
        assert completed.stdout.split() == ["refused"] and "Invalid cross-device link" in completed.stderr
        outputs.append(("pyseccomp" in modules, entries(state_root)))
    (compiled_first, stored), (compiled_second, still) = outputs
    assert compiled_first and not compiled_second
    assert len(stored) == 1 and still == stored


FLAG_NAMES = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
              "SECCOMP_FILTER_FLAG_NEW_LISTENER": 8, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH": 16}

LOADER = """
import json, sys
from slruntime import libc, seccomp, spec
profile = spec.parse_seccomp(json.loads(sys.argv[2]), "linux.seccomp")
libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
if sys.argv[1] == "libseccomp":
    sc = seccomp._pyseccomp()
    seccomp._libseccomp_filter(sc, profile).load()
else:
    seccomp.load(seccomp.build(profile))
"""


def _loaded_with(loader, profile, tmp_path):
    """(flags, instruction count) of the seccomp(2) call `loader` makes for `profile`."""
    trace = tmp_path / f"strace-{loader}"
    result = subprocess.run(["strace", "-qq", "-e", "trace=seccomp", "-o", str(trace), sys.executable, "-c", LOADER,
                             loader, json.dumps(profile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = [line for line in trace.read_text().splitlines()
             if "SECCOMP_SET_MODE_FILTER" in line and "filter=" in line]  # not libseccomp's probes
    assert len(calls) == 1, calls
    match = re.search(r"SECCOMP_SET_MODE_FILTER, ([A-Z_|0-9]+), \{len=(\d+)", calls[0])
    flags = sum(FLAG_NAMES[name] for name in match.group(1).split("|") if name != "0")
    return flags, int(match.group(2))


@pytest.mark.skipif(not os.path.exists("/usr/bin/strace"), reason="needs strace")
@pytest.mark.parametrize("extra", [{}, {"flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]},
                                   {"flags": ["SECCOMP_FILTER_FLAG_TSYNC"]},
                                   {"notify": True}, {"notify": True, "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}])
def test_loads_with_the_flags_and_program_size_libseccomp_uses(extra, tmp_path):
    profile = layer_profile_denying_mkdir(also_out=("mknod", "mknodat"))
    if extra.get("notify"):
        profile["syscalls"].append(_rule(["mknodat"], "SCMP_ACT_NOTIFY"))
        profile["listenerPath"] = "/nonexistent"
    if "flags" in extra:
        profile["flags"] = extra["flags"]
    assert _loaded_with("slr", profile, tmp_path) == _loaded_with("libseccomp", profile, tmp_path)
