"""Hidden reasoning in reports, records and assertions: the rates that count trace statuses
are shown as unknown, never as the numbers their counts would give; the others are shown."""

from __future__ import annotations

import json
import re

import pytest
from synthetic_runs import synthetic_run

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
from rtc_assert.runs import Run

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
