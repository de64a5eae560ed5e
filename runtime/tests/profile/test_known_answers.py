"""Known answers: small programs built here, libc functions, libseccomp's tables."""

import os
import subprocess

import pytest

from slruntime.profile import syscalls
from slruntime.profile.analysis import Analysis
from slruntime.profile.elfobject import ElfObject
from slruntime.profile.program import LoadedObject, Program

from confine import run_confined

X86 = syscalls.table("x86_64")
NUMBERS = {name: number for number, name in X86.items()}


def names(result, table=X86):
    return {table[n] for n in result.syscalls if n in table}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_tables_agree_with_scmp_sys_resolver(arch):
    table = syscalls.table(arch)
    assert len(table) > 250
    for name in ("read", "openat", "execve", "exit_group", "clone3"):
        number = int(subprocess.run(["scmp_sys_resolver", "-a", arch, name], capture_output=True,
                                    text=True, check=True).stdout)
        assert table[number] == name


@pytest.mark.parametrize("fixture", ["known_answers_static", "known_answers_dynamic"])
def test_direct_syscall_and_libc_calls_are_found(fixture, request):
    rootfs = request.getfixturevalue(fixture)
    result = Analysis(rootfs).analyse_entry("/known")
    found = names(result)
    assert "sched_rr_get_interval" in found       # `syscall` with a constant in rax
    assert "getpid" in found                      # libc's getpid()
    assert "getppid" in found                     # libc's syscall(SYS_getppid)
    assert {"write", "exit_group"} <= found       # printf, return from main
    # acct sits in a function nothing calls: present in the file, not reachable.
    assert "acct" not in found
    assert result.unresolved == {"/known": 1}     # syscall(atol(argv[1]))


def test_never_called_function_holds_acct(known_answers_static):
    obj = LoadedObject(ElfObject("/known", os.path.join(known_answers_static, "known")))
    address = [a for a, n in obj.obj.functions.items() if n == "never_called"][0]
    region = obj.facts.regions[obj.facts.region_at(address)]
    assert region.syscalls == {NUMBERS["acct"]}


def test_computed_number_is_reported_not_guessed(known_answers_static):
    # syscall(atol(argv[1])): libc's syscall() takes the number from its first argument
    # and main passes a value computed at run time: one unresolved site in /known.
    result = Analysis(known_answers_static).analyse_entry("/known")
    assert result.unresolved == {"/known": 1}


@pytest.mark.parametrize("arch, libc", [
    ("x86_64", "/lib/x86_64-linux-gnu/libc.so.6"),             # the host's glibc
    ("aarch64", "lib/aarch64-linux-gnu/libc.so.6"),            # libc6:arm64, in the rootfs
])
def test_libc_functions_map_to_their_syscalls(arch, libc, request):
    if arch == "aarch64":
        libc = os.path.join(request.getfixturevalue("arm64_dynamic_rootfs"), libc)
    table = syscalls.table(arch)
    loaded = LoadedObject(ElfObject("/libc.so.6", libc))

    def syscalls_of(function):
        # The function and what it reaches (its code may be cut into pieces at jumps).
        reach = Program([loaded]).walk([("code", loaded, loaded.obj.exports[function])])
        return {table[n] for n in reach.syscalls}

    assert syscalls_of("getpid") == {"getpid"}
    assert syscalls_of("getppid") == {"getppid"}
    assert "exit_group" in syscalls_of("_exit")       # exit_group, then exit
    # syscall() takes the number from its first argument.
    region = loaded.facts.regions[loaded.facts.region_at(loaded.obj.exports["syscall"])]
    assert region.wrapper_arg == 0


def test_known_answers_program_runs_under_its_profile(known_answers_static):
    from slruntime.profile.generate import Profile

    result = Analysis(known_answers_static).analyse_entry("/known")
    seccomp = Profile("x86_64", [result]).seccomp()
    status, output = run_confined(seccomp, ["/known"], known_answers_static)
    assert (status, output) == (0, "pid 1\nppid 1\n")
    # A syscall the profile does not allow fails with EPERM in the confined process,
    # and works without the filter.
    denied = NUMBERS["getuid"]
    assert "getuid" not in seccomp["syscalls"][0]["names"]
    status, output = run_confined(seccomp, ["/known", str(denied)], known_answers_static)
    assert status == 0 and output.endswith(f"syscall {denied}: -1 errno 1\n"), output
    status, output = run_confined(None, ["/known", str(denied)], known_answers_static)
    assert status == 0 and output.endswith(f"syscall {denied}: 0 errno 0\n"), output
