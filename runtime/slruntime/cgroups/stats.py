"""`events --stats` data of a container's cgroup, a runc-like subset, read from the
files each cgroup version keeps (imported by `events` only, never on the start path)."""

import os

from slruntime.cgroups.common import read


def _number(directory, name):
    try:
        value = read(os.path.join(directory, name))
    except (OSError, TypeError):  # no such file, or no such controller (directory None)
        return 0
    return 0 if value == "max" else int(value)


def _flat_keyed(directory, name):
    """A file of "key value" lines as a dict."""
    try:
        with open(os.path.join(directory, name)) as f:
            return {k: int(v) for k, v in (line.split() for line in f)}
    except (OSError, TypeError, ValueError):
        return {}


def v1(paths):
    """From the v1 controllers' directories ({controller: directory})."""
    cpu_stat = _flat_keyed(paths.get("cpu"), "cpu.stat")
    memory = paths.get("memory")
    return {
        "cpu": {"usage": {"total": _number(paths.get("cpuacct"), "cpuacct.usage")},
                "throttling": {"periods": cpu_stat.get("nr_periods", 0),
                               "throttledPeriods": cpu_stat.get("nr_throttled", 0),
                               "throttledTime": cpu_stat.get("throttled_time", 0)}},
        "memory": {"usage": {"usage": _number(memory, "memory.usage_in_bytes"),
                             "max": _number(memory, "memory.max_usage_in_bytes"),
                             "limit": _number(memory, "memory.limit_in_bytes"),
                             "failcnt": _number(memory, "memory.failcnt")},
                   "raw": _flat_keyed(memory, "memory.stat")},
        "pids": {"current": _number(paths.get("pids"), "pids.current"),
                 "limit": _number(paths.get("pids"), "pids.max")},
    }


def v2(directory):
    """From the container's cgroup v2 directory."""
    cpu = _flat_keyed(directory, "cpu.stat")
    return {
        "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000, "user": cpu.get("user_usec", 0) * 1000,
                          "kernel": cpu.get("system_usec", 0) * 1000},
                "throttling": {"periods": cpu.get("nr_periods", 0), "throttledPeriods": cpu.get("nr_throttled", 0),
                               "throttledTime": cpu.get("throttled_usec", 0) * 1000}},
        "memory": {"usage": {"usage": _number(directory, "memory.current"), "max": _number(directory, "memory.peak"),
                             "limit": _number(directory, "memory.max")},
                   "raw": _flat_keyed(directory, "memory.stat")},
        "pids": {"current": _number(directory, "pids.current"), "limit": _number(directory, "pids.max")},
    }
