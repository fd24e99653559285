"""rtc-assert: fail the build when fine-tuning destroys a reasoning model's traces."""

from rtc_assert.decide.stats import wilson_interval
from rtc_assert.errors import MetricsError, ProbeFileError, RtcAssertError, ScorerError
from rtc_assert.metrics import Rate, RunMetrics, compute_metrics
from rtc_assert.probes.probe import Message, Probe, ProbeSet, load_probe_set
from rtc_assert.probes.scorers import get_scorer
from rtc_assert.scoring import ScoredTrace, score, score_trace
from rtc_assert.traces.classify import (
    STANDARD_FORMATS,
    Markup,
    PromptState,
    Trace,
    TraceFormat,
    TraceStatus,
    classify,
    prompt_state,
)
from rtc_assert.traces.detection import DetectedTemplate, detect_template

__version__ = "0.1.0"

__all__ = [
    "STANDARD_FORMATS",
    "DetectedTemplate",
    "Markup",
    "Message",
    "MetricsError",
    "Probe",
    "ProbeFileError",
    "ProbeSet",
    "PromptState",
    "Rate",
    "RtcAssertError",
    "RunMetrics",
    "ScoredTrace",
    "ScorerError",
    "Trace",
    "TraceFormat",
    "TraceStatus",
    "__version__",
    "classify",
    "compute_metrics",
    "detect_template",
    "get_scorer",
    "load_probe_set",
    "prompt_state",
    "score",
    "score_trace",
    "wilson_interval",
]
