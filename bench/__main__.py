"""bench/run: the start-up benchmark. See README.md for what it measures and how."""

import argparse
import json
import os
import shlex
import sys
import time

from bench import bundle, report, runner, variants as variants_mod

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "bench", "README.md")

MEASUREMENT = {
    "wall_ms": "CLOCK_MONOTONIC around fork/exec/wait4 in the C launcher (bench/launcher.c); "
               "for in-process triggers, around the trigger call",
    "max_rss_kib": "ru_maxrss of wait4() on the runtime process: its peak RSS or that of a "
                   "descendant it waited for, whichever is larger (what time(1) reports)",
    "own_rss_kib": "VmHWM of the runtime process alone, read at its ptrace exit stop, in "
                   "extra runs every own_rss_every-th round (timed runs are never traced)",
    "tree_max_rss_kib": "ru_maxrss of the launcher's RUSAGE_CHILDREN (child subreaper): the "
                        "largest single process of the runtime's whole tree",
    "tree_peak_kib": "rise of memory.max_usage_in_bytes of a cgroup v1 memory cgroup holding "
                     "the runtime and (nested) the container: the tree's peak charged memory, "
                     "processes summed",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("-n", "--runs", type=int, default=500, help="measured runs per variant (default 500)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured warm-up rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="CI mode: 20 runs, 2 warm-up rounds")
    parser.add_argument("--out", default=os.path.join(REPO, "build", "bench"),
                        help="directory for results.json, results.md, results.png (default build/bench)")
    parser.add_argument("--variants", help="comma-separated subset of variants (default: all)")
    parser.add_argument("--own-rss-every", type=int, default=5, metavar="K",
                        help="every K-th round, one extra ptrace'd run per variant measures the "
                             "runtime's own RSS (default 5; 0: never)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the results table into bench/README.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 20, 2
    if args.runs < 1 or args.warmup < 0 or args.own_rss_every < 0:
        parser.error("--runs must be >= 1, --warmup and --own-rss-every >= 0")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (the runtimes create namespaces and cgroups)")
    try:
        return benchmark(args, argv)
    except (RuntimeError, OSError) as exc:  # no gcc, no busybox, unwritable --out, ...
        sys.exit(f"bench: {exc}")


def benchmark(args, argv):
    command = " ".join([os.environ.get("BENCH_COMMAND", "python -m bench")] + [shlex.quote(a) for a in argv])
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    clock = time.monotonic()
    os.makedirs(args.out, exist_ok=True)
    with runner.Session(os.path.join(REPO, "build", "bench"),
                        seccomp_profile=os.path.join(REPO, bundle.SECCOMP_PROFILE)) as session:
        found = variants_mod.discover(REPO, session.roots, session.bundle, session.pool_bundle,
                                      session.seccomp_bundle, session.seccomp_unavailable)
        if args.variants:
            wanted = args.variants.split(",")
            unknown = sorted(set(wanted) - {v.name for v in found})
            if unknown:
                sys.exit(f"bench: unknown variant(s) {', '.join(unknown)}; "
                         f"known: {', '.join(v.name for v in found)}")
            found = [v for v in found if v.name in wanted]
        for variant in found:
            state = f"not available: {variant.unavailable}" if variant.unavailable else variant.version
            print(f"bench: {variant.name}: {state}")
        results = runner.run(session, found, args.runs, args.warmup, args.own_rss_every)
        with open(os.path.join(session.bundle, "config.json")) as f:
            config = json.load(f)
    settings = {"n": args.runs, "warmup": args.warmup, "quick": args.quick, "command": command,
                "own_rss_every": args.own_rss_every, "config": config}
    doc = report.document(results, settings, report.host_info(), started, time.monotonic() - clock,
                          MEASUREMENT)
    paths = {kind: os.path.join(args.out, f"results.{kind}") for kind in ("json", "md", "png")}
    with open(paths["json"], "w") as f:
        json.dump(doc, f, indent=1)
    table = report.markdown(doc)
    with open(paths["md"], "w") as f:
        f.write(table)
    report.plot(doc, paths["png"])
    if args.update_readme:
        report.update_readme(README, table, command)
    print(table)
    print(f"bench: wrote {', '.join(paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
