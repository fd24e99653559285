"""A sweep's reports, rendered from its `SweepRecord`: table rows, the SVG chart, the files.

The chart has one panel per probe set: VR, ER, TR, MR, pass@1 and Rpass@1 over the step
number, with the last passing checkpoint and the first failing one marked, and a caption that
says where the base's run came from (generated, or read from a file). It is plain SVG (no
charting library); Rpass@1 is left out where it is undefined, never drawn as 0, and so is a
rate that a run's hidden reasoning makes unknown, which the table shows as `UNKNOWN_RATE`. No
text is drawn over another: a marker's label stays inside the plotting area (left of its line
in the plot's right half), the legend right of the plot starts below the caption's line, and a
caption too long for the chart is cut in the middle (whole in its tooltip).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from rtc_assert.metrics import METRICS, RunMetrics
from rtc_assert.reports.safe_text import one_line
from rtc_assert.reports.tables import UNKNOWN_RATE, unknown_note
from rtc_assert.sweep import SweepRecord

SWEEP_FILE = "sweep.json"
CHART_FILE = "sweep.svg"
STOPPED_NOTE = "(the sweep stopped early: the checkpoints gated before)"
"""After each panel's title when the record is partial (its ``error`` is set)."""
COLOURS = {
    "valid_rate": "#2a9d8f",
    "empty_rate": "#e9c46a",
    "truncated_rate": "#f4a261",
    "missing_rate": "#8d99ae",
    "answer_accuracy": "#264653",
    "reasoning_conditioned_accuracy": "#9b5de5",
}
"""Each charted metric's line colour; a metric without one takes a neutral grey."""
SERIES: tuple[tuple[str, str, str], ...] = tuple(
    (metric.name, metric.short, COLOURS.get(metric.name, "#555555"))
    for metric in METRICS.values()
    if metric.tabulated
)
"""(metric, short name, colour) of each line, in table and legend order."""
TABLE_HEADER = ("step", "checkpoint", *(short for _, short, _ in SERIES), "gates")
WIDTH = 720
PANEL_HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 50, 110, 34, 40
"""Margins of each panel's plotting area."""
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = PANEL_HEIGHT - TOP - BOTTOM
LEGEND_TOP = 12
"""The legend's first row, below the top of the plotting area: clear of the base caption,
which ends at that top, however long the caption runs."""
CAPTION_CHARS = 100
"""The base caption's length at most: about 550 of the 670 units right of the axis, in
headless Chromium's sans-serif at 10 units (a path's characters, about 5.5 units each). A
longer caption is cut in the middle, its tooltip whole."""


def _value(metrics: RunMetrics, metric: str) -> str:
    if metrics.why_unknown(metric) is not None:
        return UNKNOWN_RATE
    rate = metrics.metric(metric)
    return "n/a" if rate is None else f"{rate.value:.3f}"


def base_label(record: SweepRecord, probe_set: str) -> str:
    """The base in one probe set's table: its model, and the file it was read from if it was."""
    source = record.base_files.get(probe_set)
    if source is None:
        return record.base or ""
    return f"{record.base or 'generations:base'} (read from {Path(source.file).name})"


def base_lines(record: SweepRecord) -> list[str]:
    """Where the base's run on each probe set came from, when any was read from a file;
    nothing when every one was generated (the table names the model)."""
    if not record.base_files:
        return []
    named = record.base not in (None, "generations:base")
    lines = []
    for probe_set in record.base_metrics:
        source = record.base_files.get(probe_set)
        if source is None:
            lines.append(f"base on {probe_set}: {record.base}, generated")
        elif named:
            lines.append(
                f"base on {probe_set}: {record.base}'s generations read from {source.file} "
                f"({source.format}), not generated"
            )
        else:
            lines.append(
                f"base on {probe_set}: generations read from {source.file} ({source.format}), "
                "not generated (thresholds.yaml names no base model)"
            )
    return lines


def table_rows(record: SweepRecord, probe_set: str) -> list[tuple[str, ...]]:
    """One probe set's rows: the base, then each checkpoint with its gate verdict."""
    rows = []
    if probe_set in record.base_metrics:
        base = record.base_metrics[probe_set]
        label = base_label(record, probe_set)
        rows.append(("base", label, *(_value(base, m) for m, _, _ in SERIES), ""))
    for step in record.steps:
        verdict = "PASS" if step.passed else f"FAIL ({len(step.failed_gates)})"
        values = (_value(step.metrics[probe_set], metric) for metric, _, _ in SERIES)
        rows.append((str(step.step), Path(step.checkpoint).name, *values, verdict))
    return rows


def unknown_lines(record: SweepRecord) -> list[str]:
    """Why the table shows a run's rates as `UNKNOWN_RATE`: one line per run (the base's on a
    probe set, a checkpoint's) whose hidden reasoning makes them unknown."""
    runs = [(f"base on {name}", metrics) for name, metrics in record.base_metrics.items()]
    runs += [
        (f"step {step.step} on {name}", metrics)
        for step in record.steps
        for name, metrics in step.metrics.items()
    ]
    notes = (unknown_note(label, metrics) for label, metrics in runs)
    return [note for note in notes if note is not None]


def verdict_lines(record: SweepRecord) -> list[str]:
    """Where the gates first fail and which checkpoint is the last one safe to ship."""
    by_step = {step.step: step for step in record.steps}
    lines = []
    if record.first_failing is None:
        lines.append(f"every checkpoint passes the gates ({len(record.steps)} checkpoints)")
    else:
        failing = by_step[record.first_failing]
        lines.append(
            f"first failing checkpoint: step {failing.step} ({failing.checkpoint}); "
            f"{len(failing.failed_gates)} of {len(failing.gates)} gates failed:"
        )
        lines += [f"  {gate.gate.id}: {gate.reason}" for gate in failing.failed_gates]
    if record.last_passing is None:
        lines.append("last passing checkpoint: none (the first checkpoint already fails)")
    else:
        passing = by_step[record.last_passing]
        lines.append(f"last passing checkpoint: step {passing.step} ({passing.checkpoint})")
    if record.passing_after_failure:
        steps = ", ".join(str(step) for step in record.passing_after_failure)
        lines.append(f"note: step(s) {steps} pass again after the first failure")
    return lines


def _x(step: int, first: int, last: int) -> float:
    if last == first:
        return LEFT + PLOT_WIDTH / 2
    return LEFT + (step - first) / (last - first) * PLOT_WIDTH


def _y(value: float, top: float) -> float:
    return top + (1 - value) * PLOT_HEIGHT


def _lines(record: SweepRecord, probe_set: str, top: float) -> list[str]:
    """One polyline per metric and stretch of defined values, with a dot per step."""
    first, last = record.steps[0].step, record.steps[-1].step
    shapes = []
    for metric, short, colour in SERIES:
        stretches: list[list[tuple[float, float]]] = [[]]
        for step in record.steps:
            rate = step.metrics[probe_set].known_rate(metric)
            if rate is None:
                stretches.append([])
                continue
            stretches[-1].append((_x(step.step, first, last), _y(rate.value, top)))
        for points in filter(None, stretches):
            text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            shapes.append(
                f'<polyline data-metric="{metric}" points="{text}" fill="none" '
                f'stroke="{colour}" stroke-width="2"><title>{short}</title></polyline>'
            )
            shapes += [
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points
            ]
    return shapes


def _marker(x: float, top: float, colour: str, label: str, kind: str) -> str:
    """A dashed line at ``x`` with its label on the side with more room: right of a line in
    the plot's left half, left of one in its right half. A label (about 50 units) then stays
    inside the plotting area, so a marker at the last step never writes over the legend
    right of it."""
    right_half = x > LEFT + PLOT_WIDTH / 2
    label_x, anchor = (x - 3, "end") if right_half else (x + 3, "start")
    return (
        f'<g data-marker="{kind}"><line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" '
        f'y2="{top + PLOT_HEIGHT}" stroke="{colour}" stroke-dasharray="4 3"/>'
        f'<text x="{label_x:.1f}" y="{top + 10}" fill="{colour}" font-size="11" '
        f'text-anchor="{anchor}">{label}</text></g>'
    )


def _fit(text: str, chars: int) -> str:
    """``text`` cut in the middle to ``chars`` characters, if it is longer."""
    if len(text) <= chars:
        return text
    head = (chars - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (chars - 1 - head) :]


def _base_caption(record: SweepRecord, probe_set: str, top: float) -> list[str]:
    """Under the panel's title: the base's model, and whether its run was generated or read
    from a file (the whole path in its tooltip); nothing without a base run there. A caption
    longer than `CAPTION_CHARS` is cut in the middle (its tooltip has it whole)."""
    if probe_set not in record.base_metrics:
        return []
    source = record.base_files.get(probe_set)
    named = record.base not in (None, "generations:base")
    if source is None:
        kind, words, tooltip = "generated", f"base: {record.base or ''}, generated", ""
    else:
        read = f"read from {Path(source.file).name} ({source.format})"
        kind, words = "file", f"base: {record.base}, {read}" if named else f"base: {read}"
        tooltip = f"<title>{escape(one_line(source.file))}</title>"
    words = one_line(words)
    if len(words) > CAPTION_CHARS:
        whole = words if source is None else f"{words}: {one_line(source.file)}"
        words, tooltip = _fit(words, CAPTION_CHARS), f"<title>{escape(whole)}</title>"
    return [
        f'<text data-base="{kind}" x="{LEFT}" y="{top - 3}" font-size="10" fill="#555">'
        f"{escape(words)}{tooltip}</text>"
    ]


def _unknown_key(record: SweepRecord, probe_set: str, y: float) -> list[str]:
    """Under the legend, where a checkpoint's hidden reasoning leaves its status rates out
    of the panel: `UNKNOWN_RATE`, the steps and why in its tooltip; nothing elsewhere."""
    notes = [unknown_note(f"step {step.step}", step.metrics[probe_set]) for step in record.steps]
    shown = [note for note in notes if note is not None]
    if not shown:
        return []
    x = LEFT + PLOT_WIDTH + 14
    return [
        f'<g data-unknown="hidden reasoning"><title>{escape(one_line("; ".join(shown)))}</title>'
        f'<text x="{x}" y="{y + 4}" font-size="9" fill="#555">status rates n/a</text>'
        f'<text x="{x}" y="{y + 16}" font-size="9" fill="#555">(hidden reasoning)</text></g>'
    ]


def _panel(record: SweepRecord, probe_set: str, index: int) -> list[str]:
    top = index * PANEL_HEIGHT + TOP
    first, last = record.steps[0].step, record.steps[-1].step
    # A sweep that stopped early says so: its markers are of the checkpoints gated before.
    stopped = f" {STOPPED_NOTE}" if record.error is not None else ""
    parts = [
        f'<g data-probe-set="{escape(one_line(probe_set))}">',
        f'<text data-title="" x="{LEFT}" y="{top - 17}" font-size="13" font-weight="bold">'
        f"{escape(one_line(probe_set))}{stopped}</text>",
        *_base_caption(record, probe_set, top),
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_WIDTH}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    for step in record.steps:
        parts.append(
            f'<text x="{_x(step.step, first, last):.1f}" y="{top + PLOT_HEIGHT + 16}" '
            f'font-size="10" text-anchor="middle">{step.step}</text>'
        )
    parts.append(
        f'<text x="{LEFT + PLOT_WIDTH / 2:.1f}" y="{top + PLOT_HEIGHT + 32}" font-size="11" '
        'text-anchor="middle">step</text>'
    )
    if record.last_passing is not None:
        x = _x(record.last_passing, first, last)
        parts.append(_marker(x, top, "#2b9348", "last pass", "last_passing"))
    if record.first_failing is not None:
        x = _x(record.first_failing, first, last)
        parts.append(_marker(x, top + 14, "#d00000", "first fail", "first_failing"))
    parts += _lines(record, probe_set, top)
    for row, (_, short, colour) in enumerate(SERIES):
        y = top + LEGEND_TOP + row * 16
        x = LEFT + PLOT_WIDTH + 14
        parts.append(
            f'<g data-legend="{short}"><line x1="{x}" y1="{y}" x2="{x + 16}" y2="{y}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x + 22}" y="{y + 4}" font-size="11">{short}</text></g>'
        )
    parts += _unknown_key(record, probe_set, top + LEGEND_TOP + len(SERIES) * 16)
    parts.append("</g>")
    return parts


def sweep_svg(record: SweepRecord) -> str:
    """The sweep chart as a standalone SVG document."""
    height = PANEL_HEIGHT * len(record.probe_sets)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
    ]
    if record.steps:
        for index, probe_set in enumerate(record.probe_sets):
            parts += _panel(record, probe_set, index)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_sweep(record: SweepRecord, directory: Path) -> Path:
    """Write ``sweep.json`` and the chart ``sweep.svg``; returns the JSON file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SWEEP_FILE
    path.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (directory / CHART_FILE).write_text(sweep_svg(record), encoding="utf-8")
    return path
