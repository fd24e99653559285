"""Model specs: a local folder, a hub id with an optional ``@revision``, or ``demo:NAME``.

A folder with ``adapter_config.json`` is a PEFT adapter: its base is the model that file's
``base_model_name_or_path`` names (a spec as above; a relative path is taken from the
adapter's folder first), and backends load the base with the adapter on top.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc_assert.generation.requests import GenerationError


@dataclass(frozen=True)
class ModelRef:
    """Where a model's files are: a local folder, or a hub id and revision."""

    spec: str
    """What the user wrote."""
    source: str
    """The folder or hub id handed to ``from_pretrained``."""
    revision: str | None = None
    adapter: str | None = None
    """A PEFT adapter folder to load on top of ``source`` (its base), or None."""

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()

    @property
    def base(self) -> ModelRef:
        """The model without its adapter (itself when it has none)."""
        return ModelRef(self.spec, self.source, self.revision) if self.adapter else self

    @property
    def adapter_name(self) -> str | None:
        """The adapter's folder name: what a server serves it as, by default."""
        return Path(self.adapter).name if self.adapter else None


ADAPTER_CONFIG = "adapter_config.json"
NAMED_MODELS: dict[str, Callable[[str], Path]] = {}
"""``PREFIX`` -> the folder of a ``PREFIX...`` model spec; `register_models` adds one (the
demo zoo registers ``demo:``)."""


def register_models(prefix: str, folder: Callable[[str], Path]) -> None:
    """Resolve model specs that start with ``prefix`` to the folder ``folder(spec)`` gives."""
    NAMED_MODELS[prefix] = folder


def _named_folder(spec: str) -> Callable[[str], Path] | None:
    return next((f for prefix, f in NAMED_MODELS.items() if spec.startswith(prefix)), None)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or spec.count("/") > 1


def resolve_model(spec: str) -> ModelRef:
    """Resolve a model spec; a path that does not exist fails here, with what to check."""
    if not spec.strip():
        raise GenerationError("empty model spec: give a folder, a hub id or demo:NAME")
    named = _named_folder(spec)
    if named is not None:
        folder = named(spec)
        if (folder / ADAPTER_CONFIG).is_file():
            return _resolve_adapter(spec, folder)
        return ModelRef(spec, str(folder))
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file():
            return _resolve_adapter(spec, path)
        if not (path / "config.json").is_file():
            raise GenerationError(
                f"model folder {path} has no config.json (nor {ADAPTER_CONFIG}): is it a "
                "transformers checkpoint or a PEFT adapter?"
            )
        return ModelRef(spec, str(path))
    if _looks_like_path(spec) or path.exists():
        raise GenerationError(f"model folder {spec} does not exist (or is not a folder)")
    hub_id, _, revision = spec.partition("@")
    return ModelRef(spec, hub_id, revision or None)


def _resolve_adapter(spec: str, folder: Path) -> ModelRef:
    """A PEFT adapter folder as its base model plus the adapter."""
    config_path = folder / ADAPTER_CONFIG
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GenerationError(f"{config_path}: cannot read the adapter config: {error}") from None
    base_spec = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base_spec, str) or not base_spec.strip():
        raise GenerationError(
            f"{config_path}: base_model_name_or_path is missing: set it to the base model "
            "the adapter was trained on (a folder, a hub id or demo:NAME)"
        )
    beside = (folder / base_spec).resolve()
    if _named_folder(base_spec) is None and not Path(base_spec).is_absolute() and beside.is_dir():
        base_spec = str(beside)
    try:
        base = resolve_model(base_spec)
    except GenerationError as error:
        raise GenerationError(
            f"{config_path}: base_model_name_or_path {config['base_model_name_or_path']!r}: "
            f"{error}; point it at the adapter's base model"
        ) from None
    if base.adapter is not None:
        raise GenerationError(
            f"{config_path}: base_model_name_or_path names another adapter ({base.adapter}); "
            "merge that one into its base first"
        )
    return ModelRef(spec, base.source, base.revision, adapter=str(folder))


UNSET_MAX_LENGTH = 10**9
"""A ``tokenizer.model_max_length`` at least this large is transformers' "not set" value."""


def _model_config(model: ModelRef) -> dict[str, Any]:
    """The model's config.json: from its folder, or from the hub cache (no download)."""
    if model.is_local:
        path: str | Path | None = Path(model.source) / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model.source, "config.json", revision=model.revision)
        path = found if isinstance(found, str) else None
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def context_length(model: ModelRef, tokenizer: Any) -> int | None:
    """Positions ``model`` attends over: the smaller of its ``max_position_embeddings`` (or its
    ``text_config``'s) and the tokenizer's ``model_max_length``; None when neither is known."""
    config = _model_config(model)
    text_config = config.get("text_config")
    limits = [
        section.get("max_position_embeddings")
        for section in (config, text_config if isinstance(text_config, dict) else {})
    ]
    limits.append(getattr(tokenizer, "model_max_length", None))
    known = [v for v in limits if isinstance(v, int) and 0 < v < UNSET_MAX_LENGTH]
    return min(known, default=None)
