"""A test fake of slruntime.libc, the runtime's seam to the kernel (youki's `syscall/`
trait and its test fake are the model).

Every module calls the kernel through `libc.NAME(...)`, so replacing the module's public
functions replaces the kernel for the code above it. FakeLibc records each call as
(name, args) and answers like a kernel that allows everything; `fail(name, errno)`
makes a call raise that OSError. test_libc_seam.py checks that the fake offers every
public function of slruntime.libc with the same parameters, so the fake cannot fall
behind the real seam."""

import errno
import inspect
import os

from slruntime import libc

UNLIMITED = (1 << 64) - 1  # RLIM64_INFINITY


def seam_functions():
    """{name: function} of slruntime.libc's public functions: the seam."""
    return {name: value for name, value in vars(libc).items()
            if inspect.isfunction(value) and not name.startswith("_")
            and value.__module__ == libc.__name__}


class FakeLibc:
    def __init__(self):
        self.calls = []
        self.failures = {}
        self.hostname = self.domainname = None
        self.rlimits = {}

    def fail(self, name, error=errno.EPERM):
        self.failures[name] = error

    def _enter(self, name, *args):
        self.calls.append((name, args))
        if name in self.failures:
            error = self.failures[name]
            raise OSError(error, f"{name}: {os.strerror(error)}")

    def install(self, monkeypatch):
        """Replaces slruntime.libc's functions with this fake's for one test."""
        for name in seam_functions():
            monkeypatch.setattr(libc, name, getattr(self, name))
        return self

    # The seam: one method per public function of slruntime.libc, same parameters.
    def mount(self, source, target, fstype, flags=0, data=None):
        self._enter("mount", source, target, fstype, flags, data)

    def umount2(self, target, flags=0):
        self._enter("umount2", target, flags)

    def pivot_root(self, new_root, put_old):
        self._enter("pivot_root", new_root, put_old)

    def unshare(self, flags):
        self._enter("unshare", flags)

    def setns(self, fd, nstype=0):
        self._enter("setns", fd, nstype)

    def sethostname(self, name):
        self._enter("sethostname", name)
        self.hostname = name

    def setdomainname(self, name):
        self._enter("setdomainname", name)
        self.domainname = name

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0):
        self._enter("prctl", option, arg2, arg3, arg4, arg5)
        return 0

    def set_name(self, name):
        self._enter("set_name", name)

    def reset_signal_dispositions(self):
        self._enter("reset_signal_dispositions")

    def close_range_cloexec(self, first):
        self._enter("close_range_cloexec", first)

    def openat2(self, dirfd, path, flags, resolve, mode=0):
        # Opens without the `resolve` restrictions: how paths resolve inside a rootfs is
        # the kernel's, tested with real containers (test_security.py, test_mounts.py).
        self._enter("openat2", dirfd, path, flags, resolve, mode)
        return os.open(path, flags, mode, dir_fd=None if dirfd == libc.AT_FDCWD else dirfd)

    def wait_for_hangup(self, fd):
        self._enter("wait_for_hangup", fd)

    def join_new_session_keyring(self):
        self._enter("join_new_session_keyring")

    def pidfd_getfd(self, pidfd, targetfd):
        self._enter("pidfd_getfd", pidfd, targetfd)
        return os.dup(targetfd)  # as if the other process's descriptor were ours

    def ioprio_set(self, which, who, ioprio):
        self._enter("ioprio_set", which, who, ioprio)

    def sched_setattr(self, pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
        self._enter("sched_setattr", pid, policy, flags, nice, priority, runtime, deadline, period)

    def setrlimit(self, resource, soft, hard):
        self._enter("setrlimit", resource, soft, hard)
        self.rlimits[resource] = (soft, hard)

    def getrlimit(self, resource):
        self._enter("getrlimit", resource)
        return self.rlimits.get(resource, (UNLIMITED, UNLIMITED))

    def bpf(self, command, attr):
        self._enter("bpf", command, attr)
        return 0

    def seccomp_set_mode_filter(self, flags, program):
        self._enter("seccomp_set_mode_filter", flags, program)
        return 0

    def seccomp_filter_flag_supported(self, flag):
        self._enter("seccomp_filter_flag_supported", flag)
        return True

    def libseccomp_version(self):
        self._enter("libseccomp_version")
        return (2, 5, 4)
