"""Runs the variants N times each, interleaved, and collects their samples.

Every round runs each variant once, in an order from a Williams design (see round_order),
so machine noise, cache effects and the background work a variant leaves behind hit all
variants alike: each variant runs at each position, and right after each other variant,
equally often. A variant whose run fails (non-zero exit, launcher error) is marked failed
with the error and left out of the following rounds; its samples so far are kept.
"""

import json
import os
import shutil
import subprocess
import time

from bench import bundle as bundle_mod
from bench import launcher

MEMCG_ROOT = "/sys/fs/cgroup/memory"
CGROUP_ROOT = "/sys/fs/cgroup"
RUN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

# Sample fields: the launcher's (launcher.c) under the report's names.
FIELDS = (("wall_ms", None), ("max_rss_kib", "waited_maxrss_kib"), ("own_rss_kib", "own_hwm_kib"),
          ("tree_max_rss_kib", "tree_maxrss_kib"), ("tree_peak_kib", "memcg_peak_kib"))


class Session:
    """The scratch state of one benchmark: bundle, state roots, the memory cgroup."""

    def __init__(self, build_dir, seccomp_profile=None):
        self.name = f"slrbench-{os.getpid()}"
        self.dir = os.path.join("/run", self.name)
        self.bundle = os.path.join(self.dir, "bundle")
        # Pools hold several containers at once, which cannot share one cgroupsPath.
        self.pool_bundle = os.path.join(self.dir, "pool-bundle")
        # The same bundle with the profile at `seccomp_profile` as linux.seccomp (or None,
        # seccomp_unavailable saying why).
        self.seccomp_profile = seccomp_profile
        self.seccomp_bundle = os.path.join(self.dir, "seccomp-bundle")
        self.seccomp_unavailable = None
        self.roots = os.path.join(self.dir, "state")
        self.output = os.path.join(self.dir, "output")
        self.cgroups_path = f"/{self.name}/container"
        self.memcg = os.path.join(MEMCG_ROOT, self.name)
        self.launcher = launcher.build(build_dir)

    def __enter__(self):
        os.makedirs(self.roots)
        bundle_mod.build(self.bundle, self.cgroups_path)
        bundle_mod.build(self.pool_bundle, None, rootfs=os.path.join(self.bundle, "rootfs"))
        self._build_seccomp_bundle()
        if os.path.isdir(MEMCG_ROOT):
            os.mkdir(self.memcg)
        else:
            self.memcg = None  # no cgroup v1 memory controller: tree_peak_kib is null
        return self

    def _build_seccomp_bundle(self):
        if not self.seccomp_profile:
            self.seccomp_bundle, self.seccomp_unavailable = None, "no seccomp profile given"
            return
        try:
            with open(self.seccomp_profile) as f:
                profile = json.load(f)
        except (OSError, ValueError) as exc:
            self.seccomp_bundle = None
            self.seccomp_unavailable = f"cannot read the seccomp profile {self.seccomp_profile}: {exc}"
            return
        bundle_mod.build(self.seccomp_bundle, self.cgroups_path, rootfs=os.path.join(self.bundle, "rootfs"),
                         seccomp=profile)

    def __exit__(self, *exc):
        # The cgroups the runtimes made for the container sit under <controller>/<name>.
        for controller in sorted(os.listdir(CGROUP_ROOT)):
            top = os.path.join(CGROUP_ROOT, controller, self.name)
            for parent, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
                try:
                    os.rmdir(parent)
                except OSError:
                    pass  # still busy (e.g. a pool left running): reported below
            if os.path.exists(top):
                print(f"bench: warning: cgroup {top} still in use, left in place")
        shutil.rmtree(self.dir, ignore_errors=True)


class Result:
    """What a variant produced: samples per field, and an error once it failed."""

    def __init__(self, variant):
        self.variant = variant
        self.samples = {field: [] for field, _ in FIELDS}
        self.error = variant.unavailable
        self.status = "not available" if variant.unavailable else "ok"
        self.descendants_left = 0

    def fail(self, message):
        self.status, self.error = "failed", message


def _output_tail(path, lines=3):
    try:
        with open(path, errors="replace") as f:
            text = f.read().strip()
    except OSError:
        return ""
    return " | ".join(text.splitlines()[-lines:])


def _run_once(session, result, container_id, trace):
    """One run of one variant; returns the sample, or an error message."""
    variant = result.variant
    if variant.before_run:  # untimed: the clock starts in the launcher or below
        error = variant.before_run()
        if error:
            return None, f"before the run: {error}"
    if variant.trigger:
        start = time.perf_counter_ns()
        try:
            status = variant.trigger(container_id)
        except Exception as exc:  # the pool client's failure is this variant's result
            return None, f"{type(exc).__name__}: {exc}"
        wall_ns = time.perf_counter_ns() - start
        if status != 0:
            return None, f"exit status {status}"
        # The trigger runs inside this process: no process tree of its own to measure.
        return dict({field: None for field, _ in FIELDS}, wall_ms=wall_ns / 1e6), None
    output = session.output
    try:
        measured = launcher.measure(session.launcher, variant.command(container_id), output, RUN_ENV,
                                    memcg=session.memcg, hide_cgroup2=variant.hide_cgroup2, trace=trace)
    except RuntimeError as exc:
        return None, f"launcher: {exc}"
    if measured["exit_status"] != 0:
        tail = _output_tail(output)
        return None, f"exit status {measured['exit_status']}" + (f": {tail}" if tail else "")
    if measured["descendants_running"]:
        result.descendants_left += 1
    sample = {"wall_ms": measured["wall_ns"] / 1e6}
    for field, key in FIELDS[1:]:
        sample[field] = measured[key]
    return sample, None


def _clean_up_after_failure(variant, container_id):
    command = variant.delete_command(container_id)
    if command:
        subprocess.run(command, capture_output=True, env=RUN_ENV, timeout=60)


def _setup(results):
    for result in results:
        setup = result.variant.setup
        if result.status != "ok" or not setup:
            continue
        try:
            done = subprocess.run(setup, capture_output=True, text=True, env=RUN_ENV, timeout=120)
        except subprocess.TimeoutExpired:
            result.fail(f"setup {' '.join(setup)}: no answer in 120 s")
            continue
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            result.fail(f"setup {' '.join(setup)}: exit status {done.returncode}: {last}")


def _teardown(results):
    for result in results:
        if result.variant.teardown and result.status != "not available":
            try:
                subprocess.run(result.variant.teardown, capture_output=True, env=RUN_ENV, timeout=120)
            except subprocess.TimeoutExpired:
                print(f"bench: warning: {' '.join(result.variant.teardown)} did not finish in 120 s")


def _run_variant(session, result, round_no, warmup, traced):
    """The variant's run(s) of one round: the timed one, then a traced one when asked."""
    for trace in ([False, True] if traced and not result.variant.trigger else [False]):
        container_id = f"{session.name}-{result.variant.name}-{round_no + warmup}" + ("-traced" if trace else "")
        sample, error = _run_once(session, result, container_id, trace)
        if error:
            what = (f"warm-up run {round_no + warmup + 1}" if round_no < 0
                    else f"{'traced ' if trace else ''}run {round_no + 1}")
            result.fail(f"{what}: {error}")
            _clean_up_after_failure(result.variant, container_id)
            return
        if round_no < 0:
            continue  # warm-up
        if trace:
            result.samples["own_rss_kib"].append(sample["own_rss_kib"])
            continue
        for field, value in sample.items():
            if field != "own_rss_kib":  # timed runs are not traced
                result.samples[field].append(value)


def round_order(count, round_no):
    """The order (indices 0..count-1) of round `round_no`'s runs: the rows of a Williams
    design, a Latin square balanced for carry-over effects, used in turn. Over `count`
    rounds (2 * count when count is odd) each variant runs at each position equally often
    and follows each other variant exactly once (twice when count is odd).

    Why: a run leaves work behind that costs its successor, e.g. a pool manager deletes
    the used container and creates its replacement after its client has exited, which made
    the variant after a fast start variant ~5 ms slower. Rotating one fixed order
    (round r starting at variant r) keeps every variant's predecessor the same, so such a
    cost always fell on the same variant."""
    first, low, high = [0], 1, count - 1  # 0, 1, count-1, 2, count-2, ...
    while len(first) < count:
        if len(first) % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    rows = count if count % 2 == 0 else 2 * count  # odd: the square and its mirror image
    row = round_no % rows
    order = [(i + row) % count for i in first]
    return order[::-1] if row >= count else order


def run(session, variants, n, warmup, own_rss_every, progress=print):
    """Runs warm-up rounds then n measured rounds; returns one Result per variant.

    The timed runs are never traced; every own_rss_every-th round (0: never) each variant
    runs once more under ptrace, for its own RSS only.
    """
    results = [Result(variant) for variant in variants]
    try:
        _setup(results)
        for round_no in range(-warmup, n):
            active = [r for r in results if r.status == "ok"]
            if not active:
                break
            traced = round_no >= 0 and own_rss_every and round_no % own_rss_every == 0
            for result in [active[i] for i in round_order(len(active), round_no)]:
                _run_variant(session, result, round_no, warmup, traced)
                if result.status != "ok":
                    progress(f"bench: {result.variant.name} failed: {result.error}")
            if round_no >= 0 and (round_no + 1) % max(1, n // 10) == 0:
                progress(f"bench: {round_no + 1}/{n} rounds")
    finally:
        _teardown(results)
    return results
