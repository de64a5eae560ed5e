"""System call tables of the supported architectures, taken from libseccomp at run time.

The tables are not written out here: libseccomp already carries the kernel's numbering for
every architecture (and is what the runtime uses to build the filter), so asking it keeps
the profile generator and the filter loader in agreement about names and numbers.
"""

import ctypes

# ELF e_machine -> (our architecture name, libseccomp's name, OCI's SCMP_ARCH_* name)
ARCHES = {
    62: ("x86_64", "x86_64", "SCMP_ARCH_X86_64"),
    183: ("aarch64", "aarch64", "SCMP_ARCH_AARCH64"),
}
ARCH_NAMES = tuple(names[0] for names in ARCHES.values())

# Highest syscall number probed. x86_64 and aarch64 numbers stay below 1024; x32 and
# the arm private range lie above and belong to other ABIs.
_MAX_NUMBER = 1024

_libseccomp = None


def _lib():
    global _libseccomp
    if _libseccomp is None:
        # By name, not ctypes.util.find_library: that runs ldconfig/gcc and finds nothing
        # on embedded images without them.
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
        # A malloc()ed string: keep the pointer so it can be freed.
        lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
        _libseccomp = lib
    return _libseccomp


def oci_arch(arch):
    """The OCI `architectures` entry (SCMP_ARCH_*) for one of ARCH_NAMES."""
    for name, _, oci in ARCHES.values():
        if name == arch:
            return oci
    raise ValueError(f"unsupported architecture: {arch}")


def table(arch):
    """{number: name} of every system call libseccomp knows for `arch`."""
    if arch not in ARCH_NAMES:
        raise ValueError(f"unsupported architecture: {arch}")
    lib = _lib()
    token = lib.seccomp_arch_resolve_name(arch.encode())
    if token == 0:
        raise ValueError(f"libseccomp does not know the architecture {arch}")
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    numbers = {}
    for number in range(_MAX_NUMBER):
        pointer = lib.seccomp_syscall_resolve_num_arch(token, number)
        if pointer:
            numbers[number] = ctypes.string_at(pointer).decode()
            libc.free(pointer)
    return numbers
