"""The pytest plugin (entry point ``pytest11``): hooks only, delegating to the library."""

from __future__ import annotations

import rtc_assert


def pytest_report_header() -> str:
    """Name the rtc-assert version in pytest's header, so CI logs say what gated the run."""
    return f"rtc-assert {rtc_assert.__version__}"
