"""The build-level false-fail rate at the boundary, by simulation through the real gate code.

    python benchmarks/build_false_fail.py [--trials 2000] [--probes 128] [--chunk-size 32]

Base and candidate are drawn from one distribution (identical models), and every ``min`` and
``max`` threshold sits at the true rate, every ``max_drop`` at 0: each gate is at its
boundary, where a false failure is likeliest. A build is red when any gate fails. Prints the
share of red builds for 1, 6 and 9 gates over 1 and 2 probe sets, with and without early
stopping, under the default decision (Holm on) and, for comparison, with ``holm: false``.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Sequence

from rtc_assert.decide.early_stopping import decide_sequentially, shuffled
from rtc_assert.decide.gates import GateInputs, GateResult, decide_gates
from rtc_assert.decide.spec import DecisionConfig, EarlyStoppingConfig, GateKind, GateSpec
from rtc_assert.generation.requests import GenerationSettings
from rtc_assert.metrics import MetricName, compute_metrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.runs import Run, merge_runs
from rtc_assert.scoring import ScoredTrace
from rtc_assert.traces.classify import classify

TEXTS = {"valid": "<think>work</think>4", "empty": "<think></think>4", "truncated": "<think>wo"}
STATUS_SHARES = {"valid": 0.8, "empty": 0.1, "truncated": 0.1}
CORRECT_WHEN_ANSWERED = 7 / 9
TRUE_RATES: dict[MetricName, float] = {
    "valid_rate": 0.8,
    "empty_rate": 0.1,
    "truncated_rate": 0.1,
    "answer_accuracy": 0.7,
    "answer_rate": 0.9,
}
POOL: tuple[tuple[MetricName, GateKind], ...] = (
    ("valid_rate", "min"),
    ("valid_rate", "max_drop"),
    ("answer_accuracy", "min"),
    ("answer_accuracy", "max_drop"),
    ("truncated_rate", "max"),
    ("truncated_rate", "max_drop"),
    ("empty_rate", "max"),
    ("empty_rate", "max_drop"),
    ("answer_rate", "min"),
)
"""Gates in the order a build takes them: the first ``n`` of them on each probe set."""
CASES = ((1, 1), (6, 1), (6, 2), (9, 1), (9, 2))
"""(gates, probe sets) of the build."""


def boundary_run(
    rng: random.Random, probes: int, name: str, shares: dict[str, float] = STATUS_SHARES
) -> Run:
    """One model's run on ``probes`` probes, every rate at `TRUE_RATES` (statuses drawn
    with ``shares``: ``{"empty": 1.0}`` is a full collapse)."""
    statuses = rng.choices(list(shares), weights=list(shares.values()), k=probes)
    outcomes = tuple(
        ScoredTrace(
            probe_id=f"p{i:04d}",
            sample=0,
            trace=classify(TEXTS[status]),
            correct=status != "truncated" and rng.random() < CORRECT_WHEN_ANSWERED,
        )
        for i, status in enumerate(statuses)
    )
    probe_set = ProbeSet(
        name=name,
        version="1",
        probes=tuple(
            Probe(id=f"p{i:04d}", prompt="q", answer="4", scorer="numeric") for i in range(probes)
        ),
    )
    return Run(
        model="m",
        backend="simulation",
        probe_set=probe_set,
        settings=GenerationSettings(),
        generations=(),
        outcomes=outcomes,
        metrics=compute_metrics(outcomes),
    )


def boundary_gates(gates: int, sets: int) -> list[GateSpec]:
    """``gates`` gates from `POOL` spread over ``sets`` probe sets, each at its boundary."""
    per_set = [gates // sets + (index < gates % sets) for index in range(sets)]
    return [
        GateSpec(
            probe_set=f"set{index}",
            metric=metric,
            kind=kind,
            threshold=0.0 if kind == "max_drop" else TRUE_RATES[metric],
        )
        for index, count in enumerate(per_set)
        for metric, kind in POOL[:count]
    ]


def decide_build(
    specs: Sequence[GateSpec], runs: dict[str, tuple[Run, Run]], decision: DecisionConfig
) -> list[GateResult]:
    """The build's verdicts on full runs (candidate, base) per probe set, with early
    stopping on growing prefixes of the shuffled order where ``decision`` says so."""
    if not decision.sequential:
        items: list[GateInputs] = [
            (spec, runs[spec.probe_set][0], runs[spec.probe_set][1]) for spec in specs
        ]
        return decide_gates(items, decision)
    prefixes: dict[tuple[str, int], tuple[Run, Run]] = {}

    def runs_at(spec: GateSpec, count: int) -> tuple[Run, Run | None]:
        key = (spec.probe_set, count)
        if key not in prefixes:
            candidate, base = runs[spec.probe_set]
            order = shuffled(candidate.probe_set, decision.seed)
            prefix = order.model_copy(update={"probes": order.probes[:count]})
            prefixes[key] = (
                merge_runs([candidate], prefix, decision.confidence),
                merge_runs([base], prefix, decision.confidence),
            )
        return prefixes[key]

    sizes = {name: len(candidate.probe_set) for name, (candidate, _) in runs.items()}
    return decide_sequentially(specs, sizes, runs_at, decision)


def red_share(
    gates: int,
    sets: int,
    *,
    early_stopping: bool,
    trials: int,
    seed: int = 0,
    probes: int = 128,
    chunk_size: int = 32,
    holm: bool | None = None,
) -> float:
    """The share of ``trials`` builds of identical models, every gate at its boundary, that
    turn red."""
    rng = random.Random(f"{seed}:{gates}:{sets}:{early_stopping}")
    specs = boundary_gates(gates, sets)
    names = sorted({spec.probe_set for spec in specs})
    red = 0
    for trial in range(trials):
        decision = DecisionConfig(
            seed=trial,
            holm=holm,
            early_stopping=EarlyStoppingConfig(enabled=early_stopping, chunk_size=chunk_size),
        )
        runs = {
            name: (boundary_run(rng, probes, name), boundary_run(rng, probes, name))
            for name in names
        }
        red += not all(result.passed for result in decide_build(specs, runs, decision))
    return red / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=32)
    args = parser.parse_args()
    error = 2 * math.sqrt(0.05 * 0.95 / args.trials)
    print(
        f"{args.trials} builds per row, {args.probes} probes per set, looks of "
        f"{args.chunk_size}; confidence 0.95; two standard errors at 5%: {error:.3f}"
    )
    print("| gates | probe sets | early stopping | red builds, default (Holm) | holm: false |")
    print("|---|---|---|---|---|")
    for gates, sets in CASES:
        for early in (False, True):
            shares = [
                red_share(
                    gates,
                    sets,
                    early_stopping=early,
                    trials=args.trials,
                    probes=args.probes,
                    chunk_size=args.chunk_size,
                    holm=holm,
                )
                for holm in (None, False)
            ]
            print(
                f"| {gates} | {sets} | {'on' if early else 'off'} | {shares[0]:.3f} | "
                f"{shares[1]:.3f} |"
            )


if __name__ == "__main__":
    main()
