"""Exact decisions (issue #20): Clopper-Pearson bounds for min/max gates, the exact McNemar
test at every count for max_drop: 0, and point estimates compared as exact fractions."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.decide.stats import (
    beta_quantile,
    binomial_cdf,
    clopper_pearson_interval,
    exact,
    mcnemar_exact_p,
    regularized_beta,
)
from tests.test_gates import make_run


def brute_cdf(successes: int, trials: int, rate: float) -> float:
    """P(X <= successes), summed term by term in exact fractions."""
    p = Fraction(rate)
    return float(
        sum(math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(successes + 1))
    )


LEVELS = st.sampled_from([0.8, 0.9, 0.95, 0.99, 0.9983, 0.99998])


@given(st.integers(1, 80), st.data(), st.floats(0.001, 0.999))
def test_binomial_cdf_matches_the_brute_force_sum(trials, data, rate):
    successes = data.draw(st.integers(0, trials))
    assert binomial_cdf(successes, trials, rate) == pytest.approx(
        brute_cdf(successes, trials, rate), abs=1e-12
    )


@given(st.integers(1, 80), st.data(), LEVELS)
def test_clopper_pearson_ends_leave_exactly_the_tail_beyond_them(trials, data, confidence):
    successes = data.draw(st.integers(0, trials))
    low, high = clopper_pearson_interval(successes, trials, confidence)
    tail = (1 - confidence) / 2
    assert 0.0 <= low <= successes / trials <= high <= 1.0
    if successes < trials:  # P(X <= x) at the upper end is the tail
        assert brute_cdf(successes, trials, high) == pytest.approx(tail, rel=1e-8)
    if successes > 0:  # P(X >= x) at the lower end is the tail
        assert 1 - brute_cdf(successes - 1, trials, low) == pytest.approx(tail, rel=1e-8)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 60), st.floats(0.0005, 0.9995), st.sampled_from([0.9, 0.95, 0.9983]))
def test_one_sided_error_of_the_exact_bounds_is_at_most_the_tail_at_every_rate(
    trials, rate, confidence
):
    """Summed over every outcome, not simulated: the chance that the upper end falls below
    the true rate (a false failure of a floor at that rate) is at most (1 - confidence) / 2,
    and likewise the lower end above it."""
    pmf = [math.comb(trials, k) * rate**k * (1 - rate) ** (trials - k) for k in range(trials + 1)]
    bounds = [clopper_pearson_interval(k, trials, confidence) for k in range(trials + 1)]
    tail = (1 - confidence) / 2
    assert sum(p for p, (_, high) in zip(pmf, bounds, strict=True) if high < rate) <= tail + 1e-12
    assert sum(p for p, (low, _) in zip(pmf, bounds, strict=True) if low > rate) <= tail + 1e-12


def test_known_clopper_pearson_values_and_fractional_successes():
    # Clopper & Pearson (1934) ends, as statsmodels' method="beta" gives them.
    assert clopper_pearson_interval(0, 10) == pytest.approx((0.0, 0.3084971078187608))
    low, high = clopper_pearson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2527, 0.3676)
    low, high = clopper_pearson_interval(12.5, 20)  # per-probe averages of two samples
    assert 0.0 < low < 0.625 < high < 1.0
    assert beta_quantile(0.5, 2.0, 2.0) == pytest.approx(0.5)
    assert regularized_beta(0.3, 1.0, 1.0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="at least one trial"):
        clopper_pearson_interval(0, 0)


def test_mcnemar_above_the_integer_sum_matches_it():
    for worse, better in ((150, 100), (120, 81), (300, 10)):
        discordant = worse + better
        summed = sum(math.comb(discordant, k) for k in range(worse, discordant + 1))
        assert mcnemar_exact_p(worse, better) == pytest.approx(summed / 2**discordant, rel=1e-10)


def gate(metric: str, kind: str, threshold: float) -> GateSpec:
    return GateSpec(probe_set="s", metric=metric, kind=kind, threshold=threshold)


def test_a_zero_margin_with_many_discordant_probes_is_still_the_exact_test():
    base = make_run(["valid"] * 200 + ["empty"] * 40)
    candidate = make_run(["empty"] * 22 + ["valid"] * 178 + ["valid"] * 20 + ["empty"] * 20)
    result = evaluate_gate(gate("valid_rate", "max_drop", 0.0), candidate, base, DecisionConfig())
    assert "exact McNemar test: 22 of 42 discordant probes got worse" in result.reason
    assert result.drop.mcnemar_p == pytest.approx(mcnemar_exact_p(22, 20))


def test_point_estimates_compare_as_exact_fractions():
    """0.40 - 0.30 is 0.10000000000000003 in floats: a drop of exactly the margin is within
    it, and a rate of exactly the floor meets it."""
    assert 0.40 - 0.30 > 0.10 and exact(0.40) - exact(0.30) == exact(0.10)
    base = make_run(["valid"] * 4 + ["empty"] * 6)  # VR 0.4
    candidate = make_run(["valid"] * 3 + ["empty"] * 7)  # VR 0.3
    point = DecisionConfig(policy="point")
    assert evaluate_gate(gate("valid_rate", "max_drop", 0.1), candidate, base, point).passed
    three_in_ten = make_run(["truncated"] * 3 + ["valid"] * 7)
    assert evaluate_gate(gate("truncated_rate", "max", 0.3), three_in_ten, None, point).passed
    seven_in_ten = make_run(["valid"] * 7 + ["empty"] * 3)
    assert evaluate_gate(gate("valid_rate", "min", 0.7), seven_in_ten, None, point).passed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("metric", "kind", "threshold", "probes"),
    [
        ("valid_rate", "min", 0.99, 300),
        ("valid_rate", "min", 0.998, 1000),
        ("truncated_rate", "max", 0.002, 1000),
    ],
)
@pytest.mark.parametrize("policy", ["confident", "strict"])
def test_thresholds_near_0_and_1_keep_the_one_sided_error(metric, kind, threshold, probes, policy):
    """Seeded simulation through `evaluate_gate`, the true rate at the threshold: a false
    failure under confident, or (just beyond it) a false pass under strict, at most 2.5%
    (the one-sided share of 0.95) within Monte Carlo error."""
    rng = random.Random(f"{metric}{threshold}{policy}")
    event, other = ("valid", "empty") if metric == "valid_rate" else ("truncated", "valid")
    rate = threshold
    if policy == "strict":  # just beyond the threshold: the pass is false
        rate += 0.0005 if kind == "max" else -0.0005
    spec = gate(metric, kind, threshold)
    decision = DecisionConfig(policy=policy)
    trials, errors = 400, 0
    for _ in range(trials):
        run = make_run([event if rng.random() < rate else other for _ in range(probes)])
        passed = evaluate_gate(spec, run, None, decision).passed
        errors += passed if policy == "strict" else not passed
    assert errors / trials <= 0.025 + 0.016  # two standard errors of 400 runs at 2.5%
