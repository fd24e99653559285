"""Read a model's reasoning markup, prefill and thinking switch from its chat template.

Nothing is matched by model name: the template is rendered through the tokenizer's own
``apply_chat_template`` (as transformers and every backend do) with sample messages and
keyword arguments, and the renderings are read:

1. the thinking switch: a keyword (``enable_thinking``, ``thinking``, ``thinking_budget``)
   that changes the rendering, else a ``/no_think`` system flag that changes the generation
   prompt, else none;
2. the markup, from the first rendering that shows it: an assistant turn whose reasoning
   comes in through a field (``reasoning_content``, ``reasoning``, ``thinking``) or inline in
   the content (split on a literal the template's source splits on), read as the literals
   written around a sentinel: any opener and closer, harmony's analysis channel, or a final
   marker after untagged reasoning; the generation prompt ending with an opener (prefilled)
   or a bare closer; the empty block that the thinking-off prompt writes; tags that the
   rendered instructions name (``[THINK]``, ``<think>`` with ``<response>``);
3. with the markup, whether the thinking-on prompt is prefilled and whether the default
   prompt already closes the block (thinking off unless switched on).

A template that shows none of these falls back to the ``<think>`` default and says why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from rtc_assert.errors import TemplateDetectionError
from rtc_assert.traces.classify import STANDARD_TAGS, Markup, TraceFormat
from rtc_assert.traces.markups import HARMONY_ANALYSIS, FinalMarker, HarmonyChannels, ThinkResponse
from rtc_assert.traces.template_source import (
    content_delimiters,
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
    """The keyword (``enable_thinking``...) or the system flag (``/no_think``)."""
    on: Any = None
    """The keyword's value for thinking on; None passes nothing (the template's default)."""
    off: Any = None

    def template_kwargs(self, enable_thinking: bool | None) -> dict[str, Any]:
        """Keyword arguments for ``apply_chat_template``; None asks for the default.

        Raises:
            TemplateDetectionError: thinking off was asked of a template without a keyword.
        """
        if enable_thinking is None:
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

    def how_on(self) -> str:
        """How the gate switches thinking on with this switch, for run records."""
        kwargs = self.template_kwargs(True)
        if kwargs:
            return ", ".join(f"{name}={value!r}" for name, value in kwargs.items())
        return "the template's default (nothing passed)"

    def describe(self) -> str:
        if self.kind == "kwarg":
            return f"keyword {self.name}"
        if self.kind == "system_flag":
            return f"system flag {self.name}"
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

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def render(self, messages: list[dict[str, Any]], generation: bool, **kwargs: Any) -> str | None:
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation, **kwargs
            )
        except Exception:  # a template may reject a sample (a system turn, a keyword)
            return None

    def prompt(self, system: str | None = None, **kwargs: Any) -> str | None:
        return self.render(_messages(system), True, **kwargs)

    def generation_suffix(self, system: str | None = None, **kwargs: Any) -> str:
        """What ``add_generation_prompt`` adds: the assistant header and any prefill."""
        with_prompt = self.prompt(system, **kwargs) or ""
        without = self.render(_messages(system), False, **kwargs) or ""
        return with_prompt[len(without) :] if with_prompt.startswith(without) else with_prompt

    def assistant_turn(self, reply: dict[str, Any], **kwargs: Any) -> str | None:
        """The sample question, then an assistant turn, without a generation prompt."""
        return self.render([*_messages(None), {"role": "assistant", **reply}], False, **kwargs)


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
        return ThinkingSwitch("system_flag", _SYSTEM_FLAGS[0])
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


def _shown_reasoning(
    renderer: _Renderer, delimiters: tuple[str, ...], **kwargs: Any
) -> Iterator[_Shown]:
    """Turns whose reasoning comes in through each field, then inline in the content.

    An inline literal counts only when the template treats it apart from any other text:
    the turn differs from one with a neutral separator in its place.
    """
    base = renderer.render(_messages(None), False, **kwargs) or ""
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
) -> tuple[str, str, str] | None:
    """What a rendered reply writes before and after the sample reasoning, and the whole
    rendering before it; None unless both the reasoning and the answer show."""
    turn = renderer.assistant_turn(reply, **kwargs)
    if turn is None or _REASONING not in turn:
        return None
    start = turn.index(_REASONING)
    end = turn.find(_ANSWER, start)
    if end < 0:
        return None
    before = turn[len(_common_prefix(turn[:start], base)) : start]
    return before, turn[start + len(_REASONING) : end], turn[:start]


def _from_reasoning_turn(
    shown: _Shown, suffixes: list[str], prompt_on: str, literals: tuple[str, ...]
) -> tuple[Markup, str] | None:
    """Step 1: the literals a template writes around an assistant turn's reasoning.

    The opener is what the turn writes after the assistant header (the shortest common
    part with a generation prompt); the closer, what it writes before the answer. Where every
    generation prompt writes the opener too (prefilled, or an empty block), the opener is the
    longest template literal that ends the turn's header and that a prompt ends with or
    writes before the closer. Reasoning with no opener before a closer is a final marker.
    """
    if shown.before.rstrip().endswith(HARMONY_ANALYSIS):
        return HarmonyChannels(), f"{shown.source} renders in the analysis channel"
    closer = shown.between.strip()
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
        return (
            FinalMarker(marker=closer, end_marker=end, prefill=prefill or None),
            f"{shown.source} renders untagged before {closer}",
        )
    if opener.lower() == closer.lower():
        return None
    return TraceFormat(opener, closer), f"{shown.source} renders between {opener} and {closer}"


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


def _from_generation_prompt(suffix: str) -> tuple[Markup, str] | None:
    """Step 2: the generation prompt ends with an opener (prefilled) or a bare closer."""
    last = _LAST_TAG.search(suffix.rstrip())
    if last is None:
        return None
    tag = last.group(0)
    closer = closing_tag(tag)
    if closer is not None:
        return TraceFormat(tag, closer), f"the generation prompt ends with the opener {tag}"
    opener = _opening_tag(tag)
    if opener is not None and opener.lower() not in suffix.lower():
        return TraceFormat(opener, tag), f"the generation prompt ends with a bare closer {tag}"
    return None


def _from_empty_block(suffix: str) -> tuple[Markup, str] | None:
    """Step 3: the thinking-off generation prompt writes an empty block."""
    for block in _EMPTY_BLOCK.finditer(suffix):
        if closing_tag(block.group("open")) == block.group("close"):
            pair = TraceFormat(block.group("open"), block.group("close"))
            return pair, f"the thinking-off prompt writes an empty {pair.open_tag}{pair.close_tag}"
    return None


def _from_instructions(texts: list[str]) -> tuple[Markup, str] | None:
    """Step 4: the rendered text names a final marker or a reasoning tag pair."""
    if any(_FINAL_MARKER in text for text in texts):
        return FinalMarker(), f"the rendered prompt names {_FINAL_MARKER}"
    for text in texts:
        for tag in re.findall(_TAG, text):
            closer = closing_tag(tag)
            if closer and _REASONING_NAME.search(tag) and closer in text:
                return TraceFormat(tag, closer), f"the rendered prompt names {tag} and {closer}"
    return None


def _with_response_tags(found: tuple[Markup, str], texts: list[str]) -> tuple[Markup, str]:
    """A reasoning pair whose renderings also name ``<response>`` tags: Granite's markup."""
    markup, evidence = found
    response = ThinkResponse().response
    if isinstance(markup, TraceFormat) and any(
        response.open_tag in text and response.close_tag in text for text in texts
    ):
        return ThinkResponse(markup, response), f"{evidence}, with {response.open_tag} answers"
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
    switch = _detect_switch(renderer)
    found, texts, prompt_on = _find_markup(renderer, source, switch, default)
    if switch.kind == "none":
        markup = STANDARD_TAGS if found is None else found[0]
        switch = _switch_from_source(renderer, source, markup, default) or switch
        if switch.kind == "kwarg":
            found, texts, prompt_on = _find_markup(renderer, source, switch, default)
    if found is None:
        return _fallback(
            "no reasoning markup shows in the rendered template (no tagged reasoning, "
            "prefill, empty block or named tags)",
            switch,
        )
    markup, evidence = _with_response_tags(found, texts)
    return DetectedTemplate(
        markup=markup,
        prefilled=markup.prompt_state(prompt_on).prefilled,
        closes_block=markup.prompt_state(default).thinking_disabled,
        switch=switch,
        recognised=True,
        evidence=evidence,
    )


def _find_markup(
    renderer: _Renderer, source: str, switch: ThinkingSwitch, default: str
) -> tuple[tuple[Markup, str] | None, list[str], str]:
    """The markup and its evidence (or None), the texts read, and the thinking-on prompt."""
    on = switch.template_kwargs(True)
    off_system = _SYSTEM_FLAGS[0] if switch.kind == "system_flag" else None
    off = switch.template_kwargs(False) if switch.kind == "kwarg" else {}
    prompt_on = renderer.prompt(**on) or default
    every_field = dict.fromkeys(REASONING_FIELDS, _REASONING)
    turn = renderer.assistant_turn({"content": _ANSWER, **every_field}, **on)
    texts = [text for text in (prompt_on, default, turn) if text]
    suffix_on = renderer.generation_suffix(**on)
    suffixes = [suffix_on, renderer.generation_suffix(), renderer.generation_suffix(**off)]
    found = None
    for shown in _shown_reasoning(renderer, content_delimiters(source), **on):
        texts.append(shown.before + shown.between)
        found = _from_reasoning_turn(shown, suffixes, prompt_on, string_literals(source))
        if found is not None:
            break
    found = (
        found
        or _from_generation_prompt(suffix_on)
        or _from_empty_block(renderer.generation_suffix(off_system, **off))
        or _from_instructions(texts)
    )
    return found, texts, prompt_on


def _switch_from_source(
    renderer: _Renderer, source: str, markup: Markup, default: str
) -> ThinkingSwitch | None:
    """A keyword the template tests that turns the reasoning on, read with ``markup``.

    Each candidate (`switch_candidates`) is rendered with each of its values; it is kept
    when some value leaves the generation prompt thinking (not closing an empty block) and
    another value, or passing nothing, closes it. The on value is one that prefills the
    reasoning, else the last listed (levels are listed from least to most).
    """
    default_off = markup.prompt_state(default).thinking_disabled
    known = {name for name, _, _ in _SWITCH_KWARGS}
    for candidate in switch_candidates(source):
        if candidate.name in known:
            continue
        on: list[tuple[Any, bool]] = []
        off: list[Any] = []
        for value in candidate.values:
            prompt = renderer.prompt(**{candidate.name: value})
            if prompt is None:
                continue
            state = markup.prompt_state(prompt)
            if state.thinking_disabled:
                off.append(value)
            else:
                on.append((value, state.prefilled))
        if on and (off or default_off):
            prefilled = [value for value, filled in on if filled]
            value_on = prefilled[0] if prefilled else on[-1][0]
            return ThinkingSwitch("kwarg", candidate.name, value_on, off[0] if off else None)
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
