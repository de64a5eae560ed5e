"""The driver's statistics against numpy's (matplotlib brings numpy)."""

import random

import numpy
import pytest

from bench import stats


@pytest.mark.parametrize("size", [1, 2, 5, 20, 501])
def test_summary_matches_numpy(size):
    values = [random.Random(i).uniform(1, 50) for i in range(size)]
    got = stats.summary(values)
    assert got["median"] == pytest.approx(numpy.median(values))
    assert got["p90"] == pytest.approx(numpy.percentile(values, 90))
    assert got["mean"] == pytest.approx(numpy.mean(values))
    assert got["stdev"] == pytest.approx(numpy.std(values, ddof=1) if size > 1 else 0.0)
    assert (got["min"], got["max"]) == (min(values), max(values))


def test_percentile_known_answers():
    assert stats.percentile([4, 1, 3, 2], 50) == 2.5
    assert stats.percentile(list(range(1, 11)), 90) == pytest.approx(9.1)
    assert stats.ratio(3.0, 2.0) == 1.5 and stats.ratio(3.0, 0) is None
