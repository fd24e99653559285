"""Probes and probe sets, loaded from JSONL or YAML files with errors that name file and line.

A JSONL file has one probe object per line; a YAML file is either a list of probe
mappings or a mapping with ``name``, ``version``, ``scorer`` and ``probes``. A probe has a
``prompt`` (or chat ``messages``), an ``answer``, and optionally ``id``, ``scorer`` and
``metadata``. Probes without an id get a stable one derived from their content.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rtc_assert.errors import ProbeFileError, RtcAssertError, ScorerError
from rtc_assert.probes.scorers import get_scorer


class Message(BaseModel):
    """One chat message of a probe's conversation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class Probe(BaseModel):
    """One prompt (or conversation) with its reference answer and the scorer that judges it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    answer: str
    scorer: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("answer", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("answer")
    @classmethod
    def _answer_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reference answer is blank")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the prompt is blank: give the question to ask")
        return value

    @model_validator(mode="after")
    def _one_input_and_usable_reference(self) -> Probe:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' and 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' must not be empty")
        try:
            get_scorer(self.scorer).check_reference(self.answer)
        except ScorerError as error:
            raise ValueError(str(error)) from None
        return self

    def chat_messages(self) -> list[dict[str, str]]:
        """The probe as chat messages, ready for a tokenizer's chat template."""
        if self.messages is not None:
            return [message.model_dump() for message in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]


class ProbeSet(BaseModel):
    """A named, versioned, ordered collection of probes with unique ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    probes: tuple[Probe, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> ProbeSet:
        seen: set[str] = set()
        for probe in self.probes:
            if probe.id in seen:
                raise ValueError(f"duplicate probe id {probe.id!r}")
            seen.add(probe.id)
        return self

    def __len__(self) -> int:
        return len(self.probes)

    def __iter__(self) -> Iterator[Probe]:  # type: ignore[override]
        return iter(self.probes)

    def head(self, count: int) -> ProbeSet:
        """The same set cut to its first ``count`` probes (for quick runs)."""
        if count < 1:
            raise ValueError(f"a probe set needs at least one probe, asked for {count}")
        return self.model_copy(update={"probes": self.probes[:count]})

    def sample(self, count: int, seed: int = 0) -> ProbeSet:
        """``count`` probes drawn at random (seeded), kept in the set's order."""
        if not 1 <= count <= len(self.probes):
            raise ValueError(
                f"cannot sample {count} probes from {self.name!r}, which has {len(self.probes)}"
            )
        chosen = sorted(random.Random(seed).sample(range(len(self.probes)), count))
        return self.model_copy(update={"probes": tuple(self.probes[i] for i in chosen)})

    def by_id(self) -> dict[str, Probe]:
        """The probes keyed by id."""
        return {probe.id: probe for probe in self.probes}


def content_id(record: dict[str, Any]) -> str:
    """A stable id for a probe without one: a hash of its prompt or messages and answer."""
    content = {key: record.get(key) for key in ("prompt", "messages", "answer")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode("utf-8"))
    return f"p-{digest.hexdigest()[:12]}"


def _describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"field '{field}': {message}" if field else message)
    return "; ".join(problems)


def probe_from_record(record: Any, default_scorer: str | None) -> Probe:
    """A probe from one record; raises ValueError saying what to fix."""
    if not isinstance(record, dict):
        raise ValueError(f"a probe must be an object/mapping, got {type(record).__name__}")
    fields = dict(record)
    if "answer" not in fields:
        raise ValueError("missing 'answer': every probe needs a reference answer")
    fields.setdefault("id", content_id(fields))
    if "scorer" not in fields:
        if default_scorer is None:
            raise ValueError(
                "no scorer: give the probe a 'scorer' key, or the set a default "
                "(scorer= when loading, or 'scorer:' at the top of a YAML file)"
            )
        fields["scorer"] = default_scorer
    try:
        return Probe.model_validate(fields)
    except ValidationError as error:
        raise ValueError(_describe_validation_error(error)) from None


def build_probes(
    records: Iterable[tuple[int, Any]],
    default_scorer: str | None,
    error: Callable[[int, str], RtcAssertError],
    unit: str = "line",
) -> tuple[Probe, ...]:
    """Probes from (position, record) pairs, with unique ids.

    Args:
        records: each record with its position (a file line, a data-set row).
        default_scorer: the scorer of records that name none.
        error: builds the exception for a bad record from its position and the reason.
        unit: what a position is called in messages ("line", "row").
    """
    seen: dict[str, int] = {}
    probes = []
    for position, record in records:
        try:
            probe = probe_from_record(record, default_scorer)
        except ValueError as problem:
            raise error(position, str(problem)) from None
        if probe.id in seen:
            raise error(
                position, f"duplicate probe id {probe.id!r} (first on {unit} {seen[probe.id]})"
            )
        seen[probe.id] = position
        probes.append(probe)
    return tuple(probes)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ProbeFileError(path, None, f"cannot read the file: {error.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ProbeFileError(
            path, line, f"not UTF-8 text (byte {raw[error.start]:#04x}); save the file as UTF-8"
        ) from None


def _jsonl_records(path: Path, text: str) -> list[tuple[int, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise ProbeFileError(path, number, f"invalid JSON: {error.msg}") from None
    return records


def _yaml_document(path: Path, text: str) -> tuple[dict[str, Any], list[tuple[int, Any]]]:
    """The YAML header fields and the probe records with their line numbers."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ProbeFileError(
            path, line, f"invalid YAML: {getattr(error, 'problem', error)}"
        ) from None
    if isinstance(data, list) and isinstance(root, yaml.SequenceNode):
        header: dict[str, Any] = {}
        probes_node = root
    elif isinstance(data, dict) and isinstance(root, yaml.MappingNode):
        unknown = set(data) - {"name", "version", "scorer", "probes"}
        if unknown:
            raise ProbeFileError(
                path,
                root.start_mark.line + 1,
                f"unknown top-level keys {sorted(unknown)}; allowed: name, version, scorer, probes",
            )
        found = next((value for key, value in root.value if key.value == "probes"), None)
        if not isinstance(found, yaml.SequenceNode):
            raise ProbeFileError(path, root.start_mark.line + 1, "'probes' must be a list")
        probes_node = found
        header = {key: data[key] for key in ("name", "version", "scorer") if key in data}
        data = data["probes"]
    else:
        raise ProbeFileError(
            path, 1, "a YAML probe file is a list of probes or a mapping with a 'probes' list"
        )
    lines = [node.start_mark.line + 1 for node in probes_node.value]
    return header, list(zip(lines, data, strict=True))


def load_probe_set(
    path: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    scorer: str | None = None,
) -> ProbeSet:
    """Load a probe set from a ``.jsonl`` or ``.yaml``/``.yml`` file.

    Args:
        path: the file.
        name: the set's name; default the YAML ``name`` or the file's stem.
        version: the set's version; default the YAML ``version`` or ``sha256:`` of the file,
            so that editing a file never mixes old and new results.
        scorer: the scorer of probes that name none; default the YAML ``scorer``.

    Raises:
        ProbeFileError: naming the file, the line and what to fix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".jsonl", ".yaml", ".yml"}:
        raise ProbeFileError(path, None, "unknown probe file type: use .jsonl, .yaml or .yml")
    text = _read_text(path)
    if not text.strip():
        raise ProbeFileError(path, None, "the file is empty: a probe set needs at least one probe")
    if suffix == ".jsonl":
        header: dict[str, Any] = {}
        records = _jsonl_records(path, text)
    else:
        header, records = _yaml_document(path, text)
    if not records:
        raise ProbeFileError(path, None, "no probes in the file: a probe set needs at least one")
    default_scorer = scorer if scorer is not None else header.get("scorer")
    probes = build_probes(
        records, default_scorer, lambda line, reason: ProbeFileError(path, line, reason)
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return ProbeSet(
        name=name or str(header.get("name") or path.stem),
        version=version or str(header.get("version") or f"sha256:{digest}"),
        probes=probes,
    )
