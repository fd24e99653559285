"""Sizing a ``max_drop`` gate: the probes that catch a true drop of twice its margin with the
promised power, under the default decision, checked by seeded simulation.

The normal approximation (`probes_for_drop`) is only a start: early stopping's final look
tests at ``1 - 0.9 alpha``, Holm shares alpha among the build's gates, and Newcombe's interval
is not the normal one. `plan_drop_gate` therefore starts from the approximation at the
final look's level and grows the size until the simulated power is at least the promise
(by one Monte Carlo standard error). Each simulated run draws the paired table of the two
models look by look (outcomes independent between the models, the conservative case), and
decides it with the gate's own code (`paired_drop`, `drop_evidence`) at each look's level
of `look_confidences`, with Holm's first-step level for ``gates`` gates: the run counts as
caught when a look shows the violation, and stops when a look settles the gate either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtc_assert.decide.early_stopping import look_sizes
from rtc_assert.decide.gates import drop_evidence, paired_drop
from rtc_assert.decide.stats import drop_rates, look_confidences, probes_for_drop

GROWTH = 1.02
"""Each step of the search grows the size by this factor (at least one probe)."""


@dataclass(frozen=True)
class DropPlan:
    """A planned size, the approximation it started from, and its simulated power."""

    probes: int
    analytic: int
    """The normal approximation at the configured confidence."""
    power: float
    """The simulated power at ``probes``."""
    trials: int


def simulated_power(
    base_rate: float,
    max_drop: float,
    probes: int,
    *,
    lower_is_better: bool = False,
    confidence: float = 0.95,
    gates: int = 1,
    chunk_size: int = 64,
    trials: int = 2000,
    seed: int = 0,
) -> float:
    """The share of ``trials`` seeded runs of ``probes`` probes, with a true drop of twice
    ``max_drop``, in which the ``confident`` gate fails (early stopping on, looks of
    ``chunk_size``, Holm's first-step level for ``gates`` gates)."""
    first, second = drop_rates(base_rate, max_drop, lower_is_better=lower_is_better)
    cells = [first * second, first * (1 - second), (1 - first) * second]
    cells.append(1.0 - sum(cells))
    sizes = look_sizes(probes, chunk_size)
    levels = [1 - (1 - level) / gates for level in look_confidences(len(sizes), confidence)]
    chunks = np.diff([0, *sizes])
    rng = np.random.default_rng([seed, probes])
    draws = np.stack([rng.multinomial(chunk, cells, size=trials) for chunk in chunks], axis=1)
    tables = np.cumsum(draws, axis=1).tolist()
    caught = 0
    for trial in tables:
        for (both, only_first, only_second, neither), level in zip(trial, levels, strict=True):
            drop, _ = paired_drop(both, only_first, only_second, neither, level)
            evidence = drop_evidence(drop, max_drop)
            if evidence is not None:
                caught += evidence == "violation"
                break
    return caught / trials


def plan_drop_gate(
    base_rate: float,
    max_drop: float,
    *,
    lower_is_better: bool = False,
    confidence: float = 0.95,
    power: float = 0.8,
    gates: int = 1,
    chunk_size: int = 64,
    trials: int = 2000,
    seed: int = 0,
) -> DropPlan:
    """The smallest size on the search's path whose simulated power, less one Monte Carlo
    standard error, is at least ``power`` (see the module's docstring)."""
    if gates < 1 or chunk_size < 1 or trials < 1:
        raise ValueError("gates, chunk_size and trials must be at least 1")
    analytic = probes_for_drop(
        base_rate, max_drop, lower_is_better=lower_is_better, confidence=confidence, power=power
    )
    final_level = 1 - (1 - look_confidences(2, confidence)[-1]) / gates
    size = probes_for_drop(
        base_rate, max_drop, lower_is_better=lower_is_better, confidence=final_level, power=power
    )
    needed = power + math.sqrt(power * (1 - power) / trials)
    while True:
        simulated = simulated_power(
            base_rate,
            max_drop,
            size,
            lower_is_better=lower_is_better,
            confidence=confidence,
            gates=gates,
            chunk_size=chunk_size,
            trials=trials,
            seed=seed,
        )
        if simulated >= needed:
            return DropPlan(probes=size, analytic=analytic, power=simulated, trials=trials)
        size = max(size + 1, math.ceil(size * GROWTH))
