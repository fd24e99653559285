"""Gate decisions: does a candidate's metric meet its threshold, alone or against the base?

Policy ``confident`` (the default) fails a gate only when the confidence interval shows the
threshold is violated, so sampling noise does not turn builds red; ``strict`` fails unless the
interval shows the threshold is met (proof of safety, for teams with probes to afford it);
``point`` compares point estimates. A gate whose metric is undefined (Rpass@1 with no valid
trace) fails and says so.

A ``min`` or ``max`` gate decides on the exact (Clopper-Pearson) interval of the candidate's
rate, whose one-sided error is at most its nominal share at every true rate, near 0 and 1
included; the Wilson interval in `Rate` is what reports show for reading. Point estimates
are compared with the threshold as exact fractions (`exact`), so 0.40 - 0.30 is no more than
0.10.

For ``max_drop`` the drop is how much worse the candidate is than the base: base minus
candidate for metrics where higher is better, candidate minus base for the empty, truncated
and missing rates. With one sample per probe and a rate over probes, its interval is
Newcombe's paired score interval, and a ``max_drop: 0`` gate under ``confident`` is decided by
the exact McNemar test at every count of discordant probes; otherwise (several samples, or
Rpass@1 whose denominators differ between the models) a seeded paired bootstrap over probes.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.decide.stats import (
    clopper_pearson_interval,
    exact,
    mcnemar_exact_p,
    newcombe_paired_difference,
    paired_bootstrap_difference,
)
from rtc_assert.metrics import (
    METRICS,
    Event,
    Rate,
    compute_metrics,
    format_level,
    probe_tallies,
)
from rtc_assert.runs import Run

Evidence = Literal["violation", "compliance"]
RPASS_MIN_VALID = 20
"""Rpass@1 is not decidable on fewer valid traces (probe-weighted) than this: the probe
bootstrap of a drop does not hold its level there, nor did Wilson on the valid traces
(simulation, issue #20: one valid trace failed 24% of identical models under
confident; ten passed 6% of candidates worse by the margin under strict). Such a gate fails,
saying so, as an undefined metric does."""


class Drop(BaseModel):
    """How much worse the candidate is than the base, with its paired interval."""

    model_config = ConfigDict(frozen=True)

    value: float
    low: float
    high: float
    probes: int
    """Probes both runs generated on."""
    method: Literal["newcombe", "bootstrap"]
    worse: int | None = None
    """Probes where only the candidate failed (one sample per probe, rates over probes)."""
    better: int | None = None
    """Probes where only the base failed."""
    mcnemar_p: float | None = None
    """One-sided exact McNemar p-value that the candidate is worse, where that test decided
    (``max_drop: 0`` under ``confident``)."""


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
    evidence: Evidence | None = None
    """What the interval (or exact test) shows: a violation, compliance, or neither."""
    probes_used: int | None = None
    """Probes the decision used, when early stopping decided before the end."""
    probes_available: int | None = None
    """Probes the probe set holds, when early stopping was on."""
    settled: bool = True
    """False where early stopping stopped the run (another gate failed) while this gate
    passed on the probes so far without being settled: reports say "not settled", not PASS,
    and pytest skips its item. An open gate that fails on the probes so far stays FAIL."""


def look_words(confidence: float, look: int, looks: int) -> str:
    """What a look's level is, in words, for a verdict decided by early stopping."""
    if looks == 1:
        return ""
    which = f"interim look {look} of {looks}" if look < looks else f"the final look of {looks}"
    return f"; {format_level(confidence)} is the level of {which} of early stopping"


def metric_words(metric: str) -> str:
    """A metric's name as a reader says it."""
    return METRICS[metric].words if metric in METRICS else metric.replace("_", " ")


def _undefined_reason(metric: str, model: str) -> str:
    if metric == "reasoning_conditioned_accuracy":
        return (
            f"failed: {metric_words(metric)} is undefined for the {model}: no trace is valid, "
            "so there is no Rpass@1"
        )
    return f"failed: {metric_words(metric)} is undefined for the {model}"


def _too_few_valid(metric: str, rates: dict[str, Rate | None]) -> str | None:
    """Why Rpass@1 cannot be decided on these rates, or None when it can."""
    if metric != "reasoning_conditioned_accuracy":
        return None
    for model, rate in rates.items():
        if rate is not None and rate.trials < RPASS_MIN_VALID:
            return (
                f"failed: {metric_words(metric)} is not decidable below {RPASS_MIN_VALID} valid "
                f"traces, and the {model} has {rate.trials:g}: add probes, or gate the valid "
                "rate instead"
            )
    return None


def _limit_words(gate: GateSpec) -> tuple[str, str]:
    """How the estimate stands to the threshold: (when violated, when met)."""
    if gate.kind == "min":
        return (
            f"below the floor of {gate.threshold:g}",
            f"at or above the floor of {gate.threshold:g}",
        )
    if gate.kind == "max":
        return (
            f"above the ceiling of {gate.threshold:g}",
            f"at or below the ceiling of {gate.threshold:g}",
        )
    return f"more than the allowed {gate.threshold:g}", f"within the allowed {gate.threshold:g}"


def _verdict(
    gate: GateSpec,
    statement: str,
    point_violates: bool,
    evidence: Evidence | None,
    decision: DecisionConfig,
) -> tuple[bool, str]:
    """The policy's verdict and the rule in words, from what the estimate and interval show."""
    level = format_level(decision.confidence)
    violated, met = _limit_words(gate)
    relation = violated if point_violates else met
    if decision.policy == "point":
        failed = point_violates
        rule = "policy point: the point estimate decides"
    elif decision.policy == "confident":
        failed = evidence == "violation"
        if failed:
            rule = f"the whole {level} interval is beyond the threshold"
        elif point_violates:
            rule = (
                f"but the {level} interval reaches the threshold, so the violation is not shown "
                "(policy confident)"
            )
        else:
            rule = ""
    else:
        failed = evidence != "compliance"
        if not failed:
            rule = f"the whole {level} interval is within the threshold (policy strict)"
        elif point_violates:
            rule = "(policy strict)"
        else:
            rule = (
                f"but the {level} interval crosses the threshold, so compliance is not shown "
                "(policy strict)"
            )
    words = f"{'failed' if failed else 'passed'}: {statement}, {relation}"
    if not rule:
        return not failed, words
    return not failed, f"{words}{',' if rule.startswith('but') else ';'} {rule}"


def _rate(run: Run, metric: str, confidence: float) -> Rate | None:
    """A run's metric with its interval at ``confidence``."""
    if run.metrics.confidence == confidence:
        return run.metrics.metric(metric)
    return compute_metrics(run.outcomes, confidence).metric(metric)


def _result(
    gate: GateSpec,
    decision: DecisionConfig,
    candidate: Rate | None,
    *,
    passed: bool,
    reason: str,
    base: Rate | None = None,
    drop: Drop | None = None,
    evidence: Evidence | None = None,
) -> GateResult:
    """A gate's result under ``decision``'s policy and confidence level."""
    return GateResult(
        gate=gate,
        policy=decision.policy,
        confidence=decision.confidence,
        candidate=candidate,
        base=base,
        drop=drop,
        evidence=evidence,
        passed=passed,
        reason=reason,
    )


def _absolute(
    gate: GateSpec, candidate: Rate | None, decision: DecisionConfig, level_note: str
) -> GateResult:
    if candidate is None:
        return _result(
            gate,
            decision,
            None,
            passed=False,
            reason=_undefined_reason(gate.metric, "candidate"),
        )
    too_few = _too_few_valid(gate.metric, {"candidate": candidate})
    if too_few is not None:
        return _result(gate, decision, candidate, passed=False, reason=too_few)
    low, high = clopper_pearson_interval(candidate.successes, candidate.trials, decision.confidence)
    point = exact(candidate.successes) / exact(candidate.trials)
    threshold = exact(gate.threshold)
    if gate.kind == "min":
        point_violates = point < threshold
        shows_violation, shows_compliance = high < gate.threshold, low >= gate.threshold
    else:
        point_violates = point > threshold
        shows_violation, shows_compliance = low > gate.threshold, high <= gate.threshold
    evidence = _evidence(shows_violation, shows_compliance)
    statement = (
        f"the candidate's {metric_words(gate.metric)} is {candidate.value:.3f} "
        f"(exact {format_level(decision.confidence)} CI {low:.3f} to {high:.3f}{level_note})"
    )
    passed, reason = _verdict(gate, statement, point_violates, evidence, decision)
    return _result(gate, decision, candidate, passed=passed, evidence=evidence, reason=reason)


def _evidence(shows_violation: bool, shows_compliance: bool) -> Evidence | None:
    if shows_violation:
        return "violation"
    return "compliance" if shows_compliance else None


def paired_drop(
    both: int, only_first: int, only_second: int, neither: int, confidence: float
) -> tuple[Drop, Fraction]:
    """The drop of a rate over probes with one sample per probe, from the paired table of
    probes ("first" is the side whose excess is the drop), and its point value exactly."""
    value, low, high = newcombe_paired_difference(
        both, only_first, only_second, neither, confidence
    )
    probes = both + only_first + only_second + neither
    drop = Drop(
        value=value,
        low=low,
        high=high,
        probes=probes,
        method="newcombe",
        worse=only_first,
        better=only_second,
    )
    return drop, Fraction(only_first - only_second, probes)


def _drop(
    gate: GateSpec, candidate: Run, base: Run, decision: DecisionConfig
) -> tuple[Drop, Fraction] | None:
    """The drop with its paired interval, and its point value as an exact fraction."""
    candidate_tallies = probe_tallies(candidate.outcomes)
    base_tallies = probe_tallies(base.outcomes)
    shared = [probe for probe in base_tallies if probe in candidate_tallies]
    if not shared:
        return None
    metric = METRICS[gate.metric]
    numerator, denominator = metric.numerator, metric.denominator
    # Oriented so that "first" is the side whose excess is the drop.
    first, second = (
        (candidate_tallies, base_tallies)
        if metric.lower_is_better
        else (base_tallies, candidate_tallies)
    )
    first_values = [first[p][numerator] for p in shared]
    second_values = [second[p][numerator] for p in shared]
    if denominator is None and all(v in (0.0, 1.0) for v in first_values + second_values):
        pairs = list(zip(first_values, second_values, strict=True))
        # "Worse": probes where only the first side counts, i.e. the candidate got worse.
        return paired_drop(
            pairs.count((1.0, 1.0)),
            pairs.count((1.0, 0.0)),
            pairs.count((0.0, 1.0)),
            pairs.count((0.0, 0.0)),
            decision.confidence,
        )

    def columns(tallies: dict[str, dict[Event, float]]) -> tuple[list[float], list[float]]:
        return (
            [tallies[p][numerator] for p in shared],
            [1.0 if denominator is None else tallies[p][denominator] for p in shared],
        )

    difference = paired_bootstrap_difference(
        columns(second),
        columns(first),
        confidence=decision.confidence,
        samples=_bootstrap_samples(decision),
        seed=decision.seed,
    )
    if difference is None:
        return None
    value, low, high = difference  # first minus second: the drop

    def ratio(tallies: dict[str, dict[Event, float]]) -> Fraction:
        numerators, denominators = columns(tallies)
        return exact(math.fsum(numerators)) / exact(math.fsum(denominators))

    drop = Drop(value=value, low=low, high=high, probes=len(shared), method="bootstrap")
    return drop, ratio(first) - ratio(second)


def _bootstrap_samples(decision: DecisionConfig) -> int:
    # Levels far out in the tails (early stopping's interim looks, Holm) need enough
    # resamples for their quantiles: at least ten beyond each end.
    tail = (1.0 - decision.confidence) / 2
    return max(decision.bootstrap_samples, math.ceil(10 / tail))


def drop_evidence(drop: Drop, threshold: float) -> Evidence | None:
    """What a drop's interval shows against a ``max_drop`` threshold."""
    return _evidence(drop.low > threshold, drop.high <= threshold)


def _drop_statement(gate: GateSpec, drop: Drop, confidence: float, level_note: str) -> str:
    higher_when_worse = METRICS[gate.metric].lower_is_better
    direction = "above" if (drop.value > 0) == higher_when_worse else "below"
    if drop.value == 0:
        direction = "level with"
    amount = "" if drop.value == 0 else f" by {abs(drop.value):.3f}"
    return (
        f"the candidate's {metric_words(gate.metric)} is {direction} the base's{amount} "
        f"({format_level(confidence)} CI of the drop {drop.low:+.3f} to {drop.high:+.3f}, "
        f"{drop.probes} paired probes{level_note})"
    )


def _exact_zero_margin(drop: Drop, decision: DecisionConfig) -> tuple[Drop, bool, str] | None:
    """The exact McNemar verdict of a ``max_drop: 0`` gate under ``confident``, at any count
    of discordant probes (an exact level, where Newcombe's is approximate): the drop with
    its p-value, whether the gate failed, and the rule in words."""
    if drop.worse is None or drop.better is None or decision.policy != "confident":
        return None
    discordant = drop.worse + drop.better
    p_value = mcnemar_exact_p(drop.worse, drop.better)
    alpha = (1.0 - decision.confidence) / 2
    failed = p_value < alpha
    return (
        drop.model_copy(update={"mcnemar_p": p_value}),
        failed,
        f"exact McNemar test: {drop.worse} of {discordant} discordant probes got worse, "
        f"one-sided p = {p_value:.4f} {'<' if failed else '>='} {alpha:g}",
    )


def _relative(
    gate: GateSpec, candidate: Run, base: Run | None, decision: DecisionConfig, level_note: str
) -> GateResult:
    candidate_rate = _rate(candidate, gate.metric, decision.confidence)
    if base is None:
        return _result(
            gate,
            decision,
            candidate_rate,
            passed=False,
            reason=(
                "failed: max_drop needs a base model: set 'base' in thresholds.yaml or --rtc-base"
            ),
        )
    base_rate = _rate(base, gate.metric, decision.confidence)
    for rate, model in ((candidate_rate, "candidate"), (base_rate, "base")):
        if rate is None:
            return _result(
                gate,
                decision,
                candidate_rate,
                base=base_rate,
                passed=False,
                reason=_undefined_reason(gate.metric, model),
            )
    too_few = _too_few_valid(gate.metric, {"candidate": candidate_rate, "base": base_rate})
    if too_few is not None:
        return _result(gate, decision, candidate_rate, base=base_rate, passed=False, reason=too_few)
    paired = _drop(gate, candidate, base, decision)
    if paired is None:
        return _result(
            gate,
            decision,
            candidate_rate,
            base=base_rate,
            passed=False,
            reason=(
                f"failed: {metric_words(gate.metric)}: no probe that both models ran has a "
                "defined value to compare"
            ),
        )
    drop, point = paired
    point_violates = point > exact(gate.threshold)
    statement = _drop_statement(gate, drop, decision.confidence, level_note)
    exact_test = _exact_zero_margin(drop, decision) if gate.threshold == 0 else None
    if exact_test is not None:
        drop, failed, rule = exact_test
        evidence: Evidence | None = "violation" if failed else None
        verdict = "failed" if failed else "passed"
        relation = _limit_words(gate)[0 if point_violates else 1]
        reason = f"{verdict}: {statement}, {relation}; {rule}"
        return _result(
            gate,
            decision,
            candidate_rate,
            base=base_rate,
            passed=not failed,
            drop=drop,
            evidence=evidence,
            reason=reason,
        )
    evidence = drop_evidence(drop, gate.threshold)
    passed, reason = _verdict(gate, statement, point_violates, evidence, decision)
    return _result(
        gate,
        decision,
        candidate_rate,
        base=base_rate,
        passed=passed,
        drop=drop,
        evidence=evidence,
        reason=reason,
    )


def evaluate_gate(
    gate: GateSpec,
    candidate: Run,
    base: Run | None,
    decision: DecisionConfig,
    *,
    level_note: str = "",
) -> GateResult:
    """Decide one gate on the candidate's run (and the base's, for ``max_drop``).

    Intervals are computed at ``decision.confidence``, whatever level the runs' own
    metrics were computed at; ``level_note`` (`look_words`) says in the verdict why the
    level is what it is.
    """
    if METRICS[gate.metric].needs_statuses:
        for run, model in ((candidate, "candidate"), (base, "base")):
            why = None if run is None else run.metrics.status_unknown()
            if why is not None and (model == "candidate" or gate.kind == "max_drop"):
                return _result(
                    gate,
                    decision,
                    None,
                    passed=False,
                    reason=f"failed: {metric_words(gate.metric)} cannot be computed for the "
                    f"{model}: {why}",
                )
    if gate.kind == "max_drop":
        return _relative(gate, candidate, base, decision, level_note)
    return _absolute(gate, _rate(candidate, gate.metric, decision.confidence), decision, level_note)


GateInputs = tuple[GateSpec, Run, "Run | None"]
"""A gate with the candidate's run and the base's (None where the gate needs no base)."""


def guarded_evidence(decision: DecisionConfig) -> Evidence:
    """The evidence whose error the policy guards against: a false failure under
    ``confident`` (the interval shows a violation), a false pass under ``strict``."""
    return "violation" if decision.policy == "confident" else "compliance"


def decide_gates(
    items: list[GateInputs],
    decision: DecisionConfig,
    *,
    family: int | None = None,
    look: tuple[int, int] | None = None,
) -> list[GateResult]:
    """Decide several gates, with Holm's step-down correction where the decision asks for it
    (`DecisionConfig.corrects_across_gates`).

    Holm controls the chance that any gate errs in the direction the policy guards
    (`guarded_evidence`) at ``alpha = 1 - decision.confidence``, whatever the gates'
    dependence: with ``k`` gates still in the family, each open gate is tested at
    ``alpha / k``; those the interval decides are set aside and the rest are tested again at
    ``alpha / (k - 1)``, until none is decided. ``family`` (default: the items) counts the
    gates that share alpha, including those settled before without the guarded evidence:
    a gate shown compliant under ``confident`` still holds its share. ``look`` (this look,
    the number of looks) is early stopping's, which verdicts name with their level.
    """

    def note(level: DecisionConfig) -> str:
        return "" if look is None else look_words(level.confidence, *look)

    if not decision.corrects_across_gates:
        return [evaluate_gate(*item, decision, level_note=note(decision)) for item in items]
    family = len(items) if family is None else family
    if family < len(items):
        raise ValueError(f"a family of {family} gates cannot hold {len(items)} open ones")
    guarded = guarded_evidence(decision)
    alpha = 1.0 - decision.confidence
    results: dict[int, GateResult] = {}
    remaining = list(range(len(items)))
    while remaining:
        level = decision.model_copy(update={"confidence": 1.0 - alpha / family})
        trial = {
            index: _with_holm_note(
                evaluate_gate(*items[index], level, level_note=note(level)), family, alpha
            )
            for index in remaining
        }
        decided = [index for index in remaining if trial[index].evidence == guarded]
        results.update(trial)
        if not decided:
            break
        family -= len(decided)
        remaining = [index for index in remaining if index not in decided]
    return [results[index] for index in range(len(items))]


def _with_holm_note(result: GateResult, open_gates: int, alpha: float) -> GateResult:
    note = f" (Holm: {open_gates} gate(s) share alpha {alpha:.3g})"
    return result.model_copy(update={"reason": result.reason + note})
