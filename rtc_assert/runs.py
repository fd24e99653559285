"""A run: one model's generations on one probe set, classified, scored and measured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtc_assert.generation.requests import (
    MESSAGE_BACKENDS,
    Backend,
    Generation,
    GenerationSettings,
    build_requests,
    check_prompt_lengths,
)
from rtc_assert.metrics import RunMetrics, compute_metrics
from rtc_assert.probes.probe import ProbeSet
from rtc_assert.scoring import ScoredTrace, score_trace
from rtc_assert.traces.classify import Markup, classify_many
from rtc_assert.traces.detection import TraceSetup, detect_template
from rtc_assert.traces.server_split import classify_split


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
    probes_available: int | None = None
    """The full probe set's size when early stopping generated only the first probes."""
    trace: TraceSetup | None = None
    """The markup the generations were classified with, and what was detected."""
    notes: tuple[str, ...] = ()
    """Warnings for the report, e.g. that a generations file gave no finish reasons."""


def score_generations(
    probe_set: ProbeSet,
    generations: Sequence[Generation],
    *,
    fmt: Markup | None = None,
    prefilled: bool | None = None,
    min_reasoning_chars: int = 1,
    budget_counts_as_valid: bool = False,
    tokenizer: Any = None,
) -> list[ScoredTrace]:
    """Classify and score each generation; count tokens when a tokenizer is given.

    Raw text is classified by `classify_many`, a server's reasoning/content split by
    `classify_split`. ``prefilled`` None reads the prefill from each generation's prompt.
    Reasoning tokens are the server's count where it reported one, else the tokenizer's
    (unknown, None, for hidden reasoning: its text is not there to count).
    """
    probes = probe_set.by_id()
    raw = [generation for generation in generations if generation.split is None]
    raw_traces = iter(
        classify_many(
            [generation.text for generation in raw],
            finish_reasons=[generation.finish_reason for generation in raw],
            prompts=[generation.prompt for generation in raw],
            prefilled=prefilled,
            fmt=fmt,
            min_reasoning_chars=min_reasoning_chars,
        )
    )
    traces = [
        next(raw_traces)
        if generation.split is None
        else classify_split(
            generation.split.reasoning,
            generation.split.content,
            finish_reason=generation.finish_reason,
            reasoning_tokens=generation.reasoning_tokens,
            budget_exhausted=generation.split.budget_exhausted,
            thinking_disabled=generation.split.thinking_disabled,
            parsed_block=generation.split.parsed_block,
            hidden=generation.split.hidden,
            unclosed=generation.split.unclosed,
            fmt=fmt,
            min_reasoning_chars=min_reasoning_chars,
            budget_counts_as_valid=budget_counts_as_valid,
        )
        for generation in generations
    ]
    counted = _token_counts(tokenizer, [trace.reasoning for trace in traces])
    reasoning_tokens = [
        generation.reasoning_tokens
        if generation.reasoning_tokens is not None or _hidden(generation)
        else count
        for generation, count in zip(generations, counted, strict=True)
    ]
    answer_tokens = _token_counts(tokenizer, [trace.answer for trace in traces])
    return [
        score_trace(
            probes[generation.probe_id],
            trace,
            sample=generation.sample,
            reasoning_tokens=reasoning,
            answer_tokens=answer,
        )
        for generation, trace, reasoning, answer in zip(
            generations, traces, reasoning_tokens, answer_tokens, strict=True
        )
    ]


def _hidden(generation: Generation) -> bool:
    """Whether part of a generation's reasoning came back without its text: counting the
    visible part would undercount it, so only the server's count is kept (else None)."""
    return generation.split is not None and generation.split.hidden


def _token_counts(tokenizer: Any, texts: list[str]) -> list[int | None]:
    """Tokens in each text, in one batched call; all None without a tokenizer."""
    if tokenizer is None:
        return [None] * len(texts)
    nonblank = [text for text in texts if text]
    encoded = iter(tokenizer(nonblank, add_special_tokens=False).input_ids if nonblank else [])
    return [len(next(encoded)) if text else 0 for text in texts]


def run_model(
    backend: Backend,
    probe_set: ProbeSet,
    settings: GenerationSettings,
    *,
    model: str,
    trace: TraceSetup | None = None,
    confidence: float = 0.95,
    context: int | None = None,
) -> Run:
    """Generate on every probe of ``probe_set`` and measure the result.

    ``trace`` is the markup to classify with and the template's thinking switch; by
    default both are detected from the backend's chat template. ``context``, the model's
    positions, if known: prompts that do not fit are refused before anything is generated.
    """
    if trace is None:
        detected = detect_template(backend.tokenizer)
        trace = TraceSetup(detected, detected.markup)
    renders = backend.name not in MESSAGE_BACKENDS
    requests = build_requests(
        backend.tokenizer if renders else None,
        probe_set.probes,
        settings,
        model=model,
        switch=trace.detected.switch,
        markup=trace.markup,
    )
    if renders and context is not None:
        check_prompt_lengths(
            backend.tokenizer, requests, settings, context, probe_set=probe_set.name, model=model
        )
    return measured_run(
        backend,
        probe_set,
        backend.generate(requests, settings),
        settings,
        model=model,
        trace=trace,
        confidence=confidence,
    )


def measured_run(
    backend: Backend,
    probe_set: ProbeSet,
    generations: Sequence[Generation],
    settings: GenerationSettings,
    *,
    model: str,
    trace: TraceSetup,
    confidence: float = 0.95,
) -> Run:
    """The run of ``backend``'s ``generations`` on ``probe_set``: classified with ``trace``,
    scored (tokens counted with the backend's tokenizer) and measured."""
    outcomes = tuple(
        score_generations(
            probe_set,
            generations,
            fmt=trace.markup,
            prefilled=trace.prefilled,
            min_reasoning_chars=trace.min_reasoning_chars,
            budget_counts_as_valid=trace.budget_counts_as_valid,
            tokenizer=backend.tokenizer,
        )
    )
    return Run(
        model=model,
        backend=backend.name,
        probe_set=probe_set,
        settings=settings,
        generations=tuple(generations),
        outcomes=outcomes,
        metrics=compute_metrics(outcomes, confidence),
        trace=trace,
    )


def merge_runs(parts: Sequence[Run], probe_set: ProbeSet, confidence: float) -> Run:
    """One run from runs of one model on disjoint parts of ``probe_set``, in its probe order.

    Also takes a single run and a subset of its probes: the result keeps only those.
    """
    if not parts:
        raise ValueError("merge_runs needs at least one run")
    position = {probe.id: index for index, probe in enumerate(probe_set.probes)}

    def order(items: Sequence[Any]) -> tuple[Any, ...]:
        kept = [item for item in items if item.probe_id in position]
        return tuple(sorted(kept, key=lambda item: (position[item.probe_id], item.sample)))

    outcomes = order([outcome for part in parts for outcome in part.outcomes])
    return Run(
        model=parts[0].model,
        backend=parts[0].backend,
        probe_set=probe_set,
        settings=parts[0].settings,
        generations=order([generation for part in parts for generation in part.generations]),
        outcomes=outcomes,
        metrics=compute_metrics(outcomes, confidence),
        trace=parts[0].trace,
        notes=parts[0].notes,
    )
