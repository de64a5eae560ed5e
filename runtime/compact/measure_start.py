#!/usr/bin/env python3
"""Start time and peak RSS of commands, runs interleaved (a busy shared machine then slows
all of them alike), with ratios to the first command (the bare interpreter floor).

    measure_start.py [--runs N] COMMAND [COMMAND...]     (each COMMAND one shell word)

Wall time: fork + exec + wait4 from here, stdout to /dev/null. CPU time: the child's user +
system time from wait4 (steadier than wall time when other jobs load the machine; it
excludes the fork in this process). Peak RSS: from GNU time
(/usr/bin/time -f %M), a small C parent: ru_maxrss of a child forked from this Python
process would include this process's pages.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import time


def run_once(argv):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"measure_start: {shlex.join(argv)} failed")
    return elapsed, usage.ru_utime + usage.ru_stime


def peak_rss_kib(argv, runs):
    values = []
    for _ in range(runs):
        result = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], check=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        values.append(int(result.stderr.split()[-1]))
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args()
    commands = [shlex.split(c) for c in args.commands]
    samples = [[] for _ in commands]
    for _ in range(10):  # warm the page cache
        for argv in commands:
            run_once(argv)
    for _ in range(args.runs):
        for argv, times in zip(commands, samples):
            times.append(run_once(argv))
    floor = statistics.median(t for t, _ in samples[0])
    cpu_floor = statistics.median(c for _, c in samples[0])
    print("| command | median ms | p90 ms | x floor | CPU ms | CPU x floor | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for argv, runs in zip(commands, samples):
        wall = [t for t, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        median = statistics.median(wall)
        p90 = statistics.quantiles(wall, n=10)[-1]
        rss = peak_rss_kib(argv, 15) / 1024
        print(f"| `{shlex.join(argv)}` | {median * 1000:.2f} | {p90 * 1000:.2f} | "
              f"{median / floor:.2f} | {cpu * 1000:.2f} | {cpu / cpu_floor:.2f} | {rss:.1f} |")

if __name__ == "__main__":
    main()
