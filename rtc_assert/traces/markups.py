"""Reasoning markups that are not one pair of tags, each with one classify path.

- `HarmonyChannels`: gpt-oss's harmony format. The ``analysis`` channel is the reasoning,
  the ``final`` channel the answer; a reply with no analysis channel is ``missing``, an
  analysis message that never ends is ``truncated``.
- `ThinkResponse`: Granite 3.3's ``<think>...</think><response>...</response>``; the tag
  rules decide the status, and the answer is taken out of its ``<response>`` tags.
- `FinalMarker`: Apriel's untagged reasoning before ``[BEGIN FINAL RESPONSE]``; the
  reasoning opens implicitly at the start of the output, the marker closes it.

The four statuses keep DESIGN.md's meaning in every markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from rtc_assert.traces.classify import (
    STANDARD_TAGS,
    Markup,
    PromptState,
    Trace,
    TraceFormat,
    closed_trace,
    missing_trace,
    truncated_trace,
)

MarkupName = Literal["tags", "harmony", "think_response", "final_marker"]
MARKUP_NAMES: tuple[MarkupName, ...] = get_args(MarkupName)

HARMONY_ANALYSIS = "<|channel|>analysis<|message|>"
HARMONY_FINAL = "<|channel|>final<|message|>"
_HARMONY_MESSAGE = re.compile(
    r"<\|channel\|>\s*(?P<channel>[^\s<]*)[^<]*(?:<\|constrain\|>[^<]*)?<\|message\|>"
    r"(?P<body>.*?)"
    r"(?P<end><\|end\|>|<\|return\|>|<\|call\|>|(?=<\|start\|>)|(?=<\|channel\|>)|\Z)",
    re.DOTALL,
)


@dataclass(frozen=True)
class _HarmonyMessage:
    channel: str
    body: str
    start: int
    ended: bool


def _harmony_messages(text: str) -> list[_HarmonyMessage]:
    return [
        # A message ends with an end token, or where the next message starts; not at \Z.
        _HarmonyMessage(
            m.group("channel"),
            m.group("body"),
            m.start(),
            bool(m.group("end")) or m.end() < len(text),
        )
        for m in _HARMONY_MESSAGE.finditer(text)
    ]


@dataclass(frozen=True)
class HarmonyChannels:
    """gpt-oss harmony: ``<|channel|>analysis<|message|>...<|end|>`` then the final channel."""

    name = "harmony"

    def prompt_state(self, prompt: str) -> PromptState:
        """Prefilled when the prompt opens the analysis channel; thinking off when it opens
        the final channel."""
        tail = prompt.rstrip()
        return PromptState(
            prefilled=tail.endswith(HARMONY_ANALYSIS),
            thinking_disabled=tail.endswith(HARMONY_FINAL),
        )

    def split(
        self, text: str, *, finish_reason: str | None, prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        messages = _harmony_messages(HARMONY_ANALYSIS + text if prefilled else text)
        analysis = [m for m in messages if m.channel == "analysis"]
        final = next((m for m in messages if m.channel == "final"), None)
        if not analysis:
            return missing_trace(text if final is None else final.body, "no_analysis_channel")
        first = analysis[0]
        if not first.ended:
            return truncated_trace(first.body, finish_reason)
        reasons = []
        if not prefilled and text[: messages[0].start].strip():
            reasons.append("text_before_open")
        if len(analysis) > 1:
            reasons.append("multiple_blocks")
        answer = "" if final is None else final.body
        return closed_trace(first.body, answer, reasons, min_reasoning_chars)

    def describe(self) -> dict[str, Any]:
        return {"markup": self.name, "reasoning": HARMONY_ANALYSIS, "answer": HARMONY_FINAL}


@dataclass(frozen=True)
class ThinkResponse:
    """A reasoning tag pair followed by the answer inside a response tag pair."""

    reasoning: TraceFormat = field(default_factory=TraceFormat)
    response: TraceFormat = field(default_factory=lambda: TraceFormat("<response>", "</response>"))
    name = "think_response"

    def prompt_state(self, prompt: str) -> PromptState:
        return self.reasoning.prompt_state(prompt)

    def split(
        self, text: str, *, finish_reason: str | None, prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        trace = self.reasoning.split(
            text,
            finish_reason=finish_reason,
            prefilled=prefilled,
            min_reasoning_chars=min_reasoning_chars,
        )
        return trace._replace(answer=self._unwrap(trace.answer))

    def _unwrap(self, answer: str) -> str:
        opening = re.search(re.escape(self.response.open_tag), answer, re.IGNORECASE)
        if opening is None:
            return answer
        inside = answer[opening.end() :]
        closing = re.search(re.escape(self.response.close_tag), inside, re.IGNORECASE)
        return (inside if closing is None else inside[: closing.start()]).strip()

    def describe(self) -> dict[str, Any]:
        return {
            "markup": self.name,
            "tags": [[self.reasoning.open_tag, self.reasoning.close_tag]],
            "answer_tags": [self.response.open_tag, self.response.close_tag],
        }


@dataclass(frozen=True)
class FinalMarker:
    """Untagged reasoning, then a marker before the answer (Apriel's final response).

    The reasoning opens at the start of the output. With the marker: ``valid`` or
    ``empty``. Without it: ``truncated`` when the prompt was prefilled or generation hit
    the token limit, else ``missing`` (the model answered without the markup).
    """

    marker: str = "[BEGIN FINAL RESPONSE]"
    end_marker: str | None = "[END FINAL RESPONSE]"
    prefill: str | None = None
    """Text the generation prompt writes to open the reasoning (Apriel 1.6's
    ``Here are my reasoning steps:``); a prompt ending with it is prefilled."""
    name = "final_marker"

    def prompt_state(self, prompt: str) -> PromptState:
        tail = prompt.rstrip().lower()
        prefill = (self.prefill or "").strip().lower()
        prefilled = bool(prefill) and tail.endswith(prefill)
        return PromptState(
            prefilled=prefilled, thinking_disabled=tail.endswith(self.marker.lower())
        )

    def split(
        self, text: str, *, finish_reason: str | None, prefilled: bool, min_reasoning_chars: int
    ) -> Trace:
        marker = re.compile(re.escape(self.marker), re.IGNORECASE)
        found = marker.search(text)
        if found is None:
            if prefilled or finish_reason == "length":
                return truncated_trace(text, finish_reason)
            return missing_trace(text, "no_marker")
        answer = text[found.end() :]
        reasons = ["multiple_blocks"] if marker.search(answer) else []
        if self.end_marker:
            end = re.search(re.escape(self.end_marker), answer, re.IGNORECASE)
            answer = answer if end is None else answer[: end.start()]
        return closed_trace(text[: found.start()], answer, reasons, min_reasoning_chars)

    def describe(self) -> dict[str, Any]:
        return {
            "markup": self.name,
            "marker": self.marker,
            "end_marker": self.end_marker,
            "prefill": self.prefill,
        }


def markup_named(name: MarkupName, pair: TraceFormat | None = None) -> Markup:
    """The markup of a family by name; ``pair`` replaces the reasoning tags where it can.

    Raises:
        ValueError: tags given for a markup that has none.
    """
    if name == "tags":
        return pair or STANDARD_TAGS
    if name == "think_response":
        return ThinkResponse(pair) if pair else ThinkResponse()
    if pair is not None:
        raise ValueError(f"open_tag/close_tag do not apply to markup {name!r}")
    return HarmonyChannels() if name == "harmony" else FinalMarker()
