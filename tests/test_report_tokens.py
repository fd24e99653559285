"""Reasoning tokens in every report: mean and total per model and status, and the change."""

from __future__ import annotations

import io

import pytest
from synthetic_runs import synthetic_run

from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.record import SessionRecord, session_record
from rtc_assert.reports.html import html_report
from rtc_assert.reports.markdown import markdown_summary
from rtc_assert.reports.tables import reasoning_token_tables
from rtc_assert.reports.terminal import print_summary
from rtc_assert.runs import Run

PROBE_SET = ProbeSet(
    name="arith",
    version="1",
    probes=tuple(Probe(id=f"p{i}", prompt="q", answer="42", scorer="exact") for i in range(4)),
)


def _run(model: str, outputs: list[tuple[str, int | None]]) -> Run:
    texts, tokens = zip(*outputs, strict=True)
    return synthetic_run(model, PROBE_SET, texts, tokens)


def _record(*, base: bool = True) -> SessionRecord:
    """A base whose 4 traces took 30 tokens each; a candidate with 2 of 10 and 2 empty."""
    runs = [
        _run("base-model", [("<think>six times seven</think>42", 30)] * 4),
        _run("tuned", [("<think>6x7</think>42", 10)] * 2 + [("<think></think>42", 0)] * 2),
    ]
    config = {"candidate": "tuned", "base": "base-model"} if base else {"candidate": "tuned"}
    return session_record(
        config=config, runs=runs if base else runs[1:], gates=[], timings={}, models={}
    )


EXPECTED_ROWS = [
    ("all", "30.0", "120", "5.0", "20", "-25.0", "-100 (-83%)"),
    ("valid", "30.0", "120", "10.0", "20", "-20.0", "-100 (-83%)"),
    ("empty", "-", "-", "0.0", "0", "-", "-"),
]


def test_the_table_gives_mean_total_and_change_per_status():
    (table,) = reasoning_token_tables(_record())
    assert table.probe_set == "arith: reasoning tokens"
    assert table.header == (
        "status",
        "base base-model: mean",
        "base base-model: total",
        "candidate tuned: mean",
        "candidate tuned: total",
        "change: mean",
        "change: total",
    )
    assert table.rows == EXPECTED_ROWS


def test_a_run_alone_has_no_change_columns_and_no_count_no_table():
    (table,) = reasoning_token_tables(_record(base=False))
    assert table.header == ("status", "tuned: mean", "tuned: total")
    assert table.rows[0] == ("all", "5.0", "20")
    uncounted = _run("tuned", [("<think>6x7</think>42", None)] * 4)
    record = session_record(
        config={"candidate": "tuned"}, runs=[uncounted], gates=[], timings={}, models={}
    )
    assert reasoning_token_tables(record) == []


def test_terminal_summary_shows_the_reasoning_tokens():
    buffer = io.StringIO()
    print_summary(_record(), buffer, width=160)
    text = buffer.getvalue()
    assert "arith: reasoning tokens" in text
    assert "-100 (-83%)" in text


def test_markdown_summary_shows_the_reasoning_tokens():
    text = markdown_summary(_record())
    assert "### arith: reasoning tokens" in text
    assert "| all | 30.0 | 120 | 5.0 | 20 | -25.0 | -100 (-83%) |" in text
    assert "| empty | - | - | 0.0 | 0 | - | - |" in text


@pytest.mark.parametrize("cell", ["<h3>Reasoning tokens</h3>", "<td>-100 (-83%)</td>"])
def test_html_report_shows_the_reasoning_tokens(cell):
    assert cell in html_report(_record())
