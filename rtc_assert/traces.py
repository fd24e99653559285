"""Classify a completion's reasoning trace as valid, empty, truncated or missing.

The rules are DESIGN.md's "Trace classification" section, in order:

1. A closing tag is present: the reasoning is the text before the first closing tag minus
   one opening tag; it is ``valid`` when it has at least ``min_reasoning_chars`` non-blank
   characters, else ``empty``. The answer is the text after that closing tag.
2. An opening tag (or a prefilled prompt) but no closing tag: ``truncated``.
3. Otherwise ``missing``: the whole text is the answer.

A prompt that already closes an empty block (thinking switched off by the chat template)
makes the trace ``empty`` with detail ``disabled_by_prompt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache


class TraceStatus(str, Enum):
    """The four mutually exclusive, exhaustive statuses of a reasoning trace."""

    VALID = "valid"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    MISSING = "missing"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TraceFormat:
    """The tags that open and close a reasoning block; matched case-insensitively."""

    open_tag: str = "<think>"
    close_tag: str = "</think>"

    def __post_init__(self) -> None:
        if not self.open_tag.strip() or not self.close_tag.strip():
            raise ValueError("TraceFormat tags must be non-blank strings")
        if self.open_tag.lower() == self.close_tag.lower():
            raise ValueError(
                f"TraceFormat open_tag and close_tag must differ, both are {self.open_tag!r}"
            )


STANDARD_FORMATS: tuple[TraceFormat, ...] = tuple(
    TraceFormat(f"<{name}>", f"</{name}>") for name in ("think", "thinking", "reasoning", "thought")
)
"""The tag pairs accepted when no format is given."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A classified completion: its status, reasoning, answer and why (``detail``).

    ``detail`` is a comma-separated list of reasons, e.g. ``"closed"``,
    ``"implicit_open,multiple_blocks"``, ``"length"`` or ``"disabled_by_prompt"``.
    """

    status: TraceStatus
    reasoning: str
    answer: str
    detail: str


@dataclass(frozen=True, slots=True)
class PromptState:
    """What the end of a rendered generation prompt says about the trace to come."""

    prefilled: bool
    """The prompt ends with an opening tag: the completion starts inside the reasoning."""
    thinking_disabled: bool
    """The prompt ends by closing an empty block: the template switched thinking off."""


@dataclass(frozen=True)
class _Tags:
    """Compiled patterns for a set of tag pairs."""

    open_any: re.Pattern[str]
    close_any: re.Pattern[str]
    open_by_close: dict[str, re.Pattern[str]]
    prompt_prefilled: re.Pattern[str]
    prompt_closed: re.Pattern[str]


def _alternation(tags: list[str]) -> str:
    # Longest first so that a tag that prefixes another never wins the match.
    return "|".join(re.escape(tag) for tag in sorted(set(tags), key=len, reverse=True))


@lru_cache(maxsize=64)
def _compile(formats: tuple[TraceFormat, ...]) -> _Tags:
    opens = _alternation([f.open_tag for f in formats])
    closes = _alternation([f.close_tag for f in formats])
    return _Tags(
        open_any=re.compile(opens, re.IGNORECASE),
        close_any=re.compile(closes, re.IGNORECASE),
        open_by_close={
            f.close_tag.lower(): re.compile(re.escape(f.open_tag), re.IGNORECASE) for f in formats
        },
        prompt_prefilled=re.compile(f"(?:{opens})\\Z", re.IGNORECASE),
        prompt_closed=re.compile(f"(?:{closes})\\Z", re.IGNORECASE),
    )


def _tags(fmt: TraceFormat | None) -> _Tags:
    return _compile(STANDARD_FORMATS if fmt is None else (fmt,))


def prompt_state(prompt: str, fmt: TraceFormat | None = None) -> PromptState:
    """Detect from a rendered generation prompt whether it is prefilled or thinking is off.

    Prefilled: the prompt ends with an opening tag, optionally followed by whitespace
    (DeepSeek-R1 distills, QwQ, OLMo-3-Think). Thinking disabled: the prompt ends with a
    closing tag that closes a block with nothing in it, or closes no block at all
    (Qwen3 ``enable_thinking=False`` writes ``<think>\\n\\n</think>\\n\\n``; DeepSeek-V3.1
    ends with a bare ``</think>``).
    """
    tags = _tags(fmt)
    tail = prompt.rstrip()
    if tags.prompt_prefilled.search(tail):
        return PromptState(prefilled=True, thinking_disabled=False)
    closing = tags.prompt_closed.search(tail)
    if closing is None:
        return PromptState(prefilled=False, thinking_disabled=False)
    before = tail[: closing.start()]
    previous_close_end = max((m.end() for m in tags.close_any.finditer(before)), default=0)
    block = before[previous_close_end:]
    opener = tags.open_by_close[closing.group(0).lower()]
    openings = list(opener.finditer(block))
    closes_empty_block = not openings or not block[openings[-1].end() :].strip()
    return PromptState(prefilled=False, thinking_disabled=closes_empty_block)


def _truncation_detail(finish_reason: str | None) -> str:
    if finish_reason is None:
        return "unknown"
    return "length" if finish_reason == "length" else "unterminated"


def classify(
    text: str,
    *,
    finish_reason: str | None = None,
    prefilled: bool = False,
    prompt: str | None = None,
    fmt: TraceFormat | None = None,
    min_reasoning_chars: int = 1,
) -> Trace:
    """Classify one completion (special tokens kept, EOS and padding removed).

    Args:
        text: the raw completion text.
        finish_reason: ``"stop"`` or ``"length"`` when the backend reports it.
        prefilled: the generation prompt ended with the opening tag.
        prompt: the rendered generation prompt; when given, ``prefilled`` and the
            thinking-disabled case are also detected from its tail (see `prompt_state`).
        fmt: the reasoning tags; by default any of think/thinking/reasoning/thought.
        min_reasoning_chars: fewest characters of stripped reasoning for ``valid``.
    """
    if min_reasoning_chars < 1:
        raise ValueError(f"min_reasoning_chars must be at least 1, got {min_reasoning_chars}")
    tags = _tags(fmt)
    if prompt is not None:
        state = prompt_state(prompt, fmt)
        if state.thinking_disabled:
            return Trace(TraceStatus.EMPTY, "", text.strip(), "disabled_by_prompt")
        prefilled = prefilled or state.prefilled

    closing = tags.close_any.search(text)
    if closing is None:
        opening = tags.open_any.search(text)
        if opening is None and not prefilled:
            return Trace(TraceStatus.MISSING, "", text.strip(), "no_tags")
        reasoning = text if opening is None else text[: opening.start()] + text[opening.end() :]
        reasons = [_truncation_detail(finish_reason)]
        if opening is not None and text[: opening.start()].strip():
            reasons.append("text_before_open")
        return Trace(TraceStatus.TRUNCATED, reasoning.strip(), "", ",".join(reasons))

    before, after = text[: closing.start()], text[closing.end() :]
    reasons = []
    opening = tags.open_by_close[closing.group(0).lower()].search(before)
    if opening is None:
        reasoning = before
        if not prefilled:
            reasons.append("implicit_open")
    else:
        reasoning = before[: opening.start()] + before[opening.end() :]
        if before[: opening.start()].strip():
            reasons.append("text_before_open")
    if tags.open_any.search(after) or tags.close_any.search(after):
        reasons.append("multiple_blocks")
    reasoning = reasoning.strip()
    if len(reasoning) >= min_reasoning_chars:
        status = TraceStatus.VALID
    else:
        status = TraceStatus.EMPTY
        reasons.insert(0, "below_min_length" if reasoning else "blank")
    return Trace(status, reasoning, after.strip(), ",".join(reasons) or "closed")
