"""Gate decisions on runs built from known outcomes (no model needed at this level)."""

from __future__ import annotations

import random

import pytest
from synthetic_runs import scored_run

from rtc_assert import Probe, ProbeSet, ScoredTrace, classify, compute_metrics
from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.generation.requests import GenerationSettings
from rtc_assert.runs import Run

TEXT = {
    "valid": "<think>work</think>4",
    "empty": "<think></think>4",
    "truncated": "<think>work",
    "missing": "4",
}
CONFIDENT = DecisionConfig()
POINT = DecisionConfig(policy="point")


def make_run(statuses: list[str], correct: list[bool] | None = None) -> Run:
    correct = correct or [True] * len(statuses)
    return scored_run(
        [
            ScoredTrace(probe_id=f"p{i}", sample=0, trace=classify(TEXT[s]), correct=c)
            for i, (s, c) in enumerate(zip(statuses, correct, strict=True))
        ]
    )


def gate(metric: str, kind: str, threshold: float) -> GateSpec:
    return GateSpec(probe_set="s", metric=metric, kind=kind, threshold=threshold)


def test_gate_id_reads_like_a_test_id():
    assert gate("valid_rate", "max_drop", 0.1).id == "s::valid_rate[max_drop]"


def test_min_gate_confident_versus_point():
    small = make_run(["valid"] * 16 + ["missing"] * 4)  # VR 0.80 on 20 probes
    large = make_run(["valid"] * 1600 + ["missing"] * 400)  # VR 0.80 on 2000 probes
    floor = gate("valid_rate", "min", 0.85)
    confident_small = evaluate_gate(floor, small, None, CONFIDENT)
    assert confident_small.passed, "0.80 on 20 probes is not evidence of being below 0.85"
    assert confident_small.reason == (
        "passed: the candidate's valid rate is 0.800 (exact 95% CI 0.563 to 0.943), below the floor "
        "of 0.85, but the 95% interval reaches the threshold, so the violation is not shown "
        "(policy confident)"
    )
    assert confident_small.evidence is None
    assert not evaluate_gate(floor, large, None, CONFIDENT).passed
    assert not evaluate_gate(floor, small, None, POINT).passed


def test_max_gate():
    run = make_run(["truncated"] * 60 + ["valid"] * 40)
    result = evaluate_gate(gate("truncated_rate", "max", 0.3), run, None, CONFIDENT)
    assert not result.passed
    assert result.reason.startswith(
        "failed: the candidate's truncated rate is 0.600 (exact 95% CI 0.497"
    )
    assert result.reason.endswith(
        "above the ceiling of 0.3; the whole 95% interval is beyond the threshold"
    )
    assert result.evidence == "violation"
    assert evaluate_gate(gate("truncated_rate", "max", 0.7), run, None, CONFIDENT).passed


def test_undefined_metric_fails_and_says_why():
    collapsed = make_run(["empty"] * 10)
    result = evaluate_gate(
        gate("reasoning_conditioned_accuracy", "min", 0.5), collapsed, None, CONFIDENT
    )
    assert not result.passed
    assert "no trace is valid" in result.reason
    relative = evaluate_gate(
        gate("reasoning_conditioned_accuracy", "max_drop", 0.1),
        collapsed,
        make_run(["valid"] * 10),
        CONFIDENT,
    )
    assert not relative.passed and "undefined for the candidate" in relative.reason


def test_max_drop_needs_a_base():
    result = evaluate_gate(
        gate("valid_rate", "max_drop", 0.1), make_run(["valid"]), None, CONFIDENT
    )
    assert not result.passed and "needs a base model" in result.reason


def test_collapse_fails_while_answer_accuracy_passes():
    base = make_run(["valid"] * 50)
    collapsed = make_run(["empty"] * 50)
    vr = evaluate_gate(gate("valid_rate", "max_drop", 0.1), collapsed, base, CONFIDENT)
    assert not vr.passed
    assert vr.drop.value == pytest.approx(1.0) and vr.drop.probes == 50
    accuracy = evaluate_gate(gate("answer_accuracy", "max_drop", 0.05), collapsed, base, CONFIDENT)
    assert accuracy.passed, "the answers are unchanged: an answer-only gate misses the collapse"


def test_drop_points_the_worse_way_for_rates_where_lower_is_better():
    base = make_run(["valid"] * 40)
    rambling = make_run(["truncated"] * 30 + ["valid"] * 10)
    result = evaluate_gate(gate("truncated_rate", "max_drop", 0.2), rambling, base, CONFIDENT)
    assert result.drop.value == pytest.approx(0.75)
    assert not result.passed


def test_identical_runs_pass_their_own_gate():
    run = make_run(["valid"] * 30 + ["missing"] * 10)
    for metric in (
        "valid_rate",
        "answer_accuracy",
        "reasoning_conditioned_accuracy",
        "missing_rate",
    ):
        result = evaluate_gate(gate(metric, "max_drop", 0.0), run, run, CONFIDENT)
        assert result.passed and result.drop.value == 0.0


def test_false_alarm_rate_of_identical_models_is_within_the_confidence():
    """Seeded simulation: two independent runs of one model (per-probe validity differs),
    gated with max_drop 0 at 95% confidence, raise a false alarm in at most 5% of runs."""
    rng = random.Random(7)
    decision = DecisionConfig(bootstrap_samples=400)
    trials, alarms = 150, 0
    for trial in range(trials):
        validity = [rng.betavariate(4, 1) for _ in range(80)]
        base = make_run(["valid" if rng.random() < p else "empty" for p in validity])
        candidate = make_run(["valid" if rng.random() < p else "empty" for p in validity])
        result = evaluate_gate(
            gate("valid_rate", "max_drop", 0.0),
            candidate,
            base,
            decision.model_copy(update={"seed": trial}),
        )
        alarms += not result.passed
    assert alarms / trials <= 0.05


STRICT = DecisionConfig(policy="strict")


def test_strict_fails_unless_the_interval_shows_the_threshold_is_met():
    small = make_run(["valid"] * 19 + ["missing"])  # VR 0.95 on 20 probes: interval ~[0.76, 0.99]
    large = make_run(["valid"] * 1900 + ["missing"] * 100)  # VR 0.95 on 2000 probes
    floor = gate("valid_rate", "min", 0.90)
    assert evaluate_gate(floor, small, None, CONFIDENT).passed
    strict_small = evaluate_gate(floor, small, None, STRICT)
    assert not strict_small.passed
    assert strict_small.reason.endswith(
        "at or above the floor of 0.9, but the 95% interval crosses the threshold, so compliance "
        "is not shown (policy strict)"
    )
    assert evaluate_gate(floor, large, None, STRICT).passed


def test_strict_max_drop_needs_evidence_of_no_regression():
    base = make_run(["valid"] * 30)
    same = make_run(["valid"] * 30)
    slightly_worse = make_run(["valid"] * 28 + ["empty"] * 2)
    limit = gate("valid_rate", "max_drop", 0.05)
    # 30 agreeing probes cannot rule out a drop of 0.1 (0.9**30 is 4%): no proof yet...
    unproven = evaluate_gate(limit, same, base, STRICT)
    assert not unproven.passed and unproven.drop.high > 0.05
    # ...while 200 can.
    assert evaluate_gate(limit, make_run(["valid"] * 200), make_run(["valid"] * 200), STRICT).passed
    result = evaluate_gate(limit, slightly_worse, base, STRICT)
    assert not result.passed, "a drop of 0.067 [0, 0.17] does not prove the drop is within 0.05"
    assert evaluate_gate(limit, slightly_worse, base, CONFIDENT).passed


def test_policies_order_from_lenient_to_strict():
    """Whatever the data, strict fails whenever point does, and point whenever confident does."""
    rng = random.Random(11)
    for _ in range(60):
        n = rng.randint(5, 60)
        run = make_run(["valid" if rng.random() < 0.85 else "empty" for _ in range(n)])
        floor = gate("valid_rate", "min", rng.choice([0.7, 0.8, 0.9]))
        verdicts = [evaluate_gate(floor, run, None, d).passed for d in (CONFIDENT, POINT, STRICT)]
        assert verdicts == sorted(verdicts, reverse=True)


def test_max_drop_states_the_rule_in_words():
    base = make_run(["valid"] * 100)
    candidate = make_run(["valid"] * 58 + ["empty"] * 42)
    result = evaluate_gate(gate("valid_rate", "max_drop", 0.05), candidate, base, CONFIDENT)
    assert not result.passed and result.evidence == "violation"
    assert result.reason.startswith(
        "failed: the candidate's valid rate is below the base's by 0.420 (95% CI of the drop +0.3"
    )
    assert result.reason.endswith(
        "100 paired probes), more than the allowed 0.05; the whole 95% interval is beyond the "
        "threshold"
    )
    assert result.drop.method == "newcombe" and (result.drop.worse, result.drop.better) == (42, 0)


def test_lower_is_better_drop_reads_as_above_the_base():
    base = make_run(["valid"] * 100)
    candidate = make_run(["valid"] * 70 + ["truncated"] * 30)
    result = evaluate_gate(gate("truncated_rate", "max_drop", 0.1), candidate, base, CONFIDENT)
    assert "truncated rate is above the base's by 0.300" in result.reason
    assert not result.passed


def test_zero_margin_with_few_discordant_probes_uses_the_exact_mcnemar_test():
    base = make_run(["valid"] * 40)
    five_worse = make_run(["valid"] * 35 + ["empty"] * 5)  # p = 1/32 = 0.031: not below 0.025
    six_worse = make_run(["valid"] * 34 + ["empty"] * 6)  # p = 1/64 = 0.016
    zero = gate("valid_rate", "max_drop", 0.0)
    passed = evaluate_gate(zero, five_worse, base, CONFIDENT)
    assert passed.passed and "one-sided p = 0.0312 >= 0.025" in passed.reason
    failed = evaluate_gate(zero, six_worse, base, CONFIDENT)
    assert not failed.passed and "6 of 6 discordant probes got worse" in failed.reason


def test_several_samples_per_probe_use_the_probe_bootstrap():
    probes = tuple(Probe(id=f"p{i}", prompt="q", answer="4", scorer="numeric") for i in range(40))

    def run(valid_samples: int) -> Run:
        outcomes = tuple(
            ScoredTrace(
                probe_id=f"p{i}",
                sample=k,
                trace=classify(TEXT["valid" if k < valid_samples else "empty"]),
                correct=True,
            )
            for i in range(40)
            for k in range(4)
        )
        return Run(
            "m",
            "test",
            ProbeSet(name="s", version="1", probes=probes),
            GenerationSettings(),
            (),
            outcomes,
            compute_metrics(outcomes),
        )

    result = evaluate_gate(gate("valid_rate", "max_drop", 0.1), run(1), run(4), CONFIDENT)
    assert result.drop.method == "bootstrap" and result.drop.worse is None
    assert result.drop.value == pytest.approx(0.75) and not result.passed
