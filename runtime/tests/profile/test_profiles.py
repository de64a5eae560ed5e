"""Profiles for whole images: they deny at least half of the architecture's system calls
and the images' workloads still pass under them, in real confined child processes."""

import json
import os
import shutil
import subprocess
import sys

from slruntime.profile import cli, syscalls

from confine import run_confined
from python_app import PYTHON_APP_ARGS

BUSYBOX_SCRIPT = ("echo start; mkdir -p /tmp/w && cd /tmp/w && echo data > f && cp f g && cat g; "
                  "ls /tmp/w | sort | tr '\\n' ' '; echo; sleep 0.1; sh -c 'exit 3'; echo child $?; "
                  "wc -l < /etc/passwd; date +%Y >/dev/null && echo date ok; id -u; rm -r /tmp/w; echo end")
PYTHON_SCRIPT = ("import json, os, subprocess, tempfile, hashlib, threading;"
                 "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join();"
                 "d = tempfile.mkdtemp(); open(os.path.join(d, 'x'), 'w').write(json.dumps({'a': 1}));"
                 "print(json.load(open(os.path.join(d, 'x'))), hashlib.sha256(b'x').hexdigest()[:8]);"
                 "print(subprocess.run(['/usr/bin/python3', '-c', 'print(6*7)'], capture_output=True, text=True).stdout.strip())")


def generate(tmp_path, *args):
    output, report = tmp_path / "profile.json", tmp_path / "report.json"
    assert cli.main([*args, "--output", str(output), "--report", str(report)]) == 0
    return json.loads(output.read_text()), json.loads(report.read_text())


def check_half_denied(report, arch):
    table = syscalls.table(arch)
    assert report["architecture"] == arch
    assert report["table_size"] == len(table)
    assert report["allowed"] + report["denied"] == len(table)
    assert report["denied"] >= len(table) / 2, report["allowed_syscalls"]


def test_busybox_bundle(tmp_path, busybox_rootfs):
    # A copy: the script's `>/dev/null` makes a file in a rootfs without /dev/null, and
    # the session's busybox_rootfs is every runtime test's (test_audit_escapes.py plants
    # its own /dev/null in a copy of it).
    rootfs = str(shutil.copytree(busybox_rootfs, tmp_path / "rootfs", symlinks=True))
    seccomp, report = generate(tmp_path, "--rootfs", rootfs)
    check_half_denied(report, "x86_64")
    # The applet links are not files of their own: one program is analysed.
    assert list(report["entries"]) == ["/bin/busybox"]
    argv = ["/bin/sh", "-c", BUSYBOX_SCRIPT]
    expected = run_confined(None, argv, rootfs)
    assert expected[0] == 0 and "date ok" in expected[1]
    assert run_confined(seccomp, argv, rootfs) == expected
    # Denied calls fail with EPERM in the confined shell: busybox never calls acct().
    assert "acct" in report["denied_syscalls"]


def test_glibc_bundle(tmp_path, glibc_rootfs):
    seccomp, report = generate(tmp_path, "--rootfs", glibc_rootfs, "--entry", "/bin/workload")
    check_half_denied(report, "x86_64")
    entry = report["entries"]["/bin/workload"]
    assert any(o.endswith("/libc.so.6") for o in entry["objects"])
    assert any(o.endswith("/ld-linux-x86-64.so.2") for o in entry["objects"])
    # The loader's own needs are in: it maps libraries before main runs.
    assert {"openat", "mmap", "mprotect", "arch_prctl"} <= set(report["allowed_syscalls"])
    assert report["needed_by"]["clone"]["/bin/workload"] == ["/lib/x86_64-linux-gnu/libc.so.6"]
    status, output = run_confined(seccomp, ["/bin/workload"], glibc_rootfs)
    assert (status, output) == (0, "read written\nchild 7\nclock 1\n")


def test_python_app_bundle(tmp_path, python_app_rootfs):
    seccomp, report = generate(tmp_path, "--rootfs", python_app_rootfs)
    check_half_denied(report, "x86_64")
    entry = report["entries"]["/usr/bin/python3"]
    # The extension modules of the bundle are in python3's link map (it calls dlopen()),
    # with the libraries they link: no separate "loadable with dlopen" entry.
    assert list(report["entries"]) == ["/usr/bin/python3"]
    assert any("lib-dynload/_hashlib" in o for o in entry["loadable_libraries"])
    assert any(o.endswith("/libcrypto.so.3") for o in entry["objects"])
    # Built-in modules the app's sources and the frozen modules cannot import are not
    # followed: nothing imports socket, so _socket's sethostname/listen/accept are out.
    modules = entry["python_builtin_modules"]
    assert modules["posix"] and modules["_thread"] and modules["_posixsubprocess"] and modules["select"]
    assert not modules["_socket"] and not modules["_csv"]
    assert not {"sethostname", "listen", "accept", "accept4"} & set(report["allowed_syscalls"])
    argv = PYTHON_APP_ARGS
    expected = run_confined(None, argv, python_app_rootfs)
    assert expected[0] == 0 and expected[1].startswith("records 12 child 12 first "), expected
    assert run_confined(seccomp, argv, python_app_rootfs) == expected


def test_python_whole_stdlib(tmp_path, python_rootfs):
    # The whole standard library and every extension module: any built-in module may be
    # imported (socket.py imports _socket, ...), so less is denied than for the app; the
    # number is in the README.
    seccomp, report = generate(tmp_path, "--rootfs", python_rootfs)
    modules = report["entries"]["/usr/bin/python3"]["python_builtin_modules"]
    assert modules["_socket"] and modules["posix"]
    assert report["denied"] >= 0.45 * report["table_size"], report["allowed_syscalls"]
    argv = ["/usr/bin/python3", "-S", "-c", PYTHON_SCRIPT]
    expected = run_confined(None, argv, python_rootfs)
    assert expected[0] == 0 and "42" in expected[1], expected
    assert run_confined(seccomp, argv, python_rootfs) == expected


def test_aarch64_static_busybox(tmp_path, arm64_static_rootfs):
    seccomp, report = generate(tmp_path, "--rootfs", arm64_static_rootfs)
    check_half_denied(report, "aarch64")
    assert seccomp["architectures"] == ["SCMP_ARCH_AARCH64"]
    assert {"execve", "openat", "read", "write", "exit_group", "mount", "clone"} <= set(report["allowed_syscalls"])
    # No open() or fork() on aarch64: the x86_64-only names must not appear.
    assert not {"open", "fork", "stat"} & set(report["allowed_syscalls"])


def test_aarch64_dynamic_busybox_with_glibc(tmp_path, arm64_dynamic_rootfs):
    seccomp, report = generate(tmp_path, "--rootfs", arm64_dynamic_rootfs, "--entry", "/bin/busybox")
    check_half_denied(report, "aarch64")
    entry = report["entries"]["/bin/busybox"]
    assert entry["objects"][0] == "/bin/busybox"
    # PT_INTERP /lib/ld-linux-aarch64.so.1, a link into the multiarch directory.
    assert "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" in entry["objects"]
    assert entry["missing_libraries"] == []
    # busybox reaches its syscalls through glibc's functions.
    assert "/lib/aarch64-linux-gnu/libc.so.6" in report["needed_by"]["mount"]["/bin/busybox"]


def test_arch_mismatch_is_an_error(tmp_path, arm64_static_rootfs):
    result = subprocess.run([sys.executable, "-m", "slruntime.profile", "--rootfs", arm64_static_rootfs,
                             "--arch", "x86_64", "--output", str(tmp_path / "p.json")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "aarch64" in result.stderr
    assert not os.path.exists(tmp_path / "p.json")
