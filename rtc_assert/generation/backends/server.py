"""Generation through an OpenAI-compatible server (``vllm serve``, SGLang, a cluster URL).

The client renders each prompt with the model's chat template and sends it to the
*completions* endpoint, so the raw text, tags included, comes back: a server-side reasoning
parser's split is never trusted. Requests run with bounded concurrency; connection errors,
timeouts, 429 and 5xx answers are retried with exponential backoff; other 4xx answers fail at
once with the server's message. The API key is read from an environment variable and never
appears in errors or logs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Annotated, Any

import httpx
from pydantic import Field

from rtc_assert.errors import ServerGenerationError, redact
from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import (
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
    is_prefilled,
)
from rtc_assert.generation.tokenizers import load_tokenizer

logger = logging.getLogger(__name__)

VLLM_EXTRA_BODY: dict[str, Any] = {
    "skip_special_tokens": False,
    "spaces_between_special_tokens": False,
    "add_special_tokens": False,
}
"""vLLM (and SGLang) sampling fields that keep the tags and leave the rendered prompt as is."""


class _Transient(Exception):
    """A failure worth retrying."""


class OpenAIServerBackend:
    """Completions from a running server.

    Args:
        model: the model spec; its tokenizer (local folder or hub cache) renders the prompts.
        base_url: the server's OpenAI API root, e.g. ``http://127.0.0.1:8000/v1``.
        served_model: the model name the server knows; default the model spec's source, or
            for a PEFT adapter its folder name (``vllm serve BASE --enable-lora
            --lora-modules NAME=ADAPTER_FOLDER``).
        api_key_env: name of the environment variable that holds the API key, if any.
        concurrency: requests in flight at once.
        timeout_s: seconds to wait for one completion.
        max_retries: retries of one request after a transient failure.
        backoff_s: first retry delay; it doubles with each retry.
        extra_body: fields added to every request, over `VLLM_EXTRA_BODY` (special tokens
            are always kept).
    """

    name = "openai"

    def __init__(
        self,
        model: ModelRef,
        *,
        base_url: str,
        served_model: str | None = None,
        api_key_env: str | None = None,
        concurrency: Annotated[int, Field(ge=1)] = 8,
        timeout_s: Annotated[float, Field(gt=0)] = 300.0,
        max_retries: Annotated[int, Field(ge=0)] = 4,
        backoff_s: Annotated[float, Field(ge=0)] = 1.0,
        extra_body: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        tokenizer: Any = None,
    ) -> None:
        self.model_ref = model
        self.tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.url = base_url.rstrip("/") + "/completions"
        self.shown_url = redact(self.url)
        """The URL as messages show it: no ``user:pass@``."""
        self.served_model = served_model or model.adapter_name or model.source
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        if (extra_body or {}).get("skip_special_tokens"):
            raise GenerationError(
                "server backend: extra_body skip_special_tokens: true would drop reasoning "
                "markers that are special tokens (Gemma 4's <|channel>...<channel|>); remove it"
            )
        self.extra_body = {**VLLM_EXTRA_BODY, **(extra_body or {})}
        headers = {}
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise GenerationError(
                    f"server backend: environment variable {api_key_env} (api_key_env) is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(headers=headers, timeout=timeout_s)
        self.version = f"openai-compatible server at {redact(base_url)}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """Generate concurrently; on failure, raise with the completed generations kept."""
        results: dict[int, Generation] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {
                pool.submit(self._complete, request, settings): index
                for index, request in enumerate(requests)
            }
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None:
                    results[futures[future]] = future.result()
                elif failure is None:
                    failure = error
                    for pending in futures:
                        pending.cancel()
        if failure is not None:
            completed = [results[i] for i in sorted(results)]
            if isinstance(failure, GenerationError):
                raise ServerGenerationError(str(failure), completed) from failure
            raise failure
        return [results[i] for i in range(len(requests))]

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
        payload = self._payload(request, settings)
        attempt = 0
        while True:
            try:
                return self._record(request, self._post(payload))
            except _Transient as error:
                if attempt == self.max_retries:
                    raise GenerationError(
                        f"server {self.shown_url} failed on probe {request.probe.id!r} after "
                        f"{attempt + 1} attempts: {redact(str(error))}"
                    ) from error
                delay = self.backoff_s * 2**attempt
                logger.warning("server: %s; retrying in %.1f s", redact(str(error)), delay)
                time.sleep(delay)
                attempt += 1

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.post(self.url, json=payload)
        except httpx.TimeoutException as error:
            raise _Transient(
                f"no answer within {self.client.timeout.read} s ({error!r})"
            ) from error
        except httpx.TransportError as error:
            raise _Transient(f"cannot reach the server ({error!r})") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}: {redact(response.text[:300])}")
        if response.status_code >= 400:
            raise GenerationError(
                f"server {self.shown_url} rejected the request with HTTP "
                f"{response.status_code}: {redact(response.text[:500])} (check served_model "
                f"{self.served_model!r} and the generation settings)"
            )
        try:
            return response.json()
        except ValueError:
            raise GenerationError(
                f"server {self.shown_url} answered HTTP {response.status_code} with a body that "
                f"is not JSON: {redact(response.text[:200])!r}; is base_url the server's /v1 "
                "endpoint of an OpenAI-compatible server?"
            ) from None

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
            prefilled=is_prefilled(request.prompt),
        )
