"""What the decision stage is asked: one gate (`GateSpec`) and how gates decide
(`DecisionConfig`). `rtc_assert.config` composes them into thresholds.yaml."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rtc_assert.metrics import MetricName

Policy = Literal["confident", "strict", "point"]
"""How a gate decides (see `DecisionConfig`)."""
GateKind = Literal["min", "max", "max_drop"]
GATE_KINDS: tuple[GateKind, ...] = get_args(GateKind)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EarlyStoppingConfig(_Strict):
    """Generate in chunks of a fixed shuffled probe order; stop once the gates are decided."""

    enabled: bool = True
    chunk_size: int = Field(default=64, ge=1)
    """Probes per look (per probe set)."""


class DecisionConfig(_Strict):
    """How a gate decides: ``confident`` fails only when the confidence interval shows the
    threshold is violated; ``strict`` fails unless it shows the threshold is met; ``point``
    compares point estimates."""

    policy: Policy = "confident"
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    bootstrap_samples: int = Field(default=2000, ge=200)
    seed: int = 0
    """Seeds the bootstrap and the shuffled probe order of early stopping."""
    holm: bool | None = None
    """Holm's step-down correction across all the configuration's gates (and, with early
    stopping, all looks). Default: on under ``confident``, so that noise alone fails the
    build at most ``1 - confidence`` of the time however many gates it has; off under
    ``strict``, whose build passes only when every gate shows compliance, so a false pass of
    the build is a false pass of one gate, which the per-gate level already bounds."""
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)

    @model_validator(mode="after")
    def _holm_needs_intervals(self) -> DecisionConfig:
        if self.holm and self.policy == "point":
            raise ValueError("holm corrects intervals: use policy confident or strict with it")
        return self

    @property
    def corrects_across_gates(self) -> bool:
        """Whether Holm's correction is applied (``holm``, or the policy's default)."""
        return self.policy == "confident" if self.holm is None else self.holm

    @property
    def sequential(self) -> bool:
        """Whether gates are decided with early stopping (interval policies only)."""
        return self.early_stopping.enabled and self.policy != "point"


class GateSpec(_Strict):
    """One collected gate: a (probe set, metric, kind) with its threshold."""

    probe_set: str
    metric: MetricName
    kind: GateKind
    threshold: float
    candidate: str | None = None
    """The candidate it gates, where the configuration names several."""
    threshold_in_id: bool = False
    """Set where another gate shares the probe set, metric and kind: the id then names the
    threshold too (``reasoning::valid_rate[min=0.99]``), so each gate is decided on its own."""

    @property
    def id(self) -> str:
        kind = f"{self.kind}={self.threshold:.15g}" if self.threshold_in_id else self.kind
        gate = f"{self.probe_set}::{self.metric}[{kind}]"
        return gate if self.candidate is None else f"{self.candidate}::{gate}"
