"""Early stopping and Holm's correction: the looks, the stopping rule, and error rates by
seeded simulation through the real gate code (runs built from known outcomes)."""

from __future__ import annotations

import random

import pytest
from synthetic_runs import scored_run

from rtc_assert import ScoredTrace, classify
from rtc_assert.decide.early_stopping import decide_sequentially, look_sizes, shuffled
from rtc_assert.decide.gates import decide_gates, evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, EarlyStoppingConfig, GateSpec
from rtc_assert.runs import Run, merge_runs

VALID, EMPTY = "<think>work</think>4", "<think></think>4"


def synthetic_run(valid: list[list[bool]], name: str = "s") -> Run:
    """One run: ``valid[i][k]`` says whether sample k of probe i has a valid trace."""
    outcomes = [
        ScoredTrace(
            probe_id=f"p{i:04d}", sample=k, trace=classify(VALID if ok else EMPTY), correct=ok
        )
        for i, samples in enumerate(valid)
        for k, ok in enumerate(samples)
    ]
    return scored_run(outcomes, probe_set=name)


def gate(metric: str, kind: str, threshold: float, probe_set: str = "s") -> GateSpec:
    return GateSpec(probe_set=probe_set, metric=metric, kind=kind, threshold=threshold)


def decide(specs, candidate: Run, base: Run, decision: DecisionConfig):
    """Early stopping over full synthetic runs, each look taking a prefix of the order."""
    order = shuffled(candidate.probe_set, decision.seed)
    calls = []

    def runs_at(spec: GateSpec, count: int) -> tuple[Run, Run | None]:
        calls.append(count)
        prefix = order.model_copy(update={"probes": order.probes[:count]})
        return (
            merge_runs([candidate], prefix, decision.confidence),
            merge_runs([base], prefix, decision.confidence) if spec.kind == "max_drop" else None,
        )

    results = decide_sequentially(specs, {"s": len(order)}, runs_at, decision)
    return results, max(calls)


SEQUENTIAL = DecisionConfig(
    early_stopping=EarlyStoppingConfig(chunk_size=32), bootstrap_samples=400
)
GATES = [
    gate("valid_rate", "min", 0.8),
    gate("valid_rate", "max_drop", 0.1),
    gate("answer_accuracy", "max_drop", 0.1),
    gate("truncated_rate", "max", 0.1),
]


def test_look_sizes_and_shuffled_order():
    assert look_sizes(256, 64) == [64, 128, 192, 256]
    assert look_sizes(100, 64) == [64, 100]
    assert look_sizes(10, 64) == [10]
    probes = synthetic_run([[True]] * 50).probe_set
    first, again = shuffled(probes, 0), shuffled(probes, 0)
    assert first == again and first.probes != probes.probes
    assert sorted(p.id for p in first.probes) == [p.id for p in probes.probes]
    assert shuffled(probes, 1).probes != first.probes


def test_collapse_stops_at_the_first_look_with_the_full_runs_verdicts():
    base = synthetic_run([[True]] * 256)
    collapsed = synthetic_run([[False]] * 256)
    results, used = decide(GATES, collapsed, base, SEQUENTIAL)
    assert used == 32
    full = [evaluate_gate(spec, collapsed, base, DecisionConfig()) for spec in GATES]
    assert [r.passed for r in results] == [r.passed for r in full] == [False, False, False, True]
    assert "decided after 32 of 256 probes (early stopping, look 1 of 8)" in results[0].reason
    assert "not settled when s::valid_rate[min] failed" in results[3].reason
    assert results[3].probes_used == 32 and results[3].probes_available == 256


def test_a_sound_candidate_runs_until_every_gate_shows_compliance():
    base = synthetic_run([[True]] * 256)
    results, used = decide(GATES, synthetic_run([[True]] * 256), base, SEQUENTIAL)
    assert all(r.passed and r.evidence == "compliance" for r in results)
    assert 32 < used < 256, "compliance needs more probes than a collapse, but not all of them"


def test_an_undecided_gate_uses_every_probe_and_says_so():
    base = synthetic_run([[True]] * 64)
    candidate = synthetic_run([[True]] * 58 + [[False]] * 6)  # 0.906 against a 0.9 floor
    (result,), used = decide([gate("valid_rate", "min", 0.9)], candidate, base, SEQUENTIAL)
    assert used == 64 and result.passed and result.evidence is None
    assert "not settled by any look: decided on all 64 probes" in result.reason


def identical_runs(rng: random.Random, probes: int, samples: int) -> tuple[Run, Run]:
    """Base and candidate drawn from one distribution: per-probe validity varies."""
    validity = [rng.betavariate(6, 1) for _ in range(probes)]

    def draw() -> Run:
        return synthetic_run([[rng.random() < p for _ in range(samples)] for p in validity])

    return draw(), draw()


@pytest.mark.slow
@pytest.mark.parametrize("samples", [1, 4])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_false_fail_rate_of_identical_models_is_within_the_confidence(samples, early_stopping):
    """Seeded simulation: with max_drop 0 on two metrics, identical models fail the build in
    at most 1 - confidence of runs (within Monte Carlo error), with and without early
    stopping, with one and with several samples per probe."""
    rng = random.Random(17 + samples)
    specs = [gate("valid_rate", "max_drop", 0.0), gate("answer_accuracy", "max_drop", 0.0)]
    trials, red = 120, 0
    for trial in range(trials):
        base, candidate = identical_runs(rng, 128, samples)
        decision = SEQUENTIAL.model_copy(
            update={
                "seed": trial,
                "early_stopping": EarlyStoppingConfig(enabled=early_stopping, chunk_size=32),
            }
        )
        if early_stopping:
            results, _ = decide(specs, candidate, base, decision)
        else:
            results = decide_gates([(spec, candidate, base) for spec in specs], decision)
        red += not all(result.passed for result in results)
    assert red / trials <= 0.05 + 0.02  # Monte Carlo error of 120 runs is about 0.02


@pytest.mark.slow
def test_early_stopping_keeps_most_of_the_power():
    """A true drop of three times the margin on 256 probes is caught in nearly every run,
    with early stopping as without."""
    rng = random.Random(23)
    spec = gate("valid_rate", "max_drop", 0.05)
    caught = {False: 0, True: 0}
    for trial in range(60):
        base = synthetic_run([[rng.random() < 0.95] for _ in range(256)])
        candidate = synthetic_run([[rng.random() < 0.80] for _ in range(256)])
        for early in caught:
            decision = SEQUENTIAL.model_copy(
                update={"seed": trial, "early_stopping": EarlyStoppingConfig(enabled=early)}
            )
            if early:
                (result,), _ = decide([spec], candidate, base, decision)
            else:
                result = evaluate_gate(spec, candidate, base, decision)
            caught[early] += not result.passed
    assert caught[False] >= 55 and caught[True] >= 55


@pytest.mark.slow
def test_holm_never_fails_more_gates_and_controls_the_familywise_rate():
    rng = random.Random(29)
    specs = [gate(m, "max_drop", 0.0) for m in ("valid_rate", "answer_accuracy")] + [
        gate("valid_rate", "min", 0.85),
        gate("answer_accuracy", "min", 0.85),
    ]
    plain, holm = DecisionConfig(holm=False), DecisionConfig(holm=True)
    trials, red = 150, 0
    for _ in range(trials):
        base, candidate = identical_runs(rng, 100, 1)
        items = [(spec, candidate, base) for spec in specs]
        corrected = decide_gates(items, holm)
        uncorrected = decide_gates(items, plain)
        assert sum(not r.passed for r in corrected) <= sum(not r.passed for r in uncorrected)
        red += not all(r.passed for r in corrected[:2])  # the two gates whose nulls hold
    assert red / trials <= 0.05 + 0.02
    assert "Holm: 4 gate(s) share alpha 0.05" in corrected[0].reason


def test_holm_steps_down_after_a_decided_gate():
    """A clear failure is set aside, and the rest are tested at a looser level."""
    base = synthetic_run([[True]] * 100)
    candidate = synthetic_run([[True]] * 60 + [[False]] * 40)
    specs = [gate("valid_rate", "max_drop", 0.1), gate("valid_rate", "min", 0.5)]
    first, second = decide_gates([(s, candidate, base) for s in specs], DecisionConfig(holm=True))
    assert not first.passed and first.confidence == pytest.approx(0.975)
    assert second.confidence == pytest.approx(0.95)


def test_holm_needs_an_interval_policy():
    with pytest.raises(ValueError, match="holm corrects intervals"):
        DecisionConfig(holm=True, policy="point")
    assert not DecisionConfig(policy="point").sequential


def test_a_session_decides_a_gate_of_its_own_outside_the_files_gates():
    """With early stopping on, the file's gates are decided together; a gate the file does
    not name (a custom assertion's) is still decided, alone, on the full run."""
    from rtc_assert.config import RtcConfig
    from rtc_assert.session import RtcSession

    config = RtcConfig.model_validate(
        {
            "candidate": "demo:base",
            "generation": {"max_new_tokens": 64},
            "probe_sets": {"finetune": {"source": "demo:finetune", "limit": 12}},
            "gates": [{"metric": "valid_rate", "min": 0.5}],
        }
    )
    session = RtcSession(config=config)
    [own] = session.decide_all()
    extra = session.gate(gate("truncated_rate", "max", 0.5, probe_set="finetune"))
    assert own.passed and extra.passed and extra.probes_used is None
    assert session.decide_all() == [own]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_gates_sharing_set_metric_and_kind_are_each_decided_on_their_own(early_stopping):
    """A collapsed candidate meets a floor of 0 and misses a floor of 1 on the same metric:
    one verdict each, with early stopping and without (issue #20, defect 1)."""
    from rtc_assert.config import RtcConfig
    from rtc_assert.session import RtcSession

    config = RtcConfig.model_validate(
        {
            "candidate": "demo:collapsed",
            "generation": {"max_new_tokens": 64},
            "decision": {"early_stopping": {"enabled": early_stopping, "chunk_size": 8}},
            "probe_sets": {"finetune": {"source": "demo:finetune", "limit": 16}},
            "gates": [{"metric": "valid_rate", "min": 0.0}, {"metric": "valid_rate", "min": 1.0}],
        }
    )
    low, high = RtcSession(config=config).decide_all()
    assert low.gate.id == "finetune::valid_rate[min=0]" and low.passed
    assert high.gate.id == "finetune::valid_rate[min=1]" and not high.passed
