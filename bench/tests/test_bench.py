"""The benchmark end to end in --quick mode: real runs of every variant on this host, its
JSON validated against bench/schema.json and checked for consistency, plot and table."""

import glob
import json
import os
import subprocess

import jsonschema
import pytest

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "bench", "run")
VARIANTS = ["python-floor", "runc", "crun", "slr-start", "slr", "slr-isolated", "slr-compact-start",
            "slr-compact", "slr-fast-cli", "slr-fast-compact-cli", "slr-fast-socket", "slr-fast-compact-c",
            "runc-seccomp", "crun-seccomp", "slr-seccomp", "slr-seccomp-cold", "slr-compact-seccomp"]
# Each seccomp variant and the variant running the same runtime without the profile.
SECCOMP = {"runc-seccomp": "runc", "crun-seccomp": "crun", "slr-seccomp": "slr", "slr-seccomp-cold": "slr",
           "slr-compact-seccomp": "slr-compact"}
PROFILE = os.path.join(REPO, "meta-slruntime", "recipes-core", "slruntime-rootfs-config", "files",
                       "seccomp-default.json")
SAMPLE_FIELDS = ["wall_ms", "max_rss_kib", "own_rss_kib", "tree_max_rss_kib", "tree_peak_kib"]


def leftovers():
    return set(glob.glob("/run/slrbench-*") + glob.glob("/sys/fs/cgroup/*/slrbench-*"))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    before = leftovers()
    done = subprocess.run([RUN, "--quick", "--out", str(out)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout
    with open(out / "results.json") as f:
        doc = json.load(f)
    return {"out": out, "doc": doc, "stdout": done.stdout, "new_leftovers": leftovers() - before}


def test_json_matches_the_schema(quick):
    with open(os.path.join(REPO, "bench", "schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator(schema).validate(quick["doc"])


def test_every_variant_is_reported_in_order(quick):
    doc = quick["doc"]
    assert [v["name"] for v in doc["variants"]] == VARIANTS
    assert doc["n"] == 20 and doc["quick"] is True
    assert doc["command"] == f"bench/run --quick --out {quick['out']}"


def test_each_variant_has_n_positive_samples_or_an_error(quick):
    doc = quick["doc"]
    for v in doc["variants"]:
        if v["status"] != "ok":
            assert v["error"], v["name"]
            continue
        assert v["error"] is None
        assert v["runs"] == doc["n"] == len(v["samples"]["wall_ms"]), v["name"]
        assert all(x > 0 for x in v["samples"]["wall_ms"]), v["name"]
        if v["command"] == "in-process trigger":
            continue
        for field in ("max_rss_kib", "tree_max_rss_kib", "tree_peak_kib"):
            assert len(v["samples"][field]) == doc["n"], (v["name"], field)
        assert all(x > 0 for x in v["samples"]["max_rss_kib"]), v["name"]
        # traced runs: rounds 0, k, 2k, ... of n
        traced = len(range(0, doc["n"], doc["own_rss_every"]))
        assert len(v["samples"]["own_rss_kib"]) == traced, v["name"]
        assert all(x > 0 for x in v["samples"]["own_rss_kib"]), v["name"]
        # the tree's largest process is at least the runtime process itself
        assert v["summary"]["tree_max_rss_kib"]["median"] >= v["summary"]["max_rss_kib"]["median"]


def test_reference_runtimes_ran(quick):
    # runc and crun are declared in tools/deps/bench.apt: on this host both must work.
    status = {v["name"]: (v["status"], v["error"]) for v in quick["doc"]["variants"]}
    assert status["runc"] == ("ok", None)
    assert status["crun"] == ("ok", None)
    assert status["python-floor"] == ("ok", None)


def test_seccomp_variants_run_where_their_runtime_does(quick):
    # the cold variant's before_run also fails it when a run stored no compiled program
    variants = {v["name"]: v for v in quick["doc"]["variants"]}
    for name, plain in SECCOMP.items():
        v = variants[name]
        if variants[plain]["status"] == "ok":
            assert (v["status"], v["error"]) == ("ok", None), name
        assert os.path.relpath(PROFILE, REPO) in (v["config_change"] or v["error"]), name
        assert set(v["ratios"]) == {"runc", "crun", "python-floor", "runc-seccomp", "crun-seccomp"}, name
    for name in set(VARIANTS) - set(SECCOMP):
        assert set(variants[name]["ratios"]) == {"runc", "crun", "python-floor"}, name


def test_the_seccomp_bundle_holds_the_layers_profile(tmp_path):
    from bench import bundle

    with open(PROFILE) as f:
        profile = json.load(f)
    bundle.build(str(tmp_path / "plain"), "/cg")
    bundle.build(str(tmp_path / "seccomp"), "/cg", rootfs=str(tmp_path / "plain" / "rootfs"), seccomp=profile)
    with open(tmp_path / "plain" / "config.json") as f:
        plain = json.load(f)
    with open(tmp_path / "seccomp" / "config.json") as f:
        seccomp = json.load(f)
    assert seccomp["linux"].pop("seccomp") == profile
    assert "seccomp" not in plain["linux"]
    assert seccomp["root"]["path"] == str(tmp_path / "plain" / "rootfs")
    seccomp["root"]["path"] = plain["root"]["path"]
    assert seccomp == plain
    assert bundle.SECCOMP_PROFILE == os.path.relpath(PROFILE, REPO)


def test_ratios_are_the_ratios_of_the_medians(quick):
    variants = {v["name"]: v for v in quick["doc"]["variants"]}
    for v in variants.values():
        for ref, ratios in v["ratios"].items():
            if v["status"] != "ok" or variants[ref]["status"] != "ok":
                assert ratios is None
                continue
            mine, theirs = v["summary"], variants[ref]["summary"]
            assert ratios["wall_median"] == pytest.approx(mine["wall_ms"]["median"] / theirs["wall_ms"]["median"])
            if mine["max_rss_kib"] and theirs["max_rss_kib"]:
                assert ratios["max_rss_median"] == pytest.approx(
                    mine["max_rss_kib"]["median"] / theirs["max_rss_kib"]["median"])
    for ref in ("runc", "crun", "python-floor", "runc-seccomp", "crun-seccomp"):
        assert variants[ref]["ratios"][ref]["wall_median"] == pytest.approx(1.0)
    for target in quick["doc"]["targets"]:
        ratios = variants[target["variant"]]["ratios"][target["reference"]]
        value = ratios[target["ratio"]] if ratios else None
        assert target["value"] == value
        assert target["met"] == (None if value is None else value <= target["limit"])


def test_plot_is_a_png(quick):
    path = quick["out"] / "results.png"
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image
    height, width = matplotlib.image.imread(str(path)).shape[:2]
    assert width > 500 and height > 300


def markdown_tables(table):
    """The tables of results.md, each a list of its lines."""
    tables = [[]]
    for line in table.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    return [t for t in tables if t]


def test_markdown_table_has_a_row_per_variant(quick):
    table = (quick["out"] / "results.md").read_text()
    assert table in quick["stdout"]
    main = markdown_tables(table)[0]
    for v in quick["doc"]["variants"]:
        rows = [line for line in main if line.startswith(f"| {v['label']} |")]
        assert len(rows) == 1, v["label"]
        if v["status"] != "ok":
            assert v["status"] in rows[0] and v["error"] in table
        else:
            median = v["summary"]["wall_ms"]["median"]
            assert rows[0].split("|")[2].strip() == f"{median:.2f}"


def test_markdown_compares_seccomp_variants_with_runc_and_crun_running_seccomp(quick):
    main, like_for_like, targets = markdown_tables((quick["out"] / "results.md").read_text())
    assert like_for_like[0].split("|")[3:5] == [" x runc-seccomp ", " x crun-seccomp "]
    variants = {v["name"]: v for v in quick["doc"]["variants"]}
    assert len(like_for_like) == 2 + len(SECCOMP)
    for name in SECCOMP:
        v = variants[name]
        row = [line for line in like_for_like if line.startswith(f"| {v['label']} |")]
        assert len(row) == 1, name
        cells = [cell.strip() for cell in row[0].split("|")[2:-1]]
        for cell, ref in zip(cells[1:3], ("runc-seccomp", "crun-seccomp")):
            ratio = v["ratios"][ref]
            assert cell == (f"{ratio['wall_median']:.2f}" if ratio else "-"), (name, ref)


def test_nothing_left_behind(quick):
    assert quick["new_leftovers"] == set()


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "--runs must be >= 1"),
    (["--variants", "runc,nope"], "unknown variant(s) nope"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_input_is_a_one_line_error(tmp_path, args, message):
    before = leftovers()
    done = subprocess.run([RUN, "--out", str(tmp_path)] + args, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / "results.json")
    assert leftovers() == before


def test_cold_variant_empties_the_cache_and_notices_when_nothing_was_stored(tmp_path):
    from bench import variants

    cache = tmp_path / "@seccomp-cache"
    before_run = variants._empty_seccomp_cache(str(tmp_path))
    assert before_run() is None  # first run: nothing stored yet
    cache.mkdir()
    (cache / "key.bpf").write_bytes(b"\0" * 8)
    assert before_run() is None and not cache.exists()
    assert before_run() == f"the previous run stored no compiled program in {cache}"
