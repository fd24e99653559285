"""Runs of made-up completions and scored traces, for the renderer and decision tests: real
classification, scoring and metrics, no model."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rtc_assert.generation.requests import Generation, GenerationSettings, ServerSplit
from rtc_assert.metrics import compute_metrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.runs import Run, score_generations
from rtc_assert.scoring import ScoredTrace


def synthetic_run(
    model: str,
    probe_set: ProbeSet,
    texts: Sequence[str],
    reasoning_tokens: Sequence[int | None] | None = None,
    hidden: Collection[int] = (),
) -> Run:
    """``model``'s run of ``texts``, one per probe; a trace left open stopped at the budget.

    The generations at the positions in ``hidden`` came from a chat server with their
    reasoning hidden (OpenRouter's encrypted ``reasoning_details``): their text is the
    answer, and they are classified ``missing``, ``hidden``.
    """
    tokens = reasoning_tokens or [None] * len(texts)
    generations = tuple(
        Generation(
            probe_id=probe.id,
            sample=0,
            prompt="q",
            text=text,
            finish_reason="length" if "</think>" not in text and "<think>" in text else "stop",
            prompt_tokens=1,
            completion_tokens=len(text),
            prefilled=False,
            reasoning_tokens=count,
            split=ServerSplit(reasoning=None, content=text, field="reasoning_details", hidden=True)
            if index in hidden
            else None,
        )
        for index, (probe, text, count) in enumerate(
            zip(probe_set.probes, texts, tokens, strict=True)
        )
    )
    outcomes = tuple(score_generations(probe_set, generations))
    settings = GenerationSettings(max_new_tokens=64)
    return Run(
        model, "synthetic", probe_set, settings, generations, outcomes, compute_metrics(outcomes)
    )


def scored_run(
    outcomes: Sequence[ScoredTrace], *, probe_set: str = "s", backend: str = "test"
) -> Run:
    """A run of model ``m`` made of ``outcomes``, its probes their ids in order of first use."""
    ids = dict.fromkeys(outcome.probe_id for outcome in outcomes)
    probes = tuple(Probe(id=i, prompt="q", answer="4", scorer="numeric") for i in ids)
    return Run(
        model="m",
        backend=backend,
        probe_set=ProbeSet(name=probe_set, version="1", probes=probes),
        settings=GenerationSettings(),
        generations=(),
        outcomes=tuple(outcomes),
        metrics=compute_metrics(outcomes),
    )
