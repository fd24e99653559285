"""Confidence intervals for rates."""

from __future__ import annotations

import math
from statistics import NormalDist


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile for a confidence level in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for a binomial rate.

    ``successes`` may be fractional (per-probe averages of several samples); the interval
    then treats each probe as one trial, which is what the metrics average over.
    """
    if trials <= 0:
        raise ValueError(f"a rate needs at least one trial, got {trials}")
    if not 0.0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, trials], got {successes} of {trials}")
    z = z_value(confidence)
    rate = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (rate + z * z / (2.0 * trials)) / denominator
    half_width = z * math.sqrt(rate * (1.0 - rate) / trials + z * z / (4.0 * trials * trials))
    half_width /= denominator
    # Clamp away rounding so that the interval always contains the point estimate.
    return max(0.0, min(rate, centre - half_width)), min(1.0, max(rate, centre + half_width))
