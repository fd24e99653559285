"""Chart geometry for the HTML report: where each bar, whisker and line point goes.

Pure functions of a run record's runs; the template (``templates/report.html.j2``) draws them
as inline SVG, so the page needs no charting library and no network. Coordinates are in SVG
user units of a ``CHART_WIDTH``-wide viewBox. A rate a run's hidden reasoning makes unknown
is drawn as no bar, whisker or line, and written as `UNKNOWN_RATE`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtc_assert.record import RunRecord
from rtc_assert.reports.tables import STATUSES, UNKNOWN_RATE, format_rate

CHART_WIDTH = 720
LABEL_WIDTH = 220
LABEL_CHARS = 30
"""Room for the run labels left of the plotting area: units, and characters at 12px."""
ROW_HEIGHT = 30
PLOT_WIDTH = 300
"""Width of the 0..1 axis of the bars and the interval plots."""
STATUS_RATES = {status: f"{status}_rate" for status in STATUSES}
INTERVAL_METRICS: tuple[tuple[str, str], ...] = (
    ("answer_accuracy", "pass@1"),
    ("reasoning_conditioned_accuracy", "Rpass@1"),
)
ORDER_LEFT = 40
ORDER_HEIGHT = 100
"""Left edge and height of the plotting area of the probe-order chart."""


def fit_label(label: str, chars: int = LABEL_CHARS) -> str:
    """A chart label cut to fit left of the plot; the chart's tooltip has it whole."""
    return label if len(label) <= chars else label[: chars - 1] + "\u2026"


@dataclass(frozen=True)
class Segment:
    """One status's share of a run, as a slice of a stacked bar."""

    status: str
    share: float
    x: float
    width: float


@dataclass(frozen=True)
class StatusBar:
    """A run's four status rates, stacked; ``y`` is the bar's top."""

    label: str
    y: float
    segments: tuple[Segment, ...]
    unknown: str | None = None
    """`UNKNOWN_RATE` where hidden reasoning makes the rates unknown (no segments)."""


def status_bars(labels: tuple[str, ...], runs: tuple[RunRecord, ...]) -> list[StatusBar]:
    """One stacked bar per run: valid, empty, truncated and missing rates, left to right; no
    bar where hidden reasoning makes them unknown."""
    bars = []
    for index, (label, run) in enumerate(zip(labels, runs, strict=True)):
        if run.metrics.status_unknown() is not None:
            bars.append(StatusBar(label, index * ROW_HEIGHT, (), UNKNOWN_RATE))
            continue
        x = float(LABEL_WIDTH)
        segments = []
        for status in STATUSES:
            rate = run.metrics.metric(STATUS_RATES[status])
            assert rate is not None, "a status rate counts probes: it is always defined"
            share = rate.value
            segments.append(Segment(status, share, x, share * PLOT_WIDTH))
            x += share * PLOT_WIDTH
        bars.append(StatusBar(label, index * ROW_HEIGHT, tuple(segments)))
    return bars


@dataclass(frozen=True)
class Whisker:
    """A rate and its interval on the 0..1 axis, one row of the interval plot."""

    label: str
    y: float
    text: str
    x: tuple[float, float, float] | None
    """Where the low end, the value and the high end go; None when the rate is undefined."""


def _axis_x(value: float) -> float:
    return LABEL_WIDTH + value * PLOT_WIDTH


def interval_whiskers(labels: tuple[str, ...], runs: tuple[RunRecord, ...]) -> list[Whisker]:
    """pass@1 and Rpass@1 of each run with their intervals, one row each."""
    whiskers: list[Whisker] = []
    for metric, short in INTERVAL_METRICS:
        for label, run in zip(labels, runs, strict=True):
            rate = run.metrics.known_rate(metric)
            text = format_rate(rate) if rate else "undefined: no valid trace"
            whiskers.append(
                Whisker(
                    label=f"{short} {label}",
                    y=len(whiskers) * ROW_HEIGHT,
                    text=UNKNOWN_RATE if run.metrics.why_unknown(metric) else text,
                    x=(_axis_x(rate.low), _axis_x(rate.value), _axis_x(rate.high))
                    if rate
                    else None,
                )
            )
    return whiskers


@dataclass(frozen=True)
class OrderLine:
    """A run's valid-reasoning rate after each probe, in the order the probes were run."""

    label: str
    probes: int
    final: float | None
    """VR after the last probe; None where hidden reasoning makes it unknown."""
    points: str
    """SVG polyline points."""
    available: int | None = None
    """The probe set's size when early stopping ended the run after ``probes``."""
    unknown: str | None = None
    """`UNKNOWN_RATE` where hidden reasoning makes VR unknown (no points)."""


def running_valid_rate(run: RunRecord) -> list[float]:
    """VR over the first 1, 2, ... probes, in generation order (samples averaged per probe)."""
    per_probe: dict[str, list[bool]] = {}
    for generation in run.generations:
        per_probe.setdefault(generation.probe_id, []).append(generation.status == "valid")
    running, total = [], 0.0
    for count, samples in enumerate(per_probe.values(), start=1):
        total += sum(samples) / len(samples)
        running.append(total / count)
    return running


def probe_order_lines(labels: tuple[str, ...], runs: tuple[RunRecord, ...]) -> list[OrderLine]:
    """Running VR of each run over probe order, on an axis as long as the probe set.

    The record keeps generations in the order they were generated (early stopping's shuffled
    order), so a run that early stopping ended is a line that stops short of the axis's end;
    a run with hidden reasoning is no line, its legend `UNKNOWN_RATE`.
    """
    lines = []
    longest = max((run.probes_available or run.metrics.probes for run in runs), default=1)
    step = (CHART_WIDTH - ORDER_LEFT) / max(longest - 1, 1)
    for label, run in zip(labels, runs, strict=True):
        rates = running_valid_rate(run)
        if run.metrics.why_unknown("valid_rate") is not None:
            unknown = OrderLine(label, len(rates), None, "", run.probes_available, UNKNOWN_RATE)
            lines.append(unknown)
            continue
        points = " ".join(
            f"{ORDER_LEFT + index * step:.1f},{(1 - rate) * ORDER_HEIGHT:.1f}"
            for index, rate in enumerate(rates)
        )
        final = rates[-1] if rates else 0.0
        lines.append(OrderLine(label, len(rates), final, points, run.probes_available))
    return lines
