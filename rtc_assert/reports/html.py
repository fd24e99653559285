"""The HTML report: one self-contained page rendered from a `SessionRecord`.

Inline CSS, inline SVG charts (`rtc_assert.reports.charts`) and a small inline script that
filters the example traces; it loads nothing from the network, so it opens from a CI artifact
in any browser. Model text is untrusted: the template escapes everything it is given
(jinja2 autoescape) and a Content-Security-Policy lets only the page's own script run.

Large runs stay small: at most `MAX_EXAMPLE_ROWS` example traces are shown, shared fairly
among the (probe set, model, status) groups with regressions first, and long texts are cut in
the middle; the page says how many were left out, and ``rtc-run.json`` keeps every one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from rtc_assert.record import GenerationRecord, SessionRecord
from rtc_assert.reports.charts import (
    CHART_WIDTH,
    LABEL_WIDTH,
    ORDER_HEIGHT,
    ORDER_LEFT,
    PLOT_WIDTH,
    ROW_HEIGHT,
    STATUSES,
    fit_label,
    interval_whiskers,
    probe_order_lines,
    status_bars,
)
from rtc_assert.reports.safe_text import printable
from rtc_assert.reports.tables import (
    MetricTable,
    ShownRuns,
    gate_rows,
    metric_tables,
    probe_set_names,
    reasoning_token_table,
    shown_runs,
    template_notes,
    verdict_line,
)

REPORT_FILE = "report.html"
TEMPLATES = Path(__file__).parent / "templates"
MAX_EXAMPLE_ROWS = 2000
"""Example traces shown in the page at most; the run record keeps them all."""
TEXT_HEAD_BYTES = 1200
TEXT_TAIL_BYTES = 300
"""Page bytes of a reasoning, answer or raw text: a longer one keeps its start and its end,
with the cut marked, so that the page stays under 15 MB whatever the model wrote."""


Member = tuple[int, int, GenerationRecord]
"""A generation with its position in its run and its run's column."""


@dataclass(frozen=True)
class Example:
    """One generation as the page lists it."""

    probe_set: str
    model: str
    generation: GenerationRecord
    regressed: bool
    """Valid in the base, not valid in the candidate, for this probe and sample."""
    reasoning: str
    answer: str
    text: str


@dataclass(frozen=True)
class ExampleGroup:
    """The generations of one (probe set, model, status): how many, how many shown."""

    probe_set: str
    model: str
    status: str
    total: int
    shown: int

    @property
    def left_out(self) -> int:
        return self.total - self.shown


@dataclass(frozen=True)
class ProbeSetView:
    """One probe set's section: its tables and charts."""

    name: str
    table: MetricTable
    shown: ShownRuns
    tokens: MetricTable | None
    """Reasoning tokens per model and status, where counted."""


def escaped_size(text: str) -> int:
    """Bytes that ``text`` takes in the page, escaped and encoded as UTF-8."""
    return len(escape(text).encode("utf-8"))


def _longest_prefix(text: str, budget: int) -> int:
    """The most leading characters of ``text`` whose escaped size fits ``budget``."""
    low, high = 0, min(len(text), budget)  # a character takes at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if escaped_size(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def cut_text(text: str, head: int = TEXT_HEAD_BYTES, tail: int = TEXT_TAIL_BYTES) -> str:
    """``text`` itself when it fits ``head + tail`` bytes in the page; else as much of its
    start and its end as fit ``head`` and ``tail`` bytes, around a note of what was cut."""
    if escaped_size(text) <= head + tail:
        return text
    start = _longest_prefix(text, head)
    end = _longest_prefix(text[::-1], tail)  # escaping is per character: reversal keeps sizes
    cut = len(text) - start - end
    return (
        f"{text[:start]}\n[... {cut:,} characters cut here; rtc-run.json has them ...]\n"
        + (text[len(text) - end :])
    )


def allocate(totals: list[int], budget: int) -> list[int]:
    """Rows shown per group: every group gets an equal share of ``budget``, and what a small
    group does not need goes to the larger ones (max-min fair)."""
    shown = [0] * len(totals)
    remaining = budget
    order = sorted(range(len(totals)), key=lambda index: totals[index])
    for position, index in enumerate(order):
        share = remaining // (len(order) - position)
        shown[index] = min(totals[index], share)
        remaining -= shown[index]
    return shown


def regressed_keys(shown: ShownRuns) -> set[tuple[str, int]]:
    """(probe id, sample) valid in the base and not valid in the candidate; a candidate's
    hidden reasoning is not known not to be valid, so it is no regression."""
    if not shown.paired:
        return set()
    base, candidate = shown.runs
    base_valid = {(g.probe_id, g.sample) for g in base.generations if g.status == "valid"}
    return {
        (g.probe_id, g.sample)
        for g in candidate.generations
        if g.status != "valid" and not g.hidden and (g.probe_id, g.sample) in base_valid
    }


def _pools(record: SessionRecord) -> list[tuple[str, str, str, list[Member]]]:
    """Per (probe set, model, status): its generations, regressions first, then by order."""
    pools = []
    for probe_set in probe_set_names(record):
        shown = shown_runs(record, probe_set)
        regressed = regressed_keys(shown)
        for run_index, run in enumerate(shown.runs):
            by_status: dict[str, list[Member]] = {status: [] for status in STATUSES}
            for position, generation in enumerate(run.generations):
                by_status[generation.status].append((position, run_index, generation))
            for status, members in by_status.items():
                members.sort(key=lambda m: ((m[2].probe_id, m[2].sample) not in regressed, m[0]))
                if members:
                    pools.append((probe_set, run.model, status, members))
    return pools


def select_examples(
    record: SessionRecord, max_rows: int = MAX_EXAMPLE_ROWS
) -> tuple[list[Example], list[ExampleGroup]]:
    """The examples the page lists, base and candidate of a probe side by side, and every
    (probe set, model, status) group with how many of its generations are shown."""
    pools = _pools(record)
    counts = allocate([len(members) for *_, members in pools], max_rows)
    groups, chosen = [], []
    for (probe_set, model, status, members), count in zip(pools, counts, strict=True):
        groups.append(ExampleGroup(probe_set, model, status, len(members), count))
        chosen += [(probe_set, model, member) for member in members[:count]]
    set_order = {name: index for index, name in enumerate(probe_set_names(record))}
    chosen.sort(key=lambda c: (set_order[c[0]], c[2][0], c[2][1]))
    regressed = {name: regressed_keys(shown_runs(record, name)) for name in set_order}
    examples = [
        Example(
            probe_set=probe_set,
            model=model,
            generation=generation,
            regressed=(generation.probe_id, generation.sample) in regressed[probe_set],
            reasoning=cut_text(generation.reasoning),
            answer=cut_text(generation.answer),
            text=cut_text(generation.text),
        )
        for probe_set, model, (_, _, generation) in chosen
    ]
    return examples, groups


def _shown(value: object) -> object:
    """Every value the template prints, control characters escaped (the page's own CSS and
    script, given as `Markup`, are left alone)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    environment.filters["fit"] = fit_label
    environment.globals.update(
        CHART_WIDTH=CHART_WIDTH,
        LABEL_WIDTH=LABEL_WIDTH,
        PLOT_WIDTH=PLOT_WIDTH,
        ROW_HEIGHT=ROW_HEIGHT,
        ORDER_HEIGHT=ORDER_HEIGHT,
        ORDER_LEFT=ORDER_LEFT,
        STATUSES=STATUSES,
    )
    return environment


def _script() -> tuple[str, str]:
    """The page's script and its CSP hash (the only script the page may run)."""
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return script, f"sha256-{digest}"


def html_report(record: SessionRecord, *, max_rows: int = MAX_EXAMPLE_ROWS) -> str:
    """The report page of a run record, as one HTML document."""
    names = probe_set_names(record)
    sections = [
        ProbeSetView(name, table, shown_runs(record, name), reasoning_token_table(record, name))
        for name, table in zip(names, metric_tables(record), strict=True)
    ]
    examples, groups = select_examples(record, max_rows)
    script, script_hash = _script()
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            record=record,
            verdict=verdict_line(record),
            failed=sum(not result.passed for result in record.gates),
            gates=gate_rows(record),
            notes=template_notes(record),
            sections=sections,
            status_bars=status_bars,
            interval_whiskers=interval_whiskers,
            probe_order_lines=probe_order_lines,
            examples=examples,
            groups=groups,
            left_out=sum(group.left_out for group in groups),
            models=list(dict.fromkeys(run.model for run in record.runs)),
            css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
            script=Markup(script),
            script_hash=script_hash,
        )
    )


def write_html_report(record: SessionRecord, path: Path) -> Path:
    """Write the report page to ``path`` (its folder is created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(record), encoding="utf-8")
    return path
