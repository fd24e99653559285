"""Run metrics: status rates, pass@1, Rpass@1, per-probe averaging and intervals."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtc_assert import MetricsError, RunMetrics, ScoredTrace, classify, compute_metrics
from rtc_assert.metrics import METRICS, RATE_METRICS

COMPLETIONS = {
    "valid": "<think>work</think>4",
    "empty": "<think>\n</think>4",
    "truncated": "<think>work",
    "missing": "4",
}


def outcome(probe: str, status: str, correct: bool, sample: int = 0, **tokens) -> ScoredTrace:
    trace = classify(
        COMPLETIONS[status], finish_reason="length" if status == "truncated" else "stop"
    )
    assert trace.status.value == status
    return ScoredTrace(probe_id=probe, sample=sample, trace=trace, correct=correct, **tokens)


def test_single_sample_rates():
    outcomes = [
        outcome("a", "valid", True),
        outcome("b", "valid", False),
        outcome("c", "empty", True),
        outcome("d", "missing", True),
        outcome("e", "truncated", False),
    ]
    metrics = compute_metrics(outcomes)
    assert (metrics.probes, metrics.generations) == (5, 5)
    assert metrics.valid_rate.value == pytest.approx(0.4)
    assert metrics.empty_rate.value == pytest.approx(0.2)
    assert metrics.truncated_rate.value == pytest.approx(0.2)
    assert metrics.missing_rate.value == pytest.approx(0.2)
    assert metrics.answer_accuracy.value == pytest.approx(0.6)
    assert metrics.reasoning_conditioned_accuracy.value == pytest.approx(0.5)
    assert metrics.reasoning_conditioned_accuracy.trials == pytest.approx(2)
    assert metrics.answer_rate.value == pytest.approx(0.8)  # the truncated one has no answer
    assert metrics.mean_reasoning_chars == pytest.approx(4.0)
    assert metrics.mean_reasoning_tokens is None


def test_rpass_is_none_not_zero_when_nothing_is_valid():
    metrics = compute_metrics([outcome("a", "empty", True), outcome("b", "missing", True)])
    assert metrics.valid_rate.value == 0.0
    assert metrics.reasoning_conditioned_accuracy is None
    assert metrics.mean_reasoning_chars is None
    assert metrics.answer_accuracy.value == 1.0


def test_samples_are_averaged_per_probe_first():
    # Probe a: 4 samples, 1 valid. Probe b: 1 sample, valid. Per probe: 0.25 and 1.0.
    outcomes = [outcome("a", "valid", True, 0)] + [
        outcome("a", "missing", False, i) for i in (1, 2, 3)
    ]
    outcomes.append(outcome("b", "valid", True))
    metrics = compute_metrics(outcomes)
    assert metrics.valid_rate.value == pytest.approx((0.25 + 1.0) / 2)
    assert metrics.valid_rate.trials == 2
    assert metrics.answer_accuracy.value == pytest.approx((0.25 + 1.0) / 2)
    assert metrics.reasoning_conditioned_accuracy.value == pytest.approx(1.0)
    assert metrics.generations == 5


def test_token_means_use_what_the_backend_counted():
    metrics = compute_metrics(
        [
            outcome("a", "valid", True, reasoning_tokens=10, answer_tokens=2),
            outcome("b", "missing", True, answer_tokens=4),
            outcome("c", "valid", True, reasoning_tokens=20, answer_tokens=None),
        ]
    )
    assert metrics.mean_reasoning_tokens == pytest.approx(15)
    assert metrics.mean_answer_tokens == pytest.approx(3)


def test_errors_are_loud():
    with pytest.raises(MetricsError, match="the run is empty"):
        compute_metrics([])
    with pytest.raises(MetricsError, match="probe 'a' sample 0 is given twice"):
        compute_metrics([outcome("a", "valid", True), outcome("a", "empty", True)])


def test_metric_lookup_and_json_round_trip():
    metrics = compute_metrics([outcome("a", "valid", True), outcome("b", "empty", False)])
    assert metrics.metric("valid_rate") is metrics.valid_rate
    with pytest.raises(KeyError, match="unknown metric 'pass_at_1'"):
        metrics.metric("pass_at_1")
    data = json.loads(metrics.model_dump_json())
    assert set(RATE_METRICS) == set(data["rates"])  # record_version 2: one table of rates
    assert RunMetrics.model_validate(data) == metrics


STATUSES = st.sampled_from(list(COMPLETIONS))


@st.composite
def runs(draw):
    probes = draw(st.integers(min_value=1, max_value=12))
    outcomes = []
    for probe in range(probes):
        for sample in range(draw(st.integers(min_value=1, max_value=4))):
            outcomes.append(outcome(f"p{probe}", draw(STATUSES), draw(st.booleans()), sample))
    return outcomes


@given(runs(), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_rates_are_consistent(outcomes, confidence):
    metrics = compute_metrics(outcomes, confidence)
    parts = [metrics.valid_rate, metrics.empty_rate, metrics.truncated_rate, metrics.missing_rate]
    assert math.isclose(sum(rate.value for rate in parts), 1.0, abs_tol=1e-9)
    for name in RATE_METRICS:
        rate = metrics.metric(name)
        if rate is not None:
            assert 0.0 <= rate.low <= rate.value <= rate.high <= 1.0
    rpass = metrics.reasoning_conditioned_accuracy
    assert (rpass is None) == (metrics.valid_rate.value == 0)
    # Correct-and-valid can never exceed correct: Rpass@1 * VR <= pass@1.
    if rpass is not None:
        assert rpass.value * metrics.valid_rate.value <= metrics.answer_accuracy.value + 1e-9


@given(runs())
def test_order_of_outcomes_does_not_matter(outcomes):
    assert compute_metrics(outcomes) == compute_metrics(list(reversed(outcomes)))


def test_the_metrics_table_the_names_and_the_run_metrics_agree():
    assert tuple(METRICS) == RATE_METRICS
    assert all(name == metric.name for name, metric in METRICS.items())
    run = compute_metrics([outcome("a", "valid", True)])
    assert list(run.rates) == list(RATE_METRICS)
    assert all(run.metric(name) is run.rates[name] for name in METRICS)
