"""Read a model's reasoning markup, prefill and thinking switch from its chat template.

Nothing is matched by model name: the template is rendered through the tokenizer's own
``apply_chat_template`` (as transformers and every backend do) with sample messages and
keyword arguments, and the renderings are read:

1. the thinking switch: a keyword (``enable_thinking``, ``thinking``, ``thinking_budget``)
   that changes the rendering, else a ``/no_think`` system flag that changes the generation
   prompt, else none (a keyword or system-turn flag read from the source, step 3);
2. the markup, from the first rendering that shows it: an assistant turn whose reasoning
   comes in through a field (``reasoning_content``, ``reasoning``, ``thinking``) or inline in
   the content (split on a literal the template's source splits on), read as the literals
   written around a sentinel: any opener and closer (less an answer header), harmony's
   analysis channel, or a final marker after untagged reasoning; the generation prompt
   ending with an opener (prefilled) or a bare closer; the empty block of any shape that
   the thinking-off prompt writes past the thinking-on one, or that an assistant turn
   writes before its answer; tags that the rendered instructions lay out (``[THINK]``,
   ``<think>`` with ``<response>``), or only name (then unsure);
3. with no switch yet: a keyword the template tests, or a flag it looks for in the system
   turn, that opens the reasoning, judged with the markup (or the block the switch writes);
4. with the markup, whether the thinking-on prompt is prefilled and whether the default
   prompt already closes the block (thinking off unless switched on).

A template that shows none of these falls back to the ``<think>`` default and says why.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from rtc_assert.errors import TemplateDetectionError
from rtc_assert.traces.classify import STANDARD_TAGS, Markup, TraceFormat
from rtc_assert.traces.markups import HARMONY_ANALYSIS, FinalMarker, HarmonyChannels, ThinkResponse
from rtc_assert.traces.template_source import (
    content_delimiters,
    searched_literals,
    string_literals,
    switch_candidates,
)

logger = logging.getLogger(__name__)

SAMPLE_QUESTION = "What is 2+2?"
_REASONING = "RTC_SAMPLE_REASONING"
_ANSWER = "RTC_SAMPLE_ANSWER"
_SEPARATOR = "RTC_SAMPLE_SEPARATOR"
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")
"""The assistant-message fields a template may read the reasoning from."""
_SWITCH_KWARGS: tuple[tuple[str, Any, Any], ...] = (
    ("enable_thinking", True, False),
    ("thinking", True, False),
    ("thinking_budget", None, 0),  # on: no budget given (unlimited); off: a budget of 0
)
"""(keyword, value that switches thinking on or None to pass nothing, value that switches it
off), in the order they are tried."""
_SYSTEM_FLAGS = ("/no_think", "/think")
_FINAL_MARKER = FinalMarker().marker
# A tag token: <name>, </name>, [NAME], [/NAME], [BEGIN FINAL RESPONSE], <|name|>.
_TAG = r"<\|?/?[A-Za-z_][\w:.|-]*>|\[/?[A-Za-z_][\w ]*\]"
_LAST_TAG = re.compile(f"(?:{_TAG})\\Z")
_FIRST_TAG = re.compile(f"\\A(?:{_TAG})")
_EMPTY_BLOCK = re.compile(f"(?=(?P<open>{_TAG})\\s*(?P<close>{_TAG}))")  # overlapping
_REASONING_NAME = re.compile(r"think|reason|thought", re.IGNORECASE)


@dataclass(frozen=True)
class ThinkingSwitch:
    """How a chat template switches thinking on and off."""

    kind: Literal["kwarg", "system_flag", "none"]
    name: str | None = None
    """The keyword (``enable_thinking``...) or the system flag (``/no_think``, ``<|think|>``)."""
    on: Any = None
    """The keyword's value for thinking on, or the flag the system turn gets to switch it on;
    None passes nothing (the template's default)."""
    off: Any = None

    def template_kwargs(self, enable_thinking: bool | None) -> dict[str, Any]:
        """Keyword arguments for ``apply_chat_template``; None asks for the default.

        Raises:
            TemplateDetectionError: thinking off was asked of a template without a keyword.
        """
        if enable_thinking is None or (self.kind == "system_flag" and self.on is not None):
            return {}
        if self.kind == "kwarg":
            value = self.on if enable_thinking else self.off
            if value is None:
                return {}
            assert self.name is not None, "a keyword switch names its keyword"
            return {self.name: value}
        if enable_thinking:
            return {}
        how = (
            f"only by a {self.name!r} system message: add it to the probes"
            if self.kind == "system_flag"
            else "not at all: the model always thinks"
        )
        raise TemplateDetectionError(
            f"enable_thinking: false: this chat template turns thinking off {how}"
        )

    def messages(
        self, messages: list[dict[str, Any]], enable_thinking: bool | None
    ) -> list[dict[str, Any]]:
        """``messages`` with the flag that switches thinking on written into the system turn."""
        if not (enable_thinking and self.kind == "system_flag" and self.on is not None):
            return messages
        if messages and messages[0].get("role") == "system":
            first = messages[0]
            content = f"{self.on}\n{first.get('content') or ''}".rstrip("\n")
            return [{**first, "content": content}, *messages[1:]]
        return [{"role": "system", "content": self.on}, *messages]

    def how_on(self) -> str:
        """How the gate switches thinking on with this switch, for run records."""
        if self.kind == "system_flag" and self.on is not None:
            return f"system flag {self.on!r} written into the system turn"
        kwargs = self.template_kwargs(True)
        if kwargs:
            return ", ".join(f"{name}={value!r}" for name, value in kwargs.items())
        return "the template's default (nothing passed)"

    def describe(self) -> str:
        if self.kind == "kwarg":
            return f"keyword {self.name}"
        if self.kind == "system_flag":
            return f"system flag {self.name}" + (" (switches on)" if self.on is not None else "")
        return "none (the template always thinks)"


@dataclass(frozen=True)
class DetectedTemplate:
    """What a chat template says about the traces its model writes."""

    markup: Markup
    prefilled: bool
    """The thinking-on generation prompt ends inside the reasoning (the opener is written)."""
    closes_block: bool
    """The default generation prompt already closes the block: thinking is off unless the
    switch turns it on (DeepSeek-V3.1 ends with ``</think>``)."""
    switch: ThinkingSwitch
    recognised: bool
    """False when nothing in the renderings showed a markup and the default is used."""
    evidence: str
    """Which rendering showed the markup, or why detection fell back."""

    def describe(self) -> dict[str, Any]:
        return {
            **self.markup.describe(),
            "prefilled": self.prefilled,
            "closes_block": self.closes_block,
            "thinking_switch": self.switch.describe(),
            "recognised": self.recognised,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class TraceSetup:
    """The markup a run classifies with: detected, possibly overridden by thresholds.yaml."""

    detected: DetectedTemplate
    markup: Markup
    prefilled: bool | None = None
    """Configured prefill; None reads it from each rendered prompt."""
    min_reasoning_chars: int = 1
    budget_counts_as_valid: bool = False
    """A trace the server closed when the thinking budget ran out counts as closed."""
    overridden: tuple[str, ...] = ()
    """The ``trace_format`` fields that replaced what was detected."""

    def describe(self, enable_thinking: bool | None) -> dict[str, Any]:
        """What was detected and what was used, for the run record."""
        used = {
            **self.markup.describe(),
            "prefilled": self.detected.prefilled if self.prefilled is None else self.prefilled,
            "prefilled_from": "prompt" if self.prefilled is None else "trace_format",
            "thinking_switch": self.detected.switch.describe(),
            "thinking_on": self.detected.switch.how_on(),
            "template_kwargs": self.detected.switch.template_kwargs(enable_thinking),
            "min_reasoning_chars": self.min_reasoning_chars,
            "budget_counts_as_valid": self.budget_counts_as_valid,
            "overridden": list(self.overridden),
        }
        return {"detected": self.detected.describe(), "used": used}


class _Renderer:
    """Renders sample conversations through a tokenizer's chat template."""

    def __init__(
        self,
        tokenizer: Any,
        system: str | None = None,
        cache: dict[str, str | None] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.system = system
        """The system turn every sample conversation starts with (a thinking flag), if any."""
        self._cache: dict[str, str | None] = {} if cache is None else cache

    def with_system(self, system: str | None) -> _Renderer:
        """A renderer whose conversations start with ``system``, sharing this one's renders."""
        return _Renderer(self.tokenizer, system, self._cache)

    def render(self, messages: list[dict[str, Any]], generation: bool, **kwargs: Any) -> str | None:
        key = json.dumps([messages, generation, kwargs], sort_keys=True, default=repr)
        if key not in self._cache:
            try:
                self._cache[key] = self.tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=generation, **kwargs
                )
            except Exception:  # a template may reject a sample (a system turn, a keyword)
                self._cache[key] = None
        return self._cache[key]

    def messages(self, system: str | None = None) -> list[dict[str, Any]]:
        """The sample question, after ``system`` (default `system`) as a system turn."""
        return _messages(self.system if system is None else system)

    def prompt(self, system: str | None = None, **kwargs: Any) -> str | None:
        return self.render(self.messages(system), True, **kwargs)

    def generation_suffix(self, system: str | None = None, **kwargs: Any) -> str:
        """What ``add_generation_prompt`` adds: the assistant header and any prefill."""
        with_prompt = self.prompt(system, **kwargs) or ""
        without = self.render(self.messages(system), False, **kwargs) or ""
        return with_prompt[len(without) :] if with_prompt.startswith(without) else with_prompt

    def assistant_turn(self, reply: dict[str, Any], **kwargs: Any) -> str | None:
        """The sample question, then an assistant turn, without a generation prompt."""
        return self.render([*self.messages(), {"role": "assistant", **reply}], False, **kwargs)


def _messages(system: str | None) -> list[dict[str, Any]]:
    user = {"role": "user", "content": SAMPLE_QUESTION}
    return [user] if system is None else [{"role": "system", "content": system}, user]


def _after_question(text: str | None) -> str:
    return "" if text is None else text[text.rfind(SAMPLE_QUESTION) :]


def _detect_switch(renderer: _Renderer) -> ThinkingSwitch:
    for name, on, off in _SWITCH_KWARGS:
        on_kwargs = {} if on is None else {name: on}
        if renderer.prompt(**on_kwargs) != renderer.prompt(**{name: off}):
            return ThinkingSwitch("kwarg", name, on, off)
    no_think, think = (_after_question(renderer.prompt(flag)) for flag in _SYSTEM_FLAGS)
    if no_think and think and no_think != think:
        return ThinkingSwitch("system_flag", _SYSTEM_FLAGS[0], off=_SYSTEM_FLAGS[0])
    return ThinkingSwitch("none")


def closing_tag(opener: str) -> str | None:
    """``<x>`` -> ``</x>``, ``[X]`` -> ``[/X]``; None for special tokens and closers."""
    if re.fullmatch(r"<[A-Za-z_][\w:.-]*>", opener):
        return "</" + opener[1:]
    if re.fullmatch(r"\[[A-Za-z_]\w*\]", opener):
        return "[/" + opener[1:]
    return None


def _opening_tag(closer: str) -> str | None:
    match = re.fullmatch(r"(<|\[)/([A-Za-z_][\w:.-]*[>\]])", closer)
    return None if match is None else match.group(1) + match.group(2)


class _Found(NamedTuple):
    """A markup, the rendering that showed it, and whether that evidence is enough."""

    markup: Markup
    evidence: str
    sure: bool = True


@dataclass(frozen=True)
class _Shown:
    """An assistant turn that writes the sample reasoning: how it came in, what surrounds it."""

    source: str
    """``the reasoning_content field``, or ``content split on '</think>'``."""
    before: str
    """What the turn writes after the conversation and before the reasoning."""
    between: str
    """What it writes between the reasoning and the answer."""
    turn_before: str
    """The whole rendering before the reasoning, conversation included."""
    after: str
    """What it writes after the answer."""


def _shown_reasoning(
    renderer: _Renderer, delimiters: tuple[str, ...], **kwargs: Any
) -> Iterator[_Shown]:
    """Turns whose reasoning comes in through each field, then inline in the content.

    An inline literal counts only when the template treats it apart from any other text:
    the turn differs from one with a neutral separator in its place.
    """
    base = renderer.render(renderer.messages(), False, **kwargs) or ""
    for name in REASONING_FIELDS:
        shown = _shown(renderer, base, {"content": _ANSWER, name: _REASONING}, **kwargs)
        if shown is not None:
            yield _Shown(f"the {name} field", *shown)
    for literal in delimiters:
        shown = _shown(renderer, base, {"content": _REASONING + literal + _ANSWER}, **kwargs)
        neutral = _shown(renderer, base, {"content": _REASONING + _SEPARATOR + _ANSWER}, **kwargs)
        if shown is None or neutral is None:
            continue
        if shown[:2] != (neutral[0], neutral[1].replace(_SEPARATOR, literal)):
            yield _Shown(f"content split on {literal!r}", *shown)


def _shown(
    renderer: _Renderer, base: str, reply: dict[str, Any], **kwargs: Any
) -> tuple[str, str, str, str] | None:
    """What a rendered reply writes before and after the sample reasoning, the whole
    rendering before it, and what follows the answer; None unless both show."""
    turn = renderer.assistant_turn(reply, **kwargs)
    if turn is None or _REASONING not in turn:
        return None
    start = turn.index(_REASONING)
    end = turn.find(_ANSWER, start)
    if end < 0:
        return None
    before = turn[len(_common_prefix(turn[:start], base)) : start]
    after = turn[end + len(_ANSWER) :]
    return before, turn[start + len(_REASONING) : end], turn[:start], after


def _from_reasoning_turn(
    shown: _Shown, suffixes: list[str], prompt_on: str, literals: tuple[str, ...]
) -> _Found | None:
    """Step 1: the literals a template writes around an assistant turn's reasoning.

    The opener is what the turn writes after the assistant header (the shortest common
    part with a generation prompt); the closer, what it writes before the answer, less an
    answer header whose closing tag follows the answer (``</think><response>``). Where
    every generation prompt writes the opener too (prefilled, or an empty block), the opener
    is the longest template literal that ends the turn's header and that a prompt ends with
    or writes before the closer. Reasoning with no opener before a closer is a final marker.
    """
    if shown.before.rstrip().endswith(HARMONY_ANALYSIS):
        return _Found(HarmonyChannels(), f"{shown.source} renders in the analysis channel")
    closer = shown.between.strip()
    answer = _answer_tags(closer, shown.after)
    if answer is not None:
        closer = closer[: -len(answer.open_tag)].strip()
    if not closer:
        return None
    before = shown.before.lstrip()
    header = min(
        (_common_prefix(before, s.lstrip()) for s in suffixes if s.strip()), key=len, default=""
    )
    opener = before[len(header) :].strip()
    if not opener:
        opener = _opener_in_header(before.strip(), closer, suffixes, literals)
    if not opener:
        common = len(_common_prefix(shown.turn_before, prompt_on))
        prefill = prompt_on[common:].strip() if common == len(shown.turn_before) else ""
        default = FinalMarker()
        end = default.end_marker if closer == default.marker else None
        return _Found(
            FinalMarker(marker=closer, end_marker=end, prefill=prefill or None),
            f"{shown.source} renders untagged before {closer}",
        )
    if opener.lower() == closer.lower():
        return None
    pair = TraceFormat(opener, closer)
    evidence = f"{shown.source} renders between {opener} and {closer}"
    if answer is not None:
        return _Found(ThinkResponse(pair, answer), f"{evidence}, the answer in {answer.open_tag}")
    return _Found(pair, evidence)


def _answer_tags(between: str, after: str) -> TraceFormat | None:
    """The answer's tags: the last of several tags before the answer, closed right after it."""
    tokens = _tag_tokens(between)
    closing = _FIRST_TAG.match(after.lstrip())
    if tokens is None or len(tokens) < 2 or closing is None:
        return None
    header = tokens[-1]
    return (
        TraceFormat(header, closing.group(0)) if closing_tag(header) == closing.group(0) else None
    )


def _tag_tokens(text: str) -> list[str] | None:
    """``text`` as a run of tag tokens; None when anything else is in it."""
    tokens: list[str] = re.findall(_TAG, text)
    return tokens if tokens and "".join(tokens) == text else None


def _opener_in_header(
    header: str, closer: str, suffixes: list[str], literals: tuple[str, ...]
) -> str:
    """The opener inside a header that the generation prompts share with the turn."""
    candidates = sorted({text.strip() for text in literals}, key=len, reverse=True)
    for opener in candidates:
        if not opener or opener == header or not header.endswith(opener):
            continue
        empty_block = re.compile(re.escape(opener) + r"\s*" + re.escape(closer))
        if any(s.rstrip().endswith(opener) or empty_block.search(s) for s in suffixes):
            return opener
    return ""


def _common_prefix(a: str, b: str) -> str:
    size = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return a[:size]


def _from_generation_prompt(suffix: str) -> _Found | None:
    """Step 2: the generation prompt ends with an opener (prefilled) or a bare closer."""
    last = _LAST_TAG.search(suffix.rstrip())
    if last is None:
        return None
    tag = last.group(0)
    closer = closing_tag(tag)
    if closer is not None:
        return _Found(TraceFormat(tag, closer), f"the generation prompt ends with the opener {tag}")
    opener = _opening_tag(tag)
    if opener is not None and opener.lower() not in suffix.lower():
        return _Found(
            TraceFormat(opener, tag), f"the generation prompt ends with a bare closer {tag}"
        )
    return None


def _split_block(block: str, literals: tuple[str, ...]) -> TraceFormat | None:
    """An empty block of any shape as its opener and closer.

    Split where both parts are template literals, else into two halves of tag tokens
    (``<x></x>``, ``<|a|><|b|><|c|><|b|>``), else at its one run of whitespace
    (``<|channel>thought\\n<channel|>``).
    """
    block = block.strip()
    stripped = {text.strip() for text in literals if text.strip()}
    pairs = (
        (opener, block[len(opener) :].strip())
        for opener in sorted(stripped, key=len, reverse=True)
        if block.startswith(opener)
    )
    pair = next(((o, c) for o, c in pairs if c in stripped), None)
    tokens, parts = _tag_tokens(block), re.split(r"\s+", block)
    if pair is None and tokens is not None and len(tokens) % 2 == 0:
        pair = "".join(tokens[: len(tokens) // 2]), "".join(tokens[len(tokens) // 2 :])
    if pair is None and len(parts) == 2:
        pair = parts[0], parts[1]
    if pair is None or not all(pair) or pair[0].lower() == pair[1].lower():
        return None
    return TraceFormat(*pair)


def _from_prompts(on: str, off: str, literals: tuple[str, ...], off_how: str) -> _Found | None:
    """Step 3: what the thinking-off generation prompt writes past the thinking-on one.

    An empty block of any shape, or the closer of a block the thinking-on prompt opened
    (prefilled: the opener is the longest one-line template literal, else the tag, that ends
    it). Else an empty ``<x></x>`` or ``[X][/X]`` anywhere in the thinking-off prompt.
    """
    common = _common_prefix(on, off)
    extra = off[len(common) :]
    pair = None
    if extra.strip() and not on[len(common) :].strip():
        pair = _split_block(extra, literals)
        opener = _opener_ending(common, literals)
        if pair is None and opener and opener.lower() != extra.strip().lower():
            pair = TraceFormat(opener, extra.strip())
    for block in () if pair else _EMPTY_BLOCK.finditer(off):
        if closing_tag(block.group("open")) == block.group("close"):
            pair = TraceFormat(block.group("open"), block.group("close"))
            break
    if pair is None:
        return None
    return _Found(pair, f"{off_how} writes an empty {pair.open_tag}{pair.close_tag}")


def _opener_ending(text: str, literals: tuple[str, ...]) -> str:
    tail = text.rstrip()
    lines = sorted(
        {t.strip() for t in literals if t.strip() and "\n" not in t.strip()}, key=len, reverse=True
    )
    found = next((t for t in lines if tail.endswith(t) and t != tail.strip()), None)
    last = _LAST_TAG.search(tail)
    return found or (last.group(0) if last else "")


def _from_answer_turn(
    renderer: _Renderer, suffixes: list[str], literals: tuple[str, ...], **kwargs: Any
) -> _Found | None:
    """Step 4: an assistant turn without reasoning writes an empty block before its answer
    (after the header its generation prompt writes); the two markers must share a word."""
    turn = renderer.assistant_turn({"content": _ANSWER}, **kwargs)
    base = renderer.render(renderer.messages(), False, **kwargs) or ""
    if turn is None or _ANSWER not in turn:
        return None
    before = turn[: turn.index(_ANSWER)]
    before = before[len(_common_prefix(before, base)) :].lstrip()
    header = max((_common_prefix(before, s.lstrip()) for s in suffixes), key=len, default="")
    pair = _split_block(before[len(header) :], literals)
    if pair is None:
        return None
    words = [set(re.findall(r"[a-z]+", tag.lower())) for tag in (pair.open_tag, pair.close_tag)]
    if not words[0] & words[1]:
        return None
    shown = f"{pair.open_tag}{pair.close_tag}"
    return _Found(pair, f"an assistant turn without reasoning writes an empty {shown}")


def _from_instructions(prompt_on: str, others: list[str]) -> _Found | None:
    """Step 5: the rendered text names a final marker or a reasoning tag pair.

    Sure when the thinking-on prompt lays the format out (the opener, then its closer, in
    one paragraph); a pair named otherwise, or only in other renderings, is used unsure.
    """
    if _FINAL_MARKER in prompt_on:
        return _Found(FinalMarker(), f"the rendered prompt names {_FINAL_MARKER}")
    for text, where in [(prompt_on, "the rendered prompt"), *((t, "a rendering") for t in others)]:
        for tag in re.findall(_TAG, text):
            closer = closing_tag(tag)
            if not (closer and _REASONING_NAME.search(tag) and closer in text):
                continue
            pair = TraceFormat(tag, closer)
            laid_out = re.search(
                re.escape(tag) + r"(?:(?!\n\s*\n).)*?" + re.escape(closer), text, re.DOTALL
            )
            if where == "the rendered prompt" and laid_out:
                return _Found(pair, f"the rendered prompt lays out {tag} ... {closer}")
            return _Found(
                pair,
                f"{where} names {tag} and {closer}, but no reasoning renders between them",
                sure=False,
            )
    return None


def _with_response_tags(found: _Found, texts: list[str]) -> _Found:
    """A reasoning pair whose renderings also name ``<response>`` tags: Granite's markup."""
    response = ThinkResponse().response
    if isinstance(found.markup, TraceFormat) and any(
        response.open_tag in text and response.close_tag in text for text in texts
    ):
        evidence = f"{found.evidence}, with {response.open_tag} answers"
        return _Found(ThinkResponse(found.markup, response), evidence, found.sure)
    return found


def detect_template(tokenizer: Any) -> DetectedTemplate:
    """Detect the reasoning markup, prefill and thinking switch of a tokenizer's template.

    ``tokenizer`` is anything with ``apply_chat_template`` and ``chat_template``.
    """
    if not getattr(tokenizer, "chat_template", None):
        return _fallback("the tokenizer has no chat template")
    renderer = _Renderer(tokenizer)
    default = renderer.prompt()
    if default is None:
        return _fallback("the chat template cannot render a plain user message")
    source = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    literals = string_literals(source)
    switch = _detect_switch(renderer)
    found, texts, prompt_on = _find_markup(renderer, source, switch, default)
    if switch.kind == "none":
        markup = None if found is None else found.markup
        switch = (
            _switch_from_source(renderer, source, markup, default, literals)
            or _system_flag_from_source(renderer, source, markup, literals)
            or switch
        )
        if switch.kind != "none":
            found, texts, prompt_on = _find_markup(renderer, source, switch, default)
    if found is None:
        return _fallback(
            "no reasoning markup shows in the rendered template (no tagged reasoning, "
            "prefill, empty block or named tags)",
            switch,
        )
    found = _with_response_tags(found, texts)
    if not found.sure:
        logger.warning("%s: the reasoning markup is a guess; set trace_format", found.evidence)
    return DetectedTemplate(
        markup=found.markup,
        prefilled=found.markup.prompt_state(prompt_on).prefilled,
        closes_block=found.markup.prompt_state(default).thinking_disabled,
        switch=switch,
        recognised=found.sure,
        evidence=found.evidence if found.sure else f"unsure: {found.evidence}",
    )


def _find_markup(
    plain: _Renderer, source: str, switch: ThinkingSwitch, default: str
) -> tuple[_Found | None, list[str], str]:
    """The markup and its evidence (or None), the texts read, and the thinking-on prompt."""
    renderer = plain.with_system(switch.on if switch.kind == "system_flag" else None)
    literals = string_literals(source)
    on = switch.template_kwargs(True)
    off_system = switch.off if switch.kind == "system_flag" else None
    off = switch.template_kwargs(False) if switch.kind == "kwarg" else {}
    prompt_on = renderer.prompt(**on) or default
    every_field = dict.fromkeys(REASONING_FIELDS, _REASONING)
    turn = renderer.assistant_turn({"content": _ANSWER, **every_field}, **on)
    texts = [text for text in (prompt_on, default, turn) if text]
    suffix_on = renderer.generation_suffix(**on)
    suffix_off = plain.generation_suffix(off_system, **off)
    suffixes = [suffix_on, plain.generation_suffix(), plain.generation_suffix(**off)]
    found = None
    for shown in _shown_reasoning(renderer, content_delimiters(source), **on):
        texts.append(shown.before + shown.between)
        found = _from_reasoning_turn(shown, suffixes, prompt_on, literals)
        if found is not None:
            break
    found = (
        found
        or _from_generation_prompt(suffix_on)
        or _from_prompts(suffix_on, suffix_off, literals, "the thinking-off prompt")
        or _from_answer_turn(renderer, suffixes, literals, **on)
        or _from_instructions(prompt_on, texts[1:])
    )
    return found, texts, prompt_on


def _switch_from_source(
    renderer: _Renderer,
    source: str,
    markup: Markup | None,
    default: str,
    literals: tuple[str, ...],
) -> ThinkingSwitch | None:
    """A keyword the template tests that turns the reasoning on, read with ``markup``.

    Each candidate (`switch_candidates`) is rendered with each of its values; it is kept
    when some value leaves the generation prompt thinking (not closing an empty block) and
    another value, or passing nothing, closes it. Without a markup, the empty block that one
    value's prompt writes past another's is the markup judged with. The on value is one
    that prefills the reasoning, else the last listed (levels go from least to most).
    """
    known = {name for name, _, _ in _SWITCH_KWARGS}
    for candidate in switch_candidates(source):
        if candidate.name in known:
            continue
        prompts = {
            value: prompt
            for value in candidate.values
            if (prompt := renderer.prompt(**{candidate.name: value})) is not None
        }
        judged = markup or _markup_between(
            [renderer.generation_suffix()]
            + [renderer.generation_suffix(**{candidate.name: value}) for value in prompts],
            literals,
        )
        if judged is None:
            continue
        on: list[tuple[Any, bool]] = []
        off: list[Any] = []
        for value, prompt in prompts.items():
            state = judged.prompt_state(prompt)
            if state.thinking_disabled:
                off.append(value)
            else:
                on.append((value, state.prefilled))
        if on and (off or judged.prompt_state(default).thinking_disabled):
            prefilled = [value for value, filled in on if filled]
            value_on = prefilled[0] if prefilled else on[-1][0]
            return ThinkingSwitch("kwarg", candidate.name, value_on, off[0] if off else None)
    return None


def _markup_between(suffixes: list[str], literals: tuple[str, ...]) -> Markup | None:
    """The empty block one generation prompt writes past another, as a markup."""
    for on in suffixes:
        for off in suffixes:
            found = _from_prompts(on, off, literals, "") if on != off else None
            if found is not None:
                return found.markup
    return None


def _system_flag_from_source(
    renderer: _Renderer, source: str, markup: Markup | None, literals: tuple[str, ...]
) -> ThinkingSwitch | None:
    """A flag the template looks for in a string that, written as the system turn, turns the
    reasoning on (Gemma 4's ``<|think|>``), read with ``markup`` or the block it opens."""
    plain = renderer.generation_suffix()
    for flag in searched_literals(source):
        if flag in _SYSTEM_FLAGS or renderer.prompt(flag) is None:
            continue
        flagged = renderer.generation_suffix(flag)
        judged = markup or _markup_between([flagged, plain], literals)
        if judged is None or flagged == plain:
            continue
        if (
            not judged.prompt_state(flagged).thinking_disabled
            and judged.prompt_state(plain).thinking_disabled
        ):
            return ThinkingSwitch("system_flag", flag, on=flag)
    return None


def _fallback(reason: str, switch: ThinkingSwitch | None = None) -> DetectedTemplate:
    logger.warning("%s: using the default <think> markup", reason)
    return DetectedTemplate(
        markup=STANDARD_TAGS,
        prefilled=False,
        closes_block=False,
        switch=switch or ThinkingSwitch("none"),
        recognised=False,
        evidence=f"{reason}: fell back to the default <think> markup",
    )
