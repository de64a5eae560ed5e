"""Container start-up in the guest: N sequential `run` of /bin/true with the image's
slr (the compact frozen binary; plain, and from a pool of pre-created containers) and
with runc and crun, in the same guest.  runc and crun are not in the product image:
they come from the benchmark overlay (HWTESTS_OVERLAYS=bench, hwtests/overlays.py),
or from the image itself when it has them (a Yocto image with meta-virtualization).
Wall time from ash's $EPOCHREALTIME around each run; memory from cgroup v2
memory.peak of a fresh cgroup the runtime is started in (the container itself goes
to its own cgroup).  busybox time is not used: its maxrss is 4x too high.  Timings
are recorded, never asserted: TCG is 10-30x slower than hardware and noisy.

The results also carry the image's footprint (from the CI image's manifest.json, or
the size of a Yocto root image) and the boot times SlrStrategy measured.

HWTESTS_BENCH_RUNS sets N (default 20 for CI; 200 for a full run).
"""
import json
import os
import re

from . import report

RUNS = int(os.environ.get("HWTESTS_BENCH_RUNS", "20"))
POOL = "hwbench"


class Runtime:
    """How one runtime starts the bench container.  `run` is a shell command with
    {program} (the runtime's executable), {bundle} and $i (the run's number);
    setup/teardown run once around the measured runs.  Left out when neither the
    image nor an overlay has `program`."""

    def __init__(self, name, program, run, setup=None, teardown=None, ready="true"):
        self.name, self.program, self.run = name, program, run
        self.setup, self.teardown = setup, teardown
        self.ready = ready  # before each sample, outside its time


RUNTIMES = [
    Runtime("baseline (exec true)", None, "true"),
    Runtime("slr (frozen)", "slr", "{program} run -b {bundle} hwb-$i"),
    # fast start: a pool of containers created ahead, each run takes a ready one
    # (trigger to exit: each sample waits, untimed, until the pool has refilled)
    Runtime("slr pool (fast start)", "slr", f"{{program}} pool run {POOL} -- true",
            setup=f"slr pool create --bundle {{bundle}} --size 2 {POOL}",
            teardown=f"slr pool delete {POOL}",
            ready=f"until slr list | grep -q '^{POOL}-.* created '; do sleep 0.05; done"),
    Runtime("runc", "runc", "{program} run -b {bundle} hwb-$i"),
    Runtime("crun", "crun", "{program} run -b {bundle} hwb-$i"),
]
BENCH_CGROUP = "/sys/fs/cgroup/hwbench"


def measure(guest, run, runs, ready="true", setup=":"):
    """[(wall seconds, memory.peak bytes, exit code)] of `runs` sequential
    runs of the shell command `run`, each started in a fresh cgroup once the
    shell command `ready` returned; `setup` runs in the measured shell before
    it execs `run` (e.g. an overlay's library path)."""
    out = guest.run(
        f"i=0; while [ $i -lt {runs} ]; do"
        f" {ready};"
        f" cg={BENCH_CGROUP}/r$i; mkdir $cg;"
        f" t0=$EPOCHREALTIME;"
        f" sh -c 'echo $$ > '$cg'/cgroup.procs; i='$i'; {setup}; exec {run} >/dev/null 2>&1';"
        f" rc=$?; t1=$EPOCHREALTIME;"
        f" echo R $t0 $t1 $(cat $cg/memory.peak) $rc; rmdir $cg; i=$((i+1)); done",
        timeout=60 + runs * 30)
    samples = []
    for line in out:
        if line.startswith("R "):
            _, t0, t1, peak, rc = line.split()
            samples.append((float(t1) - float(t0), int(peak), int(rc)))
    assert len(samples) == runs, out[-5:]
    return samples


def locate(guest, overlays, program):
    """(path, shell setup) of program: from the benchmark overlay when it is
    attached, else the image's own; None when neither has it."""
    bench = overlays.get("bench")
    path = bench.program(guest, program) if bench else None
    if path:
        return path, f"export LD_LIBRARY_PATH={bench.library_path}"
    code, out = guest.status(f"command -v {program}")
    return (out[-1], ":") if code == 0 else None


def footprint(guest):
    """Sizes of the booted root image: the CI image's manifest (squashfs and
    installed bytes, number of files), else the size of the image file."""
    rootfs = os.environ.get("LG_ROOTFS")
    if not rootfs:
        return {}
    manifest = os.path.join(os.path.dirname(rootfs), "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            listing = json.load(f)["contents"]["rootfs.squashfs"]
        return {"image": os.path.basename(rootfs), "image_bytes": listing["squashfs_bytes"],
                "installed_bytes": listing["installed_bytes"], "files": listing["files"]}
    return {"image": os.path.basename(rootfs), "image_bytes": os.path.getsize(rootfs)}


def test_startup_benchmark(guest, overlays, strategy, target_name, results_dir,
                           record_property):
    guest.run(f"mkdir -p {BENCH_CGROUP} && echo +memory > {BENCH_CGROUP}/cgroup.subtree_control")
    accel = os.environ.get("LG_QEMU_ACCEL", "hardware")
    data = {"target": target_name, "accel": accel, "runs": RUNS,
            "boot_seconds": strategy.boot_seconds,
            "first_output_seconds": strategy.first_output_seconds,
            "footprint": footprint(guest), "runtimes": {}, "not_measured": {}}
    for runtime in RUNTIMES:
        program, setup = "", ":"
        if runtime.program:
            found = locate(guest, overlays, runtime.program)
            if found is None:
                hint = "" if "bench" in overlays else (
                    " (attach the benchmark overlay: HWTESTS_OVERLAYS=bench)")
                data["not_measured"][runtime.name] = "not in the image" + hint
                continue
            program, setup = found
        # One bundle and container cgroup per runtime: none inherits another's
        # cgroup (a pool makes its cgroupsPath the parent of its members).
        slug = re.sub(r"[^a-z0-9]+", "-", runtime.name).strip("-")
        bundle = guest.make_bundle(f"bench-{slug}", ["true"], lambda spec: spec["linux"].update(
            cgroupsPath=f"/hwbench-{slug}"))
        if runtime.setup:
            code, out = guest.status(runtime.setup.format(bundle=bundle) + " 2>&1")
            if code != 0:
                data["not_measured"][runtime.name] = "setup failed: " + " | ".join(out[-2:])
                continue
        try:
            run = runtime.run.format(program=program, bundle=bundle)
            warmup = measure(guest, run, 1, runtime.ready, setup)  # page cache, first-run costs
            if warmup[0][2] != 0:
                _code, out = guest.status(f"({setup}; i=why; {run}) 2>&1")
                data["not_measured"][runtime.name] = (
                    f"exit status {warmup[0][2]}: " + " | ".join(out[-2:]))
                continue
            samples = measure(guest, run, RUNS, runtime.ready, setup)
        finally:
            if runtime.teardown:
                guest.status(runtime.teardown)
        failed = [rc for _, _, rc in samples if rc != 0]
        assert not failed, f"{runtime.name}: {len(failed)} of {RUNS} runs failed"
        data["runtimes"][runtime.name] = report.summarise([(w, p) for w, p, _ in samples])
    json_path, png_path = report.write(results_dir, data)
    record_property("benchmark", json_path)
    print("\n" + report.table(data) + f"\nresults: {json_path}\nplot: {png_path}")
    broken = {n: r for n, r in data["not_measured"].items()
              if not r.startswith("not in the image")}
    assert not broken, f"runtimes that could not run /bin/true: {broken}"
