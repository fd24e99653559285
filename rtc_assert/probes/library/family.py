"""What a probe family is, and how one is generated into a fixed probe list.

A family makes one example at a time from a seeded ``random.Random`` and a difficulty.
`generate` draws the set: easy and hard alternate (so the first N probes of a set mix both),
prompts never repeat, and ids are stable (``NAME-000`` ...). Only ``randrange``, ``choice``
and ``shuffle`` are used, whose results Python keeps the same across versions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Difficulty = Literal["easy", "hard"]
DIFFICULTIES: tuple[Difficulty, ...] = ("easy", "hard")
SET_SIZE = 256
MAX_DRAWS = 100
"""Draws per probe before a family is declared unable to make a new prompt."""
PEOPLE: tuple[str, ...] = (
    "Ana", "Ben", "Chloe", "Dmitri", "Esra", "Farid", "Grace", "Hiro",
    "Ines", "Jonas", "Kemi", "Luca", "Mei", "Nadia", "Omar", "Priya",
)  # fmt: skip
"""First names for word problems and puzzles."""
CONSONANTS = "bcdfghklmnprstvz"
VOWELS = "aeiou"


@dataclass(frozen=True)
class Example:
    """One generated probe before it gets an id: prompt, exact answer, scorer."""

    prompt: str
    answer: str
    scorer: str
    kind: str
    """The template that made it (shown by ``rtc-assert probes show``)."""
    metadata: dict[str, Any] = field(default_factory=dict)


Maker = Callable[[random.Random, Difficulty, int], Example]
"""``make(rng, difficulty, index) -> Example``; ``index`` lets a family balance its answers."""


@dataclass(frozen=True)
class Family:
    """A generated probe set: its name, version, seed and the function that makes examples."""

    name: str
    version: str
    """Bump it whenever the generator's output changes."""
    seed: int
    description: str
    make: Maker


def made_up_word(rng: random.Random, syllables: int) -> str:
    """A lower-case word of consonant-vowel syllables that no model has memorised."""
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))


def generate(family: Family, size: int = SET_SIZE) -> list[dict[str, Any]]:
    """The family's probe records, in order, as they are frozen in its JSONL file."""
    rng = random.Random(family.seed)
    seen: set[str] = set()
    records = []
    for index in range(size):
        difficulty = DIFFICULTIES[index % len(DIFFICULTIES)]
        for _ in range(MAX_DRAWS):
            example = family.make(rng, difficulty, index)
            if example.prompt not in seen:
                break
        else:
            raise RuntimeError(
                f"family {family.name!r} made only repeated prompts for probe {index}"
            )
        seen.add(example.prompt)
        records.append(
            {
                "id": f"{family.name}-{index:03d}",
                "prompt": example.prompt,
                "answer": example.answer,
                "scorer": example.scorer,
                "metadata": {"difficulty": difficulty, "kind": example.kind, **example.metadata},
            }
        )
    return records
