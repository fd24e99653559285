"""Run metrics from scored traces: status rates, pass@1, Rpass@1, each with a Wilson interval.

With several samples per probe, every rate averages over each probe's samples first and then
over probes, so a probe counts once however many samples it has (DESIGN.md "Metrics").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import fmean
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, field_serializer, model_validator

from rtc_assert.decide.stats import wilson_interval
from rtc_assert.errors import MetricsError
from rtc_assert.scoring import ScoredTrace
from rtc_assert.traces.classify import TraceStatus
from rtc_assert.traces.server_split import is_hidden


def _known_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; use one of {', '.join(METRICS)}")
    return name


MetricName = Annotated[str, AfterValidator(_known_metric)]
"""A rate metric's name, as thresholds.yaml writes it: a key of `METRICS`."""
Event = Literal["valid", "empty", "truncated", "missing", "correct", "answered", "correct_valid"]
EVENTS: tuple[Event, ...] = get_args(Event)
"""What each generation may count towards; a probe's tally holds each as a fraction."""
STATUS_EVENTS: frozenset[Event] = frozenset(
    {"valid", "empty", "truncated", "missing", "correct_valid"}
)
"""The events that need a trace's status (unknown under hidden reasoning)."""


@dataclass(frozen=True)
class Metric:
    """Everything rtc-assert knows about one rate metric: how it is counted, which way is
    worse, and how gates, explanations and reports name it."""

    name: str
    short: str
    """Its short name in tables, charts and sweep columns (VR, pass@1, ...)."""
    label: str
    """Its row label in the metric tables."""
    words: str
    """How a verdict says it."""
    numerator: Event
    denominator: Event | None
    """The event counted in the denominator; None counts probes."""
    lower_is_better: bool = False
    failing_statuses: frozenset[TraceStatus] | None = None
    """For status rates: the statuses of a trace that shows the metric failing."""
    tabulated: bool = True
    """Whether metric tables and sweeps show it."""

    @property
    def needs_statuses(self) -> bool:
        """Whether it counts trace statuses, so hidden reasoning leaves it undefined."""
        return self.numerator in STATUS_EVENTS or self.denominator in STATUS_EVENTS


_NOT_VALID = frozenset({TraceStatus.EMPTY, TraceStatus.TRUNCATED, TraceStatus.MISSING})
METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("valid_rate", "VR", "VR valid reasoning", "valid rate", "valid", None,
               failing_statuses=_NOT_VALID),
        Metric("empty_rate", "ER", "ER empty", "empty rate", "empty", None,
               lower_is_better=True, failing_statuses=frozenset({TraceStatus.EMPTY})),
        Metric("truncated_rate", "TR", "TR truncated", "truncated rate", "truncated", None,
               lower_is_better=True, failing_statuses=frozenset({TraceStatus.TRUNCATED})),
        Metric("missing_rate", "MR", "MR missing", "missing rate", "missing", None,
               lower_is_better=True, failing_statuses=frozenset({TraceStatus.MISSING})),
        Metric("answer_accuracy", "pass@1", "pass@1 answers", "answer accuracy (pass@1)",
               "correct", None),
        Metric("reasoning_conditioned_accuracy", "Rpass@1", "Rpass@1 valid & correct",
               "reasoning-conditioned accuracy (Rpass@1)", "correct_valid", "valid"),
        Metric("answer_rate", "AR", "answer rate", "answer rate", "answered", None,
               tabulated=False),
    )
}  # fmt: skip
"""The one table of rate metrics, in report order: every other module reads it, so a new
metric is one entry here."""
RATE_METRICS: tuple[str, ...] = tuple(METRICS)
"""The names of the rate metrics, as thresholds.yaml writes them."""


def format_level(confidence: float) -> str:
    """A confidence level as a percentage with the digits it needs to show its distance from
    100%: 95%, 99.83%, 99.9986% (never "100%")."""
    alpha_percent = (1.0 - confidence) * 100
    digits = max(2, 1 - math.floor(math.log10(alpha_percent)))
    return f"{confidence * 100:.{digits}f}".rstrip("0").rstrip(".") + "%"


class Rate(BaseModel):
    """A rate with its confidence interval and the (per-probe averaged) counts behind it."""

    model_config = ConfigDict(frozen=True)

    value: float
    low: float
    high: float
    successes: float
    trials: float

    @classmethod
    def of(cls, successes: float, trials: float, confidence: float) -> Rate:
        """The rate ``successes / trials`` with its Wilson interval."""
        low, high = wilson_interval(successes, trials, confidence)
        return cls(value=successes / trials, low=low, high=high, successes=successes, trials=trials)


class RunMetrics(BaseModel):
    """Every metric of one run; serialises to JSON with ``model_dump_json()``.

    While any generation has hidden reasoning, the metrics that count trace statuses are
    unknown (`why_unknown`): `metric` and their properties (``valid_rate`` ...) raise
    `MetricsError` rather than give a number, and `known_rate` gives None.
    """

    model_config = ConfigDict(frozen=True)

    confidence: float
    probes: int
    generations: int
    rates: dict[str, Rate | None]
    """Every `METRICS` rate by name; None where its denominator is empty (Rpass@1 with no
    valid trace: None, never 0). A rate the run's hidden reasoning makes unknown
    (`why_unknown`) keeps its counts here, but `metric` refuses it and JSON writes it
    without a value (`_unknown_rates_without_values`)."""
    mean_reasoning_chars: float | None
    """Mean reasoning length in characters over valid generations; None when none is valid."""
    mean_answer_chars: float
    """Mean answer length in characters over all generations."""
    mean_reasoning_tokens: float | None
    """As ``mean_reasoning_chars`` in tokens, where the backend counted them."""
    mean_answer_tokens: float | None
    """As ``mean_answer_chars`` in tokens, where the backend counted them."""
    hidden_reasoning: int = 0
    """Generations whose reasoning came back without its text (the server counted reasoning
    tokens but returned none, or returned it encrypted or as a summary only): while any is,
    the trace-status rates cannot be computed (see `status_unknown`)."""

    def status_unknown(self) -> str | None:
        """Why the trace-status rates cannot be computed, or None when they can."""
        if not self.hidden_reasoning:
            return None
        return (
            f"{self.hidden_reasoning} of {self.generations} generations have hidden reasoning "
            "(the server counted reasoning tokens, or returned the reasoning encrypted or as "
            "a summary only, but returned no reasoning text), so the valid-reasoning rate "
            "cannot be computed; use a server or API that returns the reasoning"
        )

    def why_unknown(self, name: str) -> str | None:
        """Why rate metric ``name`` cannot be computed for this run, or None where it can.

        This is the one rule every report, record and assertion follows: a metric that
        counts trace statuses (`Metric.needs_statuses`: VR, ER, TR, MR, Rpass@1) is unknown
        while any generation has hidden reasoning (`status_unknown`); answer accuracy and
        the answer rate never are.
        """
        self._known_name(name)
        return self.status_unknown() if METRICS[name].needs_statuses else None

    def _known_name(self, name: str) -> None:
        if name not in METRICS or name not in self.rates:
            raise KeyError(f"unknown metric {name!r}; known: {', '.join(RATE_METRICS)}")

    def known_rate(self, name: str) -> Rate | None:
        """A rate metric by name where it stands; None where it is undefined (its
        denominator is empty) or unknown (`why_unknown`): what charts plot and logs log."""
        return None if self.why_unknown(name) is not None else self.rates[name]

    @model_validator(mode="before")
    @classmethod
    def _rates_of_older_records(cls, data: Any) -> Any:
        """Records written before `record_version` 2 kept each rate as a field of its own;
        from `record_version` 3, an unknown rate is written without its value and interval
        (`_unknown_rates_without_values`), which its counts give back."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "rates" not in data:
            data["rates"] = {name: data.pop(name, None) for name in METRICS}
        rates = data["rates"]
        if isinstance(rates, dict) and isinstance(data.get("confidence"), int | float):
            data["rates"] = {
                name: Rate.of(rate["successes"], rate["trials"], data["confidence"])
                if isinstance(rate, dict) and rate.get("value") is None and "trials" in rate
                else rate
                for name, rate in rates.items()
            }
        return data

    @field_serializer("rates")
    def _unknown_rates_without_values(self, rates: dict[str, Rate | None]) -> dict[str, Any]:
        """In JSON (``rtc-run.json``, ``sweep.json``) a rate the run's hidden reasoning makes
        unknown keeps its counts, but its ``value``, ``low`` and ``high`` are null and
        ``unknown`` says why (`why_unknown`): no script can read it as a real rate."""
        written: dict[str, Any] = {}
        for name, rate in rates.items():
            why = self.why_unknown(name) if name in METRICS else None
            written[name] = None if rate is None else rate.model_dump()
            if rate is not None and why is not None:
                written[name].update(value=None, low=None, high=None, unknown=why)
        return written

    def metric(self, name: str) -> Rate | None:
        """A rate metric by name (one of ``RATE_METRICS``); None where it is undefined.

        Raises:
            MetricsError: the run's hidden reasoning makes it unknown (`why_unknown`): its
                counts would read as a collapse that is not one.
        """
        why = self.why_unknown(name)
        if why is not None:
            raise MetricsError(f"the {METRICS[name].words} cannot be computed: {why}")
        return self.rates[name]

    def _over_probes(self, name: str) -> Rate:
        # A rate over probes always has trials: an empty run is refused before.
        rate = self.metric(name)
        assert rate is not None, name
        return rate

    @property
    def valid_rate(self) -> Rate:
        return self._over_probes("valid_rate")

    @property
    def empty_rate(self) -> Rate:
        return self._over_probes("empty_rate")

    @property
    def truncated_rate(self) -> Rate:
        return self._over_probes("truncated_rate")

    @property
    def missing_rate(self) -> Rate:
        return self._over_probes("missing_rate")

    @property
    def answer_accuracy(self) -> Rate:
        """pass@1: correct answers among all generations."""
        return self._over_probes("answer_accuracy")

    @property
    def reasoning_conditioned_accuracy(self) -> Rate | None:
        """Rpass@1: correct among valid generations; None (never 0) when none is valid."""
        return self.metric("reasoning_conditioned_accuracy")

    @property
    def answer_rate(self) -> Rate:
        """Generations with a non-blank answer."""
        return self._over_probes("answer_rate")


def _events(outcome: ScoredTrace) -> dict[Event, bool]:
    status = outcome.trace.status
    return {
        "valid": status is TraceStatus.VALID,
        "empty": status is TraceStatus.EMPTY,
        "truncated": status is TraceStatus.TRUNCATED,
        "missing": status is TraceStatus.MISSING,
        "correct": outcome.correct,
        "answered": bool(outcome.trace.answer),
        "correct_valid": outcome.correct and status is TraceStatus.VALID,
    }


def group_by_probe(outcomes: Iterable[ScoredTrace]) -> dict[str, list[ScoredTrace]]:
    """Outcomes per probe id, sorted by probe id and sample, so sums never depend on order.

    Raises:
        MetricsError: no outcomes, or one probe's sample given twice.
    """
    by_probe: dict[str, list[ScoredTrace]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for outcome in outcomes:
        key = (outcome.probe_id, outcome.sample)
        if key in seen:
            raise MetricsError(
                f"probe {outcome.probe_id!r} sample {outcome.sample} is given twice; "
                "each (probe, sample) must be scored once"
            )
        seen.add(key)
        by_probe[outcome.probe_id].append(outcome)
    if not by_probe:
        raise MetricsError("no generations to compute metrics from: the run is empty")
    return {key: sorted(by_probe[key], key=lambda o: o.sample) for key in sorted(by_probe)}


def probe_tallies(outcomes: Iterable[ScoredTrace]) -> dict[str, dict[Event, float]]:
    """Per probe, the fraction of its samples that count towards each of `EVENTS`."""
    tallies = {}
    for probe_id, samples in group_by_probe(outcomes).items():
        tally = dict.fromkeys(EVENTS, 0.0)
        for outcome in samples:
            for event, happened in _events(outcome).items():
                tally[event] += happened
        tallies[probe_id] = {event: count / len(samples) for event, count in tally.items()}
    return tallies


def _mean_or_none(values: list[int]) -> float | None:
    return fmean(values) if values else None


def compute_metrics(outcomes: Iterable[ScoredTrace], confidence: float = 0.95) -> RunMetrics:
    """Compute a run's metrics from its scored traces.

    Raises:
        MetricsError: no outcomes, or one probe's sample given twice.
    """
    grouped = group_by_probe(outcomes)
    tallies = probe_tallies(outcome for samples in grouped.values() for outcome in samples)
    totals = {event: sum(t[event] for t in tallies.values()) for event in EVENTS}
    probes = len(tallies)

    def rate(name: str) -> Rate | None:
        metric = METRICS[name]
        trials = probes if metric.denominator is None else totals[metric.denominator]
        if trials == 0:
            return None
        # Fractions can add up a hair above the trial count; clamp that rounding.
        return Rate.of(min(totals[metric.numerator], trials), trials, confidence)

    flat = [outcome for samples in grouped.values() for outcome in samples]
    valid = [outcome for outcome in flat if outcome.trace.status is TraceStatus.VALID]
    return RunMetrics(
        confidence=confidence,
        probes=probes,
        generations=len(flat),
        rates={name: rate(name) for name in METRICS},
        mean_reasoning_chars=_mean_or_none([len(o.trace.reasoning) for o in valid]),
        mean_answer_chars=fmean(len(o.trace.answer) for o in flat),
        mean_reasoning_tokens=_mean_or_none(
            [o.reasoning_tokens for o in valid if o.reasoning_tokens is not None]
        ),
        mean_answer_tokens=_mean_or_none(
            [o.answer_tokens for o in flat if o.answer_tokens is not None]
        ),
        hidden_reasoning=sum(is_hidden(o.trace.detail) for o in flat),
    )
