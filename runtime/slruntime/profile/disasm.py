"""Code facts of one ELF object, from a linear-sweep disassembly with capstone.

The code is cut into regions, one per known function start (symbols, direct call targets,
code addresses stored in data or taken by instructions, entry points). For every region
the scan records:

- the system call numbers of its `syscall` (x86_64) / `svc #0` (aarch64) instructions,
  read from the last constant written to rax / x8 before them;
- `wrapper_arg`: when the number is copied from an argument register instead (glibc's
  and musl's `syscall()`, musl's `__syscall_cp`), the index of that argument: call sites
  that pass a constant there then resolve it;
- direct calls and branches that leave the region, with the constants (or incoming
  arguments) in the argument registers at that point;
- addresses the code refers to (rip-relative operands, adrp/add/ldr pairs, absolute
  constants in position-dependent code): they make the functions and data they point to
  reachable, which is how indirect calls are followed (a function pointer has to come from
  somewhere the code can name);
- `forward`: for a stub that only jumps on (PLT entries), where it jumps.

A linear sweep is exact for compiler output of both architectures as long as the text
holds no data, which holds for the GCC/Clang output of glibc, musl and Debian binaries.
"""

import bisect
import re

import capstone

_HEX = re.compile(r"0x[0-9a-f]+")
# capstone's cs_disasm decodes a whole buffer into one array of ~240 bytes per
# instruction: a library with tens of MiB of code would need GiBs at once. Code is
# decoded this many bytes at a time instead (plus the longest instruction, x86's 15 bytes).
_WINDOW = 1 << 16
_LONGEST_INSTRUCTION = 15
_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")


class DisassemblyError(Exception):
    """capstone failed on the code (not: met bytes that are no instruction)."""


def _instructions(md, code, start):
    """(address, size, mnemonic, op_str) of `code` at address `start`, as one
    md.disasm_lite(code, start) gives them, ending at the first bytes that are no
    instruction as it does, but decoded a window at a time. Decoding restarts at an
    instruction boundary, so every window decodes what the whole buffer would."""
    offset = 0
    try:
        while offset < len(code):
            limit = offset + _WINDOW
            decoded_to = offset
            for address, size, mnemonic, op in md.disasm_lite(code[offset:limit + _LONGEST_INSTRUCTION],
                                                             start + offset):
                if address - start >= limit:
                    break                       # the next window decodes it
                yield address, size, mnemonic, op
                decoded_to = address - start + size
            if decoded_to < limit:
                return                          # the end of the code, or no instruction
            offset = decoded_to
    except capstone.CsError as err:
        raise DisassemblyError(str(err)) from None


class Region:
    __slots__ = ("syscalls", "wrapper_arg", "unresolved", "calls", "refs", "forward")

    def __init__(self):
        self.syscalls = set()
        self.wrapper_arg = None
        self.unresolved = 0          # syscall instructions whose number is unknown
        self.calls = []              # (target address, {arg index: ("imm", n) | ("arg", j)})
        self.refs = set()            # addresses referred to
        self.forward = None          # ("code", addr) or ("slot", addr): a pure jump stub


class CodeFacts:
    def __init__(self, starts, regions):
        self.starts = starts          # sorted region start addresses
        self.regions = regions        # Region per start

    def region_at(self, address):
        """Index of the region holding `address` (None before the first start)."""
        index = bisect.bisect_right(self.starts, address) - 1
        return index if index >= 0 else None


# --- x86_64 --------------------------------------------------------------------------

_X86_REGS = {}
for _names in ("rax eax ax al", "rbx ebx bx bl", "rcx ecx cx cl", "rdx edx dx dl",
               "rsi esi si sil", "rdi edi di dil", "rbp ebp bp bpl"):
    for _name in _names.split():
        _X86_REGS[_name] = _names.split()[0]
for _i in range(8, 16):
    for _suffix in ("", "d", "w", "b"):
        _X86_REGS[f"r{_i}{_suffix}"] = f"r{_i}"
_X86_ARGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
_X86_CALL_CLOBBERED = ("rax", "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11")
_X86_COPIES = ("mov", "movsxd", "movsx", "movzx")
_X86_READ_ONLY = ("cmp", "test", "push", "bt")


class _X86:
    number_reg = "rax"
    args = _X86_ARGS
    call_clobbered = _X86_CALL_CLOBBERED

    def __init__(self, obj):
        self.md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self.absolute = obj.position_dependent
        self.obj = obj

    @staticmethod
    def call_target(mnemonic, op):
        if mnemonic == "call" and op.startswith("0x"):
            return int(op, 16)
        return None

    def prescan(self, address, size, mnemonic, op):
        """(call target, code addresses the instruction names, what it is: "end" for an
        unconditional transfer, "pad" for padding, None)."""
        if mnemonic.startswith(("bnd ", "notrack ")):
            mnemonic = mnemonic.split()[-1]
        if mnemonic.startswith("nop") or mnemonic == "int3" or (mnemonic == "xchg" and op == "ax, ax"):
            return None, (), "pad"
        if mnemonic[0] == "j":
            targets = (int(op, 16),) if op.startswith("0x") else ()
            return None, targets, "end" if mnemonic == "jmp" else None
        if mnemonic == "call":
            return self.call_target(mnemonic, op), (), None
        kind = "end" if mnemonic in ("ret", "ud2", "hlt") else None
        rip = _RIP.search(op)
        if rip:
            disp = int(rip.group(2), 0)
            return None, (address + size + (disp if rip.group(1) == "+" else -disp),), kind
        if self.absolute and "0x" in op:
            return None, [int(c, 16) for c in _HEX.findall(op)], kind
        return None, (), kind

    def scan(self, scanner, address, size, mnemonic, op):
        state = scanner.state
        if mnemonic.startswith("bnd "):
            mnemonic = mnemonic[4:]
        if mnemonic == "endbr64" or mnemonic.startswith("nop"):
            return
        scanner.count_instruction()
        rip = _RIP.search(op)
        if rip:
            disp = int(rip.group(2), 0)
            scanner.ref(address + size + (disp if rip.group(1) == "+" else -disp))
        elif self.absolute:
            for constant in _HEX.findall(op):
                value = int(constant, 16)
                if mnemonic[0] != "j" and mnemonic != "call" and (self.obj.in_code(value) or self.obj.in_data(value)):
                    scanner.ref(value)
        if mnemonic == "syscall":
            scanner.syscall_site()
        elif mnemonic == "call":
            scanner.call(self.call_target(mnemonic, op), tail=False)
        elif mnemonic[0] == "j":
            target = int(op, 16) if op.startswith("0x") else None
            if mnemonic == "jmp":
                if target is None and rip:
                    scanner.forward(("slot", scanner.last_ref))
                elif target is not None:
                    scanner.forward(("code", target))
                scanner.call(target, tail=True)
                scanner.reset_unknown()
            elif target is not None:
                scanner.branch(target)
        elif mnemonic in ("ret", "hlt", "ud2"):
            scanner.reset_unknown()
        else:
            dest, _, src = op.partition(", ")
            canon = _X86_REGS.get(dest)
            if canon is None or mnemonic in _X86_READ_ONLY:
                return
            if mnemonic in ("mov", "movabs") and (src.startswith(("0x", "-0x")) or src.isdigit()):
                scanner.constant(canon, int(src, 0))
            elif mnemonic in _X86_COPIES and src in _X86_REGS:
                scanner.copy(canon, _X86_REGS[src])
            elif mnemonic == "xor" and src == dest:
                scanner.constant(canon, 0)
            else:
                state[canon] = None


# --- aarch64 -------------------------------------------------------------------------

_A64_ARGS = tuple(f"x{i}" for i in range(8))
_A64_READ_ONLY = ("cmp", "cmn", "tst", "ccmp", "ccmn", "fcmp", "prfm", "svc", "ret", "br",
                  "blr", "cbz", "cbnz", "tbz", "tbnz", "hint", "dmb", "dsb", "isb")
_A64_IMM = re.compile(r"#(-?0x[0-9a-f]+|-?\d+)")
_A64_MEM = re.compile(r"\[(x\d+|sp)(?:, #(-?0x[0-9a-f]+|-?\d+))?\]")


def _a64_reg(name):
    """Canonical 64-bit name of a general register (w3 -> x3), or None."""
    if len(name) > 1 and name[0] in "xw" and name[1:].isdigit():
        return "x" + name[1:]
    return None


class _A64:
    number_reg = "x8"
    args = _A64_ARGS
    call_clobbered = tuple(f"x{i}" for i in range(19))

    def __init__(self, obj):
        self.md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)

    @staticmethod
    def call_target(mnemonic, op):
        if mnemonic == "bl" and op.startswith("#"):
            return int(op[1:], 0)
        return None

    def prescan(self, address, size, mnemonic, op):
        """See _X86.prescan (adrp+add pairs are not followed here: fewer split points)."""
        if mnemonic == "nop":
            return None, (), "pad"
        if mnemonic == "bl":
            return self.call_target(mnemonic, op), (), None
        if mnemonic in ("b", "adr") or mnemonic.startswith("b.") or mnemonic in ("cbz", "cbnz", "tbz", "tbnz"):
            target = op.rsplit("#", 1)[-1]
            targets = (int(target, 0),) if "#" in op else ()
            return None, targets, "end" if mnemonic == "b" else None
        return None, (), "end" if mnemonic in ("ret", "br", "brk", "udf") else None

    def scan(self, scanner, address, size, mnemonic, op):
        state, pages = scanner.state, scanner.pages
        if mnemonic in ("nop", "bti", "paciasp", "pacibsp", "autiasp", "autibsp"):
            return
        scanner.count_instruction()
        operands = op.split(", ")
        dest = _a64_reg(operands[0]) if operands else None
        if mnemonic == "svc":
            if op == "#0":
                scanner.syscall_site()
            return
        if mnemonic == "bl":
            scanner.call(self.call_target(mnemonic, op), tail=False)
            return
        if mnemonic == "blr":
            scanner.call(None, tail=False)
            return
        if mnemonic == "b":
            target = int(op[1:], 0)
            scanner.forward(("code", target))
            scanner.call(target, tail=True)
            scanner.reset_unknown()
            return
        if mnemonic == "br":
            if scanner.stub_slot is not None:
                scanner.forward(("slot", scanner.stub_slot))
            scanner.call(None, tail=True)
            scanner.reset_unknown()
            return
        if mnemonic in ("ret", "brk", "udf"):
            scanner.reset_unknown()
            return
        if mnemonic.startswith("b.") or mnemonic in ("cbz", "cbnz", "tbz", "tbnz"):
            scanner.branch(int(operands[-1][1:], 0))
            return
        if mnemonic in ("adrp", "adr"):
            value = int(operands[1][1:], 0)
            pages[dest] = value
            state[dest] = None
            if mnemonic == "adr":
                scanner.ref(value)
            return
        memory = _A64_MEM.search(op)
        if memory:
            base = pages.get(memory.group(1))
            if base is not None:
                scanner.ref(base + int(memory.group(2) or "0", 0))
                if mnemonic == "ldr" and dest == "x17":
                    scanner.stub_slot = base + int(memory.group(2) or "0", 0)
        elif mnemonic == "ldr" and len(operands) == 2 and operands[1].startswith("#"):
            scanner.ref(int(operands[1][1:], 0))       # literal load
        if mnemonic.startswith("st") or mnemonic in _A64_READ_ONLY or dest is None:
            return
        if mnemonic == "add" and len(operands) == 3 and operands[1] in pages and operands[2].startswith("#"):
            value = pages[operands[1]] + int(operands[2][1:], 0)
            scanner.ref(value)
            pages[dest] = value
            state[dest] = None
            return
        pages.pop(dest, None)
        if mnemonic in ("mov", "movz") and len(operands) == 2:
            immediate = _A64_IMM.fullmatch(operands[1])
            if immediate:
                scanner.constant(dest, int(immediate.group(1), 0))
                return
            source = _a64_reg(operands[1])
            if source:
                scanner.copy(dest, source)
                return
        state[dest] = None


# --- the scan ------------------------------------------------------------------------

class _Scanner:
    """Walks instructions region by region, keeping the per-region register state."""

    def __init__(self, arch):
        self.arch = arch
        self.region = None
        self.state = {}
        self.pages = {}
        self.constants = {}
        self.pending = []
        self.last_ref = None
        self.stub_slot = None
        self.instructions = 0

    def enter(self, region, function_start=True):
        """Start a region: a function start, or a piece of the current function split off
        after an unconditional transfer (reached only by jumps and taken addresses)."""
        if function_start:
            self.finish()
            self.constants = {}       # register -> every constant the function writes to it
            self.pending = []         # (region, register that held a syscall number we could not follow)
            # At a function start the argument registers hold the caller's arguments.
            self.state = {reg: ("arg", i) for i, reg in enumerate(self.arch.args)}
        else:
            self.state = {}
        self.region = region
        self.pages = {}
        self.stub_slot = None
        self.instructions = 0

    def finish(self):
        # The number was set on another path through the function than the linear one
        # (e.g. glibc's _exit: exit_group, then exit, in a loop split off after a jump):
        # take every constant the whole function writes to the register it came from.
        for region, reg in self.pending:
            if self.constants.get(reg):
                region.syscalls.update(self.constants[reg])
            else:
                region.unresolved += 1
        self.pending = []

    def constant(self, reg, value):
        self.state[reg] = ("imm", value)
        self.constants.setdefault(reg, set()).add(value)

    def copy(self, dest, source):
        value = self.state.get(source)
        self.state[dest] = value if value is not None else ("reg", source)

    def reset_unknown(self):
        # After an unconditional transfer the next instruction is reached from elsewhere.
        self.state = {}
        self.pages = {}

    def count_instruction(self):
        self.instructions += 1

    def forward(self, target):
        # Only a region that starts with the jump (possibly after adrp/ldr/add on aarch64)
        # is a stub.
        region = self.region
        if self.instructions <= 4 and region.forward is None and not region.calls and not region.syscalls:
            region.forward = target

    def ref(self, address):
        self.last_ref = address
        self.region.refs.add(address)

    def syscall_site(self):
        value = self.state.get(self.arch.number_reg)
        region = self.region
        if value is not None and value[0] == "imm":
            region.syscalls.add(value[1])
        elif value is not None and value[0] == "arg":
            region.wrapper_arg = value[1]
        elif value is not None:
            self.pending.append((region, value[1]))
        else:
            self.pending.append((region, self.arch.number_reg))

    def call(self, target, tail):
        if target is not None:
            args = {}
            for index, reg in enumerate(self.arch.args):
                value = self.state.get(reg)
                if value is not None:
                    args[index] = value
            self.region.calls.append((target, args))
        if not tail:
            # Caller-saved registers are clobbered by the call.
            for reg in self.arch.call_clobbered:
                self.state[reg] = None
            self.pages = {}

    def branch(self, target):
        self.region.calls.append((target, {}))


_ARCH_SCANNERS = {"x86_64": _X86, "aarch64": _A64}


def analyse(obj):
    """CodeFacts of an ElfObject."""
    arch = _ARCH_SCANNERS[obj.arch](obj)
    starts = set(obj.functions)
    starts.update(obj.init_functions)
    if obj.entry:
        starts.add(obj.entry)
    for value in obj.pointers.values():
        if isinstance(value, int) and obj.in_code(value):
            starts.add(value)
    # Code addresses named by jumps and address computations start regions too, where
    # nothing can fall through into them: after an unconditional transfer (and its
    # padding). That separates a function whose address is only taken (a callback
    # handed to pthread_once) or that is only tail-called from the one before it, so
    # reaching one no longer reaches the other; every way into such a region is an
    # edge the walk follows.
    named = set()
    after_end = set()
    for start, end in obj.code_ranges:
        starts.add(start)
        code = obj.read(start, end - start)
        ended = True
        for address, size, mnemonic, op in _instructions(arch.md, code, start):
            call, targets, kind = arch.prescan(address, size, mnemonic, op)
            if call is not None:
                starts.add(call)
            named.update(targets)
            if ended:
                after_end.add(address)
            if kind != "pad":
                ended = kind == "end"
    pieces = (named & after_end) - starts
    starts = sorted(a for a in starts | pieces if obj.in_code(a))
    regions = [Region() for _ in starts]
    scanner = _Scanner(arch)
    for start, end in obj.code_ranges:
        code = obj.read(start, end - start)
        index = bisect.bisect_right(starts, start) - 1
        next_start = starts[index + 1] if index + 1 < len(starts) else end
        scanner.enter(regions[index])
        for address, size, mnemonic, op in _instructions(arch.md, code, start):
            if address >= next_start:
                index = bisect.bisect_right(starts, address) - 1
                next_start = starts[index + 1] if index + 1 < len(starts) else end
                scanner.enter(regions[index], starts[index] not in pieces)
            arch.scan(scanner, address, size, mnemonic, op)
        scanner.finish()
        scanner.region = None
    # Branches that stay inside their region are not edges.
    for index, region in enumerate(regions):
        low = starts[index]
        high = starts[index + 1] if index + 1 < len(starts) else None
        region.calls = [c for c in region.calls if c[0] < low or (high is not None and c[0] >= high)]
    return CodeFacts(starts, regions)
