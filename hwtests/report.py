"""Benchmark results: statistics, the JSON file, the plot and the table.

    python3 -m hwtests.report results/<target>/benchmark.json   # prints the table
"""
import json
import os
import sys


def percentile(values, fraction):
    """Nearest-rank percentile (no interpolation: every value was measured)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def summarise(samples):
    """samples: [(wall seconds, memory.peak bytes)] of successful runs."""
    walls = [w * 1000 for w, _ in samples]
    peaks = [p / 1024 for _, p in samples]
    return {
        "runs": len(samples),
        "wall_ms_median": round(percentile(walls, 0.5), 2),
        "wall_ms_p90": round(percentile(walls, 0.9), 2),
        "peak_kib_median": round(percentile(peaks, 0.5)),
        "peak_kib_max": round(max(peaks)),
        "wall_ms": [round(w, 2) for w in walls],
    }


def write(results_dir, data):
    """results_dir/benchmark.json and results_dir/startup.png; returns their paths."""
    json_path = os.path.join(results_dir, "benchmark.json")
    with open(json_path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    png_path = os.path.join(results_dir, "startup.png")
    plot(data, png_path)
    return json_path, png_path


def plot(data, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = list(data["runtimes"])
    fig, (wall_axes, mem_axes) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    wall_axes.boxplot([data["runtimes"][n]["wall_ms"] for n in names], tick_labels=names,
                      whis=(10, 90), showfliers=True)
    wall_axes.set_ylabel("wall time per run (ms)")
    wall_axes.set_title("run of /bin/true (whiskers: p10-p90)")
    mem_axes.bar(names, [data["runtimes"][n]["peak_kib_median"] / 1024 for n in names],
                 color="tab:orange")
    mem_axes.set_ylabel("cgroup memory.peak, median (MiB)")
    mem_axes.set_title("memory of the runtime process")
    for axes in (wall_axes, mem_axes):
        axes.tick_params(axis="x", labelrotation=20)
    fig.suptitle(f"{data['target']} ({data['accel']}): {data['runs']} sequential runs each\n"
                 + "; ".join(headline(data)))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def headline(data):
    """Footprint and boot times, as short phrases (those measured)."""
    parts = []
    footprint = data.get("footprint") or {}
    if footprint.get("image_bytes"):
        parts.append(f"{footprint['image']} {footprint['image_bytes'] / 2**20:.2f} MiB")
    if footprint.get("installed_bytes"):
        parts.append(f"installed {footprint['installed_bytes'] / 2**20:.2f} MiB"
                     f" in {footprint['files']} files")
    if data.get("boot_seconds"):
        parts.append(f"boot to shell {data['boot_seconds']:.1f} s")
    if data.get("first_output_seconds"):
        parts.append(f"first container output {data['first_output_seconds']:.1f} s")
    return parts


def table(data):
    lines = [f"{data['target']} ({data['accel']}), {data['runs']} runs each"]
    lines += [f"  {part}" for part in headline(data)]
    lines.append(f"{'runtime':<24}{'median ms':>11}{'p90 ms':>10}{'peak KiB':>10}")
    for name, r in data["runtimes"].items():
        lines.append(f"{name:<24}{r['wall_ms_median']:>11.1f}{r['wall_ms_p90']:>10.1f}"
                     f"{r['peak_kib_median']:>10}")
    for name, reason in data.get("not_measured", {}).items():
        lines.append(f"{name:<24}not measured: {reason}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 -m hwtests.report results/<target>/benchmark.json")
    with open(sys.argv[1]) as f:
        print(table(json.load(f)))
