"""Generation through a chat endpoint whose server splits the reasoning out (``openai-chat``).

For models reachable only through chat completions: a vLLM or SGLang cluster started with
``--reasoning-parser``, hosted APIs (DeepSeek, OpenRouter, Together, Fireworks, Mistral), or
Ollama's ``/api/chat``. The server renders the messages, so no local tokenizer is needed;
where one is at hand (the model folder, the ``tokenizer`` option, or a hub id already in the
local cache) it counts tokens. The response's reasoning field and content are kept apart
(`rtc_assert.generation.requests.ServerSplit`) and classified by
`rtc_assert.traces.server_split.SHAPE_RULES`.

Reasoning fields read, first with a value wins: those of
`rtc_assert.traces.server_split.MESSAGE_REASONING_FIELDS` (``message.reasoning``,
``reasoning_content``, Ollama's ``thinking``, OpenRouter's ``reasoning_details[].text``), as
`rtc_assert.traces.server_split.message_reasoning` reads them; batch files are read the same way.
OpenRouter's ``reasoning_details`` entries without text (encrypted, a summary) make the
reasoning hidden (`ServerSplit.hidden`), as Inspect's redacted parts do; the tokenizer does
not count hidden reasoning (the visible part alone would undercount it), so its count is the
server's, else unknown. ``content`` is read by
`rtc_assert.traces.server_split.message_content`, as in batch files: a string, or text and
refusal parts joined; Mistral's ``thinking`` chunks of the content are the reasoning (field
``content.thinking``, read by ``message_reasoning``); a part of another type is refused.

Special tokens: a reasoning parser splits on token ids, server-side, so markers that are
special tokens are not lost to the split. Markup left in ``content`` (parser off or failed)
is classified with the run's markup; special-token markers survive there only with
``extra_body: {skip_special_tokens: false}``, which is not sent by default (hosted APIs
refuse unknown fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from rtc_assert.generation.http_client import ClientOptions, ServerClient
from rtc_assert.generation.models import ModelRef, resolve_model
from rtc_assert.generation.requests import (
    FinishReason,
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
    ServerSplit,
)
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.traces.server_split import (
    MESSAGE_REASONING_FIELDS,
    message_content,
    message_reasoning,
)

ThinkingSwitchName = Literal[
    "chat_template_kwargs", "deepseek", "openrouter", "ollama", "mistral", "none"
]
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",  # Mistral: the context window was reached
}
"""Finish reasons as servers name them, mapped onto ``stop``/``length``."""


class Options(ClientOptions):
    """The ``openai-chat`` backend's options (and the HTTP client's, see `ClientOptions`)."""

    base_url: str
    """The API root: ``http://HOST:8000/v1`` (OpenAI layout) or ``http://HOST:11434`` (Ollama)."""
    served_model: str | None = None
    """The model name the server knows; default the model spec (a PEFT adapter's folder name)."""
    api: Literal["openai", "ollama"] = "openai"
    """``openai``: ``BASE_URL/chat/completions``; ``ollama``: ``BASE_URL/api/chat``."""
    thinking_switch: ThinkingSwitchName | None = None
    """How ``generation.enable_thinking`` reaches the server: vLLM/SGLang
    ``chat_template_kwargs``, DeepSeek ``thinking``, OpenRouter ``reasoning``, Ollama
    ``think``, Mistral ``reasoning_effort`` (``high``/``none``), or ``none``; default
    ``ollama`` for that api, else ``chat_template_kwargs``."""
    thinking_budget: int | None = None
    """Most reasoning tokens: vLLM ``thinking_token_budget`` or OpenRouter
    ``reasoning.max_tokens``; a trace that reaches it gets detail ``budget``."""
    tokenizer: str | None = None
    """A folder or hub id whose tokenizer counts tokens when the server does not."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Fields added to every request."""
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _budget_has_a_switch(self) -> Options:
        if self.thinking_budget is not None:
            if self.thinking_budget < 1:
                raise ValueError("thinking_budget must be at least 1")
            if self.switch() not in ("chat_template_kwargs", "openrouter"):
                raise ValueError(
                    f"thinking_budget needs thinking_switch chat_template_kwargs (vLLM) or "
                    f"openrouter, not {self.switch()}"
                )
        return self

    def switch(self) -> ThinkingSwitchName:
        """The thinking switch in use."""
        if self.thinking_switch is not None:
            return self.thinking_switch
        return "ollama" if self.api == "ollama" else "chat_template_kwargs"


def optional_tokenizer(model: ModelRef, options: Options) -> Any:
    """The tokenizer of ``options.tokenizer`` or of the model, where one is at hand; else None."""
    if options.tokenizer is not None:
        return load_tokenizer(
            resolve_model(options.tokenizer), trust_remote_code=options.trust_remote_code
        )
    if not model.is_local:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(
            model.source, "tokenizer_config.json", revision=model.revision
        )
        if not isinstance(cached, str):
            return None
    return load_tokenizer(model, trust_remote_code=options.trust_remote_code)


def switch_fields(
    switch: ThinkingSwitchName, enable_thinking: bool | None, budget: int | None
) -> dict[str, Any]:
    """The request fields that turn thinking on or off (and set its budget) on a server."""
    fields: dict[str, Any] = {}
    if switch == "chat_template_kwargs":
        if enable_thinking is not None:
            fields["chat_template_kwargs"] = {"enable_thinking": enable_thinking}
        if budget is not None:
            fields["thinking_token_budget"] = budget
    elif switch == "deepseek" and enable_thinking is not None:
        fields["thinking"] = {"type": "enabled" if enable_thinking else "disabled"}
    elif switch == "openrouter":
        reasoning: dict[str, Any] = {}
        if enable_thinking is not None:
            reasoning["enabled"] = enable_thinking
        if budget is not None:
            reasoning["max_tokens"] = budget
        if reasoning:
            fields["reasoning"] = reasoning
    elif switch == "ollama" and enable_thinking is not None:
        fields["think"] = enable_thinking
    elif switch == "mistral" and enable_thinking is not None:
        # Mistral Small/Medium's adjustable reasoning: "none" omits the thinking chunk. Not
        # prompt_mode, which picks Magistral's reasoning system prompt (it always reasons).
        fields["reasoning_effort"] = "high" if enable_thinking else "none"
    return fields


def turns_thinking_off(body: dict[str, Any]) -> bool:
    """Whether a request body switches thinking off, by any switch `switch_fields` writes
    (``extra_body`` included, since it is merged last)."""
    kwargs, thinking, reasoning = (
        body.get(key) for key in ("chat_template_kwargs", "thinking", "reasoning")
    )
    return (
        (isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False)
        or (isinstance(thinking, dict) and thinking.get("type") == "disabled")
        or (isinstance(reasoning, dict) and reasoning.get("enabled") is False)
        or body.get("think") is False
        or body.get("reasoning_effort") == "none"
    )


class OpenAIChatBackend:
    """Chat completions from a running server, its reasoning field kept apart."""

    name = "openai-chat"

    def __init__(self, model: ModelRef, *, options: Options, tokenizer: Any = None) -> None:
        self.options = options
        self.tokenizer = tokenizer or optional_tokenizer(model, options)
        root = options.base_url.rstrip("/")
        self.url = root + ("/api/chat" if options.api == "ollama" else "/chat/completions")
        self.served_model = options.served_model or model.adapter_name or model.spec
        self.http = ServerClient("chat server", options)
        self.version = f"{options.api} chat server at {self.http.redact(root)}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """Generate concurrently; on failure, raise with the completed generations kept."""
        return self.http.map(requests, lambda request: self._chat(request, settings))

    def payload(self, request: GenerationRequest, settings: GenerationSettings) -> dict[str, Any]:
        """The request body for one probe sample."""
        thinking = switch_fields(
            self.options.switch(), settings.enable_thinking, self.options.thinking_budget
        )
        sampling = {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed + request.sample,
        }
        body: dict[str, Any] = {
            "model": self.served_model,
            "messages": request.probe.chat_messages(),
        }
        if self.options.api == "ollama":
            body |= {
                "stream": False,
                "options": {"num_predict": settings.max_new_tokens, **sampling},
            }
        else:
            body |= {"max_tokens": settings.max_new_tokens, "n": 1, **sampling}
        return body | thinking | self.options.extra_body

    async def _chat(self, request: GenerationRequest, settings: GenerationSettings) -> Generation:
        payload = self.payload(request, settings)
        body = await self.http.post(
            self.url,
            payload,
            f"probe {request.probe.id!r}",
            f"check served_model {self.served_model!r} (the name the server serves the "
            "model as), thinking_switch and the generation settings",
        )
        return self.parse(request, body, thinking_disabled=turns_thinking_off(payload))

    def _layout_error(self, problem: str, body: Any) -> GenerationError:
        return GenerationError(
            self.http.redact(
                f"chat server {self.url} answered in an unknown layout: {problem} "
                f"(got {body!r:.300}); check api ({self.options.api!r}) and base_url"
            )
        )

    def parse(
        self, request: GenerationRequest, body: dict[str, Any], *, thinking_disabled: bool = False
    ) -> Generation:
        """One generation from a response body (OpenAI or Ollama layout); ``thinking_disabled``:
        the request turned thinking off."""
        if self.options.api == "ollama":
            message, finish = body.get("message"), body.get("done_reason")
            usage: dict[str, Any] = {
                "prompt_tokens": body.get("prompt_eval_count"),
                "completion_tokens": body.get("eval_count"),
            }
        else:
            choices = body.get("choices")
            if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                raise self._layout_error("no choices[0]", body)
            message, finish = choices[0].get("message"), choices[0].get("finish_reason")
            usage = body["usage"] if isinstance(body.get("usage"), dict) else {}
        if not isinstance(message, dict):
            raise self._layout_error("no message object", body)
        if "content" not in message and not any(f in message for f in MESSAGE_REASONING_FIELDS):
            raise self._layout_error(
                "the message has neither content nor a reasoning field "
                f"({', '.join(MESSAGE_REASONING_FIELDS)})",
                body,
            )
        finish_reason = _FINISH.get(str(finish))
        if finish_reason is None:
            raise GenerationError(
                f"chat server {self.url} ended probe {request.probe.id!r} with finish_reason "
                f"{finish!r}; expected stop or length (a content filter or an aborted request "
                "leaves nothing to classify)"
            )
        try:
            content, read = message_content(message), message_reasoning(message)
        except ValueError as error:
            raise GenerationError(
                self.http.redact(
                    f"chat server {self.url} answered probe {request.probe.id!r} with a "
                    f"message that cannot be read: {error} (got {message!r:.300})"
                )
            ) from None
        reasoning, hidden = read.text, read.hidden
        details = usage.get("completion_tokens_details") or {}
        reasoning_tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if reasoning_tokens is None and reasoning and not hidden and self.tokenizer is not None:
            # Hidden reasoning has no text to count: the visible part's count would undercount
            # it, so the count stays unknown.
            reasoning_tokens = _count(self.tokenizer, reasoning)
        budget = self.options.thinking_budget
        return Generation(
            probe_id=request.probe.id,
            sample=request.sample,
            prompt=request.prompt,
            text=content or "",
            finish_reason=finish_reason,
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens")
            or _count(self.tokenizer, (reasoning or "") + (content or "")),
            prefilled=request.prefilled,
            reasoning_tokens=reasoning_tokens,
            split=ServerSplit(
                reasoning=reasoning,
                content=content,
                field=read.field,
                budget_exhausted=bool(
                    budget is not None
                    and reasoning_tokens is not None
                    and reasoning_tokens >= budget
                ),
                thinking_disabled=thinking_disabled,
                parsed_block=read.block,
                hidden=hidden,
                unclosed=read.unclosed,
            ),
        )


def _count(tokenizer: Any, text: str) -> int:
    """Tokens in ``text``; 0 without a tokenizer (the count is then unknown)."""
    if tokenizer is None or not text:
        return 0
    return len(tokenizer(text, add_special_tokens=False).input_ids)
