"""The exceptions rtc-assert raises; each message says what went wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class RtcAssertError(Exception):
    """Base class of every error rtc-assert raises on purpose."""


class ProbeFileError(RtcAssertError):
    """A probe file cannot be loaded; the message names the file and line."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


class ScorerError(RtcAssertError):
    """A scorer name or a reference answer cannot be used."""


class MetricsError(RtcAssertError):
    """Metrics cannot be computed from the given outcomes."""


class RecordError(RtcAssertError):
    """A run record (rtc-run.json) cannot be read; the message names the file and field."""
