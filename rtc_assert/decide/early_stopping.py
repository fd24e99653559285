"""Early stopping: decide the gates on growing prefixes of a fixed, shuffled probe order.

Each look adds one chunk of probes to every probe set that still has some, and decides every
gate not yet settled at that look's confidence (`rtc_assert.decide.stats.look_confidences`: a
Haybittle-Peto-style split of alpha with a union bound, so however many looks are taken the
chance of a false verdict stays within ``1 - confidence``). Where Holm's correction is on
(the default under ``confident``), each look's alpha is shared among all the gates, not only
the open ones: the union bound over looks and Holm over gates together keep the chance that
noise fails any gate at any look within ``1 - confidence``. A gate is settled once its
interval shows a violation or compliance. The run stops when every gate is settled, or as
soon as one is settled as failed: the build is red whatever the rest would show, and the
unsettled gates are reported with what their probes show so far, marked as such.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

from rtc_assert.decide.gates import GateInputs, GateResult, decide_gates, guarded_evidence
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.decide.stats import look_confidences
from rtc_assert.probes.probe import ProbeSet
from rtc_assert.runs import Run

RunsAt = Callable[[GateSpec, int], tuple[Run, "Run | None"]]
"""Given a gate and a probe count: the candidate's (and base's) runs on that many probes."""


def shuffled(probe_set: ProbeSet, seed: int) -> ProbeSet:
    """The probe set in the fixed shuffled order early stopping generates it in."""
    order = list(probe_set.probes)
    random.Random(f"{seed}:{probe_set.name}").shuffle(order)
    return probe_set.model_copy(update={"probes": tuple(order)})


def look_sizes(total: int, chunk_size: int) -> list[int]:
    """Probes used at each look: one more chunk each time, the last look using all."""
    return [min(total, chunk_size * look) for look in range(1, math.ceil(total / chunk_size) + 1)]


def _settled(result: GateResult) -> bool:
    return result.evidence is not None


def decide_sequentially(
    specs: Sequence[GateSpec],
    sizes: Mapping[str, int],
    runs_at: RunsAt,
    decision: DecisionConfig,
) -> list[GateResult]:
    """Decide ``specs`` with early stopping; ``sizes`` gives each probe set's probe count."""
    chunk = decision.early_stopping.chunk_size
    schedules = {name: look_sizes(size, chunk) for name, size in sizes.items()}
    looks = max(len(schedules[spec.probe_set]) for spec in specs)
    levels = look_confidences(looks, decision.confidence)
    final: dict[str, GateResult] = {}
    latest: dict[str, GateResult] = {}
    used: dict[str, int] = {}
    stopped_by: str | None = None
    guarded = guarded_evidence(decision)
    for look, level in enumerate(levels, start=1):
        open_specs = [spec for spec in specs if spec.id not in final]
        # Only gates settled with the guarded evidence leave Holm's family: one shown
        # compliant under ``confident`` keeps its share, so it loosens no other gate's test.
        family = len(specs) - sum(result.evidence == guarded for result in final.values())
        items: list[GateInputs] = []
        for spec in open_specs:
            schedule = schedules[spec.probe_set]
            used[spec.id] = schedule[min(look, len(schedule)) - 1]
            items.append((spec, *runs_at(spec, used[spec.id])))
        at_level = decision.model_copy(update={"confidence": level})
        for spec, result in zip(
            open_specs,
            decide_gates(items, at_level, family=family, look=(look, looks)),
            strict=True,
        ):
            latest[spec.id] = result
            if _settled(result):
                final[spec.id] = _annotate(
                    result, used[spec.id], sizes[spec.probe_set], look, looks
                )
        failed = [spec.id for spec in open_specs if spec.id in final and not final[spec.id].passed]
        if failed:
            stopped_by = failed[0]
            break
        if len(final) == len(specs):
            break
    return [
        final.get(spec.id)
        or _annotate_open(latest[spec.id], used[spec.id], sizes[spec.probe_set], stopped_by)
        for spec in specs
    ]


def _annotate(result: GateResult, used: int, available: int, look: int, looks: int) -> GateResult:
    return result.model_copy(
        update={
            "probes_used": used,
            "probes_available": available,
            "reason": f"{result.reason}; decided after {used} of {available} probes "
            f"(early stopping, look {look} of {looks})",
        }
    )


def _annotate_open(
    result: GateResult, used: int, available: int, stopped_by: str | None
) -> GateResult:
    partial = stopped_by is not None and used < available
    if not partial:
        note = f"not settled by any look: decided on all {available} probes"
    else:
        note = (
            f"not settled when {stopped_by} failed and stopped the run: what {used} of "
            f"{available} probes show so far"
        )
    return result.model_copy(
        update={
            "probes_used": used,
            "probes_available": available,
            # A pass on the probes so far is no pass: it reads "not settled". A failure
            # (strict's missing compliance, an undefined metric) stays a failure.
            "settled": not (partial and result.passed),
            "reason": f"{result.reason}; {note}",
        }
    )
