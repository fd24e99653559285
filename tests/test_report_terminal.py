"""The terminal summary: drawn at the width it is given, coloured only when asked."""

from __future__ import annotations

import io
import re

import pytest
from synthetic_runs import synthetic_run

from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.record import SessionRecord, session_record
from rtc_assert.reports.terminal import print_summary, terminal_width

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Long enough that the gates table needs more than 120 columns to show it on one line.
PROBE_SET = "[bold]markup[/bold]_" + "x" * 110


@pytest.fixture(scope="module")
def record() -> SessionRecord:
    """A base that reasons and a candidate whose traces collapsed: one PASS, one FAIL."""
    probe_set = ProbeSet(
        name=PROBE_SET,
        version="1",
        probes=tuple(Probe(id=f"p{i}", prompt="q", answer="42", scorer="exact") for i in range(8)),
    )
    base = synthetic_run("[red]base[/red]", probe_set, ["<think>6 x 7</think>42"] * 8)
    candidate = synthetic_run("candidate", probe_set, ["<think></think>42"] * 8)
    decision = DecisionConfig(bootstrap_samples=200)
    dropped = GateSpec(probe_set=PROBE_SET, metric="valid_rate", kind="max_drop", threshold=0.1)
    accurate = GateSpec(probe_set=PROBE_SET, metric="answer_accuracy", kind="min", threshold=0.5)
    gates = [
        evaluate_gate(dropped, candidate, base, decision),
        evaluate_gate(accurate, candidate, None, decision),
    ]
    return session_record(
        config={"candidate": "candidate", "base": "[red]base[/red]"},
        runs=[base, candidate],
        gates=gates,
        timings={},
        models={},
    )


def _summary(record: SessionRecord, *, width: int = 120, color: bool | None = False) -> str:
    buffer = io.StringIO()
    print_summary(record, buffer, width=width, color=color)
    return buffer.getvalue()


def test_plain_by_default_whatever_the_environment_says(
    record: SessionRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    text = _summary(record)
    assert "\x1b" not in text
    assert "FAIL" in text and "PASS" in text


def test_rich_decides_when_colour_is_none(
    record: SessionRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the CLI asks for: colour on a terminal or under FORCE_COLOR, not in a file."""
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert "\x1b" not in _summary(record, color=None)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in _summary(record, color=None)


def test_colour_when_asked(record: SessionRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")  # an explicit True wins, as pytest's --color=yes does
    text = _summary(record, color=True)
    assert "\x1b[1;31mFAIL" in text  # bold red, in the 8 standard colours
    assert "\x1b[32mPASS" in text
    assert ANSI.sub("", text) == _summary(record)  # the same text, colour aside


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("width", [60, 80, 200])
def test_no_line_is_wider_than_the_terminal(record: SessionRecord, width: int, color: bool) -> None:
    lines = ANSI.sub("", _summary(record, width=width, color=color)).splitlines()
    assert max(len(line) for line in lines) <= width
    if width > 120:
        assert max(len(line) for line in lines) > 120  # the width is used, not capped at 120


def test_model_and_probe_set_text_is_never_markup(record: SessionRecord) -> None:
    text = _summary(record, width=200, color=True)
    assert "[bold]markup[/bold]_" in text
    assert "[red]base[/red]" in text


def test_terminal_width_reads_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "97")
    assert terminal_width() == 97
    monkeypatch.delenv("COLUMNS")
    assert terminal_width(fallback=123) in {123, terminal_width()}
