"""How many probes early stopping needs on the demo zoo, and whether its verdicts agree.

    python benchmarks/early_stopping.py [--chunk-size 64]

Each demo fine-tune is gated against demo:base with the repository's thresholds.yaml, once
with early stopping and once without (one shared generation cache, so the full run only adds
what the early run did not generate). Prints, per candidate, the share of probes generated,
whether the build's verdict matches the full run's, and any gate whose verdict differs (only
a gate left unsettled when another gate failed and stopped the run can differ: it had fewer
probes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from rtc_assert.config import RtcConfig, load_config
from rtc_assert.decide.gates import GateResult
from rtc_assert.decide.spec import EarlyStoppingConfig
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.session import RtcSession

THRESHOLDS = Path(__file__).resolve().parent.parent / "thresholds.yaml"
CANDIDATES = ("demo:collapsed", "demo:partial", "demo:rambling", "demo:masked")


def gate(config: RtcConfig, cache: GenerationCache) -> tuple[list[GateResult], float]:
    """The gate's verdicts and the share of the probe sets' probes it generated."""
    session = RtcSession(config=config, cache=cache)
    try:
        results = session.decide_all()
        used = sum(len(run.probe_set) for run in session.runs)
        available = sum(len(session.probe_set(name)) for name in config.probe_sets)
        return results, used / (available * len(session.fingerprints))
    finally:
        session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base_config = load_config(THRESHOLDS)
    print(
        f"{'candidate':16} {'probes used':>12} {'failed':>7}  build as full run; gates that differ"
    )
    with tempfile.TemporaryDirectory() as folder:
        cache = GenerationCache(Path(folder))
        for candidate in CANDIDATES:
            verdicts = []
            for enabled in (True, False):
                decision = base_config.decision.model_copy(
                    update={
                        "early_stopping": EarlyStoppingConfig(
                            enabled=enabled, chunk_size=args.chunk_size
                        )
                    }
                )
                config = base_config.model_copy(
                    update={"candidate": candidate, "decision": decision}
                )
                verdicts.append(gate(config, cache))
            (early, share), (full, _) = verdicts
            same_build = all(r.passed for r in early) == all(r.passed for r in full)
            differ = [
                f"{e.gate.id} ({'pass' if e.passed else 'fail'} on {e.probes_used} probes, "
                f"{'pass' if f.passed else 'fail'} on all)"
                for e, f in zip(early, full, strict=True)
                if e.passed != f.passed
            ]
            failed = f"{sum(not r.passed for r in full)}/{len(full)}"
            print(
                f"{candidate:16} {share:12.3f} {failed:>7}  {'yes' if same_build else 'NO'}; "
                f"{', '.join(differ) or 'none'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
