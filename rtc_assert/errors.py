"""The exceptions rtc-assert raises; each message says what went wrong and what to do."""

from __future__ import annotations

import re
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


# Secrets never reach a message, a record or a report. -----------------------------------

_SECRETS = (
    (re.compile(r'(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@"]+:[^/\s@"]+@'), r"\1***@"),
    (
        re.compile(
            r"""(?i)\b(authorization|x-api-key|api[-_]?key)("?\s*[:=]\s*"?)"""
            r"""(bearer\s+)?[^\s",']+"""
        ),
        r"\1\2\3***",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer ***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
)


def redact(text: str) -> str:
    """``text`` with API keys and ``user:pass@`` URL credentials replaced by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text
