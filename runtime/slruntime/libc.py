"""The few libc functions and raw system calls the standard library does not offer.

Called through `_ctypes`, the C half of ctypes, not the `ctypes` package: the package
defines dozens of types and loaders at import, which cost every container start ~6 M
instructions (2-3 ms) and ~0.7 MiB of memory, for the four C types and one library used
here. The structs the kernel reads are packed into bytes (_packed): a ctypes Structure
class costs more to define than all the calls that use it.

Loaded by soname, never through ctypes.util.find_library (which runs ldconfig/gcc and
fails on embedded targets without them).

This module is the runtime's seam to the kernel: callers use `libc.NAME(...)`, and the
unit tests replace every public function with runtime/tests/unit/fake_libc.py's (a test
there fails when a function here has no fake with the same parameters).
"""

import _ctypes
import errno
import os
import sys


# The C types the calls below need (ctypes.c_int and friends are defined the same way).
class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _UInt(_ctypes._SimpleCData):
    _type_ = "I"


class _Long(_ctypes._SimpleCData):
    _type_ = "l"


class _ULong(_ctypes._SimpleCData):  # also size_t: the same width on every Linux ABI
    _type_ = "L"


class _UByte(_ctypes._SimpleCData):
    _type_ = "B"


class _UIntPointer(_ctypes._Pointer):
    _type_ = _UInt


_POINTER_SIZE = _ctypes.sizeof(_ULong)  # long and pointers have the same width on Linux


class _Function(_ctypes.CFuncPtr):
    """A libc function returning int, with errno saved for _ctypes.get_errno()."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Library:
    def __init__(self, soname):
        self._handle = _ctypes.dlopen(soname, _ctypes.RTLD_LOCAL)

    def __getattr__(self, name):
        function = _Function((name, self))
        setattr(self, name, function)
        return function


_libc = _Library("libc.so.6")

# Syscalls glibc does not wrap everywhere, by machine (uname -m).
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "ioprio_set": 251, "sched_setattr": 314, "setns": 308, "seccomp": 317,
               "bpf": 321, "keyctl": 250, "rt_sigaction": 13},
    "aarch64": {"pivot_root": 41, "ioprio_set": 30, "sched_setattr": 274, "setns": 268, "seccomp": 277,
                "bpf": 280, "keyctl": 219, "rt_sigaction": 134},
    "armv7l": {"pivot_root": 218, "ioprio_set": 314, "sched_setattr": 380, "setns": 375, "seccomp": 383,
               "bpf": 386, "keyctl": 311, "rt_sigaction": 174},
    "riscv64": {"pivot_root": 41, "ioprio_set": 30, "sched_setattr": 274, "setns": 268, "seccomp": 277,
                "bpf": 280, "keyctl": 219, "rt_sigaction": 134},
}
_SYSCALLS["armv8l"] = _SYSCALLS["armv7l"]
# Numbers shared by every architecture (added after the syscall tables were unified).
_COMMON = {"pidfd_open": 434, "close_range": 436, "openat2": 437, "pidfd_getfd": 438}

_nr = dict(_SYSCALLS.get(os.uname().machine, {}))
_nr.update(_COMMON)

_syscall = _libc.syscall
_syscall.restype = _Long

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 1 << 2

AT_FDCWD = -100
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


def _check(result, what):
    if result < 0:
        err = _ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(path):
    return None if path is None else os.fsencode(path)


def mount(source, target, fstype, flags=0, data=None):
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), _ULong(flags), _b(data)),
        f"mount {target}",
    )


def umount2(target, flags=0):
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root, put_old):
    _check(_syscall(_nr["pivot_root"], _b(new_root), _b(put_old)), "pivot_root")


def unshare(flags):
    _check(_libc.unshare(flags), "unshare")


def setns(fd, nstype=0):
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name):
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name):
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(
        _libc.prctl(
            option, _ULong(arg2), _ULong(arg3), _ULong(arg4), _ULong(arg5)
        ),
        "prctl",
    )


def set_name(name):
    """This thread's name (comm, at most 15 bytes), as /proc/PID/stat shows it. Not by
    writing /proc/self/comm: a non-dumpable process in a user namespace may not."""
    _check(_libc.prctl(PR_SET_NAME, bytes(name), _ULong(0), _ULong(0), _ULong(0)), "prctl")


def reset_signal_dispositions():
    """Every signal's disposition back to SIG_DFL, through the system call: glibc's
    sigaction refuses its own two (32 and 33), which a caller may have left ignored, and
    an ignored disposition survives execve. An all-zero kernel sigaction is SIG_DFL with
    no flags and an empty mask whatever the architecture's layout."""
    default = (_UByte * 32)()
    for signum in range(1, 65):
        if signum not in (9, 19):  # SIGKILL, SIGSTOP: always the default
            _syscall(_nr["rt_sigaction"], signum, default, None, _ULong(8))


def close_range_cloexec(first):
    """Mark every descriptor from `first` on close-on-exec, whatever opened it."""
    if _syscall(_nr["close_range"], first, _UInt(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC) == 0:
        return
    if _ctypes.get_errno() not in (errno.EPERM, errno.ENOSYS, errno.EINVAL):
        _check(-1, "close_range")
    # A seccomp profile loaded early (no noNewPrivileges) may deny close_range, and old
    # kernels lack it: walk /proc/self/fd instead, as runc does.
    import fcntl

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.fcntl(fd, fcntl.F_GETFD) | fcntl.FD_CLOEXEC)
            except OSError:
                pass  # the directory's own descriptor, already closed


def _packed(*fields):
    """A C struct of naturally aligned integers, given as (value, size in bytes) in
    field order, the way the kernel reads it."""
    return b"".join(value.to_bytes(size, sys.byteorder, signed=value < 0) for value, size in fields)


def openat2(dirfd, path, flags, resolve, mode=0):
    how = _packed((flags | os.O_CLOEXEC, 8), (mode, 8), (resolve, 8))  # struct open_how
    return _check(_syscall(_nr["openat2"], dirfd, _b(path), how, _ULong(len(how))), f"open {path}")


def wait_for_hangup(fd):
    """Block until `fd` reports an error or hang-up (a FIFO's write end once no reader
    holds it open; an invalid descriptor returns at once), through poll(2) with no events
    asked: the `select` module would cost every `slr start` ~0.25 ms to import for this
    one call. A signal's Python handler runs once poll returns EINTR; the wait then goes
    on, as the select module's does."""
    # struct pollfd { int fd; short events, revents; }, writable: the kernel sets revents
    pollfd = (_UByte * 8).from_buffer_copy(_packed((fd, 4), (0, 2), (0, 2)))
    while _libc.poll(pollfd, _ULong(1), -1) <= 0:  # 0: no timeout was asked for
        if _ctypes.get_errno() != errno.EINTR:
            _check(-1, "poll")


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_new_session_keyring():
    """Make a new anonymous session keyring this process's (keyctl(2); NULL name: never
    an existing keyring someone named in advance)."""
    _check(_syscall(_nr["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, None), "keyctl")


def pidfd_getfd(pidfd, targetfd):
    return _check(_syscall(_nr["pidfd_getfd"], pidfd, targetfd, 0), "pidfd_getfd")


def ioprio_set(which, who, ioprio):
    _check(_syscall(_nr["ioprio_set"], which, who, ioprio), "ioprio_set")


def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    # struct sched_attr, its own size (48) first
    attr = _packed((48, 4), (policy, 4), (flags, 8), (nice, 4), (priority, 4),
                   (runtime, 8), (deadline, 8), (period, 8))
    _check(_syscall(_nr["sched_setattr"], pid, attr, 0), "sched_setattr")


def setrlimit(resource, soft, hard):
    """prlimit(2) on ourselves; the `resource` module is an extension that is not
    importable once the process has pivoted into the container."""
    limit = _packed((soft, 8), (hard, 8))  # struct rlimit64
    _check(_libc.prlimit(0, resource, limit, None), f"setrlimit {resource}")


def getrlimit(resource):
    """(soft, hard) of ours, through prlimit(2) like setrlimit."""
    old = (_UByte * 16)()  # struct rlimit64, written by the kernel
    _check(_libc.prlimit(0, resource, None, old), f"getrlimit {resource}")
    raw = bytes(old)
    return int.from_bytes(raw[:8], sys.byteorder), int.from_bytes(raw[8:], sys.byteorder)


class Buffer:
    """Memory the kernel may read or write through a pointer in a struct: `address`
    goes in the struct, bytes(buffer.data) is what is there now."""

    def __init__(self, size_or_content):
        if isinstance(size_or_content, int):
            self.data = (_UByte * size_or_content)()
        else:
            self.data = (_UByte * len(size_or_content)).from_buffer_copy(size_or_content)
        self.address = _ctypes.addressof(self.data)

    def __bytes__(self):
        return bytes(self.data)


def bpf(command, attr):
    """bpf(2) with `attr` (a Buffer holding a union bpf_attr member: the kernel may write
    results into it); returns the system call's result (a descriptor for loads)."""
    return _check(_syscall(_nr["bpf"], command, attr.data, _UInt(len(attr.data))), "bpf")


SECCOMP_SET_MODE_FILTER = 1
SECCOMP_MODE_FILTER = 2


def seccomp_set_mode_filter(flags, program):
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) for a classic BPF program (bytes,
    8 per instruction). Returns the system call's result: the listener descriptor with
    SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0 (or a thread id TSYNC could not move)."""
    instructions = (_UByte * len(program)).from_buffer_copy(program)
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = _packed((len(program) // 8, 2), (0, _POINTER_SIZE - 2),
                    (_ctypes.addressof(instructions), _POINTER_SIZE))
    result = _syscall(_nr["seccomp"], SECCOMP_SET_MODE_FILTER, _UInt(flags), fprog)
    if result < 0 and _ctypes.get_errno() == errno.ENOSYS and not flags:
        # No seccomp(2) (kernels before 3.17, valgrind): prctl, as libseccomp falls back.
        result = _libc.prctl(PR_SET_SECCOMP, _ULong(SECCOMP_MODE_FILTER), fprog, _ULong(0), _ULong(0))
    return _check(result, "seccomp")


def seccomp_filter_flag_supported(flag):
    """Whether the kernel knows a SECCOMP_FILTER_FLAG_*: asked as libseccomp does, with
    no program (EFAULT: known, EINVAL: not)."""
    if _syscall(_nr["seccomp"], SECCOMP_SET_MODE_FILTER, _UInt(flag), None) == 0:
        return True  # cannot happen: no program was given
    return _ctypes.get_errno() == errno.EFAULT


def libseccomp_version():
    """(major, minor, micro) of the libseccomp.so.2 pyseccomp would load, read without
    importing pyseccomp (and with it ctypes)."""
    version = _Library("libseccomp.so.2").seccomp_version
    version.restype = _UIntPointer  # const struct scmp_version { unsigned major, minor, micro; } *
    triple = version()
    return triple[0], triple[1], triple[2]
