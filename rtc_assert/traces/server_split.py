"""Classify a response whose reasoning was split out of the text, live or from a file.

A server started with a reasoning parser (vLLM ``--reasoning-parser``, SGLang), a hosted API
(DeepSeek, OpenRouter, Together, Fireworks) or Ollama returns the reasoning in a field of its
own and the answer in ``content``; files keep that split (OpenAI batch output, ``vllm
run-batch``, Inspect's reasoning parts, the plain format's ``reasoning``). The tags are gone,
so DESIGN.md's three rules cannot be applied to the text; `SHAPE_RULES` maps each response
shape onto the same four statuses, in order, and says where a shape cannot tell two statuses
apart. The valid-reasoning rate stays exact in every shape but hidden reasoning, where it
cannot be computed at all.

Written against vLLM 0.32 (``deepseek_r1``/``qwen3`` parsers: no closing tag sends the whole
text to ``reasoning`` with ``content`` null; a block closed at the very end gives null
``content`` too), SGLang, and the hosted APIs as ECOSYSTEM.md lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from rtc_assert.traces.classify import (
    STANDARD_TAGS,
    Markup,
    Trace,
    TraceStatus,
    closed_trace,
    missing_trace,
    truncated_trace,
)

HIDDEN = "hidden"
"""The detail of a response whose reasoning came back without its text: the server counted
reasoning tokens but returned none, or returned it encrypted or as a summary only
(OpenRouter's ``reasoning_details`` entries without text, Inspect's redacted parts)."""
PARTLY_HIDDEN = "partly_hidden"
"""Added to the detail of a valid trace whose visible reasoning came with hidden reasoning."""


def is_hidden(detail: str) -> bool:
    """Whether a trace's detail says its reasoning is hidden (`HIDDEN`; not `PARTLY_HIDDEN`,
    a valid trace whose visible reasoning stands)."""
    return HIDDEN in detail.split(",")


MESSAGE_REASONING_FIELDS: Mapping[str, type] = MappingProxyType(
    {
        "reasoning": str,  # vLLM (since its late-2025 rename), OpenRouter, Together
        "reasoning_content": str,  # vLLM before the rename, SGLang, DeepSeek, Fireworks
        "thinking": str,  # Ollama's /api/chat
        "reasoning_details": list,  # OpenRouter: the text of its entries
    }
)
"""The fields a chat-completion message may hold its reasoning in, in the order they are read
(first with a value wins), and the kind of value each holds. One list for a live chat response
and a chat message read from a file (OpenAI batch output, ``vllm run-batch``)."""

HIDDEN_DETAIL_TYPES = frozenset({"reasoning.encrypted", "reasoning.summary"})
"""OpenRouter's ``reasoning_details`` entry types that hold reasoning without its text:
``reasoning.encrypted`` (``data``: the provider's encrypted or redacted reasoning, a thought
signature) and ``reasoning.summary`` (``summary``: a summary of the reasoning, not the trace).
A ``reasoning.text`` entry whose ``text`` is missing or null (a signature alone) is one too.
Written against OpenRouter's documented entry types (``reasoning.text``, ``.summary``,
``.encrypted``); entries of other types are neither text nor hidden reasoning."""


CONTENT_PART_TEXT: Mapping[str, str] = MappingProxyType({"text": "text", "refusal": "refusal"})
"""The chat content part types read as the answer, and the key that holds each one's text:
OpenAI's ``{"type": "text", "text": ...}`` and ``{"type": "refusal", "refusal": ...}`` (the
model's refusal is what it answered). Any other part is refused by `message_content`: an
image, audio or file part holds no text to classify, and a part of a type not listed here may
hold reasoning (Mistral's ``thinking`` chunks), so reading the message without it could
change its trace."""


def message_content(message: Mapping[str, Any]) -> str | None:
    """A chat message's ``content`` as text: a string as it is, null (or absent) as None, and
    a list of content parts as the text of its parts joined in order (`CONTENT_PART_TEXT`;
    ``[]`` is ``""``). One reading for a live chat response and a chat message read from a
    file (OpenAI batch output, ``vllm run-batch``).

    Raises:
        ValueError: content of another kind, or a part that cannot be read: not an object,
            of no type or a type `CONTENT_PART_TEXT` does not list, or without a string text.
            The message names the field (``message.content.N``, N the part's index).
    """
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError(
            "message.content must be a string, a list of content parts or null, "
            f"got {type(content).__name__}"
        )
    texts: list[str] = []
    for index, part in enumerate(content):
        where = f"message.content.{index}"
        if not isinstance(part, dict):
            kind_name = type(part).__name__
            raise ValueError(f"{where} must be a content part (an object), got {kind_name}")
        kind = part.get("type")
        if not isinstance(kind, str) or kind not in CONTENT_PART_TEXT:
            what = "no type" if kind is None else f"type {ascii(kind)[:60]}"
            raise ValueError(
                f"{where} is a content part of {what}, which is not read: only text and "
                "refusal parts are (an image, audio or file part holds no text to classify, "
                "and another part may hold reasoning, as Mistral's thinking chunks do; read "
                "without it, the message could get another trace)"
            )
        key = CONTENT_PART_TEXT[kind]
        text = part.get(key)
        if not isinstance(text, str):
            raise ValueError(
                f"{where}.{key} must be a string (a {kind} part's text), got {type(text).__name__}"
            )
        texts.append(text)
    return "".join(texts)


class MessageReasoning(NamedTuple):
    """A chat message's reasoning as `message_reasoning` reads it."""

    field: str | None
    """The field the reasoning was read from (``reasoning_details`` for hidden reasoning with
    no text beside it), or None."""
    text: str | None
    """The visible reasoning; None when no field has a value."""
    hidden: bool
    """Some of the reasoning came back without its text (`HIDDEN_DETAIL_TYPES`)."""


def _hidden_entry(entry: Any) -> bool:
    """Whether a ``reasoning_details`` entry is reasoning returned without its text."""
    if not isinstance(entry, dict):
        return False
    kind = entry.get("type")
    return kind in HIDDEN_DETAIL_TYPES or (
        kind == "reasoning.text" and not isinstance(entry.get("text"), str)
    )


def message_reasoning(message: Mapping[str, Any]) -> MessageReasoning:
    """(field, text, hidden) of a chat message's reasoning: the first of
    `MESSAGE_REASONING_FIELDS` with a value, and whether part of it is hidden.

    A string field's value is its text, ``""`` included. ``reasoning_details`` has a value when
    one of its entries has a string ``text`` (and is not of a `HIDDEN_DETAIL_TYPES` type): the
    texts joined. A null or a value of another kind is no value.

    The reasoning is hidden when ``reasoning_details`` holds an entry without its text
    (encrypted, a summary, a signature alone). ``message.reasoning`` is then not read:
    OpenRouter writes there the readable text of the entries, a summary's included (OpenAI
    models' summaries), and a summary is not the trace; the entries' own text is. The field
    of a hidden message with no visible text is ``reasoning_details``.
    """
    details = message.get("reasoning_details")
    hidden = isinstance(details, list) and any(_hidden_entry(entry) for entry in details)
    for name, kind in MESSAGE_REASONING_FIELDS.items():
        value = message.get(name)
        if hidden and name == "reasoning":
            continue  # OpenRouter's copy of the entries' text, summaries included
        if kind is str and isinstance(value, str):
            return MessageReasoning(name, value, hidden)
        if kind is list and isinstance(value, list):
            texts = [
                entry["text"]
                for entry in value
                if isinstance(entry, dict)
                and isinstance(entry.get("text"), str)
                and entry.get("type") not in HIDDEN_DETAIL_TYPES
            ]
            if texts:
                return MessageReasoning(name, "".join(texts), hidden)
    return MessageReasoning("reasoning_details" if hidden else None, None, hidden)


@dataclass(frozen=True)
class ShapeRule:
    """One response shape and the status it maps to."""

    shape: str
    status: str
    detail: str
    why: str


SHAPE_RULES: tuple[ShapeRule, ...] = (
    ShapeRule(
        "reasoning tags inside content",
        "by the tags",
        "tags_in_content",
        "the server's parser was off or failed: content is classified as raw text with the "
        "detected markup (a reasoning field beside it adds reasoning_field_ignored)",
    ),
    ShapeRule(
        "reasoning returned without its text (OpenRouter's reasoning_details entries: "
        "encrypted, a summary, a signature alone; Inspect's redacted reasoning parts: "
        "encrypted, or signed with a summary only), with or without visible reasoning beside it",
        "valid, else missing",
        HIDDEN,
        "hidden reasoning, as below: a valid trace made by the visible reasoning alone stays "
        "valid (detail closed,partly_hidden), since hidden text can only add to it; blank or "
        "short visible reasoning says nothing of the hidden part, and a message without an "
        "answer is hidden as the redacted part alone is (and a live o-series response cut at "
        "the cap), so these are hidden. A summary is not read as the trace (nor OpenRouter's "
        "copy of it in message.reasoning)",
    ),
    ShapeRule(
        "thinking budget ran out (reasoning tokens reached the budget)",
        "valid/empty, or truncated",
        "budget",
        "the server closed the block itself; trace_format.budget_counts_as_valid decides",
    ),
    ShapeRule(
        "reasoning and content both present",
        "valid or empty",
        "closed",
        "the block closed; valid when the reasoning has min_reasoning_chars non-blank characters",
    ),
    ShapeRule(
        "blank reasoning of a block the file's writer parsed out of closed tags, content "
        "present (Inspect's <think> parse)",
        "empty",
        "closed",
        "the writer keeps an empty block it parsed (and drops an empty server field), so "
        "blank reasoning is an empty block here, not ambiguous",
    ),
    ShapeRule(
        "reasoning present, content null, finish_reason length",
        "truncated",
        "length",
        "the token cap cut the reasoning",
    ),
    ShapeRule(
        "reasoning present, content null, natural stop",
        "truncated",
        "unterminated_or_misrouted",
        "the block never closed, or the server moved the answer into reasoning (or the "
        "block closed with nothing after it): the shape cannot tell these apart",
    ),
    ShapeRule(
        "no reasoning text, reasoning tokens counted in usage (or reasoning returned "
        "encrypted, above)",
        "missing",
        HIDDEN,
        "hidden reasoning (OpenAI o-series): nothing to classify, so the valid-reasoning "
        "rate cannot be computed and a gate on a trace status fails saying so",
    ),
    ShapeRule(
        "no reasoning, content present, the request turned thinking off",
        "empty",
        "disabled_by_prompt",
        "thinking was switched off by request (chat_template_kwargs, the provider's switch): "
        "the answer came without a block, as a template that closes an empty one gives",
    ),
    ShapeRule(
        "no reasoning (null or empty string), content present",
        "missing",
        "ambiguous",
        "servers fold an empty block and no block into this one shape: empty and missing "
        "cannot be separated (neither is valid, so the valid-reasoning rate is exact)",
    ),
    ShapeRule("no reasoning and no content", "missing", "no_output", "the server sent nothing"),
)
"""The response-shape rules, first match wins; also written into the run record."""


def shape_rules() -> list[dict[str, str]]:
    """`SHAPE_RULES` as plain data, for run records."""
    return [asdict(rule) for rule in SHAPE_RULES]


def classify_split(
    reasoning: str | None,
    content: str | None,
    *,
    finish_reason: str | None,
    reasoning_tokens: int | None = None,
    budget_exhausted: bool = False,
    thinking_disabled: bool = False,
    parsed_block: bool = False,
    hidden: bool = False,
    fmt: Markup | None = None,
    min_reasoning_chars: int = 1,
    budget_counts_as_valid: bool = False,
) -> Trace:
    """Classify one server-split response by `SHAPE_RULES`.

    Args:
        reasoning: the server's reasoning field (None when absent or null).
        content: the answer field (None when null).
        finish_reason: ``"stop"`` or ``"length"`` when known.
        reasoning_tokens: ``usage.completion_tokens_details.reasoning_tokens``, if reported.
        budget_exhausted: the reasoning reached the thinking budget the request set.
        thinking_disabled: the request turned thinking off.
        parsed_block: the reasoning is a closed block the file's writer parsed out of the
            text (Inspect's ``<think>`` parse): blank reasoning is an empty block.
        hidden: reasoning came back without its text (OpenRouter's encrypted or summary
            entries, Inspect's redacted parts) beside ``reasoning``, the visible reasoning if
            any: the trace is hidden unless the visible reasoning and ``content`` make a valid
            trace alone.
        fmt: the markup to find tags left in ``content`` with; default the standard tags.
        budget_counts_as_valid: a budget-closed trace is classified as closed (else truncated).
    """
    if min_reasoning_chars < 1:
        raise ValueError(f"min_reasoning_chars must be at least 1, got {min_reasoning_chars}")
    markup = fmt or STANDARD_TAGS
    if content:
        raw = markup.split(
            content,
            finish_reason=finish_reason,
            prefilled=False,
            min_reasoning_chars=min_reasoning_chars,
        )
        if raw.status is not TraceStatus.MISSING:
            ignored = reasoning or hidden
            extra = ["tags_in_content"] + (["reasoning_field_ignored"] if ignored else [])
            return Trace(raw.status, raw.reasoning, raw.answer, ",".join([raw.detail, *extra]))
    if not reasoning and not parsed_block:
        if reasoning_tokens or hidden:
            return missing_trace(content or "", HIDDEN)
        if content and thinking_disabled:
            return Trace(TraceStatus.EMPTY, "", content.strip(), "disabled_by_prompt")
        return missing_trace(content or "", "ambiguous" if content else "no_output")
    reasoning = reasoning or ""
    if hidden:
        if content is not None:
            trace = closed_trace(reasoning, content, ["closed", PARTLY_HIDDEN], min_reasoning_chars)
            if trace.status is TraceStatus.VALID:
                return trace
        return missing_trace(content or "", HIDDEN)
    if budget_exhausted:
        if budget_counts_as_valid:
            return closed_trace(reasoning, content or "", ["budget"], min_reasoning_chars)
        return Trace(TraceStatus.TRUNCATED, reasoning.strip(), (content or "").strip(), "budget")
    if content is not None:
        return closed_trace(reasoning, content, ["closed"], min_reasoning_chars)
    trace = truncated_trace(reasoning, finish_reason)
    if trace.detail == "unterminated":
        return Trace(trace.status, trace.reasoning, trace.answer, "unterminated_or_misrouted")
    return trace
