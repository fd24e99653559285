"""Classify a completion's reasoning trace as valid, empty, truncated or missing.

The rules are DESIGN.md's "Trace classification" section, in order:

1. A closing tag is present: the reasoning is the text before the first closing tag minus
   one opening tag; it is ``valid`` when it has at least ``min_reasoning_chars`` non-blank
   characters, else ``empty``. The answer is the text after that closing tag.
2. An opening tag (or a prefilled prompt) but no closing tag: ``truncated``.
3. Otherwise ``missing``: the whole text is the answer.

A prompt that already closes an empty block (thinking switched off by the chat template)
makes the trace ``empty`` with detail ``disabled_by_prompt``.

Tag pairs (`TraceFormat`, `TagSet`) are one markup; others that are not a pair of tags
(gpt-oss harmony channels, Granite's ``<response>``, Apriel's final-response marker) live in
`rtc_assert.traces.markups`. Each is a `Markup` with one ``split`` path into the same four statuses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any, NamedTuple, Protocol, runtime_checkable


class TraceStatus(str, Enum):
    """The four mutually exclusive, exhaustive statuses of a reasoning trace."""

    VALID = "valid"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    MISSING = "missing"

    def __str__(self) -> str:
        return self.value


class Trace(NamedTuple):
    """A classified completion: its status, reasoning, answer and why (``detail``).

    ``detail`` is a comma-separated list of reasons, e.g. ``"closed"``,
    ``"implicit_open,multiple_blocks"``, ``"length"`` or ``"disabled_by_prompt"``.
    Immutable; a named tuple because files of millions of outputs build one per line.
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


@runtime_checkable
class Markup(Protocol):
    """How one family of models marks its reasoning, with one classify path."""

    name: str
    """``tags``, ``harmony``, ``think_response`` or ``final_marker``."""

    def prompt_state(self, prompt: str) -> PromptState:
        """Whether a rendered generation prompt is prefilled or switches thinking off."""
        ...

    def split(
        self, text: str, *, finish_reason: str | None, prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        """Classify one completion into the four statuses."""
        ...

    def describe(self) -> dict[str, Any]:
        """The markup as plain data, for run records."""
        ...


def closed_trace(
    reasoning: str, answer: str, reasons: Sequence[str], min_reasoning_chars: int
) -> Trace:
    """Rule 1: a block that ended; ``valid`` or ``empty`` by the length of its reasoning."""
    reasoning = reasoning.strip()
    reasons = list(reasons)
    if len(reasoning) >= min_reasoning_chars:
        status = TraceStatus.VALID
    else:
        status = TraceStatus.EMPTY
        reasons.insert(0, "below_min_length" if reasoning else "blank")
    return Trace(status, reasoning, answer.strip(), ",".join(reasons) or "closed")


def truncated_trace(
    reasoning: str, finish_reason: str | None, reasons: Sequence[str] = ()
) -> Trace:
    """Rule 2: a block that never ended; the detail says how generation stopped."""
    if finish_reason is None:
        how = "unknown"
    else:
        how = "length" if finish_reason == "length" else "unterminated"
    detail = ",".join([how, *reasons]) if reasons else how
    return Trace(TraceStatus.TRUNCATED, reasoning.strip(), "", detail)


def missing_trace(answer: str, detail: str = "no_tags") -> Trace:
    """Rule 3: no reasoning block at all; the whole text is the answer."""
    return Trace(TraceStatus.MISSING, "", answer.strip(), detail)


_IMPLICIT = ("implicit_open",)


@dataclass(frozen=True)
class _Tags:
    """Compiled patterns for a set of tag pairs."""

    open_any: re.Pattern[str]
    close_any: re.Pattern[str]
    any_tag: re.Pattern[str]
    leading_open: re.Pattern[str]
    """An opening tag after nothing but whitespace, anchored at the start (``match``)."""
    open_by_close: dict[str, re.Pattern[str]]
    open_tag_of: dict[str, str] | None
    """Lowercased close tag to its lowercased open tag; None for a single pair."""
    prompt_prefilled: re.Pattern[str]
    prompt_closed: re.Pattern[str]
    lead: str | None
    """The character every tag starts with, for `TagSet.split_many`; see `_lead_character`."""
    exact_open: str | tuple[()]
    exact_close: str | tuple[()]
    """One pair's tags as written, a test cheaper than the case-blind regex, where ``lead``
    is set; else ``()``, which ``str.startswith`` never matches."""

    def close_key(self, closing: str) -> str:
        """The lowercased close tag (the key of ``open_by_close``) that ``closing`` matched.

        Its lowercase, unless the regex engine folded a character that ``lower`` keeps (the
        long s matches ``s``): then the first close tag that matches it whole.
        """
        key = closing.lower()
        if key in self.open_by_close:
            return key
        return next(
            tag
            for tag in self.open_by_close
            if re.fullmatch(re.escape(tag), closing, re.IGNORECASE)
        )


def _alternation(tags: list[str]) -> str:
    # Longest first so that a tag that prefixes another never wins the match.
    return "|".join(re.escape(tag) for tag in sorted(set(tags), key=len, reverse=True))


@dataclass(frozen=True)
class TagSet:
    """One or more open/close tag pairs, matched case-insensitively; any pair marks a block."""

    pairs: tuple[TraceFormat, ...]
    name = "tags"

    def prompt_state(self, prompt: str) -> PromptState:
        """Prefilled: the prompt ends with an opening tag (whitespace after it allowed).

        Thinking disabled: it ends with a closing tag that closes an empty block, or no
        block at all (Qwen3 ``enable_thinking=False``; DeepSeek-V3.1's bare ``</think>``).
        """
        tags = self._tags
        tail = prompt.rstrip()
        if tags.prompt_prefilled.search(tail):
            return PromptState(prefilled=True, thinking_disabled=False)
        closing = tags.prompt_closed.search(tail)
        if closing is None:
            return PromptState(prefilled=False, thinking_disabled=False)
        before = tail[: closing.start()]
        previous_close_end = max((m.end() for m in tags.close_any.finditer(before)), default=0)
        block = before[previous_close_end:]
        openings = list(tags.open_by_close[tags.close_key(closing.group(0))].finditer(block))
        closes_empty_block = not openings or not block[openings[-1].end() :].strip()
        return PromptState(prefilled=False, thinking_disabled=closes_empty_block)

    def split(
        self, text: str, *, finish_reason: str | None, prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        """DESIGN.md's three rules on the first closing tag."""
        return self.split_many((text,), (finish_reason,), (prefilled,), min_reasoning_chars)[0]

    def split_many(
        self,
        texts: Sequence[str],
        finish_reasons: Sequence[str | None],
        prefilled: Sequence[bool],
        min_reasoning_chars: int,
    ) -> list[Trace]:
        """`split` of each text: the hot path of every run and file.

        The common shapes take the fewest steps here: an opener after nothing but
        whitespace, its closer, then only the answer; an opener and nothing after it; no tag
        at all. Where every tag starts with one character found nowhere else in the tags
        (``<``, ``[``), a tag can only begin at that character, so ``str.find`` (memchr) walks the
        text instead of the regex engine. `_closed` and `_unclosed` hold the full rules.
        """
        tags = self._tags
        lead, exact_open, exact_close = tags.lead, tags.exact_open, tags.exact_close
        open_length, close_length = len(exact_open), len(exact_close)
        find, starts = str.find, str.startswith
        close, close_at, leading_open, any_tag = (
            tags.close_any.search,
            tags.close_any.match,
            tags.leading_open.match,
            tags.any_tag.search,
        )
        open_tag_of = tags.open_tag_of
        closed, unclosed = self._closed, self._unclosed
        new_trace, valid = tuple.__new__, TraceStatus.VALID
        traces: list[Trace] = []
        add = traces.append
        for text, finish, prefill in zip(texts, finish_reasons, prefilled, strict=True):
            if lead is not None:  # a tag can only start at `lead`: str.find (memchr) finds it
                opener = None
                if starts(text, exact_open):
                    after_open = open_length
                elif (opener := leading_open(text)) is not None:
                    after_open = opener.end()
                else:  # no leading opener: opened by the prompt, implicitly, or no block
                    after_open = 0
                at = find(text, lead, after_open)
                if at < 0:
                    if after_open:  # the leading opener is the only tag
                        add(truncated_trace(text[after_open:], finish))
                    else:  # no tag at all
                        add(truncated_trace(text, finish) if prefill else missing_trace(text))
                    continue
                if starts(text, exact_close, at):
                    end = at + close_length
                elif (
                    (closing := close_at(text, at)) is not None
                    and (
                        open_tag_of is None  # one pair, or the opener must be the closer's
                        or opener is None
                        or open_tag_of[tags.close_key(closing.group(0))]
                        == text[opener.start(1) : after_open].lower()
                    )
                ):
                    end = closing.end()
                else:  # another tag first: the full rules
                    end = -1
                if end >= 0 and (find(text, lead, end) < 0 or any_tag(text, end) is None):
                    reasoning = text[after_open:at].strip()
                    if not after_open and not prefill:
                        add(closed_trace(reasoning, text[end:], _IMPLICIT, min_reasoning_chars))
                    elif len(reasoning) >= min_reasoning_chars:
                        # tuple.__new__: the named tuple without its Python-level __new__.
                        add(new_trace(Trace, (valid, reasoning, text[end:].strip(), "closed")))
                    else:
                        add(closed_trace(reasoning, text[end:], (), min_reasoning_chars))
                    continue
            closing = close(text)
            if closing is None:
                add(unclosed(text, finish, prefill))
            else:
                add(closed(text, closing, prefill, min_reasoning_chars))
        return traces

    def _unclosed(self, text: str, finish_reason: str | None, prefilled: bool) -> Trace:
        """Rules 2 and 3: no closing tag."""
        opening = self._tags.open_any.search(text)
        if opening is None:
            return truncated_trace(text, finish_reason) if prefilled else missing_trace(text)
        before_open = text[: opening.start()]
        if before_open.strip():
            reasoning = before_open + text[opening.end() :]
            return truncated_trace(reasoning, finish_reason, ["text_before_open"])
        return truncated_trace(text[opening.end() :], finish_reason)

    def _closed(
        self, text: str, closing: re.Match[str], prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        """Rule 1 at the first closing tag."""
        tags = self._tags
        start, end = closing.span()
        reasons = []
        opening = tags.open_by_close[tags.close_key(closing.group(0))].search(text, 0, start)
        if opening is None:
            reasoning = text[:start]
            if not prefilled:
                reasons.append("implicit_open")
        elif text[: opening.start()].strip():
            reasoning = text[: opening.start()] + text[opening.end() : start]
            reasons.append("text_before_open")
        else:  # only blank text before the opener: stripped away either way
            reasoning = text[opening.end() : start]
        if tags.any_tag.search(text, end):
            reasons.append("multiple_blocks")
        return closed_trace(reasoning, text[end:], reasons, min_reasoning_chars)

    @cached_property
    def _tags(self) -> _Tags:
        return _compile(self.pairs)

    def describe(self) -> dict[str, Any]:
        return {
            "markup": self.name,
            "tags": [[pair.open_tag, pair.close_tag] for pair in self.pairs],
        }


@dataclass(frozen=True)
class TraceFormat:
    """The tags that open and close a reasoning block; matched case-insensitively."""

    open_tag: str = "<think>"
    close_tag: str = "</think>"
    name = "tags"

    def __post_init__(self) -> None:
        if not self.open_tag.strip() or not self.close_tag.strip():
            raise ValueError("TraceFormat tags must be non-blank strings")
        if self.open_tag.lower() == self.close_tag.lower():
            raise ValueError(
                f"TraceFormat open_tag and close_tag must differ, both are {self.open_tag!r}"
            )

    @cached_property
    def _tag_set(self) -> TagSet:
        return TagSet((self,))

    def prompt_state(self, prompt: str) -> PromptState:
        return self._tag_set.prompt_state(prompt)

    def split(
        self, text: str, *, finish_reason: str | None, prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        return self._tag_set.split(
            text,
            finish_reason=finish_reason,
            prefilled=prefilled,
            min_reasoning_chars=min_reasoning_chars,
        )

    def describe(self) -> dict[str, Any]:
        return TagSet((self,)).describe()


STANDARD_FORMATS: tuple[TraceFormat, ...] = tuple(
    TraceFormat(f"<{name}>", f"</{name}>") for name in ("think", "thinking", "reasoning", "thought")
)
"""The tag pairs accepted when no format is given."""

STANDARD_TAGS = TagSet(STANDARD_FORMATS)
"""The default markup: any of the standard pairs."""


@lru_cache(maxsize=64)
def _compile(formats: tuple[TraceFormat, ...]) -> _Tags:
    opens = _alternation([f.open_tag for f in formats])
    closes = _alternation([f.close_tag for f in formats])
    return _Tags(
        open_any=re.compile(opens, re.IGNORECASE),
        close_any=re.compile(closes, re.IGNORECASE),
        any_tag=re.compile(
            _alternation([tag for f in formats for tag in (f.open_tag, f.close_tag)]), re.IGNORECASE
        ),
        leading_open=re.compile(f"\\s*({opens})", re.IGNORECASE),
        open_by_close={
            f.close_tag.lower(): re.compile(re.escape(f.open_tag), re.IGNORECASE) for f in formats
        },
        open_tag_of=(
            {f.close_tag.lower(): f.open_tag.lower() for f in formats} if len(formats) > 1 else None
        ),
        prompt_prefilled=re.compile(f"(?:{opens})\\Z", re.IGNORECASE),
        prompt_closed=re.compile(f"(?:{closes})\\Z", re.IGNORECASE),
        lead=(lead := _lead_character(formats)),
        exact_open=formats[0].open_tag if lead and len(formats) == 1 else (),
        exact_close=formats[0].close_tag if lead and len(formats) == 1 else (),
    )


def _lead_character(formats: tuple[TraceFormat, ...]) -> str | None:
    """The first character of every tag, where a tag match can only begin at it, else None.

    That holds when the tags are ASCII, all start with one uncased, non-blank character
    that no tag has anywhere else, and no opener is a prefix of a closer or the reverse (so
    no closer can match where an opener does). Then after an opener, the next such
    character is the only place the next tag can start.
    """
    opens = [f.open_tag.lower() for f in formats]
    closes = [f.close_tag.lower() for f in formats]
    lead = opens[0][0]
    usable = lead.lower() == lead.upper() and not lead.isspace()
    if not usable or any(
        not tag.isascii() or tag[0] != lead or lead in tag[1:] for tag in opens + closes
    ):
        return None
    if any(o.startswith(c) or c.startswith(o) for o in opens for c in closes):
        return None
    return lead


def prompt_state(prompt: str, fmt: Markup | None = None) -> PromptState:
    """Detect from a rendered generation prompt whether it is prefilled or thinking is off.

    Prefilled: the prompt ends with an opening tag, optionally followed by whitespace
    (DeepSeek-R1 distills, QwQ, OLMo-3-Think). Thinking disabled: the prompt ends with a
    closing tag that closes a block with nothing in it, or closes no block at all
    (Qwen3 ``enable_thinking=False`` writes ``<think>\\n\\n</think>\\n\\n``; DeepSeek-V3.1
    ends with a bare ``</think>``).
    """
    return (fmt or STANDARD_TAGS).prompt_state(prompt)


def classify(
    text: str,
    *,
    finish_reason: str | None = None,
    prefilled: bool | None = None,
    prompt: str | None = None,
    fmt: Markup | None = None,
    min_reasoning_chars: int = 1,
) -> Trace:
    """Classify one completion (special tokens kept, EOS and padding removed).

    Args:
        text: the raw completion text.
        finish_reason: ``"stop"`` or ``"length"`` when the backend reports it.
        prefilled: the generation prompt ended with the opening tag; None reads it from
            ``prompt`` (False without one); True or False overrides the prompt.
        prompt: the rendered generation prompt; when given, the thinking-disabled case (and
            ``prefilled``, unless given) are detected from its tail (see `prompt_state`).
        fmt: the markup: a `TraceFormat` pair or any `Markup`; by default any of
            think/thinking/reasoning/thought.
        min_reasoning_chars: fewest characters of stripped reasoning for ``valid``.
    """
    if min_reasoning_chars < 1:
        raise ValueError(f"min_reasoning_chars must be at least 1, got {min_reasoning_chars}")
    markup = fmt or STANDARD_TAGS
    if prompt is not None:
        state = markup.prompt_state(prompt)
        if state.thinking_disabled:
            return Trace(TraceStatus.EMPTY, "", text.strip(), "disabled_by_prompt")
        if prefilled is None:
            prefilled = state.prefilled
    (trace,) = _split_many(
        markup, (text,), (finish_reason,), (bool(prefilled),), min_reasoning_chars
    )
    return trace


def classify_many(
    texts: Sequence[str],
    *,
    finish_reasons: Sequence[str | None] | None = None,
    prompts: Sequence[str | None] | None = None,
    prefilled: bool | None = None,
    fmt: Markup | None = None,
    min_reasoning_chars: int = 1,
) -> list[Trace]:
    """`classify` of many completions at once: the same traces, faster per completion.

    ``finish_reasons`` and ``prompts`` run beside ``texts`` (None: unknown for all, no
    prompts); the other arguments are `classify`'s, for every completion. A prompt shared
    by many completions (samples of one probe) is read once.
    """
    if min_reasoning_chars < 1:
        raise ValueError(f"min_reasoning_chars must be at least 1, got {min_reasoning_chars}")
    count = len(texts)
    for name, column in (("finish_reasons", finish_reasons), ("prompts", prompts)):
        if column is not None and len(column) != count:
            raise ValueError(f"{name} has {len(column)} items for {count} texts")
    markup = fmt or STANDARD_TAGS
    finishes = finish_reasons if finish_reasons is not None else [None] * count
    if prompts is None:
        prefills: Sequence[bool] = [bool(prefilled)] * count
        return _split_many(markup, texts, finishes, prefills, min_reasoning_chars)
    states: dict[str | None, PromptState] = {None: PromptState(False, False)}
    for prompt in prompts:
        if prompt is not None and prompt not in states:
            states[prompt] = markup.prompt_state(prompt)
    read = [states[prompt] for prompt in prompts]
    prefills = [state.prefilled if prefilled is None else prefilled for state in read]
    traces = _split_many(markup, texts, finishes, prefills, min_reasoning_chars)
    return [
        Trace(TraceStatus.EMPTY, "", text.strip(), "disabled_by_prompt")
        if state.thinking_disabled
        else trace
        for text, state, trace in zip(texts, read, traces, strict=True)
    ]


def _split_many(
    markup: Markup,
    texts: Sequence[str],
    finish_reasons: Sequence[str | None],
    prefilled: Sequence[bool],
    min_reasoning_chars: int,
) -> list[Trace]:
    if isinstance(markup, TraceFormat):
        markup = markup._tag_set
    if isinstance(markup, TagSet):
        return markup.split_many(texts, finish_reasons, prefilled, min_reasoning_chars)
    return [
        markup.split(
            text, finish_reason=finish, prefilled=prefill, min_reasoning_chars=min_reasoning_chars
        )
        for text, finish, prefill in zip(texts, finish_reasons, prefilled, strict=True)
    ]
