"""The driver's run loop with plain commands as variants: failures are reported with
their error and stop the variant, the others go on; traced runs only add own RSS."""

from bench import runner
from bench.variant import Variant


def test_failures_are_reported_not_dropped(tmp_path):
    counter = tmp_path / "calls"
    # succeeds on its first 3 calls, then fails with a message
    flaky = ["sh", "-c", f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}; '
                         f'[ "$n" -lt 3 ] || {{ echo boom >&2; exit 4; }}']
    variants = [Variant("false", "false", argv=["/bin/false"]),
                Variant("true", "true", argv=["/bin/true"]),
                Variant("flaky", "flaky", argv=flaky),
                Variant("absent", "absent", unavailable="not installed")]
    with runner.Session(str(tmp_path / "build")) as session:
        results = runner.run(session, variants, n=4, warmup=1, own_rss_every=2, progress=lambda _: None)
    by_name = {r.variant.name: r for r in results}

    assert by_name["false"].status == "failed"
    assert by_name["false"].error == "warm-up run 1: exit status 1"
    assert by_name["false"].samples["wall_ms"] == []

    ok = by_name["true"]
    assert ok.status == "ok" and ok.error is None
    assert len(ok.samples["wall_ms"]) == len(ok.samples["max_rss_kib"]) == 4
    assert len(ok.samples["own_rss_kib"]) == 2  # rounds 0 and 2
    assert all(v > 0 for v in ok.samples["wall_ms"] + ok.samples["max_rss_kib"] + ok.samples["own_rss_kib"])

    # call 1 warm-up, 2 timed run 1, 3 traced run 1, 4 timed run 2: fails
    flaky_result = by_name["flaky"]
    assert flaky_result.status == "failed"
    assert flaky_result.error == "run 2: exit status 4: boom"
    assert len(flaky_result.samples["wall_ms"]) == 1

    assert (by_name["absent"].status, by_name["absent"].error) == ("not available", "not installed")
