"""Generation through an OpenAI-compatible server (``vllm serve``, SGLang, a cluster URL).

The client renders each prompt with the model's chat template and sends it to the
*completions* endpoint, so the raw text, tags included, comes back: a server-side reasoning
parser's split is never trusted. Retries, backoff and adaptive concurrency are
`rtc_assert.generation.http_client`'s; the API key never appears in errors or logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rtc_assert.generation.http_client import (
    ClientOptions,
    ServerClient,
    ServerGenerationError,
)
from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import (
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
    is_prefilled,
)
from rtc_assert.generation.tokenizers import load_tokenizer

__all__ = ["VLLM_EXTRA_BODY", "OpenAIServerBackend", "ServerGenerationError"]

VLLM_EXTRA_BODY: dict[str, Any] = {
    "skip_special_tokens": False,
    "spaces_between_special_tokens": False,
    "add_special_tokens": False,
}
"""vLLM (and SGLang) sampling fields that keep the tags and leave the rendered prompt as is."""


class OpenAIServerBackend:
    """Completions from a running server.

    Args:
        model: the model spec; its tokenizer (local folder or hub cache) renders the prompts.
        base_url: the server's OpenAI API root, e.g. ``http://127.0.0.1:8000/v1``.
        served_model: the model name the server knows; default the model spec's source, or
            for a PEFT adapter its folder name (``vllm serve BASE --enable-lora
            --lora-modules NAME=ADAPTER_FOLDER``).
        api_key_env, concurrency, max_in_flight, timeout_s, max_retries, backoff_s: how
            requests are sent and retried (`rtc_assert.generation.http_client.ClientOptions`).
        extra_body: fields added to every request; default `VLLM_EXTRA_BODY`.
    """

    name = "openai"

    def __init__(
        self,
        model: ModelRef,
        *,
        base_url: str,
        served_model: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 8,
        max_in_flight: int = 64,
        timeout_s: float = 300.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        extra_body: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        tokenizer: Any = None,
    ) -> None:
        try:
            client_options = ClientOptions(
                api_key_env=api_key_env,
                concurrency=concurrency,
                max_in_flight=max_in_flight,
                timeout_s=timeout_s,
                max_retries=max_retries,
                backoff_s=backoff_s,
            )
        except ValueError as error:
            raise GenerationError(f"server backend: invalid option: {error}") from None
        self.model_ref = model
        self.tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.url = base_url.rstrip("/") + "/completions"
        self.served_model = served_model or model.adapter_name or model.source
        self.extra_body = dict(VLLM_EXTRA_BODY if extra_body is None else extra_body)
        self.http = ServerClient("server", client_options)
        self.version = f"openai-compatible server at {self.http.redact(base_url)}"

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

    def _complete(self, request: GenerationRequest, settings: GenerationSettings) -> Generation:
        body = self.http.post(
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
                f"server {self.url} answered without choices[0].text/finish_reason: {body!r:.300}"
            ) from error
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
            prefilled=is_prefilled(request.prompt),
        )
