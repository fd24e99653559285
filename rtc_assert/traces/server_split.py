"""Classify a response whose reasoning was split out of the text, live or from a file.

A server started with a reasoning parser (vLLM ``--reasoning-parser``, SGLang), a hosted API
(DeepSeek, OpenRouter, Together, Fireworks) or Ollama returns the reasoning in a field of its
own and the answer in ``content``; Mistral's API returns it as ``thinking`` chunks of the
content, before the answer's text chunks (`message_reasoning`). Files keep that split (OpenAI
batch output, ``vllm run-batch``, Inspect's reasoning parts, the plain format's
``reasoning``). The tags are gone, so DESIGN.md's three rules cannot be applied to the text;
`SHAPE_RULES` maps each response shape onto the same four statuses, in order, and says where
a shape cannot tell two statuses apart. The valid-reasoning rate stays exact in every shape
but hidden reasoning, where it cannot be computed at all.

Written against vLLM 0.32 (``deepseek_r1``/``qwen3`` parsers: no closing tag sends the whole
text to ``reasoning`` with ``content`` null; a block closed at the very end gives null
``content`` too), SGLang, the hosted APIs as ECOSYSTEM.md lists them, and Mistral's
OpenAPI spec (``ThinkChunk``) and reasoning docs.
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
model's refusal is what it answered). Mistral's ``thinking`` chunks are the reasoning
(`THINKING_CHUNK`). Any other part is refused by `message_content`: an image, audio or file
part holds no text to classify, and a part of a type not listed here may hold reasoning, so
reading the message without it could change its trace."""

THINKING_CHUNK = "thinking"
"""The content part type of Mistral's reasoning (its ``ThinkChunk``): ``{"type": "thinking",
"thinking": [chunks], "closed": bool}``, before the answer's text chunks. Its ``thinking`` is
a list of text chunks (``{"type": "text", "text": ...}``), joined, and of reference chunks
(`THINKING_REFERENCE_TYPES`), skipped. ``closed`` defaults to true; false says the block never
ended. True is not taken to say the block ended: the spec says ``closed`` is "currently only
used for prefixing", so a thinking chunk with no text after it is read as a reasoning field
beside a null content is (truncated, the finish reason giving the detail). Written against
Mistral's OpenAPI spec (``ThinkChunk``, ``ThinkingInner``) and its reasoning docs (Magistral
``-2507``/``-2509``, Mistral Small and Medium with ``reasoning_effort``; Magistral ``-2506``
wrote ``<think>`` tags into a string content instead, read as tags in the content)."""

CONTENT_THINKING = "content.thinking"
"""The ``reasoning_field`` of reasoning read from the content's thinking chunks."""

THINKING_REFERENCE_TYPES = frozenset({"reference", "tool_reference"})
"""Chunks of a thinking chunk that cite a source and hold none of the model's reasoning text:
Mistral's ``reference`` (``reference_ids``, ids of tool results) and ``tool_reference`` (a
tool result's ``title``, ``url``, ``description``). They are skipped, as a text part's
``annotations`` are; the text chunks around them are the reasoning."""


class _Content(NamedTuple):
    """A message's ``content`` as `_read_content` reads it."""

    answer: str | None
    """The answer's text; None when null, or when no text part follows the thinking chunks."""
    thinking: str | None
    """The thinking chunks' text joined; None without a thinking chunk."""
    closed: bool
    """Whether the last thinking chunk closed (``closed``, default true)."""
    first: int
    """The index of the first thinking chunk (0 without one)."""
    last: int
    """The index of the last thinking chunk (0 without one)."""


def _thinking_text(part: Mapping[str, Any], where: str) -> str:
    """The text of a thinking chunk: its text chunks joined, its reference chunks skipped."""
    chunks = part.get("thinking")
    if not isinstance(chunks, list):
        raise ValueError(
            f"{where}.thinking must be a list of chunks (a thinking chunk's reasoning), "
            f"got {type(chunks).__name__}"
        )
    texts: list[str] = []
    for index, chunk in enumerate(chunks):
        at = f"{where}.thinking.{index}"
        if not isinstance(chunk, dict):
            raise ValueError(f"{at} must be a chunk (an object), got {type(chunk).__name__}")
        kind = chunk.get("type")
        if kind in THINKING_REFERENCE_TYPES:
            continue
        if kind != "text":
            what = "no type" if kind is None else f"type {ascii(kind)[:60]}"
            raise ValueError(
                f"{at} is a chunk of {what}, which is not read: a thinking chunk's text chunks "
                "are its reasoning and its reference chunks are skipped; read without another "
                "chunk, the reasoning could get another trace"
            )
        text = chunk.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{at}.text must be a string, got {type(text).__name__}")
        texts.append(text)
    return "".join(texts)


def _closed(part: Mapping[str, Any], where: str) -> bool:
    """A thinking chunk's ``closed``: true when absent or null (the spec's default)."""
    closed = part.get("closed")
    if closed is None:
        return True
    if not isinstance(closed, bool):
        raise ValueError(f"{where}.closed must be true or false, got {type(closed).__name__}")
    return closed


def _read_content(message: Mapping[str, Any]) -> _Content:
    """A message's ``content``: the answer and the thinking chunks' reasoning, read once for
    `message_content` and `message_reasoning` (see them for what is refused)."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return _Content(content, None, True, 0, 0)
    if not isinstance(content, list):
        raise ValueError(
            "message.content must be a string, a list of content parts or null, "
            f"got {type(content).__name__}"
        )
    texts: list[str] = []  # the answer's parts, since the last thinking chunk
    answer_at: int | None = None  # the first part of the answer with non-blank text
    thinking: list[str] | None = None
    closed, first, last = True, 0, 0
    for index, part in enumerate(content):
        where = f"message.content.{index}"
        if not isinstance(part, dict):
            kind_name = type(part).__name__
            raise ValueError(f"{where} must be a content part (an object), got {kind_name}")
        kind = part.get("type")
        if kind == THINKING_CHUNK:
            if answer_at is not None:
                raise ValueError(
                    f"{where} is a thinking chunk after the answer's text "
                    f"(message.content.{answer_at}): reasoning that comes after the answer "
                    "began is not one block before it, so the message cannot be split into "
                    "reasoning and answer"
                )
            if thinking is None:
                thinking, first = [], index
            thinking.append(_thinking_text(part, where))
            closed, last = _closed(part, where), index
            texts = []  # blank text before a thinking chunk: stripped away either way
            continue
        if not isinstance(kind, str) or kind not in CONTENT_PART_TEXT:
            what = "no type" if kind is None else f"type {ascii(kind)[:60]}"
            raise ValueError(
                f"{where} is a content part of {what}, which is not read: only text and "
                "refusal parts (the answer) and thinking chunks (the reasoning) are; an "
                "image, audio or file part holds no text to classify, and another part may "
                "hold reasoning (read without it, the message could get another trace)"
            )
        key = CONTENT_PART_TEXT[kind]
        text = part.get(key)
        if not isinstance(text, str):
            raise ValueError(
                f"{where}.{key} must be a string (a {kind} part's text), got {type(text).__name__}"
            )
        if text.strip() and answer_at is None:
            answer_at = index
            if thinking is not None and not closed:
                raise ValueError(
                    f"{where} is text after a thinking chunk that did not close "
                    f"(message.content.{last}.closed is false): a block that never ended has "
                    "no answer after it, so the message cannot be split into reasoning and answer"
                )
        texts.append(text)
    if thinking is None:
        return _Content("".join(texts), None, True, 0, 0)
    return _Content("".join(texts) if texts else None, "".join(thinking), closed, first, last)


def message_content(message: Mapping[str, Any]) -> str | None:
    """A chat message's ``content`` as the answer's text: a string as it is, null (or absent)
    as None, and a list of content parts as the text of its text and refusal parts joined in
    order (`CONTENT_PART_TEXT`; ``[]`` is ``""``). Thinking chunks (Mistral's, `THINKING_CHUNK`)
    are the reasoning, read by `message_reasoning`: the answer is the parts after them, and
    None when no part follows them (the answer never came). One reading for a live chat
    response and a chat message read from a file (OpenAI batch output, ``vllm run-batch``).

    Raises:
        ValueError: content of another kind, or a part that cannot be read: not an object, of
            no type or a type neither `CONTENT_PART_TEXT` lists nor a thinking chunk, without
            a string text; a thinking chunk whose reasoning cannot be read (`message_reasoning`),
            one after the answer's non-blank text, or text after a thinking chunk that did not
            close. The message names the field (``message.content.N``, N the part's index;
            ``message.content.N.thinking.M`` inside a thinking chunk).
    """
    return _read_content(message).answer


class MessageReasoning(NamedTuple):
    """A chat message's reasoning as `message_reasoning` reads it."""

    field: str | None
    """The field the reasoning was read from (``reasoning_details`` for hidden reasoning with
    no text beside it, `CONTENT_THINKING` for the content's thinking chunks), or None."""
    text: str | None
    """The visible reasoning; None when no field has a value."""
    hidden: bool
    """Some of the reasoning came back without its text (`HIDDEN_DETAIL_TYPES`)."""
    block: bool = False
    """The reasoning came as a block of its own, kept even when empty (thinking chunks): blank
    reasoning is an empty block, not the ambiguous shape of a blank field."""
    unclosed: bool = False
    """The block never ended (the last thinking chunk's ``closed`` is false)."""


def _hidden_entry(entry: Any) -> bool:
    """Whether a ``reasoning_details`` entry is reasoning returned without its text."""
    if not isinstance(entry, dict):
        return False
    kind = entry.get("type")
    return kind in HIDDEN_DETAIL_TYPES or (
        kind == "reasoning.text" and not isinstance(entry.get("text"), str)
    )


def _field_reasoning(message: Mapping[str, Any]) -> MessageReasoning:
    """The reasoning of `MESSAGE_REASONING_FIELDS`, as `message_reasoning` reads them."""
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


def message_reasoning(message: Mapping[str, Any]) -> MessageReasoning:
    """(field, text, hidden, block, unclosed) of a chat message's reasoning: the content's
    thinking chunks, else the first of `MESSAGE_REASONING_FIELDS` with a value, and whether
    part of it is hidden.

    Thinking chunks (Mistral's, `THINKING_CHUNK`): their text joined in order, as one block
    (``block``: an empty one is an empty block), field `CONTENT_THINKING`. Several thinking
    chunks before the answer are one reasoning, and the last one's ``closed`` says whether it
    ended (``unclosed`` when false). A reasoning field beside them is read only as a copy: the
    same text is read once; another text, or hidden entries, are refused.

    A string field's value is its text, ``""`` included. ``reasoning_details`` has a value when
    one of its entries has a string ``text`` (and is not of a `HIDDEN_DETAIL_TYPES` type): the
    texts joined. A null or a value of another kind is no value.

    The reasoning is hidden when ``reasoning_details`` holds an entry without its text
    (encrypted, a summary, a signature alone). ``message.reasoning`` is then not read:
    OpenRouter writes there the readable text of the entries, a summary's included (OpenAI
    models' summaries), and a summary is not the trace; the entries' own text is. The field
    of a hidden message with no visible text is ``reasoning_details``.

    Raises:
        ValueError: content `message_content` refuses; a thinking chunk whose reasoning cannot
            be read (``thinking`` not a list, a chunk of it not an object, of no type or a
            type neither text nor a reference, a text chunk without a string text: named
            ``message.content.N.thinking.M``; ``closed`` not a boolean); thinking chunks beside
            a reasoning field of another text, or beside hidden entries.
    """
    content = _read_content(message)
    fields = _field_reasoning(message)
    if content.thinking is None:
        return fields
    if fields.field is not None and (fields.hidden or fields.text != content.thinking):
        what = (
            "reasoning without its text (entries without text)"
            if fields.hidden
            else "another reasoning text"
        )
        raise ValueError(
            f"message.content.{content.first} is a thinking chunk and message.{fields.field} "
            f"holds {what}: which of the two is the trace cannot be told (a field that copies "
            "the thinking chunks' text is read once)"
        )
    return MessageReasoning(
        CONTENT_THINKING, content.thinking, False, block=True, unclosed=not content.closed
    )


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
        "a reasoning block the server marked unclosed (Mistral's thinking chunk with closed "
        "false), finish_reason length",
        "truncated",
        "length",
        "the token cap cut the reasoning; no answer follows a block that never ended (text "
        "after it is refused)",
    ),
    ShapeRule(
        "a reasoning block the server marked unclosed (Mistral's thinking chunk with closed "
        "false), natural stop",
        "truncated",
        "unterminated",
        "the server said the block never ended, so it is not an answer misrouted into the "
        "reasoning (which a null content cannot rule out, below); no answer follows it (text "
        "after it is refused)",
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
        "blank reasoning of a block kept as a block, content present: parsed by the file's "
        "writer out of closed tags (Inspect's <think> parse), or a thinking chunk of the "
        "content (Mistral)",
        "empty",
        "closed",
        "the writer keeps an empty block it parsed (and drops an empty server field), and a "
        "thinking chunk is there only when the model opened a block, so blank reasoning is "
        "an empty block here, not ambiguous",
    ),
    ShapeRule(
        "reasoning present, content null (thinking chunks with no text after them), "
        "finish_reason length",
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
    unclosed: bool = False,
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
        parsed_block: the reasoning came as a block of its own, kept even when empty: a
            closed block the file's writer parsed out of the text (Inspect's ``<think>``
            parse), or thinking chunks (Mistral's): blank reasoning is an empty block.
        hidden: reasoning came back without its text (OpenRouter's encrypted or summary
            entries, Inspect's redacted parts) beside ``reasoning``, the visible reasoning if
            any: the trace is hidden unless the visible reasoning and ``content`` make a valid
            trace alone.
        unclosed: the server said the reasoning block never ended (Mistral's thinking chunk
            with ``closed: false``): truncated, the finish reason giving the detail.
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
    if not reasoning and not parsed_block and not unclosed:
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
    if unclosed:
        return truncated_trace(reasoning, finish_reason)
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
