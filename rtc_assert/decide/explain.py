"""Explain a gate's failure in a few lines: the numbers, the rule, and example traces.

Where hidden reasoning makes the gate's metric unknown, the rule (which quotes
`RunMetrics.status_unknown`) and the examples (the hidden traces among them) are all it says:
no line reads the unknown rate as a collapse that an answer-only eval would miss.
"""

from __future__ import annotations

from rtc_assert.decide.gates import GateResult
from rtc_assert.metrics import METRICS
from rtc_assert.runs import Run
from rtc_assert.scoring import ScoredTrace
from rtc_assert.traces.classify import TraceStatus

SNIPPET_CHARS = 160


def _shows_failure(metric: str, outcome: ScoredTrace) -> bool:
    failing = METRICS[metric].failing_statuses
    if failing is not None:
        return outcome.trace.status in failing
    if metric == "reasoning_conditioned_accuracy":
        return outcome.trace.status is TraceStatus.VALID and not outcome.correct
    if metric == "answer_rate":
        return not outcome.trace.answer
    return not outcome.correct


def example_outcomes(
    metric: str, candidate: Run, base: Run | None, count: int = 3
) -> list[ScoredTrace]:
    """Candidate outcomes that show a metric's failure, regressions against the base first."""
    failing = [o for o in candidate.outcomes if _shows_failure(metric, o)]
    if base is not None:
        base_failing = {(o.probe_id, o.sample) for o in base.outcomes if _shows_failure(metric, o)}
        failing.sort(key=lambda o: (o.probe_id, o.sample) in base_failing)
    return failing[:count]


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A completion on one line, newlines shown as ``\\n``, cut to ``limit`` characters."""
    flat = text.replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def unrecognised_markup(run: Run) -> str | None:
    """What to set when every trace is missing under a markup detection fell back to.

    Such a run says nothing about collapse: the model's reasoning is probably written in a
    markup the classifier was not told about.
    """
    trace = run.trace
    if trace is None or trace.detected.recognised or trace.overridden:
        return None
    if run.metrics.status_unknown() is not None:  # hidden reasoning: missing says nothing
        return None
    if run.metrics.missing_rate.value < 1.0:
        return None
    return (
        f"every trace of {run.model} is 'missing', and its chat template's reasoning markup "
        f"was not recognised ({trace.detected.evidence}): this is not read as a collapse; "
        "set trace_format in thresholds.yaml (markup, or open_tag and close_tag as the model "
        "writes them) so that its traces can be read"
    )


def explain_failure(result: GateResult, candidate: Run, base: Run | None) -> str:
    """The lines pytest prints for a failed gate."""
    gate = result.gate
    lines = [f"{gate.id}: {result.reason}"]
    # A status metric hidden reasoning made unknown shows no collapse an answer eval misses.
    compared = (candidate, base) if gate.kind == "max_drop" else (candidate,)
    unknown = any(
        run is not None and run.metrics.why_unknown(gate.metric) is not None for run in compared
    )
    shows_statuses = METRICS[gate.metric].failing_statuses is not None and not unknown
    unread = unrecognised_markup(candidate)
    if unread is not None and shows_statuses:
        lines.append(unread)
    elif shows_statuses:
        accuracy = candidate.metrics.answer_accuracy
        line = f"answer accuracy (pass@1) of the candidate: {accuracy.value:.3f}"
        if base is not None:
            line += f", base {base.metrics.answer_accuracy.value:.3f}"
        lines.append(line + ": an answer-only eval does not see this")
    texts = {(g.probe_id, g.sample): g.text for g in candidate.generations}
    examples = example_outcomes(gate.metric, candidate, base)
    if examples:
        lines.append(f"examples from the candidate ({candidate.model}):")
        for outcome in examples:
            trace = outcome.trace
            lines.append(
                f"  {outcome.probe_id}: {trace.status.value} ({trace.detail}), "
                f"{'correct' if outcome.correct else 'wrong'}: "
                f"{snippet(texts.get((outcome.probe_id, outcome.sample), ''))!s}"
            )
    return "\n".join(lines)
