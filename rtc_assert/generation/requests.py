"""What every backend shares: generation settings, requests, records, and prompt rendering.

Prompts are rendered once, client-side, with the model's own tokenizer and chat template, so
every backend (transformers, vLLM, a server) generates from, and classifies, the same text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rtc_assert.errors import GenerationError
from rtc_assert.probes.probe import Probe
from rtc_assert.traces.classify import Markup
from rtc_assert.traces.detection import ThinkingSwitch, detect_template

logger = logging.getLogger(__name__)

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
    `rtc_assert.traces.detection` detects it (a keyword such as ``enable_thinking``, or a flag
    written into the system turn); None passes nothing."""
    batch_size: int = Field(default=32, ge=1)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One sample of one probe, with the prompt as rendered by the chat template."""

    probe: Probe
    prompt: str
    sample: int
    prefilled: bool = False
    """The prompt ends inside the reasoning, as the run's markup reads it (`build_requests`)."""


class ServerSplit(BaseModel):
    """A response's reasoning and answer as a server split them, live or kept in a file (see
    `rtc_assert.traces.server_split`)."""

    model_config = ConfigDict(frozen=True)

    reasoning: str | None
    """The reasoning field's text (a chat message's: see
    `rtc_assert.traces.server_split.message_reasoning`); None when absent or null."""
    content: str | None
    """``message.content``; None when null."""
    field: str | None = None
    """Which field held the reasoning (a file's: see `rtc_assert.ingest`; ``content.thinking``
    for Mistral's thinking chunks)."""
    budget_exhausted: bool = False
    """The reasoning reached the thinking budget the request set."""
    thinking_disabled: bool = False
    """The request turned thinking off (the thinking switch, or ``extra_body``, sent off)."""
    parsed_block: bool = False
    """The reasoning came as a block of its own, kept even when empty: a closed block the
    file's writer parsed out of the text itself (Inspect's ``<think>`` parse), or a chat
    message's thinking chunks (Mistral's)."""
    hidden: bool = False
    """Reasoning came back without its text (OpenRouter's ``reasoning_details`` entries without
    text: encrypted, a summary, a signature alone; Inspect's redacted reasoning parts:
    encrypted, or signed with a summary only); ``reasoning`` holds only the visible parts
    beside it."""
    unclosed: bool = False
    """The server said the reasoning block never ended (Mistral's thinking chunk with
    ``closed: false``)."""


class Generation(BaseModel):
    """What a backend returned for one request: the raw completion and how it ended."""

    model_config = ConfigDict(frozen=True)

    probe_id: str
    sample: int
    prompt: str
    """The rendered prompt that was sent."""
    text: str
    """The completion with special tokens kept; EOS and padding removed."""
    finish_reason: FinishReason | None
    """None when the source did not say (a file written by another tool)."""
    prompt_tokens: int
    completion_tokens: int
    prefilled: bool
    """The prompt ended inside the reasoning (its opener written), as the run's markup reads
    it: the request's `GenerationRequest.prefilled`."""
    reasoning_tokens: int | None = None
    """``usage.completion_tokens_details.reasoning_tokens`` where the server reports it."""
    split: ServerSplit | None = None
    """The reasoning/content split (chat backends, files that kept one); None for raw text."""


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
    template's own switch (a keyword, or a flag written into the system turn); by default it
    is detected from the template.
    """
    _require_chat_template(tokenizer, model)
    switch = switch or detect_template(tokenizer).switch
    return tokenizer.apply_chat_template(
        switch.messages(probe.chat_messages(), settings.enable_thinking),
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
    markup: Markup | None = None,
) -> list[GenerationRequest]:
    """``settings.samples`` requests per probe, prompts rendered once per probe.

    ``switch`` and ``markup`` (whether each prompt is prefilled) default to what is detected
    from the template. ``tokenizer`` None: the prompt is the probe's messages
    (`messages_prompt`), never prefilled.
    """
    if settings.samples > 1 and settings.temperature == 0:
        raise GenerationError(
            f"samples={settings.samples} with temperature=0 repeats one greedy output; "
            "set temperature > 0 or samples: 1"
        )
    if tokenizer is not None:
        _require_chat_template(tokenizer, model)
        if switch is None or markup is None:
            detected = detect_template(tokenizer)
            switch, markup = switch or detected.switch, markup or detected.markup
    requests: list[GenerationRequest] = []
    for probe in probes:
        if tokenizer is None or markup is None:
            prompt, prefilled = messages_prompt(probe), False
        else:
            prompt = render_prompt(tokenizer, probe, settings, model=model, switch=switch)
            prefilled = markup.prompt_state(prompt).prefilled
        requests.extend(
            GenerationRequest(probe, prompt, s, prefilled) for s in range(settings.samples)
        )
    return requests


PREFIX_MARGIN = 1024
"""Tokens past the context a prompt's prefix must reach to decide alone that the whole does
not fit: far more than cutting a text can add (`check_prompt_lengths`)."""

PREFIX_CHARS_PER_TOKEN = 8
"""Characters of the first prefix per token it must reach: prose and code average 1 to 5
characters a token in today's vocabularies, so the first prefix decides for nearly every
prompt far past the context (`check_prompt_lengths`)."""


@dataclass(frozen=True, slots=True)
class _Count:
    tokens: int
    exact: bool
    """False: ``tokens`` is a lower bound, from a prefix."""


def _token_counts(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    if not texts:
        return []  # the tokenizer fails on an empty batch
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False).input_ids]


def _prompt_counts(tokenizer: Any, prompts: Sequence[str], context: int) -> list[_Count]:
    """Each prompt's tokens; for one far past ``context``, a lower bound from a prefix."""
    decisive = context + PREFIX_MARGIN
    counts: dict[int, _Count] = {}
    size = PREFIX_CHARS_PER_TOKEN * decisive
    pending = [i for i, prompt in enumerate(prompts) if 2 * size < len(prompt)]
    while pending:
        found = _token_counts(tokenizer, [prompts[i][:size] for i in pending])
        counts.update(
            (i, _Count(tokens - PREFIX_MARGIN, exact=False))
            for i, tokens in zip(pending, found, strict=True)
            if tokens >= decisive
        )
        size *= 4
        pending = [i for i in pending if i not in counts and 2 * size < len(prompts[i])]
    whole = [i for i in range(len(prompts)) if i not in counts]
    found = _token_counts(tokenizer, [prompts[i] for i in whole])
    counts.update((i, _Count(tokens, exact=True)) for i, tokens in zip(whole, found, strict=True))
    return [counts[i] for i in range(len(prompts))]


def check_prompt_lengths(
    tokenizer: Any,
    requests: Sequence[GenerationRequest],
    settings: GenerationSettings,
    context: int,
    *,
    probe_set: str,
    model: str,
) -> None:
    """Refuse prompts that leave no room in the model's ``context`` to generate; warn when
    ``max_new_tokens`` would run past it.

    A prompt is counted whole unless it is more than twice ``PREFIX_CHARS_PER_TOKEN * (context
    + PREFIX_MARGIN)`` characters long: such a prompt (a broken or hostile probe file) is
    counted first on a prefix of half that, and refused, as "at least N tokens", when the
    prefix alone reaches ``context + PREFIX_MARGIN`` tokens. Why that is safe: cutting a text
    changes how the text next to the cut is tokenized, and nothing before it. The normalizer
    and the pre-tokenizer act on characters and their neighbours, and the model tokenizes each
    pre-tokenized piece on its own, so the pieces before the cut are the same tokens in the
    prefix as in the whole; within the piece the cut falls in, BPE's merges join neighbours,
    so what changes is within a few tokens of the cut. The cut can make the prefix's last
    characters cost more tokens than the same characters do in the whole (an added token cut
    in two: the demo's ``<|im_start|>`` is one token, ``<|im_st`` seven; the cut piece of a
    byte-level vocabulary, at most one token a byte), a few tokens, far from
    ``PREFIX_MARGIN``. So the whole has at least the prefix's count less ``PREFIX_MARGIN``
    (that is N, the context or more), and a prompt that fits never reaches the margin on a
    prefix: it is counted whole and decided exactly as before. One past the context is refused
    either way, with its exact count when it is counted whole.

    The first prefix decides whenever its tokens average ``PREFIX_CHARS_PER_TOKEN`` characters
    or fewer, whatever the prompt's length. Longer tokens (long added tokens, runs of spaces or
    symbols some vocabularies hold as one token) can leave it short of the margin: the prefix
    then grows fourfold, while under half the prompt, and the prompt is counted whole when no
    prefix decides, which costs less than 5/3 of counting it whole at once.

    Raises:
        GenerationError: naming the probe set, the first such probe and the lengths.
    """
    prompts = {request.probe.id: request.prompt for request in requests}
    counts = _prompt_counts(tokenizer, list(prompts.values()), context)
    lengths = dict(zip(prompts, counts, strict=True))
    too_long = [probe_id for probe_id, length in lengths.items() if length.tokens >= context]
    if too_long:
        first = too_long[0]
        others = f" (and {len(too_long) - 1} more probes)" if len(too_long) > 1 else ""
        count = lengths[first]
        size = (
            f"{count.tokens:,} tokens"
            if count.exact
            else f"at least {count.tokens:,} tokens (counted on a prefix of its "
            f"{len(prompts[first]):,} characters)"
        )
        raise GenerationError(
            f"probe set {probe_set!r}, probe {first!r}{others}: the rendered prompt is "
            f"{size}, and {model}'s context is {context:,} positions, so nothing can be "
            "generated; shorten the prompt, drop the probe, or use a model with a longer "
            "context"
        )
    longest = max((length.tokens for length in lengths.values()), default=0)
    if longest + settings.max_new_tokens > context:
        logger.warning(
            "probe set %r: the longest prompt (%d tokens) plus max_new_tokens %d runs past "
            "%s's context of %d positions: a trace that long cannot end; lower max_new_tokens "
            "to %d or less",
            probe_set,
            longest,
            settings.max_new_tokens,
            model,
            context,
            context - longest,
        )
