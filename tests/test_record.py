"""The run record's version: written into every record, checked when one is read back."""

from __future__ import annotations

import json

import pytest

from rtc_assert.config import RtcConfig
from rtc_assert.errors import RecordError
from rtc_assert.metrics import METRICS, RunMetrics
from rtc_assert.record import (
    RECORD_VERSION,
    merge_records,
    read_record,
    session_record,
    write_record,
)
from rtc_assert.reports.html import html_report

MINIMAL = {
    "rtc_assert_version": "0.1.0",
    "created": "2026-12-01T00:00:00+00:00",
    "python": "3.11",
    "platform": "linux",
    "libraries": {},
    "config": {},
    "models": {},
    "runs": [],
    "gates": [],
    "timings": {},
}


def test_a_written_record_says_its_version(tmp_path):
    path = write_record(session_record({}, [], [], {}, {}), tmp_path)
    assert json.loads(path.read_text())["record_version"] == RECORD_VERSION
    assert read_record(path).record_version == RECORD_VERSION


def test_a_record_from_before_the_field_reads_as_version_1(tmp_path):
    path = tmp_path / "rtc-run.json"
    path.write_text(json.dumps(MINIMAL))
    assert read_record(path).record_version == 1


def test_version_1_metrics_with_a_field_per_rate_read_as_the_rates_table():
    rate = {"value": 0.5, "low": 0.2, "high": 0.8, "successes": 2.0, "trials": 4.0}
    flat = {
        "confidence": 0.95,
        "probes": 4,
        "generations": 4,
        **{name: rate for name in METRICS if name != "reasoning_conditioned_accuracy"},
        "reasoning_conditioned_accuracy": None,
        "mean_reasoning_chars": None,
        "mean_answer_chars": 3.0,
        "mean_reasoning_tokens": None,
        "mean_answer_tokens": None,
    }
    metrics = RunMetrics.model_validate(flat)
    assert metrics.valid_rate.value == 0.5 and metrics.reasoning_conditioned_accuracy is None
    assert set(metrics.rates) == set(METRICS)
    assert "valid_rate" not in metrics.model_dump() and "rates" in metrics.model_dump()


def test_a_record_of_a_newer_layout_is_refused(tmp_path):
    path = tmp_path / "rtc-run.json"
    path.write_text(json.dumps({**MINIMAL, "record_version": RECORD_VERSION + 1}))
    with pytest.raises(RecordError, match=r"written by a newer rtc-assert .* upgrade rtc-assert"):
        read_record(path)


FILE = {"file": "/logs/a.jsonl", "format": "lm-eval", "sha256": "ab" * 32}
CONFIG = RtcConfig.model_validate(
    {
        "probe_sets": {"r": {"source": "demo:reasoning"}},
        "gates": [{"metric": "valid_rate", "min": 0.5}],
    }
).model_dump(mode="json")


def test_a_version_2_record_naming_one_generations_file_is_still_read(tmp_path):
    path = tmp_path / "rtc-run.json"
    old = {"generations:base": {"generations": "/logs/a.jsonl"}, "m": {"spec": "m", "sha256": "0"}}
    path.write_text(json.dumps({**MINIMAL, "config": CONFIG, "record_version": 2, "models": old}))
    record = read_record(path)
    assert record.record_version == 2 and record.models == old
    assert "/logs/a.jsonl" in html_report(record)


def test_workers_records_name_every_file_any_of_them_read():
    """Two pytest-xdist workers, each of which read the base's file on one probe set."""
    other = {**FILE, "file": "/logs/b.eval", "format": "inspect"}
    first = session_record(CONFIG, [], [], {}, {"generations:base": {"generations": {"r": FILE}}})
    second = session_record(
        CONFIG,
        [],
        [],
        {},
        {"generations:base": {"generations": {"f": other}}, "m": {"spec": "m", "sha256": "0"}},
    )
    merged = merge_records([first, second])
    assert merged.models == {
        "generations:base": {"generations": {"r": FILE, "f": other}},
        "m": {"spec": "m", "sha256": "0"},
    }
