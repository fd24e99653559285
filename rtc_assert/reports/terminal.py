"""The terminal summary, drawn with rich from a `SessionRecord`."""

from __future__ import annotations

import shutil
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rtc_assert.record import SessionRecord
from rtc_assert.reports.safe_text import one_line, printable
from rtc_assert.reports.tables import (
    GATE_HEADER,
    gate_rows,
    metric_tables,
    reasoning_token_tables,
    template_notes,
    verdict_line,
)

DEFAULT_WIDTH = 120
"""Width of the summary where the output is not a terminal and no width is given."""


def terminal_width(fallback: int = DEFAULT_WIDTH) -> int:
    """The width of the terminal (``COLUMNS`` first), or ``fallback`` when there is none."""
    return shutil.get_terminal_size((fallback, 24)).columns


def summary_console(
    file: TextIO | None = None, *, width: int = DEFAULT_WIDTH, color: bool | None = False
) -> Console:
    """A rich console for the summaries.

    Args:
        file: where to write; None for standard output.
        width: columns to draw the tables in.
        color: True for ANSI colours and bold (the 8 standard colours, which every terminal
            and CI log viewer shows), False for plain text whatever the environment says
            (``FORCE_COLOR`` included), None to let rich decide from ``file`` and the
            environment (colour on a terminal, ``NO_COLOR`` honoured).
    """
    if color is None:
        return Console(file=file, width=width, highlight=False, soft_wrap=False)
    return Console(
        file=file,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        soft_wrap=False,
        emoji=False,
    )


def print_summary(
    record: SessionRecord,
    file: TextIO | None = None,
    *,
    width: int = DEFAULT_WIDTH,
    color: bool | None = False,
) -> None:
    """Print the base-vs-candidate tables (metrics, each with its notes on rates hidden
    reasoning makes unknown; then reasoning tokens where counted) and the gate verdicts (see
    `summary_console`).

    Every cell is a `Text`, never markup: probe set names, model specs and gate ids such as
    ``valid_rate[min]`` are shown as written, control characters escaped (`one_line`).
    """
    console = summary_console(file, width=width, color=color)
    for table_data in [*metric_tables(record), *reasoning_token_tables(record)]:
        table = Table(title=Text(one_line(table_data.probe_set)), title_justify="left")
        for column in table_data.header:
            table.add_column(Text(one_line(column)), overflow="fold")
        for row in table_data.rows:
            table.add_row(*(Text(one_line(cell)) for cell in row))
        console.print(table)
        for note in table_data.notes:
            console.print(Text(one_line(note), style="yellow"))
    if record.gates:
        gates = Table(title="gates", title_justify="left")
        for column in GATE_HEADER:
            gates.add_column(column, overflow="fold")
        for gate_id, verdict, rule in gate_rows(record):
            style = {"PASS": "green", "FAIL": "bold red"}.get(verdict, "yellow")
            gates.add_row(Text(one_line(gate_id)), Text(verdict, style=style), Text(one_line(rule)))
        console.print(gates)
    for note in template_notes(record):
        console.print(Text(f"trace format: {one_line(note)}", style="yellow"))
    console.print(Text(printable(verdict_line(record))))
