"""Checkpoint sweeps: gate every checkpoint of a training run, find the last one safe to ship.

One `RtcSession` runs the base once per probe set and each checkpoint once, through the
generation cache, and decides the configured gates on each checkpoint's full runs (no early
stopping: a sweep wants every checkpoint's metrics, not only its verdict). The result is a
`SweepRecord`; `rtc_assert.reports.sweep` renders and writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from rtc_assert.config import ConfigError, RtcConfig
from rtc_assert.decide.gates import GateInputs, GateResult, decide_gates
from rtc_assert.generation.checkpoints import Checkpoint
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


class SweepRecord(BaseModel):
    """A whole sweep: the base's metrics, each checkpoint's, and where the gates first fail."""

    model_config = ConfigDict(frozen=True)

    base: str | None
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
    fingerprints: dict[str, dict[str, str]]
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


def require_base(config: RtcConfig) -> None:
    """Raises `ConfigError` when a gate compares against a base that is not configured."""
    if config.needs_base() and not config.base:
        raise ConfigError(
            "the gates compare against a base model (max_drop): pass --base or set "
            "'base:' in thresholds.yaml"
        )


def base_runs(session: RtcSession) -> dict[str, Run]:
    """The base's run on every configured probe set (none without a base), then release it.

    Raises `ConfigError` when a gate compares against a base that is not configured.
    """
    config = session.config
    require_base(config)
    runs = {name: session.run(name, "base") for name in config.probe_sets} if config.base else {}
    session.release("base")
    return runs


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
        base=session.config.base,
        probe_sets=list(session.config.probe_sets),
        base_metrics={name: run.metrics for name, run in base.items()},
        steps=list(steps),
        first_failing=first_failing,
        last_passing=last_passing,
        passing_after_failure=after,
        fingerprints=session.fingerprints,
        error=error,
    )


@dataclass
class Sweep:
    """A sweep as it goes: the base's runs once generated and each checkpoint's step once
    gated, so that what was done is still there (`record`) when the sweep is interrupted.

    Raises `ConfigError` when a gate compares against a base that is not configured.
    """

    session: RtcSession
    base: dict[str, Run] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_base(self.session.config)

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
