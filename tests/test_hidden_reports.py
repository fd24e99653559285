"""Hidden reasoning in reports, records and assertions: the rates that count trace statuses
are shown as unknown, never as the numbers their counts would give; the others are shown."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ElementTree
from html import unescape

import pytest
from synthetic_runs import synthetic_run

from rtc_assert.assertions import (
    assert_no_collapse,
    assert_reasoning_conditioned_accuracy,
    assert_valid_rate,
)
from rtc_assert.decide.explain import explain_failure
from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.errors import MetricsError
from rtc_assert.metrics import METRICS, RunMetrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.record import (
    RECORD_VERSION,
    SessionRecord,
    read_record,
    session_record,
    write_record,
)
from rtc_assert.reports.charts import interval_whiskers, probe_order_lines, status_bars
from rtc_assert.reports.html import html_report, regressed_keys
from rtc_assert.reports.markdown import markdown_summary
from rtc_assert.reports.sweep import sweep_svg, table_rows, unknown_lines, write_sweep
from rtc_assert.reports.tables import UNKNOWN_RATE, metric_tables, shown_runs
from rtc_assert.reports.terminal import print_summary
from rtc_assert.runs import Run
from rtc_assert.sweep import StepRecord, SweepRecord

PROBES = ProbeSet(
    name="s",
    version="1",
    probes=tuple(Probe(id=f"p{i}", prompt="q", answer="42", scorer="exact") for i in range(8)),
)
REASONED = ["<think>6 x 7</think>42"] * 8
STATUS_METRICS = [name for name, metric in METRICS.items() if metric.needs_statuses]
OTHER_METRICS = [name for name, metric in METRICS.items() if not metric.needs_statuses]
STATUS_LABELS = [METRICS[name].label for name in STATUS_METRICS]
SVG = "{http://www.w3.org/2000/svg}"


def hidden_run(model: str = "candidate", hidden: range = range(8)) -> Run:
    """Correct answers to every probe; the reasoning of those in ``hidden`` is hidden, the
    others reason visibly."""
    texts = ["42" if index in hidden else REASONED[index] for index in range(8)]
    return synthetic_run(model, PROBES, texts, hidden=hidden)


def record_of(base: Run, candidate: Run) -> SessionRecord:
    decision = DecisionConfig(bootstrap_samples=200)
    gates = [
        evaluate_gate(
            GateSpec(probe_set="s", metric="valid_rate", kind="max_drop", threshold=0.1),
            candidate,
            base,
            decision,
        ),
        evaluate_gate(
            GateSpec(probe_set="s", metric="answer_accuracy", kind="min", threshold=0.5),
            candidate,
            None,
            decision,
        ),
    ]
    return session_record(
        config={"candidate": candidate.model, "base": base.model},
        runs=[base, candidate],
        gates=gates,
        timings={},
        models={},
    )


@pytest.fixture(scope="module")
def record() -> SessionRecord:
    """A base that reasons visibly; a candidate whose every trace's reasoning is hidden."""
    return record_of(synthetic_run("base", PROBES, REASONED), hidden_run())


def rows(record: SessionRecord) -> dict[str, tuple[str, ...]]:
    return {row[0]: row[1:] for row in metric_tables(record)[0].rows}


# the rule -------------------------------------------------------------------------------------


def test_status_metrics_of_a_hidden_run_are_unknown_and_the_others_are_not():
    metrics = hidden_run(hidden=range(2)).metrics
    why = metrics.status_unknown()
    assert why is not None and why.startswith("2 of 8 generations have hidden reasoning")
    for name in STATUS_METRICS:
        assert metrics.why_unknown(name) == why and metrics.known_rate(name) is None
        words = re.escape(f"the {METRICS[name].words} cannot be computed: {why}")
        with pytest.raises(MetricsError, match=words):
            metrics.metric(name)
    for name in OTHER_METRICS:
        assert metrics.why_unknown(name) is None
        assert metrics.known_rate(name) == metrics.metric(name) == metrics.rates[name]
    assert metrics.answer_accuracy.value == 1.0  # every answer is right
    for name in ("valid_rate", "empty_rate", "truncated_rate", "missing_rate"):
        with pytest.raises(MetricsError, match="2 of 8 generations have hidden reasoning"):
            getattr(metrics, name)
    with pytest.raises(MetricsError):
        _ = metrics.reasoning_conditioned_accuracy
    with pytest.raises(KeyError, match="unknown metric 'pass_at_1'"):
        metrics.why_unknown("pass_at_1")


def test_a_run_without_hidden_reasoning_knows_every_rate():
    metrics = synthetic_run("base", PROBES, REASONED).metrics
    for name in METRICS:
        assert metrics.why_unknown(name) is None
        assert metrics.known_rate(name) is metrics.metric(name) is metrics.rates[name]


# the JSON record -----------------------------------------------------------------------------


def test_json_keeps_the_counts_of_an_unknown_rate_but_not_its_value():
    metrics = hidden_run(hidden=range(2)).metrics
    data = json.loads(metrics.model_dump_json())
    for name in STATUS_METRICS:
        rate = data["rates"][name]
        assert rate["value"] is None and rate["low"] is None and rate["high"] is None
        assert rate["unknown"] == metrics.status_unknown()
        assert (rate["successes"], rate["trials"]) == (
            metrics.rates[name].successes,  # type: ignore[union-attr]
            metrics.rates[name].trials,  # type: ignore[union-attr]
        )
    assert data["rates"]["valid_rate"]["successes"] == 6  # the visible ones
    for name in OTHER_METRICS:
        assert data["rates"][name] == metrics.rates[name].model_dump()  # type: ignore[union-attr]
    assert data["hidden_reasoning"] == 2
    assert RunMetrics.model_validate(data) == metrics
    assert RunMetrics.model_validate_json(metrics.model_dump_json()) == metrics


def test_json_of_a_run_without_hidden_reasoning_is_as_before():
    metrics = synthetic_run("base", PROBES, REASONED).metrics
    data = json.loads(metrics.model_dump_json())
    assert data["rates"] == {
        name: None if rate is None else rate.model_dump() for name, rate in metrics.rates.items()
    }
    assert "unknown" not in json.dumps(data)


def test_the_record_says_so_and_reads_back(record, tmp_path):
    path = write_record(record, tmp_path)
    data = json.loads(path.read_text())
    assert data["record_version"] == RECORD_VERSION == 3
    base, candidate = data["runs"]
    assert candidate["metrics"]["rates"]["valid_rate"]["value"] is None
    assert candidate["metrics"]["rates"]["valid_rate"]["trials"] == 8
    assert candidate["metrics"]["rates"]["answer_accuracy"]["value"] == 1.0
    assert base["metrics"]["rates"]["valid_rate"]["value"] == 1.0
    assert [g["detail"] for g in candidate["generations"]] == ["hidden"] * 8
    again = read_record(path)
    assert again.runs == record.runs
    assert markdown_summary(again) == markdown_summary(record)


def test_a_version_2_record_of_a_hidden_run_reads_with_its_rates_unknown(record, tmp_path):
    """Version 2 wrote the counts' numbers: read back, the rates are unknown all the same."""
    data = json.loads(record.model_dump_json())
    data["record_version"] = 2
    metrics = record.runs[1].metrics
    data["runs"][1]["metrics"]["rates"] = {
        name: None if rate is None else rate.model_dump() for name, rate in metrics.rates.items()
    }
    assert data["runs"][1]["metrics"]["rates"]["valid_rate"]["value"] == 0.0
    path = tmp_path / "rtc-run.json"
    path.write_text(json.dumps(data))
    old = read_record(path)
    assert old.record_version == 2 and old.runs[1].metrics == metrics
    assert old.runs[1].metrics.why_unknown("valid_rate") is not None
    assert rows(old)["VR valid reasoning"][1] == UNKNOWN_RATE


# the tables: terminal and Markdown -----------------------------------------------------------


def test_the_tables_show_status_rates_as_unknown_and_the_others_as_numbers(record):
    table = metric_tables(record)[0]
    cells = rows(record)
    for label in STATUS_LABELS:
        base, candidate, change = cells[label]
        assert candidate == change == UNKNOWN_RATE
        assert base[0].isdigit()  # the base's reasoning is visible: its rates stand
    base, candidate, change = cells["pass@1 answers"]
    assert candidate.startswith("1.000 [") and change == "+0.000"
    (note,) = table.notes
    assert note == (
        f"candidate candidate: VR, ER, TR, MR and Rpass@1 are {UNKNOWN_RATE}: "
        f"{record.runs[1].metrics.status_unknown()}"
    )


def test_some_hidden_traces_make_the_whole_run_unknown():
    record = record_of(synthetic_run("base", PROBES, REASONED), hidden_run(hidden=range(1)))
    cells = rows(record)
    assert all(cells[label][1] == UNKNOWN_RATE for label in STATUS_LABELS)
    assert "1 of 8 generations have hidden reasoning" in metric_tables(record)[0].notes[0]


def test_a_hidden_base_makes_the_change_unknown():
    record = record_of(hidden_run("base"), synthetic_run("candidate", PROBES, REASONED))
    cells = rows(record)
    assert cells["VR valid reasoning"][0] == cells["VR valid reasoning"][2] == UNKNOWN_RATE
    assert cells["VR valid reasoning"][1].startswith("1.000 [")
    assert metric_tables(record)[0].notes[0].startswith("base base: VR, ER")


def test_the_terminal_summary(record):
    buffer = io.StringIO()
    print_summary(record, buffer, width=400, color=False)
    text = buffer.getvalue()
    line = next(line for line in text.splitlines() if "VR valid reasoning" in line)
    assert line.count(UNKNOWN_RATE) == 2  # the candidate and the change
    assert "1.000 [" in line and "0.000" not in line  # the base's is known, not 0
    assert "1.000 [" in next(line for line in text.splitlines() if "pass@1 answers" in line)
    assert f"VR, ER, TR, MR and Rpass@1 are {UNKNOWN_RATE}: 8 of 8 generations" in text
    assert "cannot be computed for the candidate" in text  # the gate says so too


def test_the_markdown_summary(record):
    text = markdown_summary(record)
    line = next(line for line in text.splitlines() if line.startswith("| VR valid reasoning"))
    assert line.count(UNKNOWN_RATE) == 2
    assert f"- candidate candidate: VR, ER, TR, MR and Rpass@1 are {UNKNOWN_RATE}: 8 of 8" in text
    assert "1.000 [" in next(line for line in text.splitlines() if "pass@1 answers" in line)


def test_notes_are_escaped_as_all_report_text():
    model = "<b>m\x1b[2J</b>"
    record = record_of(synthetic_run("base", PROBES, REASONED), hidden_run(model))
    markdown = markdown_summary(record)
    assert "- candidate &lt;b>m\\x1b[2J&lt;/b>: VR" in markdown
    buffer = io.StringIO()
    print_summary(record, buffer, width=400, color=False)
    assert "\x1b" not in buffer.getvalue() and "candidate <b>m\\x1b[2J</b>: VR" in buffer.getvalue()
    page = html_report(record)
    assert "\x1b" not in page and "<b>m" not in page
    assert "candidate &lt;b&gt;m\\x1b[2J&lt;/b&gt;: VR" in page


# the HTML page -------------------------------------------------------------------------------


def test_the_html_page(record):
    page = html_report(record)
    metrics = page.split('<table class="metrics">')[1].split("</table>")[0]
    vr = next(row for row in metrics.split("<tr>") if "VR valid reasoning" in row)
    assert vr.count(UNKNOWN_RATE) == 2 and "1.000 [" in vr
    assert "1.000 [" in next(row for row in metrics.split("<tr>") if "pass@1 answers" in row)
    notes = page.split('<ul class="notes unknown-rates">')[1].split("</ul>")[0]
    assert unescape(notes).count("8 of 8 generations have hidden reasoning") == 1
    assert "Rpass@1 candidate candidate" in page


def test_the_html_charts_draw_nothing_for_unknown_rates(record):
    shown = shown_runs(record, "s")
    base_bar, candidate_bar = status_bars(shown.labels, shown.runs)
    assert base_bar.unknown is None and base_bar.segments[0].share == 1.0
    assert candidate_bar.unknown == UNKNOWN_RATE and candidate_bar.segments == ()
    whiskers = {w.label: w for w in interval_whiskers(shown.labels, shown.runs)}
    assert whiskers["Rpass@1 candidate candidate"].text == UNKNOWN_RATE
    assert whiskers["Rpass@1 candidate candidate"].x is None
    assert whiskers["pass@1 candidate candidate"].text.startswith("1.000 [")
    assert whiskers["pass@1 candidate candidate"].x is not None
    base_line, candidate_line = probe_order_lines(shown.labels, shown.runs)
    assert base_line.final == 1.0 and base_line.points
    assert candidate_line.unknown == UNKNOWN_RATE and candidate_line.final is None
    assert candidate_line.points == "" and candidate_line.probes == 8
    page = html_report(record)
    bars = page.split('<svg class="status-bars"')[1].split("</svg>")[0]
    assert bars.count('<rect class="status-') == 1 + 4  # the base's valid bar, the legend
    assert f">{UNKNOWN_RATE}</text>" in bars
    order = page.split('<svg class="probe-order"')[1].split("</svg>")[0]
    assert order.count("<polyline") == 1
    assert f"candidate candidate: {UNKNOWN_RATE} after 8 probes" in order


def test_hidden_traces_are_no_regressions(record):
    assert regressed_keys(shown_runs(record, "s")) == set()
    page = html_report(record)
    assert 'data-regressed="1"' not in page and 'data-status="missing"' in page
    half = record_of(synthetic_run("base", PROBES, REASONED), hidden_run(hidden=range(4)))
    assert regressed_keys(shown_runs(half, "s")) == set()
    collapsed = ["<think></think>42"] * 4 + ["42"] * 4
    mixed = synthetic_run("candidate", PROBES, collapsed, hidden=range(4, 8))
    both = record_of(synthetic_run("base", PROBES, REASONED), mixed)
    assert regressed_keys(shown_runs(both, "s")) == {(f"p{i}", 0) for i in range(4)}


# sweeps --------------------------------------------------------------------------------------


def sweep_of(base: Run, *steps: Run) -> SweepRecord:
    records = [
        StepRecord(step=4 * (index + 1), checkpoint=f"/c/checkpoint-{4 * (index + 1)}",
                   metrics={"s": run.metrics}, gates=[], passed=True)
        for index, run in enumerate(steps)
    ]  # fmt: skip
    return SweepRecord(
        base="base",
        probe_sets=["s"],
        base_metrics={"s": base.metrics},
        steps=records,
        first_failing=None,
        last_passing=records[-1].step,
        passing_after_failure=[],
        fingerprints={},
    )


def test_the_sweep_table_lines_and_chart(tmp_path):
    reasoned = synthetic_run("base", PROBES, REASONED)
    record = sweep_of(hidden_run("base"), reasoned, hidden_run(), reasoned)
    columns = [metric for metric in METRICS if METRICS[metric].tabulated]
    table = {row[0]: dict(zip(columns, row[2:-1], strict=True)) for row in table_rows(record, "s")}
    for step in ("base", "8"):
        for name in columns:
            expected = UNKNOWN_RATE if METRICS[name].needs_statuses else "1.000"
            assert table[step][name] == expected
    assert table["4"]["valid_rate"] == "1.000"
    lines = unknown_lines(record)
    assert [line.split(":")[0] for line in lines] == ["base on s", "step 8 on s"]
    assert all(f"are {UNKNOWN_RATE}: 8 of 8 generations have hidden" in line for line in lines)
    root = ElementTree.fromstring(sweep_svg(record))
    polylines = {
        metric: [line.get("points", "").split() for line in root.iter(f"{SVG}polyline")
                 if line.get("data-metric") == metric]
        for metric in columns
    }  # fmt: skip
    for name in columns:
        # step 8 is left out of a status rate's line (two one-point stretches), never drawn
        expected = [1, 1] if METRICS[name].needs_statuses else [3]
        assert [len(points) for points in polylines[name]] == expected, name
    (key,) = root.findall(f".//{SVG}g[@data-unknown]")
    title = key.find(f"{SVG}title")
    assert title is not None and "step 8: VR, ER, TR, MR and Rpass@1" in (title.text or "")
    path = write_sweep(record, tmp_path)
    data = json.loads(path.read_text())
    assert data["base_metrics"]["s"]["rates"]["valid_rate"]["value"] is None
    assert data["steps"][1]["metrics"]["s"]["rates"]["valid_rate"]["unknown"]
    assert data["steps"][0]["metrics"]["s"]["rates"]["valid_rate"]["value"] == 1.0
    assert SweepRecord.model_validate_json(path.read_text()) == record


def test_a_sweep_without_hidden_reasoning_has_no_unknown_key():
    reasoned = synthetic_run("base", PROBES, REASONED)
    record = sweep_of(reasoned, reasoned, reasoned)
    assert unknown_lines(record) == []
    assert "data-unknown" not in sweep_svg(record) and UNKNOWN_RATE not in str(
        table_rows(record, "s")
    )


def test_the_training_log_leaves_unknown_rates_out():
    transformers = pytest.importorskip("rtc_assert.integrations.transformers")
    step = StepRecord(
        step=1, checkpoint="c", metrics={"s": hidden_run().metrics}, gates=[], passed=False
    )
    logs = transformers.log_names(step)
    assert logs == {"rtc/answer_accuracy": 1.0, "rtc/gates_passed": 0.0}


# assertions ----------------------------------------------------------------------------------


def test_assertions_on_status_rates_of_a_hidden_run_fail_loudly():
    run = hidden_run()
    base = synthetic_run("base", PROBES, REASONED)
    why = run.metrics.status_unknown()
    with pytest.raises(AssertionError, match="valid rate cannot be computed for the candidate"):
        assert_valid_rate(run, at_least=0.0)  # its counts' 0.0 would have passed
    with pytest.raises(AssertionError) as failure:
        assert_reasoning_conditioned_accuracy(run, at_least=0.0)
    assert why is not None and why in str(failure.value)
    with pytest.raises(AssertionError, match="cannot be computed for the candidate"):
        assert_no_collapse(run, base, max_drop=1.0)
    with pytest.raises(AssertionError, match="cannot be computed for the base"):
        assert_no_collapse(base, run, max_drop=1.0)
    assert_no_collapse(run, base, max_drop=0.0, metric="answer_accuracy")  # answers are known
    with pytest.raises(MetricsError, match="valid rate cannot be computed: 8 of 8"):
        assert run.metrics.valid_rate.value >= 0.0  # as a custom test may write it


def test_a_failure_explained_does_not_read_hidden_reasoning_as_a_collapse():
    run = hidden_run()
    gate = GateSpec(probe_set="s", metric="valid_rate", kind="min", threshold=0.5)
    result = evaluate_gate(gate, run, None, DecisionConfig())
    lines = explain_failure(result, run, None).splitlines()
    assert "cannot be computed for the candidate" in lines[0]
    assert not any("answer-only eval" in line for line in lines)
    assert "  p0: missing (hidden), correct: 42" in lines
    collapsed = synthetic_run("collapsed", PROBES, ["<think></think>42"] * 8)
    result = evaluate_gate(gate, collapsed, None, DecisionConfig())
    assert "an answer-only eval does not see this" in explain_failure(result, collapsed, None)
