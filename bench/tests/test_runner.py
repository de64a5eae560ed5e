"""The driver's run loop with plain commands as variants: failures are reported with
their error and stop the variant, the others go on; traced runs only add own RSS."""

import time

import pytest

from bench import runner
from bench.variant import Variant

# A benchmark Session lives in /run and in a memory cgroup of its own: root.
needs_session = pytest.mark.root


@needs_session
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


@needs_session
def test_before_run_precedes_every_run_outside_the_measured_time(tmp_path):
    calls = []

    def slow_preparation():  # 300 ms before a /bin/true that takes a few ms
        calls.append(True)
        time.sleep(0.3)

    def refuses_on_third_call():
        calls_of_refusing.append(True)
        return "cache missing" if len(calls_of_refusing) == 3 else None
    calls_of_refusing = []
    variants = [Variant("prepared", "prepared", argv=["/bin/true"], before_run=slow_preparation),
                Variant("refusing", "refusing", argv=["/bin/true"], before_run=refuses_on_third_call)]
    with runner.Session(str(tmp_path / "build")) as session:
        results = runner.run(session, variants, n=3, warmup=1, own_rss_every=2, progress=lambda _: None)
    prepared, refusing = results

    assert prepared.status == "ok"
    assert len(calls) == 1 + 3 + 2  # warm-up, timed runs, traced runs (rounds 0 and 2)
    assert all(wall < 300 for wall in prepared.samples["wall_ms"])
    # call 1 warm-up, 2 timed run 1, 3 traced run 1: refused
    assert (refusing.status, refusing.error) == ("failed", "traced run 1: before the run: cache missing")
    assert len(refusing.samples["wall_ms"]) == 1


@needs_session
def test_seccomp_bundle_is_not_available_without_a_readable_profile(tmp_path):
    with runner.Session(str(tmp_path / "build"), seccomp_profile=str(tmp_path / "missing.json")) as session:
        assert session.seccomp_bundle is None
        assert session.seccomp_unavailable.startswith(f"cannot read the seccomp profile {tmp_path}/missing.json:")
    (tmp_path / "bad.json").write_text("{")
    with runner.Session(str(tmp_path / "build"), seccomp_profile=str(tmp_path / "bad.json")) as session:
        assert session.seccomp_bundle is None and "bad.json" in session.seccomp_unavailable


def test_round_orders_balance_positions_and_predecessors():
    from collections import Counter

    for count in range(1, 18):
        rounds = count if count % 2 == 0 else 2 * count
        positions, successions = Counter(), Counter()
        for round_no in range(rounds):
            order = runner.round_order(count, round_no)
            assert sorted(order) == list(range(count))
            positions.update(enumerate(order))
            successions.update(zip(order, order[1:]))
        assert set(positions.values()) == {rounds // count}, count
        # every ordered pair of different variants, each as often
        assert len(successions) == count * (count - 1), count
        assert len(set(successions.values())) <= 1, count
    assert runner.round_order(5, -3) == runner.round_order(5, 7)  # warm-up rounds continue the cycle
