"""The build as a whole: Holm across all gates and looks by default, so that noise alone turns
a build red at most 1 - confidence of the time (issue #20), by seeded simulation through the
real decision code (`benchmarks/build_false_fail.py` holds the simulation and a larger run)."""

from __future__ import annotations

import random

import pytest
from synthetic_runs import scored_run

from benchmarks.build_false_fail import CASES, boundary_gates, boundary_run, decide_build, red_share
from rtc_assert import ScoredTrace, classify
from rtc_assert.decide.gates import RPASS_MIN_VALID, evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, EarlyStoppingConfig, GateSpec
from rtc_assert.decide.stats import look_confidences
from rtc_assert.runs import Run


def test_holm_is_on_by_default_under_confident_only():
    assert DecisionConfig().corrects_across_gates
    assert not DecisionConfig(policy="strict").corrects_across_gates
    assert not DecisionConfig(policy="point").corrects_across_gates
    assert not DecisionConfig(holm=False).corrects_across_gates
    assert DecisionConfig(policy="strict", holm=True).corrects_across_gates


def test_a_full_collapse_of_nine_gates_on_two_sets_settles_on_the_first_look():
    rng = random.Random(3)
    runs = {
        name: (boundary_run(rng, 128, name, {"empty": 1.0}), boundary_run(rng, 128, name))
        for name in ("set0", "set1")
    }
    decision = DecisionConfig(early_stopping=EarlyStoppingConfig(chunk_size=32))
    results = decide_build(boundary_gates(9, 2), runs, decision)
    assert any("look 1 of 4" in r.reason and not r.passed for r in results)
    assert all(r.probes_used == 32 for r in results)


def test_a_gate_shown_compliant_keeps_its_share_of_alpha_at_later_looks():
    """Gates settled as compliant do not loosen the correction for the open ones."""
    rng = random.Random(5)
    base = boundary_run(rng, 128, "set0")
    specs = [
        GateSpec(probe_set="set0", metric="valid_rate", kind="max", threshold=1.0),
        GateSpec(probe_set="set0", metric="valid_rate", kind="min", threshold=0.8),
    ]
    decision = DecisionConfig(early_stopping=EarlyStoppingConfig(chunk_size=32))
    settled, open_gate = decide_build(specs, {"set0": (base, base)}, decision)
    assert settled.probes_used == 32 and settled.evidence == "compliance"
    final_alpha = 1 - look_confidences(4, 0.95)[-1]
    assert open_gate.probes_used == 128
    assert open_gate.confidence == pytest.approx(1 - final_alpha / 2)


@pytest.mark.slow
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize(("gates", "sets"), [case for case in CASES if case != (6, 1)])
def test_build_false_fail_rate_at_the_boundary_is_within_the_confidence(
    gates, sets, early_stopping
):
    """Identical models, every gate at its boundary: at most 5% red builds (0.95)."""
    share = red_share(gates, sets, early_stopping=early_stopping, trials=300, seed=11)
    assert share <= 0.05


def rpass_runs(rng: random.Random, valid: int, accuracy: float) -> tuple[Run, Run]:
    """A base with 160 valid traces of 200 (Rpass@1 0.7) and a candidate with ``valid``."""

    def run(valid_probes: set[int], rate: float) -> Run:
        text = {True: "<think>w</think>4", False: "<think></think>4"}
        outcomes = [
            ScoredTrace(
                probe_id=f"p{i:04d}",
                sample=0,
                trace=classify(text[i in valid_probes]),
                correct=rng.random() < rate,
            )
            for i in range(200)
        ]
        return scored_run(outcomes, backend="simulation")

    return run(set(rng.sample(range(200), valid)), accuracy), run(set(range(160)), 0.7)


RPASS_DROP = GateSpec(
    probe_set="s", metric="reasoning_conditioned_accuracy", kind="max_drop", threshold=0.1
)


def test_rpass_on_too_few_valid_traces_is_not_decidable_and_says_so():
    candidate, base = rpass_runs(random.Random(1), 5, 0.7)
    for spec in (RPASS_DROP, RPASS_DROP.model_copy(update={"kind": "min", "threshold": 0.5})):
        result = evaluate_gate(spec, candidate, base, DecisionConfig())
        assert not result.passed
        assert "not decidable below 20 valid traces, and the candidate has 5" in result.reason


@pytest.mark.slow
@pytest.mark.parametrize("valid", [1, 2, 3, 5, 10, 50])
def test_rpass_drop_with_few_valid_traces_holds_its_level(valid):
    """At the boundary (true drop 0.1, max_drop 0.1): under confident a false failure, under
    strict a false pass, each at most 5%; below 20 valid traces every verdict says it is not
    decidable."""
    rng = random.Random(valid)
    trials, false_fails, false_passes = 100, 0, 0
    for trial in range(trials):
        candidate, base = rpass_runs(rng, valid, 0.6)
        for policy in ("confident", "strict"):
            decision = DecisionConfig(policy=policy, seed=trial, bootstrap_samples=400)
            result = evaluate_gate(RPASS_DROP, candidate, base, decision)
            if valid < RPASS_MIN_VALID:
                assert not result.passed and "not decidable" in result.reason
            false_fails += policy == "confident" and not result.passed
            false_passes += policy == "strict" and result.passed
    if valid >= RPASS_MIN_VALID:
        assert false_fails / trials <= 0.05 and false_passes / trials <= 0.05
