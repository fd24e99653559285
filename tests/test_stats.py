"""Wilson, Newcombe and bootstrap intervals, McNemar, sequential looks: known values,
properties, simulations."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtc_assert import wilson_interval
from rtc_assert.decide.stats import (
    look_confidences,
    mcnemar_exact_p,
    newcombe_paired_difference,
    paired_bootstrap_difference,
    probes_for_drop,
    z_value,
)


def test_known_values():
    # Reference values from the closed form (Wilson 1927; Newcombe 1998, table I).
    low, high = wilson_interval(81, 263, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    low, high = wilson_interval(0, 10, 0.95)
    assert low == 0.0 and round(high, 4) == 0.2775
    low, high = wilson_interval(10, 10, 0.95)
    assert round(low, 4) == 0.7225 and high == 1.0


def test_z_value():
    assert math.isclose(z_value(0.95), 1.959964, rel_tol=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        z_value(1.0)


def test_rejects_impossible_counts():
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes must lie"):
        wilson_interval(5, 4)


@st.composite
def counts(draw):
    trials = draw(st.integers(min_value=1, max_value=5000))
    successes = draw(st.integers(min_value=0, max_value=trials))
    return successes, trials


@given(counts(), st.floats(min_value=0.5, max_value=0.999))
def test_interval_contains_the_rate_and_stays_in_unit_range(count, confidence):
    successes, trials = count
    low, high = wilson_interval(successes, trials, confidence)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


@given(counts(), st.floats(min_value=0.5, max_value=0.98))
def test_higher_confidence_widens_the_interval(count, confidence):
    narrow = wilson_interval(*count, confidence)
    wide = wilson_interval(*count, confidence + 0.01)
    assert wide[0] <= narrow[0] + 1e-12 and wide[1] >= narrow[1] - 1e-12


@given(counts())
def test_symmetric_under_swapping_successes_and_failures(count):
    successes, trials = count
    low, high = wilson_interval(successes, trials)
    mirror_low, mirror_high = wilson_interval(trials - successes, trials)
    assert math.isclose(low, 1 - mirror_high, abs_tol=1e-9)
    assert math.isclose(high, 1 - mirror_low, abs_tol=1e-9)


@given(st.integers(min_value=0, max_value=50), st.integers(min_value=1, max_value=20))
def test_more_data_at_the_same_rate_narrows_the_interval(successes_per_unit, factor):
    trials = 50
    small = wilson_interval(successes_per_unit, trials)
    large = wilson_interval(successes_per_unit * (factor + 1), trials * (factor + 1))
    assert large[1] - large[0] <= small[1] - small[0] + 1e-12


@pytest.mark.parametrize(("rate", "trials"), [(0.5, 40), (0.9, 100), (0.97, 200)])
def test_coverage_is_near_the_nominal_level(rate, trials):
    """Seeded simulation: the 95% interval covers the true rate in about 95% of runs."""
    rng = random.Random(20261126)
    runs = 2000
    covered = 0
    for _ in range(runs):
        successes = sum(rng.random() < rate for _ in range(trials))
        low, high = wilson_interval(successes, trials, 0.95)
        covered += low <= rate <= high
    assert 0.92 <= covered / runs <= 0.985


def test_paired_bootstrap_of_identical_sides_is_zero():
    ones = ([1.0, 0.0, 1.0, 1.0], [1.0] * 4)
    assert paired_bootstrap_difference(ones, ones) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_undefined_and_bad_input():
    defined = ([1.0, 0.0], [1.0, 1.0])
    assert paired_bootstrap_difference(defined, ([0.0, 0.0], [0.0, 0.0])) is None
    with pytest.raises(ValueError, match="same, non-zero number of probes"):
        paired_bootstrap_difference(defined, ([1.0], [1.0]))


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=5, max_size=60),
    st.integers(min_value=0, max_value=10),
)
def test_paired_bootstrap_interval_holds_the_point_and_is_seeded(pairs, seed):
    base = ([float(b) for b, _ in pairs], [1.0] * len(pairs))
    candidate = ([float(c) for _, c in pairs], [1.0] * len(pairs))
    result = paired_bootstrap_difference(base, candidate, samples=300, seed=seed)
    point, low, high = result
    assert -1.0 <= low <= point <= high <= 1.0
    assert point == pytest.approx(sum(candidate[0]) / len(pairs) - sum(base[0]) / len(pairs))
    assert paired_bootstrap_difference(base, candidate, samples=300, seed=seed) == result


def test_paired_interval_is_narrower_than_ignoring_the_pairing():
    """Strongly correlated pairs: the paired interval is tighter than the sum of the parts."""
    rng = random.Random(3)
    base_outcomes = [float(rng.random() < 0.7) for _ in range(200)]
    candidate_outcomes = [b if rng.random() < 0.95 else 1.0 - b for b in base_outcomes]
    _, low, high = paired_bootstrap_difference(
        (base_outcomes, [1.0] * 200), (candidate_outcomes, [1.0] * 200)
    )
    base_low, base_high = wilson_interval(sum(base_outcomes), 200)
    candidate_low, candidate_high = wilson_interval(sum(candidate_outcomes), 200)
    unpaired_width = (base_high - base_low) / 2 + (candidate_high - candidate_low) / 2
    assert high - low < unpaired_width


def test_probes_for_drop_known_value_and_errors():
    # sigma^2 = 0.95*0.05 + 0.85*0.15 = 0.175; ((1.96 + 0.8416) * 0.4183 / 0.05)^2 = 549.3
    assert probes_for_drop(0.95, 0.05) == 550
    assert probes_for_drop(0.95, 0.05, power=0.9) > 550
    with pytest.raises(ValueError, match="below half the base rate"):
        probes_for_drop(0.2, 0.15)


@pytest.mark.slow
def test_planned_size_catches_twice_the_margin_with_the_planned_power():
    """Seeded simulation through the real gate: at the planned size, a true drop of twice the
    max_drop fails the confident gate in at least the planned share of runs."""
    from rtc_assert.decide.gates import evaluate_gate
    from rtc_assert.decide.spec import DecisionConfig, GateSpec
    from tests.test_gates import make_run

    base_rate, margin, power = 0.9, 0.1, 0.8
    size = probes_for_drop(base_rate, margin, power=power)
    rng = random.Random(5)
    gate = GateSpec(probe_set="s", metric="valid_rate", kind="max_drop", threshold=margin)
    runs, caught = 120, 0
    for trial in range(runs):
        base = make_run(["valid" if rng.random() < base_rate else "empty" for _ in range(size)])
        candidate = make_run(
            ["valid" if rng.random() < base_rate - 2 * margin else "empty" for _ in range(size)]
        )
        decision = DecisionConfig(bootstrap_samples=300, seed=trial)
        caught += not evaluate_gate(gate, candidate, base, decision).passed
    assert caught / runs >= power - 0.08  # Monte Carlo error of 120 runs is about 0.04


def test_newcombe_paired_interval_matches_the_published_example():
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables", ch. 8:
    # the paired table (59, 6 / 16, 80) gives -0.0621 (95% CI -0.1186 to -0.0046).
    difference, low, high = newcombe_paired_difference(59, 6, 16, 80)
    assert (round(difference, 4), round(low, 4), round(high, 4)) == (-0.0621, -0.1186, -0.0046)


paired_tables = st.tuples(*[st.integers(0, 60)] * 4).filter(lambda t: sum(t) > 0)


@given(paired_tables, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_newcombe_interval_holds_the_difference_and_mirrors_under_swapping(table, confidence):
    both, first, second, neither = table
    difference, low, high = newcombe_paired_difference(both, first, second, neither, confidence)
    assert -1.0 <= low <= difference <= high <= 1.0
    mirrored = newcombe_paired_difference(both, second, first, neither, confidence)
    assert mirrored == pytest.approx((-difference, -high, -low))


@given(paired_tables)
def test_newcombe_interval_widens_with_confidence(table):
    _, low_90, high_90 = newcombe_paired_difference(*table, confidence=0.9)
    _, low_99, high_99 = newcombe_paired_difference(*table, confidence=0.99)
    assert low_99 <= low_90 + 1e-12 and high_90 <= high_99 + 1e-12


@pytest.mark.parametrize(("p_first", "p_second", "agreement"), [(0.9, 0.9, 0.8), (0.7, 0.6, 0.5)])
def test_newcombe_coverage_is_near_the_nominal_level(p_first, p_second, agreement):
    """Seeded simulation of correlated pairs: the 95% interval covers the true difference."""
    rng = random.Random(3)
    runs, covered = 600, 0
    for _ in range(runs):
        cells = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
        for _ in range(80):
            first = rng.random() < p_first
            # With probability `agreement` the second outcome copies the first, else draws anew.
            second = first if rng.random() < agreement else rng.random() < p_second
            cells[first, second] += 1
        true_difference = (1 - agreement) * (p_first - p_second)
        _, low, high = newcombe_paired_difference(*cells.values())
        covered += low <= true_difference <= high
    assert 0.92 <= covered / runs <= 0.995


def test_mcnemar_exact_p_known_values_and_errors():
    assert mcnemar_exact_p(5, 0) == 1 / 32
    assert mcnemar_exact_p(0, 5) == 1.0
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(8, 2) == pytest.approx(56 / 1024)  # C(10,8)+C(10,9)+C(10,10)
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact_p(-1, 3)


@given(st.integers(1, 200), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_look_confidences_spend_at_most_alpha(looks, confidence):
    levels = look_confidences(looks, confidence)
    assert len(levels) == looks
    assert sum(1 - level for level in levels) == pytest.approx(1 - confidence)
    assert all(confidence <= level < 1 for level in levels[:-1])
