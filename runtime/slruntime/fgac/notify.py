"""Seccomp user-notification ioctls (linux/seccomp.h) and syscall naming.

The structures are fixed by the kernel ABI; the ioctl numbers below use the
asm-generic encoding shared by x86, arm, arm64 and riscv (not mips/powerpc/sparc).
"""

import ctypes
import fcntl
import struct

# struct seccomp_notif { u64 id; u32 pid; u32 flags;
#                        struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; } }
_NOTIF = struct.Struct("=QIIiIQ6Q")
# struct seccomp_notif_resp { u64 id; s64 val; s32 error; u32 flags; }
_RESP = struct.Struct("=QqiI")
_ID = struct.Struct("=Q")


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("!") << 8) | nr


_READ_WRITE, _WRITE = 3, 1
NOTIF_RECV = _ioc(_READ_WRITE, 0, _NOTIF.size)
NOTIF_SEND = _ioc(_READ_WRITE, 1, _RESP.size)
NOTIF_ID_VALID = _ioc(_WRITE, 2, _ID.size)


class Notification:
    __slots__ = ("id", "pid", "nr", "arch", "args")

    def __init__(self, raw):
        fields = _NOTIF.unpack(raw)
        self.id, self.pid = fields[0], fields[1]
        self.nr, self.arch = fields[3], fields[4]
        self.args = fields[6:12]


def receive(notify_fd):
    """Take the next pending notification. Blocks if none is pending: call it only
    when epoll reported EPOLLIN. OSError(ENOENT) when the caller was interrupted
    (e.g. killed) between the wake-up and this call."""
    buf = bytearray(_NOTIF.size)  # the kernel insists on a zeroed structure
    fcntl.ioctl(notify_fd, NOTIF_RECV, buf, True)
    return Notification(buf)


def id_valid(notify_fd, notif_id):
    """True while the notifying thread is still blocked in this very syscall: checked
    after opening /proc/PID files (so the PID was not recycled) and right before
    acting (so the caller still waits for the answer)."""
    try:
        fcntl.ioctl(notify_fd, NOTIF_ID_VALID, _ID.pack(notif_id))
    except OSError:
        return False
    return True


def respond(notify_fd, notif_id, error=0, value=0):
    """Complete the syscall with `value` (error == 0) or fail it with errno `error`.
    Never uses SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel must not re-read
    arguments the container can still change."""
    fcntl.ioctl(notify_fd, NOTIF_SEND, bytearray(_RESP.pack(notif_id, value, -error if error else 0, 0)), True)


class SyscallNames:
    """Maps (audit arch, syscall number) to a name through libseccomp's tables, which
    know every architecture and compat ABI; results are cached per pair."""

    def __init__(self):
        self._lib = ctypes.CDLL("libseccomp.so.2")  # by soname: no ldconfig on targets
        self._lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
        self._lib.seccomp_syscall_resolve_num_arch.argtypes = (ctypes.c_uint32, ctypes.c_int)
        self._free = ctypes.CDLL("libc.so.6").free
        self._free.argtypes = (ctypes.c_void_p,)
        self._cache = {}

    def name(self, arch, nr):
        key = (arch, nr)
        if key not in self._cache:
            ptr = self._lib.seccomp_syscall_resolve_num_arch(arch, nr)
            if ptr:
                self._cache[key] = ctypes.string_at(ptr).decode()
                self._free(ptr)
            else:
                self._cache[key] = None
        return self._cache[key]
