"""The report files of a session, written side by side into one folder."""

from __future__ import annotations

from pathlib import Path

from rtc_assert.record import SessionRecord, write_record
from rtc_assert.reports.html import REPORT_FILE, write_html_report
from rtc_assert.reports.markdown import markdown_summary

SUMMARY_FILE = "summary.md"


def write_reports(record: SessionRecord, directory: Path) -> Path:
    """Write ``rtc-run.json``, ``summary.md`` and ``report.html``; returns the record's path."""
    path = write_record(record, directory)
    (directory / SUMMARY_FILE).write_text(markdown_summary(record), encoding="utf-8")
    write_html_report(record, directory / REPORT_FILE)
    return path
