"""Greedy generation and measurement for the demo zoo, through the gate's own pipeline.

Models in memory (the build's) or loaded from the zoo are wrapped in the transformers
backend, and their generations classified, scored and measured exactly as a gate does, so
``MEASURED.md`` (written by the build, repeated by ``tests/test_demo_zoo.py``) states what
``rtc-assert`` itself sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc_assert.generation.backends.transformers_backend import TransformersBackend
from rtc_assert.generation.requests import Generation, GenerationSettings, build_requests
from rtc_assert.metrics import compute_metrics
from rtc_assert.probes.probe import Message, Probe, ProbeSet
from rtc_assert.runs import score_generations


@dataclass(frozen=True)
class Measurement:
    """The trace and answer figures of one model on one probe set (one greedy sample each)."""

    probes: int
    vr: float
    er: float
    tr: float
    mr: float
    pass_at_1: float
    rpass_at_1: float | None
    max_completion_tokens: int
    """The longest completion that stopped on its own, in tokens, its EOS included."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load(path: str | Path) -> tuple[Any, Any]:
    """The model (float32, eval mode) and tokenizer of a checkpoint folder, offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype="float32")
    model.eval()
    return model, tokenizer


def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
    enable_thinking: bool = True,
) -> list[Generation]:
    """Greedy completions of chat ``conversations``, in order, by the transformers backend."""
    probes = [
        Probe(
            id=str(index),
            messages=tuple(Message.model_validate(message) for message in messages),
            answer="-",
            scorer="exact",
        )
        for index, messages in enumerate(conversations)
    ]
    return _generate(model, tokenizer, probes, max_new_tokens, batch_size, enable_thinking)


def _generate(
    model: Any,
    tokenizer: Any,
    probes: Sequence[Probe],
    max_new_tokens: int,
    batch_size: int,
    enable_thinking: bool = True,
) -> list[Generation]:
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, batch_size=batch_size, enable_thinking=enable_thinking
    )
    backend = TransformersBackend.from_loaded(model, tokenizer, name="demo model")
    requests = build_requests(tokenizer, probes, settings, model="demo model")
    return backend.generate(requests, settings)


def measure(
    model: Any,
    tokenizer: Any,
    probe_set: ProbeSet | Sequence[Probe],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
) -> Measurement:
    """Generate greedily on every probe and measure the traces and answers."""
    probes = tuple(probe_set)
    generations = _generate(model, tokenizer, probes, max_new_tokens, batch_size)
    outcomes = score_generations(ProbeSet(name="measured", version="-", probes=probes), generations)
    metrics = compute_metrics(outcomes)
    rpass = metrics.reasoning_conditioned_accuracy
    return Measurement(
        probes=metrics.probes,
        vr=metrics.valid_rate.value,
        er=metrics.empty_rate.value,
        tr=metrics.truncated_rate.value,
        mr=metrics.missing_rate.value,
        pass_at_1=metrics.answer_accuracy.value,
        rpass_at_1=None if rpass is None else rpass.value,
        # + 1: the EOS token that ended the completion also spends the budget.
        max_completion_tokens=max(
            (g.completion_tokens + 1 for g in generations if g.finish_reason == "stop"), default=0
        ),
    )
