"""Scoring: a classified trace of a probe becomes a `ScoredTrace`, judged on its answer only."""

from __future__ import annotations

from dataclasses import dataclass

from rtc_assert.errors import RtcAssertError, ScorerError
from rtc_assert.probes.probe import Probe
from rtc_assert.probes.scorers import get_scorer
from rtc_assert.traces.classify import Trace


def score(probe: Probe, answer_text: str) -> bool:
    """Whether ``answer_text`` answers ``probe`` correctly, by the probe's scorer."""
    scorer = get_scorer(probe.scorer)
    try:
        return bool(scorer(answer_text, probe.answer))
    except RtcAssertError:
        raise
    except Exception as error:  # a custom scorer's bug is an error of the run, not a FAIL
        raise ScorerError(
            f"scorer {probe.scorer!r} raised {type(error).__name__}: {error} on probe "
            f"{probe.id!r} (answer {answer_text[:80]!r}); fix the scorer, which must return "
            "True or False"
        ) from error


@dataclass(frozen=True, slots=True)
class ScoredTrace:
    """One generation of one probe, classified and scored: the input of the metrics."""

    probe_id: str
    sample: int
    trace: Trace
    correct: bool
    reasoning_tokens: int | None = None
    answer_tokens: int | None = None


def score_trace(
    probe: Probe,
    trace: Trace,
    *,
    sample: int = 0,
    reasoning_tokens: int | None = None,
    answer_tokens: int | None = None,
) -> ScoredTrace:
    """Score a classified trace: only its answer is shown to the scorer."""
    return ScoredTrace(
        probe_id=probe.id,
        sample=sample,
        trace=trace,
        correct=score(probe, trace.answer),
        reasoning_tokens=reasoning_tokens,
        answer_tokens=answer_tokens,
    )
