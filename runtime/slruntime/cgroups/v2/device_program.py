"""The device policy on cgroup v2, which has no devices controller: a devices.Policy
compiled to the eBPF program the kernel runs on every open and mknod of a device node
(BPF_PROG_TYPE_CGROUP_DEVICE), loaded with bpf(2) and attached to the container's
cgroup. Without it, cgroup v2 has no device policy at all: a process with CAP_MKNOD
could make and open a node of any host disk. (The shape of runc's devicefilter and
crun's ebpf.c.)
"""

import errno
import os
import struct
import sys

from slruntime import libc
from slruntime.cgroups.devices import DeviceError

# struct bpf_cgroup_dev_ctx (linux/bpf.h): access_type (type in the low 16 bits,
# access in the high 16), major, minor; all u32.
_DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_ALL_ACCESS = 7

_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_PROG_QUERY = 16
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6  # attach type
_BPF_F_ALLOW_MULTI = 2
_RLIMIT_MEMLOCK = 8
_RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


class _Refused(Exception):
    """bpf(2) said no: errno and, for a load, the verifier's last word."""

    def __init__(self, errno_value, detail=""):
        super().__init__(errno_value, detail)
        self.errno, self.detail = errno_value, detail


def program(policy):
    """A devices.Policy as a BPF_PROG_TYPE_CGROUP_DEVICE program (bytes of instructions):
    returns 1 to allow the access, 0 to refuse it (EPERM)."""
    asm = _Assembler()
    asm.load_word(2, 0)
    asm.alu32_imm(_AND, 2, 0xFFFF)      # r2 = device type
    asm.load_word(3, 0)
    asm.alu32_imm(_RSH, 3, 16)          # r3 = requested access bits
    asm.load_word(4, 4)                 # r4 = major
    asm.load_word(5, 8)                 # r5 = minor
    verdict = 0 if policy.default_allow else 1  # what an exception answers
    for (kind, major, minor), access in _wildcards_last(policy.exceptions):
        bits = sum(_ACCESS_BITS[c] for c in access)
        block = asm.block()
        block.jump_if_not_equal_imm(2, _DEV_TYPE[kind])
        if bits != _ALL_ACCESS:
            asm.mov32_reg(1, 3)
            asm.alu32_imm(_AND, 1, bits)
            if verdict:  # an allowed exception must cover every access asked for
                block.jump_if_not_equal_reg(1, 3)
            else:        # a denied one refuses a request asking for any of its accesses
                block.jump_if_equal_imm(1, 0)
        if major is not None:
            block.jump_if_not_equal_imm(4, major)
        if minor is not None:
            block.jump_if_not_equal_imm(5, minor)
        asm.return_imm(verdict)
        block.end()
    asm.return_imm(1 if policy.default_allow else 0)
    return asm.code()


def _wildcards_last(exceptions):
    # Any order gives the same answer; this one reads best.
    return sorted(exceptions.items(),
                  key=lambda item: (item[0][0], item[0][1] is None, item[0][1] or 0, item[0][2] is None, item[0][2] or 0))


# --- a small eBPF assembler: the instruction shapes the program above needs ---------

_AND, _RSH = 0x50, 0x70
_BPF_LDX_W_MEM = 0x61
_BPF_ALU32_K, _BPF_ALU32_MOV_X = 0x04, 0xBC
_BPF_ALU64_MOV_K = 0xB7
_BPF_JEQ_K, _BPF_JNE_K, _BPF_JNE_X = 0x15, 0x55, 0x5D
_BPF_EXIT = 0x95


class _Assembler:
    """struct bpf_insn: u8 code, u8 dst_reg:4 + src_reg:4 (bit-field order follows the
    byte order), s16 offset, s32 immediate."""

    def __init__(self):
        self.instructions = []  # [code, dst, src, offset, imm]; jumps patched by _Block.end

    def emit(self, code, dst=0, src=0, offset=0, imm=0):
        self.instructions.append([code, dst, src, offset, imm])
        return len(self.instructions) - 1

    def load_word(self, dst, offset):
        self.emit(_BPF_LDX_W_MEM, dst, 1, offset)  # dst = *(u32 *)(r1 + offset), r1 = the context

    def alu32_imm(self, operation, dst, imm):
        self.emit(_BPF_ALU32_K | operation, dst, imm=imm)

    def mov32_reg(self, dst, src):
        self.emit(_BPF_ALU32_MOV_X, dst, src)

    def return_imm(self, value):
        self.emit(_BPF_ALU64_MOV_K, 0, imm=value)
        self.emit(_BPF_EXIT)

    def block(self):
        return _Block(self)

    def code(self):
        little = sys.byteorder == "little"
        out = bytearray()
        for code, dst, src, offset, imm in self.instructions:
            regs = (src << 4 | dst) if little else (dst << 4 | src)
            # Numbers above 2**31 - 1 go in as their two's complement (no device has one).
            out += struct.pack("=BBhi", code, regs, offset, imm - (1 << 32) if imm > 0x7FFFFFFF else imm)
        return bytes(out)


class _Block:
    """Tests that each skip to the end of the block when they fail."""

    def __init__(self, assembler):
        self.asm = assembler
        self.jumps = []

    def _jump(self, code, dst, src=0, imm=0):
        self.jumps.append(self.asm.emit(code, dst, src, imm=imm))

    def jump_if_not_equal_imm(self, reg, value):
        self._jump(_BPF_JNE_K, reg, imm=value)

    def jump_if_equal_imm(self, reg, value):
        self._jump(_BPF_JEQ_K, reg, imm=value)

    def jump_if_not_equal_reg(self, reg, other):
        self._jump(_BPF_JNE_X, reg, other)

    def end(self):
        after = len(self.asm.instructions)
        for index in self.jumps:
            self.asm.instructions[index][3] = after - index - 1  # relative to the next instruction


# --- loading and attaching ----------------------------------------------------------

def _attr(fmt, *values):
    return libc.Buffer(struct.pack("=" + fmt, *values))


def _load(code):
    """A descriptor of the loaded program (`code`: its instructions); the kernel's
    verifier log in the error when it refuses the program."""
    license_text = libc.Buffer(b"GPL\0")
    instructions = libc.Buffer(code)
    name = b"slr_devices"

    def load(log=None):
        # struct { u32 prog_type, insn_cnt; u64 insns, license; u32 log_level, log_size;
        #          u64 log_buf; u32 kern_version, prog_flags; char prog_name[16]; }
        attr = _attr("IIQQIIQII16s", _BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8, instructions.address,
                     license_text.address, 1 if log else 0, len(log.data) if log else 0,
                     log.address if log else 0, 0, 0, name)
        return libc.bpf(_BPF_PROG_LOAD, attr)

    try:
        return load()
    except OSError as exc:
        if exc.errno == errno.EPERM and _raise_memlock():
            try:
                return load()  # kernels before 5.11 charge programs to RLIMIT_MEMLOCK
            except OSError:
                pass
            finally:
                _restore_memlock()
    log = libc.Buffer(1 << 16)
    try:
        return load(log)
    except OSError as exc:
        # The log ends with statistics ("processed N insns ..."); the reason is before them.
        lines = [line.strip() for line in bytes(log).split(b"\0", 1)[0].decode(errors="replace").splitlines()
                 if line.strip() and not line.startswith("processed ")]
        raise _Refused(exc.errno, lines[-1] if lines else "") from None


_saved_memlock = []


def _raise_memlock():
    try:
        _saved_memlock.append(libc.getrlimit(_RLIMIT_MEMLOCK))
        libc.setrlimit(_RLIMIT_MEMLOCK, _RLIM_INFINITY, _RLIM_INFINITY)
        return True
    except OSError:
        return False


def _restore_memlock():
    """The container is forked from this process: it must not inherit the raised limit."""
    soft, hard = _saved_memlock.pop()
    try:
        libc.setrlimit(_RLIMIT_MEMLOCK, soft, hard)
    except OSError:
        pass


def _attached(cgroup_fd):
    """Ids of the device programs attached to this cgroup itself (not its parents)."""
    count = 64
    while True:
        ids = libc.Buffer(4 * count)
        # struct { u32 target_fd, attach_type, query_flags, attach_flags; u64 prog_ids; u32 prog_cnt; }
        attr = _attr("IIIIQI4x", cgroup_fd, _BPF_CGROUP_DEVICE, 0, 0, ids.address, count)
        try:
            libc.bpf(_BPF_PROG_QUERY, attr)
        except OSError as exc:
            if exc.errno == errno.ENOSPC and count < 4096:
                count *= 4
                continue
            raise
        found = struct.unpack_from("=I", bytes(attr), 24)[0]
        return struct.unpack_from(f"={found}I", bytes(ids))


def _detach(cgroup_fd, program_id):
    try:
        program_fd = libc.bpf(_BPF_PROG_GET_FD_BY_ID, _attr("III", program_id, 0, 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return  # gone meanwhile
        raise
    try:
        # struct { u32 target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd; }
        libc.bpf(_BPF_PROG_DETACH, _attr("IIIII", cgroup_fd, program_fd, _BPF_CGROUP_DEVICE, 0, 0))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
    finally:
        os.close(program_fd)


def _may_go_without():
    """Whether an unprivileged runtime may run the container without a device program,
    as runc and crun do: it cannot load one (bpf(2) needs CAP_BPF/CAP_SYS_ADMIN in the
    initial user namespace), and its container cannot reach a device its user could not
    already open on the host (mknod of a device needs CAP_MKNOD there too)."""
    if os.geteuid() != 0:
        return True
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def attach(cgroup_dir, policy):
    """Install `policy` on a cgroup v2 directory: the new program is attached before
    the old ones are detached, so no moment passes without a policy (both apply in
    between: the stricter of the two)."""
    code = program(policy)
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise DeviceError(f"cgroup: {cgroup_dir}: {exc.strerror}") from None
    try:
        try:
            program_fd = _load(code)
        except _Refused as exc:
            if exc.errno == errno.EPERM and _may_go_without():
                return False
            verifier = f" (verifier: {exc.detail})" if exc.detail else ""
            raise DeviceError(f"cgroup: the kernel refused the device program: {os.strerror(exc.errno)}{verifier}") from None
        try:
            old = _attached(cgroup_fd)
            # struct { u32 target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd; }
            libc.bpf(_BPF_PROG_ATTACH, _attr("IIIII", cgroup_fd, program_fd, _BPF_CGROUP_DEVICE,
                                             _BPF_F_ALLOW_MULTI, 0))
            for program_id in old:
                _detach(cgroup_fd, program_id)
        except OSError as exc:
            if exc.errno == errno.EPERM and _may_go_without():
                return False
            raise DeviceError(f"cgroup: cannot attach the device program to {cgroup_dir}: {exc.strerror}") from None
        finally:
            os.close(program_fd)
    finally:
        os.close(cgroup_fd)
    return True
