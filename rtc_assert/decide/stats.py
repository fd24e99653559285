"""Confidence intervals for rates and for paired differences between two models."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


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


def paired_bootstrap_difference(
    base: tuple[Sequence[float], Sequence[float]],
    candidate: tuple[Sequence[float], Sequence[float]],
    *,
    confidence: float = 0.95,
    samples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float] | None:
    """Percentile interval of ``candidate - base`` for a ratio metric, resampling probes.

    Each side is (numerators, denominators), one entry per probe, in the same probe order
    on both sides: resampling whole probes keeps the pairing (same probe, both models) and
    handles several samples per probe and ratio metrics such as Rpass@1 alike.

    Returns (point difference, low, high), or None when a side's denominator sums to zero.
    """
    base_num, base_den = (np.asarray(values, dtype=float) for values in base)
    cand_num, cand_den = (np.asarray(values, dtype=float) for values in candidate)
    count = len(base_num)
    if count == 0 or not len(base_den) == len(cand_num) == len(cand_den) == count:
        raise ValueError("paired samples need the same, non-zero number of probes on both sides")
    if base_den.sum() == 0 or cand_den.sum() == 0:
        return None
    point = cand_num.sum() / cand_den.sum() - base_num.sum() / base_den.sum()
    picks = np.random.default_rng(seed).integers(0, count, size=(samples, count))
    with np.errstate(invalid="ignore", divide="ignore"):
        differences = cand_num[picks].sum(axis=1) / cand_den[picks].sum(axis=1) - base_num[
            picks
        ].sum(axis=1) / base_den[picks].sum(axis=1)
    # A resample with no valid trace on one side has no Rpass@1: it carries no information.
    differences = differences[np.isfinite(differences)]
    if len(differences) == 0:
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return float(point), min(float(low), float(point)), max(float(high), float(point))


def probes_for_drop(
    base_rate: float, max_drop: float, *, confidence: float = 0.95, power: float = 0.8
) -> int:
    """Probes a ``max_drop`` gate needs to catch a true drop of twice ``max_drop``.

    Under the ``confident`` policy the gate fails when the lower end of the drop's interval
    exceeds ``max_drop``. With the candidate's rate at ``base_rate - 2 * max_drop`` and the two
    models' outcomes on a probe taken as independent (the conservative case: pairing only
    narrows the interval), the normal approximation gives the probe count for ``power``.
    """
    if not 0.0 < max_drop < base_rate / 2:
        raise ValueError(
            f"max_drop must be above 0 and below half the base rate ({base_rate / 2:g}), "
            f"got {max_drop}"
        )
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power}")
    candidate_rate = base_rate - 2 * max_drop
    spread = math.sqrt(base_rate * (1 - base_rate) + candidate_rate * (1 - candidate_rate))
    z_power = NormalDist().inv_cdf(power)
    return math.ceil(((z_value(confidence) + z_power) * spread / max_drop) ** 2)


def newcombe_paired_difference(
    both: int, first_only: int, second_only: int, neither: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for ``p_first - p_second`` on pairs.

    The counts are the paired 2x2 table of two binary outcomes on the same units: both
    succeed, only the first, only the second, neither. Each proportion gets its Wilson
    interval; the two are combined with the correlation of the pairs (phi, with Newcombe's
    correction towards zero), so pairing narrows the interval when the outcomes agree.

    Returns (difference, low, high).
    """
    counts = (both, first_only, second_only, neither)
    if min(counts) < 0 or sum(counts) == 0:
        raise ValueError(f"a paired table needs non-negative counts and some pairs, got {counts}")
    n = sum(counts)
    first, second = both + first_only, both + second_only
    p1, p2 = first / n, second / n
    l1, u1 = wilson_interval(first, n, confidence)
    l2, u2 = wilson_interval(second, n, confidence)
    margins = first * (n - first) * second * (n - second)
    cross = both * neither - first_only * second_only
    corrected = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = corrected / math.sqrt(margins) if margins else 0.0
    difference = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = max(-1.0, difference - math.sqrt(max(below, 0.0)))
    high = min(1.0, difference + math.sqrt(max(above, 0.0)))
    return difference, min(low, difference), max(high, difference)


def mcnemar_exact_p(first_only: int, second_only: int) -> float:
    """One-sided exact McNemar p-value that the first outcome succeeds more often.

    Under no difference each discordant pair is a fair coin, so ``first_only`` is
    Binomial(first_only + second_only, 1/2); the p-value is the chance of at least as many.
    """
    if first_only < 0 or second_only < 0:
        raise ValueError(f"discordant counts must be non-negative, got {first_only}, {second_only}")
    discordant = first_only + second_only
    tail = sum(math.comb(discordant, k) for k in range(first_only, discordant + 1))
    return tail / 2**discordant


def look_confidences(looks: int, confidence: float, final_share: float = 0.9) -> list[float]:
    """Confidence of each look of a sequential test, so that all looks together keep the level.

    A Haybittle-Peto-style split of ``alpha = 1 - confidence`` with a union bound: the final
    look spends ``final_share`` of alpha (so a run that never stops early loses little power),
    the interim looks share the rest equally. The chance that any look errs is at most alpha,
    however the looks' outcomes depend on each other.
    """
    if looks < 1:
        raise ValueError(f"a sequential test needs at least one look, got {looks}")
    alpha = 1.0 - confidence
    if looks == 1:
        return [confidence]
    interim = 1.0 - alpha * (1.0 - final_share) / (looks - 1)
    return [interim] * (looks - 1) + [1.0 - alpha * final_share]
