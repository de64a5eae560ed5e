"""Latency of calls handled by the FGAC server, seen from inside a rootless container.

Run as root from the repository root: `.venv/bin/python runtime/tests/fgac/bench_latency.py`.
Prints one line per call kind: median and 90th percentile in microseconds. Timings
are reported here, never asserted by the tests.
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conftest  # noqa: E402  (the tests' server and container helpers)

POLICY = """
container id=bench
  mount fstype=tmpfs source=tmpfs target=/mnt/allowed flags=nosuid,nodev
  mknod path=/dev/null type=c dev=1:3 mode=0666
"""
S_IFCHR = 0o020000
CASES = [
    ("mkfifo, not intercepted (baseline)", {"op": "mkfifo", "path": "/tmp/fifo"}, 500),
    ("mknod denied by the policy", {"op": "mknod", "path": "/dev/zero", "mode": S_IFCHR | 0o666, "major": 1, "minor": 5}, 200),
    ("mknod allowed, performed (EEXIST)", {"op": "mknod", "path": "/dev/null", "mode": S_IFCHR | 0o666, "major": 1, "minor": 3}, 200),
    ("mount tmpfs allowed, performed", {"op": "mount", "source": "tmpfs", "target": "/mnt/allowed", "fstype": "tmpfs", "flags": 6}, 100),
]


def _cpu_seconds(pid):
    """CPU time of a process and its reaped children (the helpers), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main():
    import pwd

    user = pwd.getpwnam(conftest.TEST_USER)
    work = tempfile.mkdtemp(prefix="fgac-bench-", dir="/tmp")
    logs = tempfile.mkdtemp(prefix="fgac-bench-", dir="/dev/shm")
    os.chmod(work, 0o755)
    try:
        rootfs = conftest.rootfs.__wrapped__(work, user)
        server = conftest.FgacServer(work, logs, POLICY)
        ops = [{"op": "mknod", "path": "/dev/null", "mode": S_IFCHR | 0o666, "major": 1, "minor": 3}]
        ops += [{"op": "time", "call": call, "n": n} for _, call, n in CASES]
        cpu_before = _cpu_seconds(server.proc.pid)
        results = conftest.Container(user, server, rootfs, "bench", ops).results(timeout=300)
        cpu = _cpu_seconds(server.proc.pid) - cpu_before
        for (name, _, n), result in zip(CASES, results[1:]):
            print(f"{name:40s} n={n:4d}  median {result['median_us']:8.0f} us  p90 {result['p90_us']:8.0f} us")
        intercepted = 1 + sum(n + 1 for name, _, n in CASES if "not intercepted" not in name)
        print(f"server + helpers CPU time per intercepted call: {cpu / intercepted * 1e3:.2f} ms; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
