"""Confidence intervals for rates and for paired differences between two models."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
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


def exact(value: float) -> Fraction:
    """The exact number a float stands for: 0.1 is 1/10 and 40/3 the float nearest it
    (the nearest fraction with a denominator up to 10**9), so that 0.40 - 0.30 equals 0.10."""
    return Fraction(value).limit_denominator(10**9)


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0.

    The continued fraction of Numerical Recipes (6.4), evaluated by Lentz's method on the
    side of the mean where it converges fast; accurate to about 1e-14.
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"the beta function needs positive parameters, got {a}, {b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(x, a, b) / a
    return 1.0 - front * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300

    def guard(value: float) -> float:
        return value if abs(value) > tiny else tiny

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    result = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 / guard(1.0 + numerator * d)
            c = guard(1.0 + numerator / c)
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``x`` with I_x(a, b) = q: Newton's method, falling back on bisection when a step
    leaves the bracket, so it always converges."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"a quantile needs a probability between 0 and 1, got {q}")
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    low, high, x = 0.0, 1.0, a / (a + b)
    for _ in range(200):
        error = regularized_beta(x, a, b) - q
        if error < 0:
            low = x
        else:
            high = x
        if abs(error) < 1e-15 or high - low < 1e-15:
            break
        density = math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - log_beta)
        step = x - error / density if density > 0 else math.nan
        x = step if low < step < high else (low + high) / 2
    return x


def binomial_cdf(successes: int, trials: int, rate: float) -> float:
    """P(X <= successes) for X ~ Binomial(trials, rate), by the incomplete beta function."""
    if successes < 0:
        return 0.0
    if successes >= trials:
        return 1.0
    return regularized_beta(1.0 - rate, trials - successes, successes + 1)


def clopper_pearson_interval(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial rate: each end's one-sided error is
    at most ``(1 - confidence) / 2`` at every true rate. Gates decide ``min`` and ``max`` on
    it; reports show Wilson, which is narrower but can err more often near 0 and 1.

    ``successes`` may be fractional (per-probe averages), through the beta form of the ends.
    """
    if trials <= 0:
        raise ValueError(f"a rate needs at least one trial, got {trials}")
    if not 0.0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, trials], got {successes} of {trials}")
    z_value(confidence)  # checks the level
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else beta_quantile(tail, successes, trials - successes + 1)
    high = (
        1.0 if successes == trials else beta_quantile(1 - tail, successes + 1, trials - successes)
    )
    rate = successes / trials
    return min(low, rate), max(high, rate)


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


def drop_rates(base_rate: float, max_drop: float, *, lower_is_better: bool) -> tuple[float, float]:
    """The rates (first, second) of a true drop of twice ``max_drop`` from ``base_rate``,
    "first" being the side whose excess is the drop: (base, candidate) where higher is
    better, (candidate, base) for the empty, truncated and missing rates."""
    if lower_is_better:
        if not 0.0 < max_drop < (1.0 - base_rate) / 2:
            raise ValueError(
                f"max_drop must be above 0 and below half of 1 minus the base rate "
                f"({(1.0 - base_rate) / 2:g}) for a rate where lower is better, got {max_drop}"
            )
        return base_rate + 2 * max_drop, base_rate
    if not 0.0 < max_drop < base_rate / 2:
        raise ValueError(
            f"max_drop must be above 0 and below half the base rate ({base_rate / 2:g}), "
            f"got {max_drop}"
        )
    return base_rate, base_rate - 2 * max_drop


def probes_for_drop(
    base_rate: float,
    max_drop: float,
    *,
    lower_is_better: bool = False,
    confidence: float = 0.95,
    power: float = 0.8,
) -> int:
    """Probes a ``max_drop`` gate needs to catch a true drop of twice ``max_drop``, by the
    normal approximation (`rtc_assert.decide.plan` checks it by simulation).

    Under the ``confident`` policy the gate fails when the lower end of the drop's interval
    exceeds ``max_drop``. With the candidate's rate worse than ``base_rate`` by twice
    ``max_drop`` (lower for higher-is-better rates, higher for the others) and the two
    models' outcomes on a probe taken as independent (the conservative case: pairing only
    narrows the interval), the normal approximation gives the probe count for ``power``.
    """
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power}")
    first, second = drop_rates(base_rate, max_drop, lower_is_better=lower_is_better)
    spread = math.sqrt(first * (1 - first) + second * (1 - second))
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
    Binomial(first_only + second_only, 1/2); the p-value is the chance of at least as many:
    an exact sum in integers up to `MCNEMAR_EXACT_SUM` discordant pairs, the incomplete beta
    function above (accurate to about 1e-14, and as cheap at any count).
    """
    if first_only < 0 or second_only < 0:
        raise ValueError(f"discordant counts must be non-negative, got {first_only}, {second_only}")
    discordant = first_only + second_only
    if discordant > MCNEMAR_EXACT_SUM and first_only > 0:
        return regularized_beta(0.5, first_only, second_only + 1)
    tail = sum(math.comb(discordant, k) for k in range(first_only, discordant + 1))
    return tail / 2**discordant


MCNEMAR_EXACT_SUM = 200
"""Discordant pairs up to which `mcnemar_exact_p` sums the binomial tail in integers."""


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
