"""Fixtures for `slr profile`: test programs built with gcc, rootfs trees built from the
host's and Debian arm64 packages, and a way to run a program under a generated profile."""

import os
import shutil
import subprocess

import pytest

import python_app
from rootfs_copy import copy_with_libraries

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Debian arm64 packages are fetched once into the build tree (git-ignored).
ARM64_CACHE = os.path.join(REPO, "build", "profile-arm64")

# A program with known answers: a raw `syscall` instruction with a constant number, libc's
# getpid(), libc's syscall() with a constant, one with a number from the command line,
# and a syscall in a function nothing calls.
KNOWN_ANSWERS_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline, used)) static long never_called(void)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(SYS_acct), "D"(0) : "rcx", "r11", "memory");
    return ret;
}

int main(int argc, char **argv)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(SYS_sched_rr_get_interval), "D"(0), "S"(0)
                      : "rcx", "r11", "memory");
    printf("pid %d\n", getpid() > 0);
    printf("ppid %d\n", syscall(SYS_getppid) >= 0);
    if (argc > 1) {
        errno = 0;
        ret = syscall(atol(argv[1]));
        printf("syscall %s: %ld errno %d\n", argv[1], ret, errno);
    }
    return 0;
}
"""

# A small dynamically linked workload: stdio, files, a child process, time.
WORKLOAD_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    char line[256];
    FILE *out = fopen("/tmp/workload.txt", "w");
    fprintf(out, "written\n");
    fclose(out);
    FILE *in = fopen("/tmp/workload.txt", "r");
    fgets(line, sizeof line, in);
    fclose(in);
    pid_t child = fork();
    if (child == 0)
        _exit(7);
    int status;
    waitpid(child, &status, 0);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char *buffer = malloc(1 << 20);
    printf("read %s", line);
    printf("child %d\n", WEXITSTATUS(status));
    printf("clock %d\n", now.tv_sec > 0 || now.tv_nsec > 0);
    free(buffer);
    return 0;
}
"""


def gcc(source, output, *flags):
    c_file = output + ".c"
    with open(c_file, "w") as stream:
        stream.write(source)
    subprocess.run(["gcc", "-O2", "-o", output, c_file, *flags], check=True)
    os.unlink(c_file)
    return output


@pytest.fixture(scope="session")
def known_answers_static(tmp_path_factory):
    """A rootfs holding only a statically linked known-answers program at /known."""
    rootfs = tmp_path_factory.mktemp("known-static")
    gcc(KNOWN_ANSWERS_C, str(rootfs / "known"), "-static")
    return str(rootfs)


@pytest.fixture(scope="session")
def known_answers_dynamic(tmp_path_factory):
    """The same program linked against the host's glibc, with glibc copied in."""
    rootfs = tmp_path_factory.mktemp("known-dynamic")
    binary = gcc(KNOWN_ANSWERS_C, str(tmp_path_factory.mktemp("build") / "known"))
    copy_with_libraries(binary, str(rootfs), "/known")
    return str(rootfs)


@pytest.fixture(scope="session")
def glibc_rootfs(tmp_path_factory):
    """A rootfs with a gcc-built dynamic workload at /bin/workload and glibc."""
    rootfs = tmp_path_factory.mktemp("glibc")
    binary = gcc(WORKLOAD_C, str(tmp_path_factory.mktemp("build") / "workload"))
    copy_with_libraries(binary, str(rootfs), "/bin/workload")
    os.makedirs(rootfs / "tmp")
    return str(rootfs)


@pytest.fixture(scope="session")
def python_rootfs(tmp_path_factory):
    """A rootfs with Debian's python3 (binary, libraries, standard library)."""
    rootfs = tmp_path_factory.mktemp("python")
    copy_with_libraries(os.path.realpath("/usr/bin/python3"), str(rootfs), "/usr/bin/python3")
    stdlib = "/usr/lib/python3.11"
    shutil.copytree(stdlib, str(rootfs) + stdlib, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "test", "idlelib", "tkinter",
                                                  "ensurepip", "lib2to3", "site-packages",
                                                  "dist-packages", "pydoc_data"))
    for module in os.listdir(str(rootfs) + stdlib + "/lib-dynload"):
        # Extension modules and the libraries they link (libssl, libffi, ...).
        copy_with_libraries(os.path.join(stdlib, "lib-dynload", module), str(rootfs),
                            os.path.join(stdlib, "lib-dynload", module))
    os.makedirs(rootfs / "tmp")
    return str(rootfs)


def _apt_arm64(*args, cwd):
    state = os.path.join(ARM64_CACHE, "apt")
    os.makedirs(os.path.join(state, "lists", "partial"), exist_ok=True)
    os.makedirs(os.path.join(state, "cache", "archives", "partial"), exist_ok=True)
    status = os.path.join(state, "status")
    open(status, "a").close()
    # A private apt state: arm64 package lists without changing the host's dpkg setup.
    options = ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
               "-o", f"Dir::State::Lists={state}/lists", "-o", f"Dir::Cache={state}/cache",
               "-o", f"Dir::State::status={status}", "-o", "Debug::NoLocking=1",
               "-o", "APT::Sandbox::User=root", "-qq"]
    subprocess.run(["apt-get", *options, *args], check=True, cwd=cwd)


@pytest.fixture(scope="session")
def python_app_rootfs(tmp_path_factory):
    """The python test app as a user ships it (see python_app.build_rootfs)."""
    rootfs = str(tmp_path_factory.mktemp("python-app"))
    python_app.build_rootfs(rootfs, str(tmp_path_factory.mktemp("python-app-run")))
    return rootfs


@pytest.fixture(scope="session")
def arm64_debs():
    """Directory of Debian arm64 .debs: busybox-static, busybox, libc6."""
    debs = os.path.join(ARM64_CACHE, "debs")
    wanted = ("busybox-static", "busybox", "libc6")
    present = os.listdir(debs) if os.path.isdir(debs) else []
    if not all(any(f.startswith(name + "_") for f in present) for name in wanted):
        os.makedirs(debs, exist_ok=True)
        _apt_arm64("update", cwd=debs)
        _apt_arm64("download", *(f"{name}:arm64" for name in wanted), cwd=debs)
    return debs


def _extract(debs, names, rootfs):
    for name in names:
        (deb,) = [f for f in os.listdir(debs) if f.startswith(name + "_") and f.endswith("_arm64.deb")]
        subprocess.run(["dpkg-deb", "-x", os.path.join(debs, deb), rootfs], check=True)


@pytest.fixture(scope="session")
def arm64_static_rootfs(arm64_debs, tmp_path_factory):
    rootfs = str(tmp_path_factory.mktemp("arm64-static"))
    _extract(arm64_debs, ["busybox-static"], rootfs)
    return rootfs


@pytest.fixture(scope="session")
def arm64_dynamic_rootfs(arm64_debs, tmp_path_factory):
    rootfs = str(tmp_path_factory.mktemp("arm64-dynamic"))
    _extract(arm64_debs, ["busybox", "libc6"], rootfs)
    return rootfs
