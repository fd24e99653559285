"""Model specs: a local folder, a hub id with an optional ``@revision``, or ``demo:NAME``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtc_assert import demo
from rtc_assert.generation import GenerationError


@dataclass(frozen=True)
class ModelRef:
    """Where a model's files are: a local folder, or a hub id and revision."""

    spec: str
    """What the user wrote."""
    source: str
    """The folder or hub id handed to ``from_pretrained``."""
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or spec.count("/") > 1


def resolve_model(spec: str) -> ModelRef:
    """Resolve a model spec; a path that does not exist fails here, with what to check."""
    if not spec.strip():
        raise GenerationError("empty model spec: give a folder, a hub id or demo:NAME")
    if demo.is_demo_spec(spec):
        return ModelRef(spec, demo.resolve_model_spec(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GenerationError(
                f"model folder {path} has no config.json: is it a transformers checkpoint?"
            )
        return ModelRef(spec, str(path))
    if _looks_like_path(spec) or path.exists():
        raise GenerationError(f"model folder {spec} does not exist (or is not a folder)")
    hub_id, _, revision = spec.partition("@")
    return ModelRef(spec, hub_id, revision or None)
