"""Small images for feeding `slr profile` what an attacker would: tiny ELF programs built
with gcc (a static one, a PIE linked against a library whose DT_NEEDED name is a path,
with a PT_INTERP placeholder the tests rewrite), a runner with a time and memory limit,
and the oracle every run must satisfy."""

import json
import os
import resource
import subprocess
import sys

LIBRARY_C = r"""
long tiny_call(long n)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(n) : "rcx", "r11", "memory");
    return ret;
}
"""
PROGRAM_C = r"""
extern long tiny_call(long n);
void _start(void)
{
    tiny_call(39);      /* getpid */
    __asm__ volatile ("mov $60, %eax; xor %edi, %edi; syscall");
}
"""
# PT_INTERP of the dynamic program: rewritten in place (same length) by the tests.
INTERP_PLACEHOLDER = b"/lib/ld-tiny-placeholder-0123456789.so"
NEEDED = "/lib/libtiny.so"          # DT_NEEDED of the dynamic program: a name with a slash
BARE_NEEDED = "libtinybare.so"
IMAGE_FILES = {"static": "bin/static", "dynamic": "bin/dynamic", "dynamic-bare": "bin/dynamic-bare",
               "library": NEEDED.lstrip("/"), "library-bare": "lib/" + BARE_NEEDED}
# Address space of one analysis of a tiny image: the interpreter with capstone and
# libseccomp loaded takes ~60 MiB here; reading a 512 MiB file whole does not fit.
MEMORY_LIMIT = 384 << 20
TIMEOUT = 60


def build_programs(directory):
    """Paths of the programs built in `directory`: "static"; "dynamic", which needs
    "library" by the path NEEDED; "dynamic-bare", which needs "library-bare" by the bare
    name BARE_NEEDED (searched in ld.so.conf's and the default directories)."""
    paths = {name: os.path.join(directory, name)
             for name in ("static", "dynamic", "library", "dynamic-bare", "library-bare")}
    sources = {}
    for name, text in (("lib.c", LIBRARY_C), ("program.c", PROGRAM_C)):
        sources[name] = os.path.join(directory, name)
        with open(sources[name], "w") as stream:
            stream.write(text)
    gcc = ["gcc", "-O2", "-nostdlib"]
    subprocess.run([*gcc, "-shared", "-fPIC", f"-Wl,-soname,{NEEDED}", "-o", paths["library"],
                    sources["lib.c"]], check=True)
    subprocess.run([*gcc, "-static", "-o", paths["static"], sources["program.c"], sources["lib.c"]], check=True)
    subprocess.run([*gcc, "-shared", "-fPIC", f"-Wl,-soname,{BARE_NEEDED}", "-o", paths["library-bare"],
                    sources["lib.c"]], check=True)
    for program, library in (("dynamic", "library"), ("dynamic-bare", "library-bare")):
        subprocess.run([*gcc, "-fPIE", "-pie", f"-Wl,-dynamic-linker,{INTERP_PLACEHOLDER.decode()}",
                        "-o", paths[program], sources["program.c"], paths[library]], check=True)
    return paths


def make_rootfs(rootfs, programs, interp=None):
    """A rootfs with the programs at IMAGE_FILES (the dynamic ones with PT_INTERP `interp`
    if given, as long as the placeholder or shorter)."""
    os.makedirs(os.path.join(rootfs, "bin"))
    os.makedirs(os.path.join(rootfs, "lib"))
    for name, destination in IMAGE_FILES.items():
        with open(programs[name], "rb") as stream:
            data = stream.read()
        if name.startswith("dynamic") and interp is not None:
            data = set_interp(data, interp)
        path = os.path.join(rootfs, destination)
        with open(path, "wb") as stream:
            stream.write(data)
        os.chmod(path, 0o755)
    return rootfs


def set_interp(data, interp):
    assert len(interp) <= len(INTERP_PLACEHOLDER)
    return data.replace(INTERP_PLACEHOLDER, interp.ljust(len(INTERP_PLACEHOLDER), b"\x00"), 1)


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def profile(*args, timeout=TIMEOUT, env=None):
    """`python -m slruntime.profile ARGS` with the address space limited: a run that hangs
    raises subprocess.TimeoutExpired, one that reads without bound dies of MemoryError."""
    return subprocess.run([sys.executable, "-m", "slruntime.profile", *args], capture_output=True,
                          timeout=timeout, preexec_fn=_limits, stdin=subprocess.DEVNULL, env=env)


def check_outcome(result, output=None):
    """The oracle: exit 0 with a valid profile (at `output`, or on stdout), or exit 1 with
    exactly one line on stderr naming the problem. Returns the profile or None."""
    stderr = result.stderr.decode(errors="replace")
    if result.returncode == 1:
        assert stderr.startswith("slr profile: ") and stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
        return None
    assert result.returncode == 0, f"exit {result.returncode}: {stderr}"
    if output is None:
        document = result.stdout
    else:
        with open(output, "rb") as stream:
            document = stream.read()
    profile = json.loads(document)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["syscalls"][0]["action"] == "SCMP_ACT_ALLOW"
    assert all(isinstance(name, str) for name in profile["syscalls"][0]["names"])
    return profile


def remove_tree(top):
    """rm -r without recursion (shutil.rmtree recurses, and the images nest deeper)."""
    if not os.path.lexists(top):
        return
    if not os.path.isdir(top) or os.path.islink(top):
        os.unlink(top)
        return
    directories, pending = [], [top]
    while pending:
        directory = pending.pop()
        directories.append(directory)
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    os.unlink(entry.path)
    for directory in reversed(directories):
        os.rmdir(directory)


def make_deep_tree(top, depth, name="d"):
    """`top`/d/d/.../d, `depth` levels (os.makedirs recurses), and the deepest path."""
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    return os.path.join(top, *[name] * depth)
