"""Stage 3, traces: a generation's text becomes one of four statuses.

- `classify`: the statuses (valid, empty, truncated, missing) and tag-pair trace formats;
  `classify_many` for many completions at once.
- `markups`: markups that are not a tag pair (harmony channels, a final-answer marker).
- `detection`: which markup and thinking switch a chat template uses.

Imports nothing from generation or later stages.
"""

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

__all__ = [
    "STANDARD_FORMATS",
    "Markup",
    "PromptState",
    "Trace",
    "TraceFormat",
    "TraceStatus",
    "classify",
    "classify_many",
    "prompt_state",
]
