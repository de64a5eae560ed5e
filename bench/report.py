"""The benchmark's outputs: the JSON document (schema.json), a markdown table, a PNG plot."""

import os
import platform
import re

from bench import stats
from bench.runner import FIELDS

SCHEMA_ID = "slruntime-bench/1"
REFERENCES = ("runc", "crun", "python-floor")
README_BEGIN = "<!-- bench:results:begin -->"
README_END = "<!-- bench:results:end -->"

# The targets: (variant, reference, ratio field, limit, what).
TARGETS = (
    ("slr", "runc", "wall_median", 0.7, "`slr run` wall time <= 0.7x runc"),
    ("slr", "runc", "max_rss_median", 1.0, "`slr run` max RSS <= runc"),
    ("slr-isolated", "runc", "wall_median", 0.7, "`python3 -I -S` slr run wall time <= 0.7x runc"),
    ("slr-isolated", "runc", "max_rss_median", 1.0, "`python3 -I -S` slr run max RSS <= runc"),
    ("slr-fast-socket", "crun", "wall_median", 0.5, "fast start via socket <= 0.5x crun"),
    ("slr-fast-cli", "crun", "wall_median", 1.0, "fast start via CLI <= 1.0x crun"),
    ("slr-fast-compact-cli", "crun", "wall_median", 1.0, "fast start via the compact binary's CLI <= 1.0x crun"),
    ("slr-fast-compact-c", "crun", "wall_median", 0.5,
     "fast start via the compact binary's C client <= 0.5x crun (issue 14; also max RSS <= 1 MiB)"),
    ("slr-fast-socket", "crun", "wall_median", 0.25, "fast start via socket <= 0.25x crun (issue 14)"),
    ("slr-compact", "runc", "wall_median", 0.8, "compact `slr run` wall time <= 0.8x runc (issue 14)"),
    ("slr-compact", "runc", "max_rss_median", 0.8, "compact `slr run` max RSS <= 0.8x runc (issue 14)"),
    ("slr-compact-start", "python-floor", "wall_median", 1.2,
     "compact binary start (`--version`) <= 1.2x `python3 -I -S -c pass`"),
)


def _read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def host_info():
    cpu = re.search(r"^model name\s*:\s*(.*)$", _read("/proc/cpuinfo"), re.M)
    release = re.search(r'^PRETTY_NAME="?([^"\n]*)', _read("/etc/os-release"), re.M)
    memory = re.search(r"^MemTotal:\s*(\d+)", _read("/proc/meminfo"), re.M)
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        cgroups = "v2 (unified)"
    elif os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        cgroups = "hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
    else:
        cgroups = "v1"
    return {"hostname": platform.node(), "kernel": platform.release(), "machine": platform.machine(),
            "cpu": cpu.group(1) if cpu else "unknown", "cpus": os.cpu_count(),
            "memory_kib": int(memory.group(1)) if memory else None,
            "os": release.group(1) if release else "unknown", "cgroups": cgroups,
            "driver_python": platform.python_version(),
            "loadavg_end": _read("/proc/loadavg").split()[:3]}


def _variant_entry(result):
    variant = result.variant
    summaries = {}
    for field, _ in FIELDS:
        values = result.samples[field]
        summaries[field] = stats.summary(values) if values and None not in values else None
    return {
        "name": variant.name, "label": variant.label, "status": result.status, "error": result.error,
        "version": variant.version,
        "command": variant.argv if variant.argv else ("in-process trigger" if variant.trigger else None),
        "private_mount_namespace_without_cgroup2": variant.hide_cgroup2,
        "config_change": variant.config_change,
        "runs": len(result.samples["wall_ms"]),
        "descendants_left_running": result.descendants_left,
        "summary": summaries, "ratios": {}, "samples": result.samples,
    }


def _ratios(entry, reference):
    if entry["status"] != "ok" or reference is None or reference["status"] != "ok":
        return None
    mine, theirs = entry["summary"], reference["summary"]
    out = {"wall_median": stats.ratio(mine["wall_ms"]["median"], theirs["wall_ms"]["median"])}
    if mine["max_rss_kib"] and theirs["max_rss_kib"]:
        out["max_rss_median"] = stats.ratio(mine["max_rss_kib"]["median"], theirs["max_rss_kib"]["median"])
    else:
        out["max_rss_median"] = None
    return out


def document(results, settings, host, started, duration_s, measurement):
    variants = [_variant_entry(result) for result in results]
    by_name = {entry["name"]: entry for entry in variants}
    for result, entry in zip(results, variants):
        refs = REFERENCES + result.variant.references
        entry["ratios"] = {ref: _ratios(entry, by_name.get(ref)) for ref in refs}
    targets = []
    for name, ref, field, limit, what in TARGETS:
        ratios = by_name[name]["ratios"].get(ref) if name in by_name else None
        value = ratios[field] if ratios else None
        targets.append({"variant": name, "reference": ref, "ratio": field, "limit": limit,
                        "value": value, "met": None if value is None else value <= limit, "what": what})
    return dict({"schema": SCHEMA_ID, "created": started, "duration_s": round(duration_s, 1),
                 "host": host, "measurement": measurement, "variants": variants, "targets": targets},
                **settings)


def _fmt(value, scale=1.0, digits=2):
    return "-" if value is None else f"{value / scale:.{digits}f}"


def markdown(doc):
    lines = [
        f"N = {doc['n']} runs per variant (interleaved, after {doc['warmup']} warm-up rounds), "
        f"{doc['host']['cpu']} x{doc['host']['cpus']}, Linux {doc['host']['kernel']}, {doc['created']}, "
        f"load average {' / '.join(doc['host']['loadavg_end'])} at the end.",
        "",
        "| variant | median ms | p90 ms | mean ms | x runc | x crun | x floor "
        "| max RSS MiB | own RSS MiB | tree peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for entry in doc["variants"]:
        if entry["status"] != "ok":
            lines.append(f"| {entry['label']} | {entry['status']} |  |  |  |  |  |  |  |  |")
            notes.append(f"- {entry['label']}: {entry['status']}: {entry['error']}")
            continue
        s = entry["summary"]
        wall = s["wall_ms"]
        cells = [_fmt(wall["median"]), _fmt(wall["p90"]), _fmt(wall["mean"])]
        for ref in REFERENCES:
            ratio = entry["ratios"][ref]
            cells.append(_fmt(ratio["wall_median"] if ratio else None))
        for field in ("max_rss_kib", "own_rss_kib", "tree_peak_kib"):
            cells.append(_fmt(s[field]["median"] if s[field] else None, 1024, 1))
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + " |")
    lines += _like_for_like(doc)
    lines += ["", "| target | ratio | met |", "|---|---:|---|"]
    for target in doc["targets"]:
        met = {True: "yes", False: "no", None: "not measured"}[target["met"]]
        lines.append(f"| {target['what']} | {_fmt(target['value'])} | {met} |")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _like_for_like(doc):
    """The ratios of variants that also have references of their own (runc and crun
    running the same changed config, e.g. with seccomp): a table after the main one."""
    compared = [e for e in doc["variants"] if any(ref not in REFERENCES for ref in e["ratios"])]
    if not compared:
        return []
    refs = list(dict.fromkeys(ref for e in compared for ref in e["ratios"] if ref not in REFERENCES))
    labels = {e["name"]: e["label"] for e in doc["variants"]}
    lines = ["", "Against " + " and ".join(f"`{labels.get(ref, ref)}`" for ref in refs)
             + " (same config.json): ratios of the medians, wall time and max RSS:", "",
             "| variant | median ms | " + " | ".join(f"x {ref}" for ref in refs) + " | "
             + " | ".join(f"max RSS x {ref}" for ref in refs) + " |",
             "|---|" + "---:|" * (1 + 2 * len(refs))]
    for entry in compared:
        median = entry["summary"]["wall_ms"]["median"] if entry["status"] == "ok" else None
        ratios = [entry["ratios"].get(ref) or {} for ref in refs]
        cells = ([_fmt(median)] + [_fmt(r.get("wall_median")) for r in ratios]
                 + [_fmt(r.get("max_rss_median")) for r in ratios])
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + " |")
    return lines


def plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    done = [entry for entry in doc["variants"] if entry["status"] == "ok"]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    labels = [entry["label"] for entry in done]
    if done:
        left.boxplot([entry["samples"]["wall_ms"] for entry in done], vert=False, showfliers=False)
        left.set_yticks(range(1, len(done) + 1), labels)
    left.set_xlabel("wall time per run, ms (box: quartiles, whiskers: 1.5 IQR)")
    left.set_title(f"/bin/true in a busybox bundle, N = {doc['n']}")
    fields = (("max_rss_kib", "max RSS (time(1))"), ("own_rss_kib", "own RSS"), ("tree_peak_kib", "tree peak"))
    width = 0.8 / len(fields)
    for i, (field, name) in enumerate(fields):
        values = [(entry["summary"][field] or {}).get("median", 0) / 1024 for entry in done]
        right.barh([y + i * width for y in range(len(done))], values, height=width, label=name)
    right.set_yticks([y + width for y in range(len(done))], labels)
    right.set_xlabel("MiB (median)")
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8)
    left.invert_yaxis()  # the table's order, top to bottom
    right.invert_yaxis()
    skipped = [f"{e['label']}: {e['status']}" for e in doc["variants"] if e["status"] != "ok"]
    if skipped:
        figure.text(0.01, 0.01, "not shown: " + "; ".join(skipped), fontsize=8)
    figure.tight_layout(rect=(0, 0.04 if skipped else 0, 1, 1))
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)


def update_readme(readme, table, command):
    """Replaces the results block of the README (between the markers) with table."""
    with open(readme) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise RuntimeError(f"{readme}: results markers not found")
    block = f"{README_BEGIN}\nMeasured with `{command}`:\n\n{table}{README_END}"
    with open(readme, "w") as f:
        f.write(text[:begin] + block + text[end + len(README_END):])
