"""Every exception rtc-assert raises on purpose; each message says what went wrong, where,
and what to do.

    RtcAssertError
    ├── ConfigError              thresholds.yaml (file, line, field)
    ├── ProbeFileError           a probe file (file, line)
    ├── ProbeSourceError         a probe set source or data set
    ├── LibraryNameError         a bundled probe set name (also a LookupError)
    ├── DemoNameError            a demo model or probe set name (also a LookupError)
    ├── ScorerError              a scorer name or reference answer
    ├── GenerationError          a model cannot load or generate
    │   └── ServerGenerationError    a server failed (keeps the completed generations)
    ├── GenerationsFileError     a file of generations another tool wrote (file, line, field)
    ├── CheckpointSeriesError    a checkpoint series for a sweep
    ├── TemplateDetectionError   a chat template cannot do what was asked
    ├── MetricsError             metrics from an empty or inconsistent run
    ├── RecordError              a run record (rtc-run.json)
    ├── FinetuneError            a fine-tuning record for loss masking
    └── CallbackError            a training-loop gate that cannot gate this training run
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtc_assert.generation.requests import Generation


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


class ConfigError(RtcAssertError):
    """thresholds.yaml cannot be used; the message names file, line and field."""


class ProbeSourceError(RtcAssertError):
    """A probe set source cannot be resolved or its data set cannot become probes."""


class LibraryNameError(RtcAssertError, LookupError):
    """A probe library name or difficulty that does not exist."""


class DemoNameError(RtcAssertError, LookupError):
    """A demo model or probe set name that the zoo does not have."""


class GenerationError(RtcAssertError):
    """A model cannot be loaded or cannot generate; the message says what to do."""


class ServerGenerationError(GenerationError):
    """The server failed; ``completed`` holds the generations that finished before it did."""

    def __init__(self, message: str, completed: list[Generation]) -> None:
        super().__init__(f"{message} ({len(completed)} generations completed before the failure)")
        self.completed = completed


class GenerationsFileError(RtcAssertError):
    """A generations file cannot be used; the message names the file, the line and the field."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(f"{where}: {reason}")


class CheckpointSeriesError(RtcAssertError):
    """A checkpoint series cannot be used; the message names the folders and what to do."""


class TemplateDetectionError(RtcAssertError):
    """The chat template cannot do what was asked (e.g. switch thinking off)."""


class FinetuneError(RtcAssertError):
    """A record cannot be turned into a training example with the requested strategy."""


class CallbackError(RtcAssertError):
    """The callback cannot gate this training run; the message names the option to change."""


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


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with API keys, ``user:pass@`` URL credentials and each of ``secrets`` (the
    values of a backend's API key, say) replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text
