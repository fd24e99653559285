"""The summary tables (base vs candidate per probe set, and the gates), as rows of text.

Rendered by `rtc_assert.reports.terminal` (rich) and `rtc_assert.reports.markdown`; both
read a `SessionRecord`, never live objects.

A rate that a run's hidden reasoning makes unknown (`RunMetrics.why_unknown`) is shown as
`UNKNOWN_RATE` wherever a report shows rates (`rate_text`), with a note under its table that
says why (`unknown_notes`); it is never shown as the number its counts would give.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtc_assert.metrics import METRICS, Rate, RunMetrics, format_level
from rtc_assert.record import GateResult, ReasoningTokens, RunRecord, SessionRecord
from rtc_assert.traces.classify import TraceStatus

METRIC_LABELS: tuple[tuple[str, str], ...] = tuple(
    (metric.name, metric.label) for metric in METRICS.values() if metric.tabulated
)
GATE_HEADER = ("gate", "verdict", "rule")
STATUSES: tuple[str, ...] = tuple(status.value for status in TraceStatus)
NOT_SETTLED = "NOT SETTLED"
"""The verdict word of a gate early stopping left open when another gate failed."""
UNKNOWN_RATE = "n/a (hidden reasoning)"
"""How every report shows a rate that hidden reasoning makes unknown: tables, the change
column, charts and sweeps."""
UNKNOWN_SHORTS: tuple[str, ...] = tuple(
    metric.short for metric in METRICS.values() if metric.tabulated and metric.needs_statuses
)
"""The short names of the tabulated metrics hidden reasoning makes unknown (VR ... Rpass@1)."""


@dataclass(frozen=True)
class MetricTable:
    """One probe set: a row per metric, a column per model, and the change."""

    probe_set: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    notes: tuple[str, ...] = ()
    """Shown under the table: why a run's rates are `UNKNOWN_RATE` (`unknown_notes`)."""


def format_rate(rate: Rate | None) -> str:
    if rate is None:
        return "undefined"
    return f"{rate.value:.3f} [{rate.low:.2f}, {rate.high:.2f}]"


def rate_text(metrics: RunMetrics, name: str) -> str:
    """A run's rate as a table cell: `format_rate`, or `UNKNOWN_RATE` where the run's hidden
    reasoning makes it unknown."""
    if metrics.why_unknown(name) is not None:
        return UNKNOWN_RATE
    return format_rate(metrics.metric(name))


def _delta(base: Rate | None, candidate: Rate | None) -> str:
    if base is None or candidate is None:
        return "-"
    return f"{candidate.value - base.value:+.3f}"


def change_text(base: RunMetrics, candidate: RunMetrics, name: str) -> str:
    """The candidate's change from the base: `UNKNOWN_RATE` where either is unknown, "-"
    where either is undefined."""
    if base.why_unknown(name) is not None or candidate.why_unknown(name) is not None:
        return UNKNOWN_RATE
    return _delta(base.metric(name), candidate.metric(name))


def unknown_note(label: str, metrics: RunMetrics) -> str | None:
    """Why a run's status rates are `UNKNOWN_RATE`, in `RunMetrics.status_unknown`'s words;
    None where they are known."""
    why = metrics.status_unknown()
    if why is None:
        return None
    shorts = f"{', '.join(UNKNOWN_SHORTS[:-1])} and {UNKNOWN_SHORTS[-1]}"
    return f"{label}: {shorts} are {UNKNOWN_RATE}: {why}"


def unknown_notes(labels: tuple[str, ...], runs: tuple[RunRecord, ...]) -> tuple[str, ...]:
    """`unknown_note` of each run that has one, under its column label."""
    notes = (unknown_note(label, run.metrics) for label, run in zip(labels, runs, strict=True))
    return tuple(note for note in notes if note is not None)


def probe_set_names(record: SessionRecord) -> list[str]:
    """The probe sets of a record's runs, in the order they were first run."""
    return list(dict.fromkeys(run.probe_set for run in record.runs))


@dataclass(frozen=True)
class ShownRuns:
    """The runs of one probe set that reports show side by side, with their column labels."""

    labels: tuple[str, ...]
    runs: tuple[RunRecord, ...]
    paired: bool
    """Base then candidate: the change between them is meaningful."""


def shown_runs(record: SessionRecord, probe_set: str) -> ShownRuns:
    """Base then candidate when the record has both on this probe set, else every run on it."""
    candidate = record.config.get("candidate")
    base = record.config.get("base")
    candidate_run = record.run_for(candidate, probe_set) if candidate else None
    base_run = record.run_for(base, probe_set) if base else None
    if candidate_run is None or base_run is None:
        runs = tuple(run for run in record.runs if run.probe_set == probe_set)
        return ShownRuns(tuple(run.model for run in runs), runs, paired=False)
    labels = (f"base {base}", f"candidate {candidate}")
    return ShownRuns(labels, (base_run, candidate_run), paired=True)


def _probe_count(runs: tuple[RunRecord, ...]) -> str:
    """ "256 probes", or "64 of 256 probes, early stopping" (per model where they differ)."""
    counts = "/".join(str(count) for count in dict.fromkeys(run.metrics.probes for run in runs))
    available = max((run.probes_available or 0 for run in runs), default=0)
    if not available:
        return f"{counts or 0} probes"
    return f"{counts} of {available} probes, early stopping"


def metric_tables(record: SessionRecord) -> list[MetricTable]:
    """Per probe set: candidate (and base, with the change) for every headline metric."""
    tables = []
    for probe_set in probe_set_names(record):
        shown = shown_runs(record, probe_set)
        levels = dict.fromkeys(format_level(run.metrics.confidence) for run in shown.runs)
        first = f"metric: rate [{', '.join(levels) or '-'} Wilson interval]"
        header = (first, *shown.labels, *(("change",) if shown.paired else ()))
        rows = []
        for name, label in METRIC_LABELS:
            metrics = [run.metrics for run in shown.runs]
            change = (change_text(metrics[0], metrics[-1], name),) if shown.paired else ()
            rows.append((label, *(rate_text(run, name) for run in metrics), *change))
        title = f"{probe_set} ({_probe_count(shown.runs)})"
        notes = unknown_notes(shown.labels, shown.runs)
        tables.append(MetricTable(title, header, rows, notes))
    return tables


def verdict_word(result: GateResult) -> str:
    """PASS, FAIL, or NOT SETTLED for a gate early stopping left open."""
    if not result.settled:
        return NOT_SETTLED
    return "PASS" if result.passed else "FAIL"


def gate_rows(record: SessionRecord) -> list[tuple[str, str, str]]:
    """One row per decided gate: its id, its `verdict_word`, and the rule that decided."""
    return [(result.gate.id, verdict_word(result), result.reason) for result in record.gates]


def template_notes(record: SessionRecord) -> list[str]:
    """One line per model whose chat template showed no reasoning markup (default used), and
    each warning a run carries (e.g. a generations file without finish reasons)."""
    notes = {}
    for run in record.runs:
        detected = (run.trace_format or {}).get("detected", {})
        if detected.get("recognised") is False:
            notes[run.model] = f"{run.model}: {detected.get('evidence')}"
        for note in run.notes:
            notes.setdefault(f"{run.model} {note}", f"{run.model} on {run.probe_set}: {note}")
    return list(notes.values())


def verdict_line(record: SessionRecord) -> str:
    """One line: how many gates passed, failed and were not settled, and whether the
    session stopped early."""
    words = [verdict_word(result) for result in record.gates]
    line = f"rtc-assert: {words.count('PASS')} of {len(words)} gates passed"
    if not words:
        line = "rtc-assert: no gates decided: metrics only"
    if words.count("FAIL"):
        line += f", {words.count('FAIL')} failed"
    if words.count(NOT_SETTLED):
        line += f", {words.count(NOT_SETTLED)} not settled"
    if record.error:
        line += f"; the session stopped early: {record.error}"
    return line


def _tokens(counts: ReasoningTokens | None) -> tuple[str, str]:
    if counts is None:
        return "-", "-"
    return f"{counts.mean:.1f}", f"{counts.total:,}"


def _token_change(
    base: ReasoningTokens | None, candidate: ReasoningTokens | None
) -> tuple[str, str]:
    if base is None or candidate is None:
        return "-", "-"
    total = candidate.total - base.total
    share = f" ({total / base.total:+.0%})" if base.total else ""
    return f"{candidate.mean - base.mean:+.1f}", f"{total:+,}{share}"


def reasoning_token_table(record: SessionRecord, probe_set: str) -> MetricTable | None:
    """Reasoning tokens on one probe set, None where no run counted them: mean and total per
    model, over all generations and per trace status, and the candidate's change from the
    base."""
    shown = shown_runs(record, probe_set)
    if not any(run.reasoning_tokens for run in shown.runs):
        return None
    header = ["status"]
    for label in (*shown.labels, *(("change",) if shown.paired else ())):
        header += [f"{label}: mean", f"{label}: total"]
    rows = []
    for status in ("all", *STATUSES):
        counts = [run.reasoning_tokens.get(status) for run in shown.runs]
        if any(counts):
            cells = [cell for count in counts for cell in _tokens(count)]
            change = _token_change(*counts) if shown.paired else ()
            rows.append((status, *cells, *change))
    return MetricTable(f"{probe_set}: reasoning tokens", tuple(header), rows)


def reasoning_token_tables(record: SessionRecord) -> list[MetricTable]:
    """`reasoning_token_table` of every probe set that has one."""
    tables = (reasoning_token_table(record, name) for name in probe_set_names(record))
    return [table for table in tables if table is not None]
