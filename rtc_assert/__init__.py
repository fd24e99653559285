"""rtc-assert: fail the build when fine-tuning destroys a reasoning model's traces.

The public surface: what users and the pytest fixtures hand out. Everything else is reached
through its stage's subpackage (see docs/architecture.md).
"""

from rtc_assert import demo as _demo  # noqa: F401 (it registers the demo zoo's demo:NAME specs)
from rtc_assert.config import RtcConfig, load_config
from rtc_assert.decide.gates import GateResult
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.decide.stats import wilson_interval
from rtc_assert.errors import (
    CallbackError,
    CheckpointSeriesError,
    ConfigError,
    DemoNameError,
    FinetuneError,
    GenerationError,
    GenerationsFileError,
    LibraryNameError,
    MetricsError,
    ProbeFileError,
    ProbeSourceError,
    RecordError,
    RtcAssertError,
    ScorerError,
    ServerGenerationError,
    TemplateDetectionError,
)
from rtc_assert.metrics import METRICS, Rate, RunMetrics, compute_metrics
from rtc_assert.probes.probe import Message, Probe, ProbeSet, load_probe_set
from rtc_assert.probes.scorers import get_scorer
from rtc_assert.record import SessionRecord, read_record
from rtc_assert.runs import Run
from rtc_assert.scoring import ScoredTrace, score, score_trace
from rtc_assert.session import RtcSession
from rtc_assert.traces.classify import (
    STANDARD_FORMATS,
    Markup,
    PromptState,
    Trace,
    TraceFormat,
    TraceStatus,
    classify,
    classify_many,
    prompt_state,
)
from rtc_assert.traces.detection import DetectedTemplate, detect_template

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "STANDARD_FORMATS",
    "CallbackError",
    "CheckpointSeriesError",
    "ConfigError",
    "DecisionConfig",
    "DemoNameError",
    "DetectedTemplate",
    "FinetuneError",
    "GateResult",
    "GateSpec",
    "GenerationError",
    "GenerationsFileError",
    "LibraryNameError",
    "Markup",
    "Message",
    "MetricsError",
    "Probe",
    "ProbeFileError",
    "ProbeSet",
    "ProbeSourceError",
    "PromptState",
    "Rate",
    "RecordError",
    "RtcAssertError",
    "RtcConfig",
    "RtcSession",
    "Run",
    "RunMetrics",
    "ScoredTrace",
    "ScorerError",
    "ServerGenerationError",
    "SessionRecord",
    "TemplateDetectionError",
    "Trace",
    "TraceFormat",
    "TraceStatus",
    "__version__",
    "classify",
    "classify_many",
    "compute_metrics",
    "detect_template",
    "get_scorer",
    "load_config",
    "load_probe_set",
    "prompt_state",
    "read_record",
    "score",
    "score_trace",
    "wilson_interval",
]
