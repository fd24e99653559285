"""Checkpoint sweeps: gate every checkpoint of a training run, find the last one safe to ship.

One `RtcSession` runs the base once per probe set and each checkpoint once, through the
generation cache, and decides the configured gates on each checkpoint's full runs (no early
stopping: a sweep wants every checkpoint's metrics, not only its verdict). The base's runs
are read from files instead where thresholds.yaml gives its generations (``generations.base``,
as ``compare`` reads them); the checkpoints are always generated. The result is a
`SweepRecord`; `rtc_assert.reports.sweep` renders and writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from rtc_assert.config import ConfigError, Role, RtcConfig
from rtc_assert.decide.gates import GateInputs, GateResult, decide_gates
from rtc_assert.generation.checkpoints import Checkpoint
from rtc_assert.generation.fingerprint import Fingerprint, files_read
from rtc_assert.metrics import RunMetrics
from rtc_assert.runs import Run
from rtc_assert.session import RtcSession

logger = logging.getLogger(__name__)

SWEEP_INTERRUPTED = (
    "interrupted (Ctrl-C) before the sweep finished: these are the checkpoints gated"
)
"""A sweep record's ``error`` after Ctrl-C."""


class StepRecord(BaseModel):
    """One checkpoint: its metrics per probe set and its gate verdicts."""

    model_config = ConfigDict(frozen=True)

    step: int
    checkpoint: str
    """The checkpoint folder."""
    metrics: dict[str, RunMetrics]
    """By probe set name."""
    gates: list[GateResult]
    passed: bool
    """Whether every gate passed."""

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]


class BaseFile(BaseModel):
    """A file the base's run on one probe set was read from, instead of generated."""

    model_config = ConfigDict(frozen=True)

    file: str
    """The path, as the sweep read it (relative paths in thresholds.yaml joined to its folder)."""
    format: str
    """``lm-eval``, ``inspect``, ``openai-batch`` or ``plain``: as given or detected."""
    sha256: str | None = None
    """The file's SHA-256 as the sweep read it; None in a sweep.json written before it was
    recorded."""


class SweepRecord(BaseModel):
    """A whole sweep: the base's metrics, each checkpoint's, and where the gates first fail."""

    model_config = ConfigDict(frozen=True)

    base: str | None
    """The base's model, ``generations:base`` where its runs are read from files that
    thresholds.yaml names no model of, None without a base."""
    probe_sets: list[str]
    base_metrics: dict[str, RunMetrics]
    steps: list[StepRecord]
    first_failing: int | None
    """Step of the first checkpoint that fails a gate; None when all pass."""
    last_passing: int | None
    """Step of the last checkpoint that passes before ``first_failing`` (the last one safe
    to ship); None when the first checkpoint already fails."""
    passing_after_failure: list[int]
    """Steps that pass again after the first failure (noise, or a recovery worth a look)."""
    fingerprints: dict[str, Fingerprint]
    """By spec: the models loaded, and the generations files read (``generations``, by probe
    set; see `rtc_assert.generation.fingerprint`)."""
    base_files: dict[str, BaseFile] = Field(default_factory=dict)
    """By probe set: the file the base's run there was read from (``generations.base`` in
    thresholds.yaml); a probe set not listed had its base run generated."""
    error: str | None = None
    """Why the sweep stopped before its last checkpoint, if it did: ``steps`` are those gated
    before, and the verdicts are theirs."""

    def step(self, number: int) -> StepRecord:
        return next(step for step in self.steps if step.step == number)


def _verdicts(steps: Sequence[StepRecord]) -> tuple[int | None, int | None, list[int]]:
    first_failing = next((step.step for step in steps if not step.passed), None)
    if first_failing is None:
        return None, steps[-1].step if steps else None, []
    before = [step.step for step in steps if step.passed and step.step < first_failing]
    after = [step.step for step in steps if step.passed and step.step > first_failing]
    return first_failing, before[-1] if before else None, after


def base_spec(config: RtcConfig) -> str | None:
    """The base as a sweep names it: its model, ``generations:base`` where only files of its
    generations are given, or None."""
    if config.base:
        return config.base
    return "generations:base" if config.generations.get("base") else None


def _where(config: RtcConfig, file: RtcConfig | None, role: Role) -> str:
    """Where errors name ``generations.ROLE``: the line of ``file`` (the thresholds.yaml that
    ``config`` was built from with command-line options) where that came from it."""
    if file is not None and file.generations.get(role) == config.generations.get(role):
        return file.where("generations", role)
    return config.where("generations", role)


@dataclass(frozen=True)
class Gating:
    """How `check_sweep`'s refusals name what gates the candidates and how to name the base
    model: a sweep's (`SWEEP_GATING`) or a gate inside training's (the transformers
    callback's)."""

    candidates: str
    """Why the candidate's files would be left unread: what generates the candidates."""
    gate: str
    """Whose thresholds.yaml to remove ``generations.candidate`` from."""
    name_base: str
    """How to name the base model, where none is configured."""


SWEEP_GATING = Gating(
    candidates="a sweep gates each checkpoint, generating it on every probe set",
    gate="the sweep",
    name_base="pass --base or set 'base:' in thresholds.yaml",
)
"""`rtc-assert sweep` and `Sweep`: the candidates are the checkpoints of the series."""


def refuse_candidate_files(
    config: RtcConfig, file: RtcConfig | None = None, gating: Gating = SWEEP_GATING
) -> None:
    """Refuse ``generations.candidate``: a sweep's candidates are its checkpoints, each
    generated (a training gate's, the model being trained), so the files would be left
    unread while the gates passed.

    Raises:
        ConfigError: naming the line of thresholds.yaml (of ``file``, where ``config`` was
            built from it) and what to do, in the words of ``gating``.
    """
    files = config.generations.get("candidate", {})
    if not files:
        return
    probe_set, source = next(iter(files.items()))
    more = f" (and on {len(files) - 1} more probe set(s))" if len(files) > 1 else ""
    raise ConfigError(
        f"{_where(config, file, 'candidate')}: {gating.candidates}, so the candidate's "
        f"generations on {probe_set!r} read from {source.file}{more} would be left unread: "
        f"remove generations.candidate from the thresholds.yaml of {gating.gate} "
        "(generations.base may stay: the base is read from its files), or gate those "
        "generations with rtc-assert compare"
    )


def require_base(
    config: RtcConfig, file: RtcConfig | None = None, gating: Gating = SWEEP_GATING
) -> None:
    """Raises `ConfigError` when a gate compares against a base that is not configured: no
    model, and no file of its generations on a probe set that a ``max_drop`` gate gates (the
    error names the line of ``file``, where ``config`` was built from it; ``gating`` says how
    to name the base model)."""
    if not config.needs_base() or config.base:
        return
    files = config.generations.get("base", {})
    if not files:
        raise ConfigError(
            f"the gates compare against a base model (max_drop): {gating.name_base}, or give "
            "the base's generations under 'generations: base:' in thresholds.yaml"
        )
    gated = {spec.probe_set for spec in config.gate_specs() if spec.kind == "max_drop"}
    uncovered = [name for name in config.probe_sets if name in gated and name not in files]
    if uncovered:
        raise ConfigError(
            f"{_where(config, file, 'base')}: the base's generations are read from "
            f"files on {', '.join(map(repr, files))} only, and thresholds.yaml names no "
            f"'base:' to generate it on {', '.join(map(repr, uncovered))}, where a max_drop "
            f"gate compares against it: add the base's file on {uncovered[0]!r} under "
            "generations.base, or set 'base:' to the model that wrote the files (it then "
            "generates the probe sets without one)"
        )


def check_sweep(
    config: RtcConfig, file: RtcConfig | None = None, gating: Gating = SWEEP_GATING
) -> None:
    """Refuse a configuration a sweep (or, with its ``gating``, a gate inside training)
    cannot gate: candidate generations from files (`refuse_candidate_files`), or a base that
    is not configured (`require_base`).

    ``file``: the thresholds.yaml ``config`` was built from with command-line options, if it
    was, whose lines the errors name.
    """
    refuse_candidate_files(config, file, gating)
    require_base(config, file, gating)


def base_runs(session: RtcSession) -> dict[str, Run]:
    """The base's run on every configured probe set (none without a base), then release it.

    A probe set with a file of the base's generations (``generations.base``) is read from it;
    where thresholds.yaml names no base model, only those probe sets have a base run.

    Raises `ConfigError` when a gate compares against a base that is not configured.
    """
    config = session.config
    require_base(config)
    files = config.generations.get("base", {})
    names = [name for name in config.probe_sets if config.base or name in files]
    runs = {name: session.run(name, "base") for name in names}
    session.release("base")
    return runs


def base_files(session: RtcSession, base: dict[str, Run]) -> dict[str, BaseFile]:
    """By probe set, the file each of the base's runs in ``base`` was read from, if any, as
    the base's fingerprint names it."""
    spec = base_spec(session.config)
    files = files_read(session.fingerprints.get(spec, {})) if spec else {}
    return {name: BaseFile.model_validate(files[name]) for name in base if name in files}


def gate_step(
    session: RtcSession, spec: str, step: int, base: dict[str, Run], checkpoint: str | None = None
) -> StepRecord:
    """Generate ``spec`` (a model spec) on every probe set and decide the gates at ``step``."""
    runs = {name: session.run(name, spec) for name in session.config.probe_sets}
    return step_record(session.config, step, checkpoint or spec, runs, base)


def step_record(
    config: RtcConfig, step: int, checkpoint: str, runs: dict[str, Run], base: dict[str, Run]
) -> StepRecord:
    """Decide the gates at ``step`` on its ``runs`` (by probe set) against the base's."""
    inputs: list[GateInputs] = [
        (gate, runs[gate.probe_set], base[gate.probe_set] if gate.kind == "max_drop" else None)
        for gate in config.gate_specs()
    ]
    results = decide_gates(inputs, config.decision)
    return StepRecord(
        step=step,
        checkpoint=checkpoint,
        metrics={name: run.metrics for name, run in runs.items()},
        gates=results,
        passed=all(result.passed for result in results),
    )


def sweep_record(
    session: RtcSession,
    base: dict[str, Run],
    steps: Sequence[StepRecord],
    error: str | None = None,
) -> SweepRecord:
    """The record of the steps gated so far, with where the gates first fail; ``error``
    says why the sweep stopped early, if it did."""
    first_failing, last_passing, after = _verdicts(steps)
    return SweepRecord(
        base=base_spec(session.config),
        probe_sets=list(session.config.probe_sets),
        base_metrics={name: run.metrics for name, run in base.items()},
        steps=list(steps),
        first_failing=first_failing,
        last_passing=last_passing,
        passing_after_failure=after,
        fingerprints=session.fingerprints,
        base_files=base_files(session, base),
        error=error,
    )


@dataclass
class Sweep:
    """A sweep as it goes: the base's runs once generated and each checkpoint's step once
    gated, so that what was done is still there (`record`) when the sweep is interrupted.

    Raises `ConfigError` (see `check_sweep`) when a gate compares against a base that is not
    configured, or thresholds.yaml gives the candidate's generations as files.
    """

    session: RtcSession
    base: dict[str, Run] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_sweep(self.session.config)

    def run(self, checkpoints: Sequence[Checkpoint]) -> SweepRecord:
        """Generate and gate each checkpoint against the session's base, in step order."""
        self.base = base_runs(self.session)
        for checkpoint in checkpoints:
            spec = str(checkpoint.path)
            logger.info("sweep: step %d (%s)", checkpoint.step, spec)
            self.steps.append(gate_step(self.session, spec, checkpoint.step, self.base))
            self.session.release(spec)
        return self.record()

    def record(self, error: str | None = None) -> SweepRecord:
        """The record of the steps gated so far; ``error`` says why the sweep stopped."""
        return sweep_record(self.session, self.base, self.steps, error)


def run_sweep(session: RtcSession, checkpoints: Sequence[Checkpoint]) -> SweepRecord:
    """Generate and gate each checkpoint against the session's base, in step order."""
    return Sweep(session).run(checkpoints)
