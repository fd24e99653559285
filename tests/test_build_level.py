"""The build as a whole: Holm across all gates and looks by default, so that noise alone turns
a build red at most 1 - confidence of the time (issue #20), by seeded simulation through the
real decision code (`benchmarks/build_false_fail.py` holds the simulation and a larger run)."""

from __future__ import annotations

import random

import pytest

from benchmarks.build_false_fail import CASES, boundary_gates, boundary_run, decide_build, red_share
from rtc_assert.decide.spec import DecisionConfig, EarlyStoppingConfig, GateSpec
from rtc_assert.decide.stats import look_confidences


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
