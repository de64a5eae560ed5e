"""A minimal rootless container and its runtime, for the FGAC tests.

Run as an unprivileged user: `python rootless_container.py SPEC_JSON`. The process
forks; the child becomes the container (new user + mount namespace, pivot_root into
SPEC["rootfs"], the seccomp filter of SPEC["seccomp"], an OCI linux.seccomp section),
hands its notify descriptor to the parent, which plays the runtime's part of OCI
linux.seccomp.listenerPath: connect to SPEC["socket"], send the container process
state with the descriptor as SCM_RIGHTS, close. The child then runs SPEC["ops"] and
the parent prints one JSON line per event on stdout, the last one {"results": [...]}.

What a client the policy trusts could do instead (the server must not act for it):
SPEC["enter"] "host" keeps the child a plain host process, "userns" gives it a user
and mount namespace of its own but the host's root (no pivot_root); SPEC["claim_pid"]
names another process (say a real container's) as the container process.
"""

import ctypes
import errno
import json
import os
import socket
import struct
import sys
import threading
import time

import ctypes.util

# pyseccomp looks its libraries up with find_library, which fails for users that
# cannot run its helpers; the sonames are fixed, load them by name.
_SONAMES = {"seccomp": "libseccomp.so.2", "c": "libc.so.6"}
ctypes.util.find_library = _SONAMES.get
import pyseccomp  # noqa: E402

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
libc.syscall.restype = ctypes.c_long

CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
MNT_DETACH = 2
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000
NATIVE = pyseccomp.system_arch()


def _call(result):
    return 0 if result == 0 else ctypes.get_errno()


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(text):
    return None if text is None else text.encode()


def enter_container(rootfs, enter="container"):
    if enter == "host":
        return
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    if enter == "userns":
        return
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    _check(libc.mount(_b(rootfs), _b(rootfs), None, MS_BIND | MS_REC, None), "bind rootfs")
    os.chdir(rootfs)
    _check(libc.syscall(pyseccomp.resolve_syscall(NATIVE, "pivot_root"), b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach old root")
    os.chdir("/")


_ACTIONS = {"SCMP_ACT_NOTIFY": pyseccomp.NOTIFY, "SCMP_ACT_ALLOW": pyseccomp.ALLOW}
_OPS = {"SCMP_CMP_EQ": pyseccomp.EQ, "SCMP_CMP_NE": pyseccomp.NE, "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ}


def load_filter(seccomp):
    """Load the OCI seccomp section (as slruntime.fgac.spec_helper writes it) the way
    a runtime does: libseccomp rules, MASKED_EQ taking `value` as the mask."""
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for rule in seccomp["syscalls"]:
        args = [pyseccomp.Arg(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in rule.get("args", [])]
        for name in rule["names"]:
            try:
                f.add_rule(_ACTIONS[rule["action"]], name, *args)
            except OSError:  # a syscall this machine does not have (mknod on arm64)
                pass
    f.load()
    return pyseccomp._libseccomp.seccomp_notify_fd(f._filter)


def run_op(op, out):
    kind = op["op"]
    if kind == "mount":
        return {"errno": _call(libc.mount(_b(op.get("source")), _b(op["target"]), _b(op.get("fstype")),
                                          op.get("flags", 0), _b(op.get("data"))))}
    if kind == "umount2":
        return {"errno": _call(libc.umount2(_b(op["target"]), op.get("flags", 0)))}
    if kind == "mknod":  # glibc's mknod, which is the mknodat syscall on most machines
        dev = os.makedev(op["major"], op["minor"])
        return {"errno": _call(libc.mknod(_b(op["path"]), op["mode"], ctypes.c_ulong(dev)))}
    if kind == "mknod_syscall":  # the old mknod syscall itself, where the machine has it
        nr = pyseccomp.resolve_syscall(NATIVE, "mknod")
        dev = (op["minor"] & 0xFF) | (op["major"] << 8) | ((op["minor"] & ~0xFF) << 12)
        return {"errno": _call(libc.syscall(nr, _b(op["path"]), op["mode"], dev))}
    if kind == "mkfifo":  # needs no privilege: must not reach the server
        return {"errno": _call(libc.mkfifo(_b(op["path"]), 0o600))}
    if kind == "umask":
        os.umask(op["mask"])
        return {}
    if kind in ("mkdir", "symlink", "write", "read", "stat", "statfs", "open_rw"):
        try:
            return _file_op(kind, op)
        except OSError as exc:
            return {"errno": exc.errno}
    if kind == "wait":  # let the test act (e.g. kill the server), then continue
        out({"event": "waiting"})
        sys.stdin.readline()
        return {}
    if kind == "race":
        return race(op)
    if kind == "parallel":  # the same call from many threads at once
        results = [None] * op["threads"]

        def call(i):
            results[i] = run_op(op["call"], out).get("errno")

        threads = [threading.Thread(target=call, args=(i,)) for i in range(op["threads"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"errnos": results}
    if kind == "time":  # latency of a call, for bench_latency.py
        samples = []
        for _ in range(op["n"]):
            start = time.perf_counter_ns()
            run_op(op["call"], out)
            samples.append((time.perf_counter_ns() - start) / 1000)
        samples.sort()
        return {"median_us": samples[len(samples) // 2], "p90_us": samples[len(samples) * 9 // 10],
                "last": run_op(op["call"], out)}
    raise ValueError(f"unknown op {kind}")


def _file_op(kind, op):
    path = op["path"]
    if kind == "mkdir":
        os.makedirs(path, exist_ok=True)
    elif kind == "symlink":
        os.symlink(op["to"], path)
    elif kind == "write":
        with open(path, "w") as f:
            f.write(op["data"])
    elif kind == "read":
        with open(path) as f:
            return {"errno": 0, "data": f.read()}
    elif kind == "stat":
        st = os.lstat(path)
        return {"errno": 0, "mode": st.st_mode, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                "uid": st.st_uid, "dev": st.st_dev}
    elif kind == "statfs":
        buf = ctypes.create_string_buffer(256)
        _check(libc.statfs(_b(path), buf), "statfs")
        return {"errno": 0, "type": ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF}
    elif kind == "open_rw":
        fd = os.open(path, os.O_RDWR)
        try:
            return {"errno": 0, "written": os.write(fd, b"x"), "read": os.read(fd, 10).decode()}
        finally:
            os.close(fd)
    return {"errno": 0}


def race(op):
    """mount() with a target buffer that another thread keeps rewriting between an
    allowed and a forbidden path while the server reads and checks it."""
    good, bad = op["good"].encode(), op["bad"].encode()
    buf = ctypes.create_string_buffer(max(len(good), len(bad)) + 1)
    buf.value = good
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            ctypes.memmove(buf, bad + b"\0", len(bad) + 1)
            ctypes.memmove(buf, good + b"\0", len(good) + 1)

    racer = threading.Thread(target=flip)
    racer.start()
    counts = {}
    try:
        for _ in range(op["iterations"]):
            err = _call(libc.mount(b"tmpfs", buf, b"tmpfs", 0, None))
            name = errno.errorcode.get(err, str(err)) if err else "OK"
            counts[name] = counts.get(name, 0) + 1
    finally:
        stop.set()
        racer.join()
    return {"counts": counts}


def container_main(spec, chan):
    enter_container(spec["rootfs"], spec.get("enter", "container"))
    notify_fd = load_filter(spec["seccomp"])
    socket.send_fds(chan, [b"fd"], [notify_fd])
    os.close(notify_fd)  # the server must hold the only copy
    chan.recv(1)  # the runtime has handed it over

    def out(event):
        chan.sendall((json.dumps(event) + "\n").encode())

    results = []
    for op in spec["ops"]:
        results.append(run_op(op, out))
    out({"results": results})


def runtime_main(spec, chan, child):
    _, fds, _, _ = socket.recv_fds(chan, 16, 1)
    notify_fd = fds[0]
    claimed = spec.get("claim_pid", child)
    state = {
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": claimed,
        "state": {"ociVersion": "1.2.0", "id": spec["id"], "status": "creating", "pid": claimed,
                  "bundle": spec.get("bundle", "/nonexistent"), "annotations": spec.get("annotations", {})},
    }
    if "metadata" in spec:
        state["metadata"] = spec["metadata"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(spec["socket"])
        conn.sendmsg([json.dumps(state).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", notify_fd))])
    os.close(notify_fd)
    print(json.dumps({"event": "registered", "pid": child}), flush=True)
    chan.send(b"g")
    stream = chan.makefile("rb")
    for line in stream:
        sys.stdout.write(line.decode())
        sys.stdout.flush()
    _, status = os.waitpid(child, 0)
    print(json.dumps({"event": "exit", "status": status}), flush=True)


def main():
    spec = json.loads(sys.argv[1])
    parent_end, child_end = socket.socketpair()
    child = os.fork()
    if child == 0:
        parent_end.close()
        try:
            container_main(spec, child_end)
            code = 0
        except BaseException as exc:
            child_end.sendall((json.dumps({"event": "error", "error": repr(exc)}) + "\n").encode())
            code = 1
        os._exit(code)
    child_end.close()
    runtime_main(spec, parent_end, child)


if __name__ == "__main__":
    main()
