"""What every backend shares: generation settings, requests, records, and prompt rendering.

Prompts are rendered once, client-side, with the model's own tokenizer and chat template, so
every backend (transformers, vLLM, a server) generates from, and classifies, the same text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rtc_assert.errors import GenerationError
from rtc_assert.probes.probe import Probe
from rtc_assert.traces.classify import TraceFormat, prompt_state
from rtc_assert.traces.detection import ThinkingSwitch, detect_template

FinishReason = Literal["stop", "length"]


class GenerationSettings(BaseModel):
    """How to generate: the same settings mean the same generations, on any backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(default=1024, gt=0)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """0 means greedy decoding; at most 2, as vLLM and the OpenAI API allow."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0
    samples: int = Field(default=1, ge=1)
    """Samples per probe; more than one needs ``temperature > 0``."""
    enable_thinking: bool | None = True
    """Thinking on (True) or off (False) through the chat template's own switch, as
    `rtc_assert.traces.detection` detects it (``enable_thinking``, ``thinking``,
    ``thinking_budget``); None passes nothing."""
    batch_size: int = Field(default=32, ge=1)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One sample of one probe, with the prompt as rendered by the chat template."""

    probe: Probe
    prompt: str
    sample: int


class ServerSplit(BaseModel):
    """A chat response's fields as the server split them (see `rtc_assert.traces.server_split`)."""

    model_config = ConfigDict(frozen=True)

    reasoning: str | None
    """The reasoning field (``reasoning``, ``reasoning_content``, ``reasoning_details[].text``
    or Ollama's ``thinking``); None when absent or null."""
    content: str | None
    """``message.content``; None when null."""
    field: str | None = None
    """Which field held the reasoning."""
    budget_exhausted: bool = False
    """The reasoning reached the thinking budget the request set."""
    thinking_disabled: bool = False
    """The request turned thinking off (the thinking switch, or ``extra_body``, sent off)."""


class Generation(BaseModel):
    """What a backend returned for one request: the raw completion and how it ended."""

    model_config = ConfigDict(frozen=True)

    probe_id: str
    sample: int
    prompt: str
    """The rendered prompt that was sent."""
    text: str
    """The completion with special tokens kept; EOS and padding removed."""
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    prefilled: bool
    """The prompt ended with the opening reasoning tag."""
    reasoning_tokens: int | None = None
    """``usage.completion_tokens_details.reasoning_tokens`` where the server reports it."""
    split: ServerSplit | None = None
    """The server's reasoning/content split (chat backends); None for raw text."""


class Backend(Protocol):
    """A generation engine for one model."""

    name: str
    tokenizer: Any
    """The model's tokenizer: it renders prompts and counts tokens."""

    @property
    def version(self) -> str:
        """Engine and library versions, for run records and cache keys."""
        ...

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """One generation per request, in the order of the requests."""
        ...

    def close(self) -> None:
        """Release engine processes, connections or memory; the backend is unusable after."""
        ...


MESSAGE_BACKENDS = frozenset({"openai-chat"})
"""Backends that send the probe's messages (the server renders them), not a rendered prompt."""


def messages_prompt(probe: Probe) -> str:
    """The probe's messages as JSON: the "prompt" of a backend in `MESSAGE_BACKENDS`."""
    return json.dumps(probe.chat_messages(), ensure_ascii=False)


def _require_chat_template(tokenizer: Any, model: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise GenerationError(
            f"{model}'s tokenizer has no chat template: add a chat_template.jinja file (or a "
            "'chat_template' entry in tokenizer_config.json) to the model folder"
        )


def render_prompt(
    tokenizer: Any,
    probe: Probe,
    settings: GenerationSettings,
    *,
    model: str = "the model",
    switch: ThinkingSwitch | None = None,
) -> str:
    """The probe's messages through the tokenizer's chat template, with the generation prompt.

    Thinking is switched on or off (``settings.enable_thinking``) with ``switch``, the
    template's own switch; by default it is detected from the template.
    """
    _require_chat_template(tokenizer, model)
    switch = switch or detect_template(tokenizer).switch
    return tokenizer.apply_chat_template(
        probe.chat_messages(),
        tokenize=False,
        add_generation_prompt=True,
        **switch.template_kwargs(settings.enable_thinking),
    )


def build_requests(
    tokenizer: Any,
    probes: Sequence[Probe],
    settings: GenerationSettings,
    *,
    model: str,
    switch: ThinkingSwitch | None = None,
) -> list[GenerationRequest]:
    """``settings.samples`` requests per probe, prompts rendered once per probe.

    ``tokenizer`` None: the prompt is the probe's messages (`messages_prompt`).
    """
    if settings.samples > 1 and settings.temperature == 0:
        raise GenerationError(
            f"samples={settings.samples} with temperature=0 repeats one greedy output; "
            "set temperature > 0 or samples: 1"
        )
    if tokenizer is not None:
        _require_chat_template(tokenizer, model)
        switch = switch or detect_template(tokenizer).switch
    requests: list[GenerationRequest] = []
    for probe in probes:
        if tokenizer is None:
            prompt = messages_prompt(probe)
        else:
            prompt = render_prompt(tokenizer, probe, settings, model=model, switch=switch)
        requests.extend(GenerationRequest(probe, prompt, s) for s in range(settings.samples))
    return requests


def is_prefilled(prompt: str, fmt: TraceFormat | None = None) -> bool:
    """Whether a rendered prompt ends with the opening reasoning tag."""
    return prompt_state(prompt, fmt).prefilled
