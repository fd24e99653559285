"""Early stopping on the real demo zoo: the repository's own gate (thresholds.yaml) decides
each fine-tune against the base with and without early stopping, through real transformers."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc_assert.config import load_config
from rtc_assert.decide.spec import EarlyStoppingConfig
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.session import RtcSession

THRESHOLDS = Path(__file__).resolve().parent.parent / "thresholds.yaml"
pytestmark = pytest.mark.slow


def decide(candidate: str, early_stopping: bool, cache: GenerationCache):
    config = load_config(THRESHOLDS)
    decision = config.decision.model_copy(
        update={"early_stopping": EarlyStoppingConfig(enabled=early_stopping)}
    )
    session = RtcSession(
        config=config.model_copy(update={"candidate": candidate, "decision": decision}),
        cache=cache,
    )
    try:
        results = session.decide_all()
        used = sum(len(run.probe_set) for run in session.runs)
        available = sum(len(session.probe_set(name)) for name in config.probe_sets) * 2
        return results, used / available
    finally:
        session.close()


@pytest.mark.parametrize(
    ("candidate", "most_probes"), [("demo:collapsed", 0.25), ("demo:masked", 1.0)]
)
def test_early_stopping_gives_the_full_runs_verdicts_on_fewer_probes(
    candidate, most_probes, tmp_path
):
    # One cache: the full run regenerates nothing the early-stopped run already has.
    cache = GenerationCache(tmp_path)
    early, used = decide(candidate, early_stopping=True, cache=cache)
    full, all_probes = decide(candidate, early_stopping=False, cache=cache)
    assert all_probes == 1.0
    assert used <= most_probes
    assert [r.gate.id for r in early] == [r.gate.id for r in full]
    assert [r.passed for r in early] == [r.passed for r in full], [
        (e.gate.id, e.reason, f.reason) for e, f in zip(early, full, strict=True) if e != f
    ]
    if candidate == "demo:collapsed":
        assert all(r.probes_available == 256 for r in early)
        assert any("decided after 64 of 256 probes" in r.reason for r in early)
