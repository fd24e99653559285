"""The Markdown summary, for ``$GITHUB_STEP_SUMMARY`` and pull-request comments."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rtc_assert.record import SessionRecord
from rtc_assert.reports.safe_text import one_line
from rtc_assert.reports.tables import (
    GATE_HEADER,
    gate_rows,
    metric_tables,
    reasoning_token_tables,
    template_notes,
    verdict_line,
)


def _inline(text: str) -> str:
    """Text from models and files as inert Markdown on one line: control characters
    escaped, and no HTML tag (GitHub renders HTML in step summaries)."""
    return one_line(text).replace("<", "&lt;")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    def cells(values: tuple[str, ...]) -> str:
        return "| " + " | ".join(_inline(value).replace("|", "\\|") for value in values) + " |"

    return [cells(header), "|" + "---|" * len(header), *(cells(row) for row in rows)]


def markdown_summary(record: SessionRecord) -> str:
    """The summary as Markdown: a verdict line, a table per probe set (with its notes on
    rates hidden reasoning makes unknown, and a table of its reasoning tokens where counted),
    and the gates."""
    lines = [f"## {_inline(verdict_line(record))}", ""]
    for table in [*metric_tables(record), *reasoning_token_tables(record)]:
        lines += [f"### {_inline(table.probe_set)}", "", *_table(table.header, table.rows), ""]
        if table.notes:
            lines += [*(f"- {_inline(note)}" for note in table.notes), ""]
    if record.gates:
        lines += ["### gates", "", *_table(GATE_HEADER, gate_rows(record)), ""]
    lines += [f"- trace format: {_inline(note)}" for note in template_notes(record)]
    return "\n".join(lines)


def append_step_summary(record: SessionRecord) -> Path | None:
    """Append the summary to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the path."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(markdown_summary(record) + "\n")
    return path
