"""The benchmark end to end in --quick mode: real runs of every variant on this host, its
JSON validated against bench/schema.json and checked for consistency, plot and table."""

import glob
import json
import os
import subprocess

import jsonschema
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "bench", "run")
VARIANTS = ["python-floor", "runc", "crun", "slr-start", "slr", "slr-isolated", "slr-compact-start",
            "slr-compact", "slr-fast-cli", "slr-fast-compact-cli", "slr-fast-socket"]
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
    for ref in ("runc", "crun", "python-floor"):
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


def test_markdown_table_has_a_row_per_variant(quick):
    table = (quick["out"] / "results.md").read_text()
    assert table in quick["stdout"]
    for v in quick["doc"]["variants"]:
        rows = [line for line in table.splitlines() if line.startswith(f"| {v['label']} |")]
        assert len(rows) == 1, v["label"]
        if v["status"] != "ok":
            assert v["status"] in rows[0] and v["error"] in table
        else:
            median = v["summary"]["wall_ms"]["median"]
            assert rows[0].split("|")[2].strip() == f"{median:.2f}"


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
