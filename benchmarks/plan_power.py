"""Power of `rtc-assert plan`'s sizes, by seeded simulation with early stopping on.

    python benchmarks/plan_power.py [--trials 4000]

For each case: the normal approximation's size and its simulated power, the plan's size and
its power in a fresh simulation (a seed the plan did not use).
"""

from __future__ import annotations

import argparse

from rtc_assert.decide.plan import plan_drop_gate, simulated_power
from rtc_assert.metrics import METRICS

CASES = (
    ("valid_rate", 0.95, 0.05, 1),
    ("valid_rate", 0.9, 0.1, 1),
    ("answer_accuracy", 0.5, 0.1, 1),
    ("truncated_rate", 0.05, 0.02, 1),
    ("empty_rate", 0.02, 0.05, 1),
    ("valid_rate", 0.95, 0.05, 9),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000)
    args = parser.parse_args()
    print("| metric | base | max_drop | gates | approximation | its power | plan | its power |")
    print("|---|---|---|---|---|---|---|---|")
    for metric, base, drop, gates in CASES:
        lower = METRICS[metric].lower_is_better
        plan = plan_drop_gate(base, drop, lower_is_better=lower, gates=gates)
        powers = [
            simulated_power(
                base, drop, size, lower_is_better=lower, gates=gates, trials=args.trials, seed=99
            )
            for size in (plan.analytic, plan.probes)
        ]
        print(
            f"| {metric} | {base:g} | {drop:g} | {gates} | {plan.analytic} | {powers[0]:.3f} | "
            f"{plan.probes} | {powers[1]:.3f} |"
        )


if __name__ == "__main__":
    main()
