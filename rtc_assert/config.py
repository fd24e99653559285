"""thresholds.yaml: what to compare, how to generate, and which gates must hold.

Errors name the file, the line and the field, and say what is allowed.
"""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rtc_assert.decide.spec import GATE_KINDS, DecisionConfig, GateKind, GateSpec
from rtc_assert.errors import ConfigError
from rtc_assert.generation.backends import BACKEND_NAMES, check_options
from rtc_assert.generation.requests import GenerationSettings
from rtc_assert.metrics import MetricName
from rtc_assert.traces.classify import Markup, TraceFormat
from rtc_assert.traces.detection import DetectedTemplate, TraceSetup
from rtc_assert.traces.markups import MarkupName, markup_named

SCHEMA_VERSION = 1

Role = Literal["candidate", "base"]
ROLES: tuple[Role, ...] = ("candidate", "base")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Located(ValueError):
    """A validation problem found on the whole config but located at one field."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.location = location


def _number(value: Any) -> Any:
    """Refuse YAML's ``yes``/``false`` (which pydantic would read as 1 and 0) and ``.nan``."""
    if isinstance(value, bool):
        raise ValueError(f"a number is needed here, not the boolean {str(value).lower()}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a finite number is needed here, not {value}")
    return value


# The bounds sit on the number, not on the optional: None (as a dumped config writes it)
# has no bounds to check.
Threshold = Annotated[Annotated[float, Field(ge=0.0, le=1.0)] | None, BeforeValidator(_number)]
Count = Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_number)]


class BackendConfig(_Strict):
    """Which engine generates, with its engine-specific options (checked on load)."""

    name: str = "transformers"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        if name not in BACKEND_NAMES:
            raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKEND_NAMES)}")
        return name

    @field_validator("options")
    @classmethod
    def _backend_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        return options if name is None else check_options(name, options)


class TraceFormatConfig(_Strict):
    """Override what is detected from the chat template: the markup, its tags, the prefill."""

    markup: MarkupName | None = None
    """``tags``, ``harmony``, ``think_response`` or ``final_marker``; default: detected."""
    open_tag: str | None = None
    close_tag: str | None = None
    prefilled: bool | None = None
    """Whether generation prompts end inside the reasoning; default: read from each prompt."""
    min_reasoning_chars: int = Field(default=1, ge=1)
    budget_counts_as_valid: bool = False
    """A trace a server closed because its thinking budget ran out (detail ``budget``) is
    classified as closed (valid or empty); by default it counts as truncated."""

    @model_validator(mode="after")
    def _usable_markup(self) -> TraceFormatConfig:
        if (self.open_tag is None) != (self.close_tag is None):
            raise ValueError("give both open_tag and close_tag, or neither")
        self.configured_markup()  # tags that TraceFormat or the markup reject fail here
        return self

    def trace_format(self) -> TraceFormat | None:
        """The custom tag pair, or None."""
        if self.open_tag is None or self.close_tag is None:
            return None
        return TraceFormat(self.open_tag, self.close_tag)

    def configured_markup(self) -> Markup | None:
        """The markup this section sets, or None to use the detected one."""
        pair = self.trace_format()
        if self.markup is None:
            return pair
        return markup_named(self.markup, pair)

    def setup(self, detected: DetectedTemplate) -> TraceSetup:
        """The markup to classify with: what was detected, with this section's overrides."""
        markup = self.configured_markup()
        overridden = [
            name
            for name in ("markup", "open_tag", "close_tag", "prefilled")
            if getattr(self, name) is not None
        ]
        return TraceSetup(
            detected=detected,
            markup=markup or detected.markup,
            prefilled=self.prefilled,
            min_reasoning_chars=self.min_reasoning_chars,
            budget_counts_as_valid=self.budget_counts_as_valid,
            overridden=tuple(overridden),
        )


class ProbeSetConfig(_Strict):
    """Where a probe set comes from (see `rtc_assert.probes.sources`): ``library:NAME``,
    ``demo:NAME``, ``hf:OWNER/NAME[:CONFIG]:SPLIT``, a save_to_disk folder, or a
    JSONL/YAML/Parquet/CSV file."""

    source: str
    scorer: str | None = None
    """Scorer of probes that name none."""
    fields: dict[Literal["id", "prompt", "messages", "answer", "scorer"], str] = Field(
        default_factory=dict
    )
    """Data sets: probe field -> column (default: the column of the same name)."""
    answer_pattern: str | None = None
    """Data sets: a regular expression that finds the reference in the answer column."""
    split: str | None = None
    """A save_to_disk folder with several splits: the one to use."""
    sample: Count = None
    """Use N probes drawn at random with ``seed`` (kept in the set's order)."""
    seed: Annotated[int, BeforeValidator(_number)] = 0
    limit: Count = None
    """Use only the first N probes (quick runs; after ``sample``)."""


class GenerationsFileConfig(_Strict):
    """A file of generations another tool wrote, read instead of generating."""

    file: str
    """The path, relative to thresholds.yaml."""
    format: Literal["plain", "lm-eval", "inspect", "openai-batch"] | None = None
    """Detected from the file by default."""

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, value: Any) -> Any:
        return {"file": value} if isinstance(value, str) else value


class GateConfig(_Strict):
    """One threshold on one metric, for the named probe sets (default: all of them)."""

    metric: MetricName
    min: Threshold = None
    max: Threshold = None
    max_drop: Threshold = None
    probe_sets: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> GateConfig:
        given = [kind for kind in GATE_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a gate has exactly one of min, max, max_drop (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> GateKind:
        return next(kind for kind in GATE_KINDS if getattr(self, kind) is not None)

    @property
    def threshold(self) -> float:
        return getattr(self, self.kind)


class RtcConfig(_Strict):
    """The whole of thresholds.yaml."""

    version: Literal[1] = 1
    candidate: str | None = None
    candidates: tuple[str, ...] = ()
    """Several candidates gated against one base, each with its own gate items."""
    base: str | None = None
    backend: BackendConfig = Field(default_factory=BackendConfig)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    trace_format: TraceFormatConfig = Field(default_factory=TraceFormatConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    probe_sets: dict[str, ProbeSetConfig] = Field(min_length=1)
    gates: tuple[GateConfig, ...] = Field(min_length=1)
    generations: dict[Role, dict[str, GenerationsFileConfig]] = Field(default_factory=dict)
    """Role -> probe set -> a file of existing generations, read instead of generating; the
    role's model (``candidate:``/``base:``), if named, gives the markup and the tokenizer."""
    _source: str | None = PrivateAttr(default=None)
    """The file (or options) this configuration was read from, for errors; None if built."""
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)
    """The line of each field in that file, by its path."""

    @model_validator(mode="after")
    def _generations_name_known_probe_sets(self) -> RtcConfig:
        for role, files in self.generations.items():
            unknown = sorted(set(files) - set(self.probe_sets))
            if unknown:
                raise _Located(
                    ("generations", role, unknown[0]),
                    f"unknown probe set(s) {', '.join(unknown)}; "
                    f"defined: {', '.join(self.probe_sets)}",
                )
        if "candidate" in self.generations and len(self.candidates) > 1:
            raise _Located(
                ("generations", "candidate"),
                "with several candidates, give each its own thresholds.yaml (one file "
                "cannot hold the generations of all of them)",
            )
        return self

    @model_validator(mode="after")
    def _gates_name_known_probe_sets(self) -> RtcConfig:
        for index, gate in enumerate(self.gates):
            unknown = sorted(set(gate.probe_sets or ()) - set(self.probe_sets))
            if unknown:
                raise _Located(
                    ("gates", index, "probe_sets"),
                    f"unknown probe set(s) {', '.join(unknown)}; "
                    f"defined: {', '.join(self.probe_sets)}",
                )
        return self

    @model_validator(mode="after")
    def _no_gate_twice(self) -> RtcConfig:
        seen: dict[tuple[str, str, str, float], int] = {}
        for index, gate in enumerate(self.gates):
            for name in gate.probe_sets or tuple(self.probe_sets):
                key = (name, gate.metric, gate.kind, gate.threshold)
                if seen.setdefault(key, index) != index:
                    raise ValueError(
                        f"gates.{index}: the same gate as gates.{seen[key]} on probe set "
                        f"{name!r} ({gate.metric} {gate.kind} {gate.threshold:g}); remove one"
                    )
        return self

    @model_validator(mode="after")
    def _one_way_to_name_candidates(self) -> RtcConfig:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates: each candidate may be named once")
        if self.candidate is not None and self.candidates and self.candidate not in self.candidates:
            raise ValueError(
                "give either 'candidate' or 'candidates' (the configuration gates each of them)"
            )
        return self

    def per_candidate(self) -> list[RtcConfig]:
        """One configuration per candidate named in ``candidates``, or this one."""
        if not self.candidates:
            return [self]
        return [self.model_copy(update={"candidate": name}) for name in self.candidates]

    def gate_specs(self) -> list[GateSpec]:
        """Every (probe set, metric, kind) gate, in probe-set order then file order.

        Where the configuration names several candidates, each gate also names the one it
        gates (this configuration's ``candidate``, see `per_candidate`). Gates that share a
        probe set, metric and kind name their thresholds in their ids, so every id is unique.
        """
        label = self.candidate if len(self.candidates) > 1 else None
        chosen = [
            (name, gate)
            for name in self.probe_sets
            for gate in self.gates
            if gate.probe_sets is None or name in gate.probe_sets
        ]
        shared = Counter((name, gate.metric, gate.kind) for name, gate in chosen)
        return [
            GateSpec(
                probe_set=name,
                metric=gate.metric,
                kind=gate.kind,
                threshold=gate.threshold,
                candidate=label,
                threshold_in_id=shared[name, gate.metric, gate.kind] > 1,
            )
            for name, gate in chosen
        ]

    def needs_base(self) -> bool:
        """Whether any gate compares against the base model."""
        return any(gate.kind == "max_drop" for gate in self.gates)

    def role_model(self, role: Role) -> str | None:
        """The model the configuration names for a role: ``base``, or ``candidate`` (the one
        of ``candidates`` where it names a single one); None when it names none."""
        if role == "candidate" and self.candidate is None and len(self.candidates) == 1:
            return self.candidates[0]
        return getattr(self, role)

    def where(self, *location: str | int) -> str:
        """``FILE:LINE: FIELD`` of a field, as errors name it (without what the configuration
        was read from, for one built in code: ``FIELD``)."""
        field = ".".join(str(part) for part in location)
        if self._source is None:
            return field
        return f"{_where(self._source, self._lines, location)}: {field}"


@dataclass(frozen=True)
class Overrides:
    """Command-line options that override thresholds.yaml."""

    candidate: str | None = None
    base: str | None = None
    backend: str | None = None
    limit: int | None = None
    candidate_option: str = "Overrides.candidate"
    """How errors name the option that gave ``candidate`` (the plugin: ``--rtc-candidate``)."""
    base_option: str = "Overrides.base"
    """How errors name the option that gave ``base``."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit: {self.limit} probes is no run; give at least 1")

    def apply(self, config: RtcConfig) -> RtcConfig:
        """``config`` with these overrides; a model named for a role whose generations it
        reads from files is refused (see `check_model_over_files`)."""
        for role in ROLES:
            if spec := getattr(self, role):
                check_model_over_files(config, role, spec, getattr(self, f"{role}_option"))
        update: dict[str, Any] = {}
        if self.candidate:  # one candidate from the command line replaces the file's
            update.update(candidate=self.candidate, candidates=())
        if self.base:
            update["base"] = self.base
        if self.backend:
            update["backend"] = config.backend.model_copy(
                update={"name": self.backend, "options": {}}
            )
        if self.limit is not None:
            update["probe_sets"] = {
                name: entry.model_copy(update={"limit": min(entry.limit or self.limit, self.limit)})
                for name, entry in config.probe_sets.items()
            }
        return config.model_copy(update=update)


def check_model_over_files(config: RtcConfig, role: Role, spec: str, option: str) -> None:
    """Refuse ``spec``, named by ``option`` for ``role``, where ``config`` reads the role's
    generations from files.

    The files' generations would be reported under ``spec`` and ``spec`` never generated: a
    build would pass a model nobody gated. The model ``config`` itself names for the role (the
    one that wrote the files) is allowed: nothing changes.

    Raises:
        ConfigError: naming the file of generations, its line in thresholds.yaml, and what
            to do.
    """
    files = config.generations.get(role, {})
    named = config.role_model(role)
    if not files or spec == named:
        return
    probe_set, source = next(iter(files.items()))
    more = f" (and on {len(files) - 1} more probe set(s))" if len(files) > 1 else ""
    gate_the_file = (
        f"thresholds.yaml names its model: {named}"
        if named
        else f"to name the model that wrote it, set '{role}:' in thresholds.yaml"
    )
    raise ConfigError(
        f"{config.where('generations', role, probe_set)}: the {role}'s generations on "
        f"{probe_set!r} are read from {source.file}{more}, so {option} {spec} would not be "
        f"generated and the file's generations would be reported as {spec}'s. Drop {option} "
        f"to gate the file ({gate_the_file}), or, to gate {spec}, remove generations.{role} "
        f"from thresholds.yaml or replace its files with {spec}'s generations"
    )


def _node_lines(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """1-based line of every mapping key and sequence item, by its path in the document."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines.update(_node_lines(value, child))
            lines[child] = key.start_mark.line + 1  # the key's line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_node_lines(item, (*path, index)))
    return lines


def _line_of(lines: dict[tuple[Any, ...], int], location: tuple[Any, ...]) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _where(path: Path | str, lines: dict[tuple[Any, ...], int], location: tuple[Any, ...]) -> str:
    """``PATH:LINE`` of a field, or ``PATH`` where its line is not known."""
    line = _line_of(lines, location)
    return f"{path}:{line}" if line else str(path)


def _describe(path: Path | str, error: ValidationError, lines: dict[tuple[Any, ...], int]) -> str:
    problems = []
    items = error.errors()
    for item in items:
        location = tuple(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        named = re.match(r"(gates\.\d+): ", message)
        if not location and named:  # a check across gates names the gate it refuses
            location = tuple(int(p) if p.isdigit() else p for p in named[1].split("."))
            message = message[named.end() :]
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _Located):
            location = (*location, *cause.location)
        if item["type"] == "too_short" and any(
            tuple(other["loc"])[: len(location)] == location and other is not item
            for other in items
        ):
            continue  # a list left short by its own invalid item: that item's error says it
        field = ".".join(str(part) for part in location) or "(top level)"
        problems.append(f"{_where(path, lines, location)}: {field}: {message}")
    return "\n".join(problems)


def _duplicate_key(node: yaml.Node) -> str | None:
    """Where a mapping names one key twice (YAML would silently keep the last), or None."""
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in first:
                return (
                    f"{line}: {key.value!r} is given twice (first on line {first[key.value]}); "
                    "a second one would replace the first: merge them"
                )
            first[key.value] = line
            if found := _duplicate_key(value):
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if found := _duplicate_key(item):
                return found
    return None


def load_config(path: str | Path) -> RtcConfig:
    """Read and validate thresholds.yaml.

    Raises:
        ConfigError: naming the file, the line and the field, and what is allowed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config: {error}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from None
    if root is not None and (duplicate := _duplicate_key(root)):
        raise ConfigError(f"{path}:{duplicate}")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping with probe_sets and gates")
    if data.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: version: this rtc-assert reads config version {SCHEMA_VERSION}, "
            f"the file says {data['version']!r}"
        )
    return validate_config(data, path, _node_lines(root) if root is not None else {})


def validate_config(
    data: dict[str, Any], source: Path | str, lines: dict[tuple[Any, ...], int] | None = None
) -> RtcConfig:
    """`RtcConfig` of ``data`` (a file's, or built from command-line options).

    Raises:
        ConfigError: naming ``source`` (and the line, where ``lines`` knows it) and the field.
    """
    try:
        config = RtcConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(source, error, lines or {})) from None
    config._source, config._lines = str(source), lines or {}
    return config


def positive_int(text: str) -> int:
    """argparse type of --limit, --rtc-limit, --max-new-tokens: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def folder_path(text: str) -> Path:
    """argparse type of report and cache folders: refused up front when a file is there."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file, not a folder: name a folder (it is created if missing)"
        )
    return path
