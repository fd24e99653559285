"""Gate decisions: does a candidate's metric meet its threshold, alone or against the base?

Policy ``confident`` (the default) fails a gate only when the confidence interval shows the
threshold is violated, so sampling noise does not turn builds red; ``strict`` fails unless the
interval shows the threshold is met (proof of safety, for teams with probes to afford it);
``point`` compares point estimates. A gate whose metric is undefined (Rpass@1 with no valid
trace) fails and says so.
For ``max_drop`` the drop is how much worse the candidate is than the base: base minus
candidate for metrics where higher is better, candidate minus base for the empty, truncated
and missing rates. Its interval comes from a paired bootstrap over the probes both ran.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from rtc_assert.config import DecisionConfig, GateSpec
from rtc_assert.metrics import RATE_DEFINITIONS, Rate, probe_tallies
from rtc_assert.runs import Run
from rtc_assert.stats import paired_bootstrap_difference

LOWER_IS_BETTER = frozenset({"empty_rate", "truncated_rate", "missing_rate"})


class Drop(BaseModel):
    """How much worse the candidate is than the base, with its paired interval."""

    model_config = ConfigDict(frozen=True)

    value: float
    low: float
    high: float
    probes: int
    """Probes both runs generated on."""


class GateResult(BaseModel):
    """A gate's verdict, the numbers behind it, and the rule in words."""

    model_config = ConfigDict(frozen=True)

    gate: GateSpec
    passed: bool
    reason: str
    policy: str
    confidence: float
    candidate: Rate | None
    base: Rate | None = None
    drop: Drop | None = None


def _show(rate: Rate | None) -> str:
    if rate is None:
        return "undefined"
    return f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}]"


def _undefined_reason(metric: str, model: str) -> str:
    if metric == "reasoning_conditioned_accuracy":
        return f"{metric} is undefined for the {model}: no trace is valid, so there is no Rpass@1"
    return f"{metric} is undefined for the {model}"


_SIDE = {"min": "below the floor", "max": "above the ceiling", "max_drop": "above the limit"}


def _decide(
    kind: str, value: float, low: float, high: float, limit: float, decision: DecisionConfig
) -> tuple[bool, str]:
    """Whether a gate fails, and the rule in words.

    ``value``/``low``/``high`` estimate a quantity that must not exceed ``limit`` (for a
    ``min`` gate, the caller negates both). ``point`` fails when the estimate exceeds the
    limit; ``confident`` when the whole interval does; ``strict`` when any of it does.
    """
    level = f"{decision.confidence:.0%}"
    side = _SIDE[kind]
    if decision.policy == "point":
        failed, rule = value > limit, f"the point estimate {side}"
    elif decision.policy == "confident":
        failed, rule = low > limit, f"the whole {level} interval {side}"
    else:
        failed, rule = high > limit, f"any part of the {level} interval {side}"
    return failed, (f"fails: {rule}" if failed else f"passes (it fails with {rule})")


def _absolute(gate: GateSpec, candidate: Rate | None, decision: DecisionConfig) -> GateResult:
    common = {"gate": gate, "policy": decision.policy, "confidence": decision.confidence}
    if candidate is None:
        return GateResult(
            **common,
            passed=False,
            candidate=None,
            reason=_undefined_reason(gate.metric, "candidate"),
        )
    if gate.kind == "min":  # a floor on the rate is a ceiling on its negation
        failed, verdict = _decide(
            "min", -candidate.value, -candidate.high, -candidate.low, -gate.threshold, decision
        )
    else:
        failed, verdict = _decide(
            "max", candidate.value, candidate.low, candidate.high, gate.threshold, decision
        )
    return GateResult(
        **common,
        passed=not failed,
        candidate=candidate,
        reason=f"{gate.metric} {_show(candidate)} vs {gate.kind} {gate.threshold:g}: {verdict}",
    )


def _drop(gate: GateSpec, candidate: Run, base: Run, decision: DecisionConfig) -> Drop | None:
    candidate_tallies = probe_tallies(candidate.outcomes)
    base_tallies = probe_tallies(base.outcomes)
    shared = [probe for probe in base_tallies if probe in candidate_tallies]
    if not shared:
        return None
    numerator, denominator = RATE_DEFINITIONS[gate.metric]

    def columns(tallies: dict[str, dict[str, float]]) -> tuple[list[float], list[float]]:
        return (
            [tallies[p][numerator] for p in shared],
            [1.0 if denominator is None else tallies[p][denominator] for p in shared],
        )

    difference = paired_bootstrap_difference(
        columns(base_tallies),
        columns(candidate_tallies),
        confidence=decision.confidence,
        samples=decision.bootstrap_samples,
        seed=decision.seed,
    )
    if difference is None:
        return None
    point, low, high = difference  # candidate minus base
    if gate.metric not in LOWER_IS_BETTER:
        point, low, high = -point, -high, -low
    return Drop(value=point, low=low, high=high, probes=len(shared))


def _relative(
    gate: GateSpec, candidate: Run, base: Run | None, decision: DecisionConfig
) -> GateResult:
    common = {"gate": gate, "policy": decision.policy, "confidence": decision.confidence}
    candidate_rate = candidate.metrics.metric(gate.metric)
    if base is None:
        return GateResult(
            **common,
            passed=False,
            candidate=candidate_rate,
            reason="max_drop needs a base model: set 'base' in thresholds.yaml or --rtc-base",
        )
    base_rate = base.metrics.metric(gate.metric)
    common.update(candidate=candidate_rate, base=base_rate)
    for rate, model in ((candidate_rate, "candidate"), (base_rate, "base")):
        if rate is None:
            return GateResult(**common, passed=False, reason=_undefined_reason(gate.metric, model))
    drop = _drop(gate, candidate, base, decision)
    if drop is None:
        return GateResult(
            **common,
            passed=False,
            reason=f"{gate.metric}: no probe that both models ran has a defined value to compare",
        )
    failed, verdict = _decide("max_drop", drop.value, drop.low, drop.high, gate.threshold, decision)
    return GateResult(
        **common,
        passed=not failed,
        drop=drop,
        reason=(
            f"{gate.metric} base {_show(base_rate)} -> candidate {_show(candidate_rate)}; "
            f"drop {drop.value:+.3f} [{drop.low:+.3f}, {drop.high:+.3f}] over {drop.probes} "
            f"paired probes vs max_drop {gate.threshold:g}: {verdict}"
        ),
    )


def evaluate_gate(
    gate: GateSpec, candidate: Run, base: Run | None, decision: DecisionConfig
) -> GateResult:
    """Decide one gate on the candidate's run (and the base's, for ``max_drop``)."""
    if gate.kind == "max_drop":
        return _relative(gate, candidate, base, decision)
    return _absolute(gate, candidate.metrics.metric(gate.metric), decision)
