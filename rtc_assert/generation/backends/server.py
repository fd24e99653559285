"""Generation through an OpenAI-compatible server (``vllm serve``, SGLang, a cluster URL).

The client renders each prompt with the model's chat template and sends it to the
*completions* endpoint, so the raw text, tags included, comes back: a server-side reasoning
parser's split is never trusted. Retries, backoff and adaptive concurrency are
`rtc_assert.generation.http_client`'s; the API key never appears in errors or logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rtc_assert.errors import redact
from rtc_assert.generation.http_client import ClientOptions, ServerClient
from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import (
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
)
from rtc_assert.generation.tokenizers import load_tokenizer

VLLM_EXTRA_BODY: dict[str, Any] = {
    "skip_special_tokens": False,
    "spaces_between_special_tokens": False,
    "add_special_tokens": False,
}
"""vLLM (and SGLang) sampling fields that keep the tags and leave the rendered prompt as is."""


class Options(ClientOptions):
    """The ``openai`` backend's options (``backend.options`` in thresholds.yaml)."""

    base_url: str
    """The server's OpenAI API root, e.g. ``http://127.0.0.1:8000/v1``."""
    served_model: str | None = None
    """The model name the server knows; default the model spec's source, or for a PEFT
    adapter its folder name (``vllm serve BASE --enable-lora --lora-modules NAME=FOLDER``)."""
    extra_body: dict[str, Any] | None = None
    """Fields added to every request, over `VLLM_EXTRA_BODY` (special tokens are always kept)."""
    trust_remote_code: bool = False


class OpenAIServerBackend:
    """Completions from a running server.

    Args:
        model: the model spec; its tokenizer (local folder or hub cache) renders the prompts.
        base_url: the server's OpenAI API root, e.g. ``http://127.0.0.1:8000/v1``.
        options: `Options`: the server, and how requests are sent and retried.
    """

    name = "openai"

    def __init__(self, model: ModelRef, *, options: Options, tokenizer: Any = None) -> None:
        if (options.extra_body or {}).get("skip_special_tokens"):
            raise GenerationError(
                "server backend: extra_body skip_special_tokens: true would drop reasoning "
                "markers that are special tokens (Gemma 4's <|channel>...<channel|>); remove it"
            )
        self.model_ref = model
        self.tokenizer = tokenizer or load_tokenizer(
            model, trust_remote_code=options.trust_remote_code
        )
        self.url = options.base_url.rstrip("/") + "/completions"
        self.shown_url = redact(self.url)
        self.served_model = options.served_model or model.adapter_name or model.source
        self.extra_body = {**VLLM_EXTRA_BODY, **(options.extra_body or {})}
        self.http = ServerClient("server", options)
        self.version = f"openai-compatible server at {redact(options.base_url)}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """Generate concurrently; on failure, raise with the completed generations kept."""
        return self.http.map(requests, lambda request: self._complete(request, settings))

    def _payload(self, request: GenerationRequest, settings: GenerationSettings) -> dict[str, Any]:
        return {
            "model": self.served_model,
            "prompt": request.prompt,
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed + request.sample,
            "n": 1,
            **self.extra_body,
        }

    async def _complete(
        self, request: GenerationRequest, settings: GenerationSettings
    ) -> Generation:
        body = await self.http.post(
            self.url,
            self._payload(request, settings),
            f"probe {request.probe.id!r}",
            f"check served_model {self.served_model!r} and the generation settings",
        )
        return self._record(request, body)

    def _record(self, request: GenerationRequest, body: dict[str, Any]) -> Generation:
        try:
            choice = body["choices"][0]
            text, finish = choice["text"], choice["finish_reason"]
            usage = body.get("usage") or {}
        except (KeyError, IndexError, TypeError) as error:
            raise GenerationError(
                f"server {self.shown_url} answered without choices[0].text/finish_reason: "
                f"{redact(repr(body)):.300}"
            ) from error
        if not isinstance(text, str):
            raise GenerationError(
                f"server {self.shown_url} answered probe {request.probe.id!r} with a "
                f"choices[0].text that is {type(text).__name__}, not a string: is it an "
                "OpenAI-compatible completions endpoint?"
            )
        if finish not in ("stop", "length"):
            raise GenerationError(
                f"server ended probe {request.probe.id!r} with finish reason {finish!r}; "
                "expected 'stop' or 'length'"
            )
        eos = self.tokenizer.eos_token
        if eos and text.endswith(eos):
            text = text[: -len(eos)]
        return Generation(
            probe_id=request.probe.id,
            sample=request.sample,
            prompt=request.prompt,
            text=text,
            finish_reason=finish,
            prompt_tokens=usage.get("prompt_tokens")
            or len(self.tokenizer(request.prompt, add_special_tokens=False).input_ids),
            completion_tokens=usage.get("completion_tokens")
            or len(self.tokenizer(text, add_special_tokens=False).input_ids),
            prefilled=request.prefilled,
        )
