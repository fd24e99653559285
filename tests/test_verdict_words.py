"""Verdicts a reader gets right (issue #20): gates left open by early stopping read NOT
SETTLED everywhere and are counted apart, interim looks' levels say so in words, metric
tables label their intervals, and no level prints as 100%."""

from __future__ import annotations

import io
import xml.sax.saxutils

from hypothesis import given
from hypothesis import strategies as st

from rtc_assert.decide.spec import DecisionConfig, EarlyStoppingConfig
from rtc_assert.metrics import format_level
from rtc_assert.pytest_plugin.gates import GatePlugin
from rtc_assert.record import session_record
from rtc_assert.reports.html import html_report
from rtc_assert.reports.markdown import markdown_summary
from rtc_assert.reports.tables import metric_tables, verdict_line
from rtc_assert.reports.terminal import print_summary
from tests.test_sequential import GATES, decide, synthetic_run

SEQUENTIAL = DecisionConfig(early_stopping=EarlyStoppingConfig(chunk_size=32))


def collapse_record():
    base = synthetic_run([[True]] * 256)
    collapsed = synthetic_run([[False]] * 256)
    results, _ = decide(GATES, collapsed, base, SEQUENTIAL)
    return results, session_record(
        config={"candidate": "m", "base": "m"}, runs=[base], gates=results, timings={}, models={}
    )


def test_a_gate_left_open_reads_not_settled_in_every_renderer():
    results, record = collapse_record()
    assert [r.settled for r in results] == [True, True, True, False]
    assert results[3].passed  # what its probes show so far; the word says it is not final
    line = "rtc-assert: 0 of 4 gates passed, 3 failed, 1 not settled"
    assert verdict_line(record) == line
    terminal = io.StringIO()
    print_summary(record, terminal, width=300)
    assert "NOT SETTLED" in terminal.getvalue() and line in terminal.getvalue()
    markdown = markdown_summary(record)
    assert "| s::truncated_rate[max] | NOT SETTLED |" in markdown and line in markdown
    page = html_report(record)
    assert 'class="badge not-settled">NOT SETTLED<' in page
    assert xml.sax.saxutils.escape(line) in page
    assert GatePlugin.junit_properties(results[3])["rtc_verdict"] == "not settled"


def test_an_interim_looks_level_says_so_in_words():
    results, _ = collapse_record()
    reason = results[1].reason  # look 1 of 8 at 1 - 0.005 / 7, Holm's share for 4 gates
    assert "99.982% CI of the drop" in reason
    assert "99.982% is the level of interim look 1 of 8 of early stopping" in reason


def test_metric_tables_label_their_intervals():
    _, record = collapse_record()
    assert metric_tables(record)[0].header[0] == "metric: rate [95% Wilson interval]"


@given(st.integers(1, 400), st.integers(1, 60))
def test_a_level_never_prints_as_100_percent(looks, gates):
    interim = 1 - 0.05 * 0.1 / looks / gates
    shown = format_level(interim)
    assert shown != "100%" and shown.startswith("99.")
    assert abs(float(shown[:-1]) / 100 - interim) <= (1 - interim) / 10
    assert format_level(0.95) == "95%" and format_level(0.9983333) == "99.83%"
