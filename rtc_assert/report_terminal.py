"""The terminal summary, drawn with rich from a `SessionRecord`."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rtc_assert.record import SessionRecord
from rtc_assert.summary import (
    GATE_HEADER,
    gate_rows,
    metric_tables,
    template_notes,
    verdict_line,
)


def print_summary(record: SessionRecord, file: TextIO | None = None, *, width: int = 120) -> None:
    """Print the base-vs-candidate tables and the gate verdicts."""
    console = Console(file=file, width=width, highlight=False, soft_wrap=False)
    for table_data in metric_tables(record):
        table = Table(title=table_data.probe_set, title_justify="left")
        for column in table_data.header:
            table.add_column(column, overflow="fold")
        for row in table_data.rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
    if record.gates:
        gates = Table(title="gates", title_justify="left")
        for column in GATE_HEADER:
            gates.add_column(column, overflow="fold")
        for gate_id, verdict, rule in gate_rows(record):
            style = "green" if verdict == "PASS" else "bold red"
            # Text, not markup: gate ids such as valid_rate[min] would read as style tags.
            gates.add_row(Text(gate_id), Text(verdict, style=style), Text(rule))
        console.print(gates)
    for note in template_notes(record):
        console.print(Text(f"trace format: {note}", style="yellow"))
    console.print(Text(verdict_line(record)))
