"""Known-answer tests of the C launcher: what it reports for programs whose time and
memory are known, including the two traps it exists to avoid (a parent's pages counted
as the child's; descendants counted as the process itself)."""

import os
import subprocess

import pytest

from bench import launcher

pytestmark = pytest.mark.root

MIB = 1024  # the launcher reports KiB
HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    kat = str(build / "kat")
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", kat, os.path.join(HERE, "kat.c")], check=True)
    return launcher.build(str(build)), kat


@pytest.fixture
def memcg():
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("no cgroup v1 memory controller on this host")
    path = f"/sys/fs/cgroup/memory/slrbench-test-{os.getpid()}"
    os.mkdir(path)
    yield path
    os.rmdir(path)  # empty again: the launchers that joined it have exited


def measure(tools, *args, **options):
    binary, kat = tools
    return launcher.measure(binary, [kat, *args], "/dev/null", ENV, **options)


def test_wall_time_covers_the_run(tools):
    result = measure(tools, "sleep", "50")
    assert result["exit_status"] == 0
    assert 50e6 <= result["wall_ns"] < 5e9


def test_own_allocation_is_counted_by_every_rss_measure(tools, memcg):
    result = measure(tools, "alloc", "50", trace=True, memcg=memcg)
    assert result["waited_maxrss_kib"] >= 50 * MIB
    assert result["tree_maxrss_kib"] >= 50 * MIB
    assert result["own_hwm_kib"] >= 50 * MIB
    assert result["memcg_peak_kib"] >= 50 * MIB


def test_a_big_parent_is_not_counted(tools):
    # This Python process holds 200 MiB; a child forked from it and exec'ing a small
    # program reports them as its own peak (ru_maxrss survives exec)...
    ballast = bytearray(200 << 20)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    pid = os.fork()
    if pid == 0:
        os.execv(tools[1], [tools[1], "none"])
    naive = os.wait4(pid, 0)[2].ru_maxrss
    assert naive >= 200 * MIB, "the trap this test guards against did not show up"
    # ...through the launcher they are not.
    result = measure(tools, "none", trace=True)
    assert result["waited_maxrss_kib"] < 10 * MIB
    assert result["tree_maxrss_kib"] < 10 * MIB
    assert result["own_hwm_kib"] < 10 * MIB
    del ballast


def test_a_waited_for_child_counts_for_the_tree_but_not_the_process_itself(tools, memcg):
    result = measure(tools, "child", "50", trace=True, memcg=memcg)
    assert result["exit_status"] == 0
    assert result["waited_maxrss_kib"] >= 50 * MIB  # wait4 includes what the child reaped
    assert result["tree_maxrss_kib"] >= 50 * MIB
    assert result["memcg_peak_kib"] >= 50 * MIB
    assert result["own_hwm_kib"] < 10 * MIB  # the process alone


def test_an_orphaned_descendant_comes_back_to_the_launcher(tools, memcg):
    result = measure(tools, "orphan", "50", memcg=memcg)
    assert result["waited_maxrss_kib"] < 10 * MIB  # its parent never waited for it
    assert result["tree_maxrss_kib"] >= 50 * MIB  # the launcher, its subreaper, did
    assert result["memcg_peak_kib"] >= 50 * MIB
    assert result["descendants_running"] is False


def test_without_memcg_or_trace_those_fields_are_null(tools):
    result = measure(tools, "none")
    assert result["own_hwm_kib"] is None and result["memcg_peak_kib"] is None


@pytest.mark.parametrize("args, status", [(("exit", "3"), 3), (("kill",), 128 + 9)])
def test_exit_status(tools, args, status):
    assert measure(tools, *args)["exit_status"] == status
    assert measure(tools, *args, trace=True)["exit_status"] == status


@pytest.mark.skipif(not os.path.ismount("/sys/fs/cgroup/unified"), reason="not a hybrid cgroup host")
def test_hide_cgroup2_only_in_the_commands_mount_namespace(tools, tmp_path):
    binary, _ = tools
    output = str(tmp_path / "mountinfo")
    result = launcher.measure(binary, ["cat", "/proc/self/mountinfo"], output, ENV, hide_cgroup2=True)
    assert result["exit_status"] == 0
    with open(output) as f:
        inside = f.read()
    assert " /sys/fs/cgroup/memory " in inside
    assert " /sys/fs/cgroup/unified " not in inside
    with open("/proc/self/mountinfo") as f:
        assert " /sys/fs/cgroup/unified " in f.read()


def test_a_missing_program_is_exit_127(tools, tmp_path):
    binary, _ = tools
    result = launcher.measure(binary, [str(tmp_path / "missing")], "/dev/null", ENV)
    assert result["exit_status"] == 127


def test_bad_usage_is_a_one_line_error(tools):
    done = subprocess.run([tools[0], "--bogus", "--", "true"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: launcher")
    with pytest.raises(RuntimeError, match="usage"):
        launcher.measure(tools[0], [], "/dev/null", ENV)
