"""Assertions for your own reasoning tests; each failure explains itself like a gate's.

Use them with the ``rtc`` fixture::

    from rtc_assert.assertions import assert_no_collapse, assert_valid_rate

    def test_reasoning_survives(rtc):
        candidate, base = rtc.compare("reasoning")
        assert_valid_rate(candidate, at_least=0.85)
        assert_no_collapse(candidate, base, max_drop=0.10)

``policy="confident"`` (the default) fails only when the confidence interval shows the
threshold is violated; ``"strict"`` fails unless it shows the threshold is met; ``"point"``
compares the point estimate.
"""

from __future__ import annotations

from rtc_assert.decide.explain import explain_failure
from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateKind, GateSpec, Policy
from rtc_assert.metrics import MetricName
from rtc_assert.reports.safe_text import printable
from rtc_assert.runs import Run
from rtc_assert.traces.classify import Trace, TraceFormat, TraceStatus, classify


def _check(
    metric: MetricName,
    kind: GateKind,
    threshold: float,
    candidate: Run,
    base: Run | None,
    policy: Policy,
    confidence: float,
) -> None:
    gate = GateSpec(
        probe_set=candidate.probe_set.name, metric=metric, kind=kind, threshold=threshold
    )
    decision = DecisionConfig(policy=policy, confidence=confidence)
    result = evaluate_gate(gate, candidate, base, decision)
    if not result.passed:
        raise AssertionError(printable(explain_failure(result, candidate, base)))


def assert_valid_rate(
    run: Run, *, at_least: float, policy: Policy = "confident", confidence: float = 0.95
) -> None:
    """The share of valid reasoning traces is at least ``at_least``."""
    _check("valid_rate", "min", at_least, run, None, policy, confidence)


def assert_reasoning_conditioned_accuracy(
    run: Run, *, at_least: float, policy: Policy = "confident", confidence: float = 0.95
) -> None:
    """Rpass@1 (correct among valid traces) is at least ``at_least``; fails when undefined."""
    _check("reasoning_conditioned_accuracy", "min", at_least, run, None, policy, confidence)


def assert_no_collapse(
    candidate: Run,
    base: Run,
    *,
    max_drop: float = 0.10,
    metric: MetricName = "valid_rate",
    policy: Policy = "confident",
    confidence: float = 0.95,
) -> None:
    """``metric`` is at most ``max_drop`` worse for the candidate than for the base, paired
    by probe."""
    _check(metric, "max_drop", max_drop, candidate, base, policy, confidence)


def assert_trace_valid(
    text: str,
    *,
    finish_reason: str | None = None,
    prompt: str | None = None,
    prefilled: bool = False,
    fmt: TraceFormat | None = None,
) -> Trace:
    """One completion has a valid reasoning trace; returns the trace."""
    trace = classify(text, finish_reason=finish_reason, prompt=prompt, prefilled=prefilled, fmt=fmt)
    if trace.status is not TraceStatus.VALID:
        shown = text if len(text) <= 200 else text[:197] + "..."
        raise AssertionError(
            f"expected a valid reasoning trace, got {trace.status.value} ({trace.detail}): "
            f"{shown!r}"
        )
    return trace
