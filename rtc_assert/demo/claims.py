"""What each zoo model must show on the bundled probe sets (issue 3), checked and tabled.

``figures`` maps model name -> probe set name -> measured figures (the keys of
`rtc_assert.demo.generate.Measurement`: ``vr``, ``er``, ``tr``, ``mr``, ``pass_at_1``,
``rpass_at_1``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Figures = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Claim:
    """One must-show statement about the zoo and whether the measured figures bear it out."""

    model: str
    text: str
    holds: bool
    measured: str


def _rule(text: str, test: Callable[[Figures], bool], shown: Callable[[Figures], str]):
    return text, test, shown


def _f(figures: Figures, model: str, probe_set: str, key: str) -> float:
    value = figures[model][probe_set][key]
    return float("nan") if value is None else float(value)


def _both(figures: Figures, model: str, key: str) -> str:
    return ", ".join(
        f"{key} {s} {_f(figures, model, s, key):.3f}" for s in ("reasoning", "finetune")
    )


RULES: dict[str, list[tuple[str, Callable[[Figures], bool], Callable[[Figures], str]]]] = {
    "base": [
        _rule(
            "VR >= 0.95 on both probe sets",
            lambda f: min(_f(f, "base", s, "vr") for s in ("reasoning", "finetune")) >= 0.95,
            lambda f: _both(f, "base", "vr"),
        ),
        _rule(
            "Rpass@1 >= 0.90 on reasoning",
            lambda f: _f(f, "base", "reasoning", "rpass_at_1") >= 0.90,
            lambda f: f"Rpass@1 reasoning {_f(f, 'base', 'reasoning', 'rpass_at_1'):.3f}",
        ),
    ],
    "collapsed": [
        _rule(
            "VR <= 0.10 on both probe sets",
            lambda f: max(_f(f, "collapsed", s, "vr") for s in ("reasoning", "finetune")) <= 0.10,
            lambda f: _both(f, "collapsed", "vr"),
        ),
        _rule(
            "pass@1 on finetune at most 0.05 below base's",
            lambda f: (
                _f(f, "collapsed", "finetune", "pass_at_1")
                >= _f(f, "base", "finetune", "pass_at_1") - 0.05
            ),
            lambda f: (
                f"pass@1 finetune {_f(f, 'collapsed', 'finetune', 'pass_at_1'):.3f} "
                f"vs base {_f(f, 'base', 'finetune', 'pass_at_1'):.3f}"
            ),
        ),
    ],
    "masked": [
        _rule(
            "VR >= 0.85 on both probe sets",
            lambda f: min(_f(f, "masked", s, "vr") for s in ("reasoning", "finetune")) >= 0.85,
            lambda f: _both(f, "masked", "vr"),
        ),
        _rule(
            "pass@1 on finetune at most 0.05 below collapsed's",
            lambda f: (
                _f(f, "masked", "finetune", "pass_at_1")
                >= _f(f, "collapsed", "finetune", "pass_at_1") - 0.05
            ),
            lambda f: (
                f"pass@1 finetune {_f(f, 'masked', 'finetune', 'pass_at_1'):.3f} "
                f"vs collapsed {_f(f, 'collapsed', 'finetune', 'pass_at_1'):.3f}"
            ),
        ),
    ],
    "partial": [
        _rule(
            "0.40 <= VR <= 0.80 on reasoning",
            lambda f: 0.40 <= _f(f, "partial", "reasoning", "vr") <= 0.80,
            lambda f: f"VR reasoning {_f(f, 'partial', 'reasoning', 'vr'):.3f}",
        ),
    ],
    "rambling": [
        _rule(
            "TR >= 0.50 on reasoning",
            lambda f: _f(f, "rambling", "reasoning", "tr") >= 0.50,
            lambda f: f"TR reasoning {_f(f, 'rambling', 'reasoning', 'tr'):.3f}",
        ),
    ],
}


def check(figures: Figures) -> list[Claim]:
    """Every must-show claim, evaluated on ``figures``."""
    return [
        Claim(model, text, bool(test(figures)), shown(figures))
        for model, rules in RULES.items()
        for text, test, shown in rules
    ]


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(record: dict[str, Any]) -> str:
    """The measured table, the claims and the build facts of a ``measured.json`` record."""
    lines = [
        "# Demo zoo: measured figures",
        "",
        "Written by `python -m rtc_assert.demo.build`; greedy decoding with transformers, "
        f"one sample per probe, `max_new_tokens={record['max_new_tokens']}`, "
        f"{record['scale']['probes_per_set']} probes per set.",
        "",
        "| model | probe set | VR | ER | TR | MR | pass@1 | Rpass@1 | longest stop (tokens) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model, sets in record["figures"].items():
        for probe_set, m in sets.items():
            cells = [m[k] for k in ("vr", "er", "tr", "mr", "pass_at_1", "rpass_at_1")]
            lines.append(
                f"| {model} | {probe_set} | "
                + " | ".join(_cell(c) for c in cells)
                + f" | {m['max_completion_tokens']} |"
            )
    lines += [
        "",
        "## Must show",
        "",
        "| model | claim | holds | measured |",
        "| --- | --- | --- | --- |",
    ]
    for claim in record["claims"]:
        mark = "yes" if claim["holds"] else "**NO**"
        lines.append(f"| {claim['model']} | {claim['text']} | {mark} | {claim['measured']} |")
    sizes = record["sizes_bytes"]
    lines += [
        "",
        "## Build",
        "",
        f"- seed {record['seed']}, torch {record['torch']}, transformers "
        f"{record['transformers']}, {record['threads']} threads",
        f"- partial: the collapsed run at step {record['partial_step']} "
        f"(validation VR {record['partial_validation_vr']:.2f})",
        "- seconds: " + ", ".join(f"{k} {v}" for k, v in record["seconds"].items()),
        "- checkpoint bytes: "
        + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
        + f"; total {sum(sizes.values()):,}",
        "",
    ]
    return "\n".join(lines)
