"""Summary statistics of samples (no numpy: the driver's numbers must be easy to audit)."""

import math


def percentile(values, q):
    """The q-th percentile (0..100) with linear interpolation between the closest ranks
    (numpy's default), of a non-empty list."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values):
    """median, p90, mean, min, max and sample standard deviation of a non-empty list."""
    n = len(values)
    mean = sum(values) / n
    stdev = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"median": percentile(values, 50), "p90": percentile(values, 90), "mean": mean,
            "min": min(values), "max": max(values), "stdev": stdev}


def ratio(value, reference):
    return value / reference if reference else None
