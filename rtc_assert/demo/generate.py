"""Greedy generation and measurement for the demo zoo, with plain transformers.

Batched and left-padded; completions are decoded with special tokens kept and cut at the
first EOS, so the ``<think>`` tags survive; ``finish_reason`` is ``length`` when a sequence
used all ``max_new_tokens`` without emitting EOS, else ``stop``. This is the measurement that
the build writes to ``MEASURED.md`` and that ``tests/test_demo_zoo.py`` repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc_assert.probes import Probe, ProbeSet
from rtc_assert.scoring import score
from rtc_assert.traces import TraceStatus, classify


@dataclass(frozen=True)
class Generation:
    """One completion: raw text (tags kept, EOS and padding removed) and why it ended."""

    prompt: str
    text: str
    finish_reason: str
    completion_tokens: int


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
    """The longest completion that stopped on its own, in tokens."""

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
    """Greedy completions of chat ``conversations``, in order."""
    import torch

    prompts = [
        tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=enable_thinking
        )
        for messages in conversations
    ]
    eos = tokenizer.eos_token_id
    results: list[Generation] = []
    for first in range(0, len(prompts), batch_size):
        chunk = prompts[first : first + batch_size]
        batch = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = output[:, batch["input_ids"].shape[1] :].tolist()
        for prompt, ids in zip(chunk, new, strict=True):
            stop = ids.index(eos) if eos in ids else None
            kept = ids if stop is None else ids[:stop]
            text = tokenizer.decode(kept, skip_special_tokens=False)
            text = text.replace(tokenizer.pad_token, "")
            reason = "length" if stop is None and len(ids) >= max_new_tokens else "stop"
            results.append(Generation(prompt, text, reason, len(kept) + (stop is not None)))
    return results


def measure_generations(probes: Sequence[Probe], generations: Sequence[Generation]) -> Measurement:
    """Classify and score one generation per probe into the zoo's table figures."""
    counts = dict.fromkeys(TraceStatus, 0)
    correct = valid_correct = 0
    longest = 0
    for probe, generation in zip(probes, generations, strict=True):
        trace = classify(
            generation.text, finish_reason=generation.finish_reason, prompt=generation.prompt
        )
        counts[trace.status] += 1
        right = score(probe, trace.answer)
        correct += right
        valid_correct += right and trace.status is TraceStatus.VALID
        if generation.finish_reason == "stop":
            longest = max(longest, generation.completion_tokens)
    n = len(probes)
    valid = counts[TraceStatus.VALID]
    return Measurement(
        probes=n,
        vr=valid / n,
        er=counts[TraceStatus.EMPTY] / n,
        tr=counts[TraceStatus.TRUNCATED] / n,
        mr=counts[TraceStatus.MISSING] / n,
        pass_at_1=correct / n,
        rpass_at_1=valid_correct / valid if valid else None,
        max_completion_tokens=longest,
    )


def measure(
    model: Any,
    tokenizer: Any,
    probe_set: ProbeSet | Sequence[Probe],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
) -> Measurement:
    """Generate greedily on every probe and measure the traces and answers."""
    probes = list(probe_set)
    generations = generate(
        model,
        tokenizer,
        [probe.chat_messages() for probe in probes],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    return measure_generations(probes, generations)
