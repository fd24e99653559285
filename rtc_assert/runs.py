"""A run: one model's generations on one probe set, classified, scored and measured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtc_assert.generation import Backend, Generation, GenerationSettings, build_requests
from rtc_assert.metrics import RunMetrics, compute_metrics
from rtc_assert.probes import ProbeSet
from rtc_assert.scoring import ScoredTrace, score_trace
from rtc_assert.traces import TraceFormat, classify


@dataclass(frozen=True)
class Run:
    """Everything one model produced on one probe set, and what it measured."""

    model: str
    backend: str
    probe_set: ProbeSet
    settings: GenerationSettings
    generations: tuple[Generation, ...]
    outcomes: tuple[ScoredTrace, ...]
    metrics: RunMetrics


def score_generations(
    probe_set: ProbeSet,
    generations: Sequence[Generation],
    *,
    fmt: TraceFormat | None = None,
    min_reasoning_chars: int = 1,
    tokenizer: Any = None,
) -> list[ScoredTrace]:
    """Classify and score each generation; count tokens when a tokenizer is given."""
    probes = probe_set.by_id()

    def tokens(text: str) -> int | None:
        if tokenizer is None:
            return None
        return len(tokenizer(text, add_special_tokens=False).input_ids) if text else 0

    outcomes = []
    for generation in generations:
        trace = classify(
            generation.text,
            finish_reason=generation.finish_reason,
            prefilled=generation.prefilled,
            prompt=generation.prompt,
            fmt=fmt,
            min_reasoning_chars=min_reasoning_chars,
        )
        outcomes.append(
            score_trace(
                probes[generation.probe_id],
                trace,
                sample=generation.sample,
                reasoning_tokens=tokens(trace.reasoning),
                answer_tokens=tokens(trace.answer),
            )
        )
    return outcomes


def run_model(
    backend: Backend,
    probe_set: ProbeSet,
    settings: GenerationSettings,
    *,
    model: str,
    fmt: TraceFormat | None = None,
    min_reasoning_chars: int = 1,
    confidence: float = 0.95,
) -> Run:
    """Generate on every probe of ``probe_set`` and measure the result."""
    requests = build_requests(backend.tokenizer, probe_set.probes, settings, model=model)
    generations = tuple(backend.generate(requests, settings))
    outcomes = tuple(
        score_generations(
            probe_set,
            generations,
            fmt=fmt,
            min_reasoning_chars=min_reasoning_chars,
            tokenizer=backend.tokenizer,
        )
    )
    return Run(
        model=model,
        backend=backend.name,
        probe_set=probe_set,
        settings=settings,
        generations=generations,
        outcomes=outcomes,
        metrics=compute_metrics(outcomes, confidence),
    )
