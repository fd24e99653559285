"""The run record's version: written into every record, checked when one is read back."""

from __future__ import annotations

import json

import pytest

from rtc_assert.errors import RecordError
from rtc_assert.record import RECORD_VERSION, SessionRecord, read_record, write_record

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
    path = write_record(SessionRecord.model_validate(MINIMAL), tmp_path)
    assert json.loads(path.read_text())["record_version"] == RECORD_VERSION
    assert read_record(path).record_version == RECORD_VERSION


def test_a_record_from_before_the_field_reads_as_version_1(tmp_path):
    path = tmp_path / "rtc-run.json"
    path.write_text(json.dumps(MINIMAL))
    assert read_record(path).record_version == 1


def test_a_record_of_a_newer_layout_is_refused(tmp_path):
    path = tmp_path / "rtc-run.json"
    path.write_text(json.dumps({**MINIMAL, "record_version": RECORD_VERSION + 1}))
    with pytest.raises(RecordError, match=r"written by a newer rtc-assert .* upgrade rtc-assert"):
        read_record(path)
