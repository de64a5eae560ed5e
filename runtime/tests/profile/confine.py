"""Run a program in a real child process under a generated linux.seccomp object."""

import errno
import os

import pyseccomp


def seccomp_filter(seccomp):
    """A libseccomp filter for the subset of linux.seccomp that `slr profile` emits."""
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    flt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(seccomp.get("defaultErrnoRet", errno.EPERM)))
    for rule in seccomp["syscalls"]:
        assert rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]:
            flt.add_rule(pyseccomp.ALLOW, name)
    return flt


def run_confined(seccomp, argv, rootfs, env=None):
    """fork; chroot into rootfs; load the filter; exec argv. Returns (exit status, output)."""
    flt = seccomp_filter(seccomp) if seccomp is not None else None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.chroot(rootfs)
            os.chdir("/")
            if flt is not None:
                flt.load()
            os.execve(argv[0], argv, env or {"PATH": "/usr/bin:/bin", "HOME": "/"})
        finally:
            os._exit(127)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")
