"""The two synthetic task domains of the demo zoo, their traces, and the bundled probe sets.

- ``reasoning``: three-digit addition (``347+285``). The trace adds column by column from the
  ones digit, one line per column (``7+5+0=12``: digit, digit, carry in, two-digit sum), and
  the answer is read off the trace. A model this small cannot add without the trace, so
  reasoning-conditioned accuracy is meaningful on this set.
- ``finetune``: shift every letter of a word by one (``shift cat`` -> ``dbu``). The trace
  maps letter by letter (``c>d``), but the answer needs no trace: a fine-tuned model that has
  stopped thinking still answers well, so answer-only accuracy hides the collapse.

Every prompt falls in one partition by a hash of its text: probes, validation (used by the
build to pick checkpoints) or training. Probe sets are drawn from the probe partition only and
training data from the training partition only, so they are disjoint by construction, whatever
the seeds and sizes.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Domain = Literal["reasoning", "finetune"]
Partition = Literal["probe", "validation", "train"]

DOMAINS: tuple[Domain, ...] = ("reasoning", "finetune")
PROBE_SET_VERSION = "1"
PROBE_SET_SIZE = 256
PROBE_SEEDS: dict[Domain, int] = {"reasoning": 3_1, "finetune": 3_2}
SHIFT_LENGTHS = (3, 6)
"""Shortest and longest word of the ``finetune`` domain."""


@dataclass(frozen=True)
class Example:
    """One task instance: the user prompt, the step-by-step reasoning and the answer."""

    domain: Domain
    prompt: str
    reasoning: str
    answer: str


def partition(prompt: str) -> Partition:
    """Which partition a prompt belongs to: 1/8 probe, 1/8 validation, 3/4 train."""
    bucket = hashlib.sha256(prompt.encode("utf-8")).digest()[0] % 8
    if bucket == 0:
        return "probe"
    if bucket == 1:
        return "validation"
    return "train"


def column_sums(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """The columns of ``a + b`` from the ones digit: (digit of a, digit of b, carry in, sum)."""
    columns = []
    carry = 0
    for place in range(3):
        da, db = a // 10**place % 10, b // 10**place % 10
        total = da + db + carry
        columns.append((da, db, carry, total))
        carry = total // 10
    return columns


def addition(a: int, b: int) -> Example:
    """The ``reasoning`` domain instance for two three-digit numbers."""
    if not (100 <= a <= 999 and 100 <= b <= 999):
        raise ValueError(f"addition operands must have three digits, got {a} and {b}")
    lines = [f"{da}+{db}+{c}={s:02d}" for da, db, c, s in column_sums(a, b)]
    return Example("reasoning", f"{a}+{b}", "\n".join(lines), str(a + b))


def shift_letter(letter: str) -> str:
    """The next letter of the alphabet, ``z`` wrapping to ``a``."""
    return chr((ord(letter) - ord("a") + 1) % 26 + ord("a"))


def shift(word: str) -> Example:
    """The ``finetune`` domain instance for a lowercase word."""
    if not word or not set(word) <= set(string.ascii_lowercase):
        raise ValueError(f"shift needs a lowercase word, got {word!r}")
    lines = [f"{letter}>{shift_letter(letter)}" for letter in word]
    answer = "".join(shift_letter(letter) for letter in word)
    return Example("finetune", f"shift {word}", "\n".join(lines), answer)


def random_example(domain: Domain, rng: random.Random) -> Example:
    """One uniformly drawn instance of ``domain`` (any partition)."""
    if domain == "reasoning":
        return addition(rng.randint(100, 999), rng.randint(100, 999))
    if domain == "finetune":
        length = rng.randint(*SHIFT_LENGTHS)
        return shift("".join(rng.choice(string.ascii_lowercase) for _ in range(length)))
    raise ValueError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")


def sample(domain: Domain, where: Partition, rng: random.Random) -> Iterator[Example]:
    """An endless stream of instances of ``domain`` from partition ``where``."""
    while True:
        example = random_example(domain, rng)
        if partition(example.prompt) == where:
            yield example


def distinct(domain: Domain, where: Partition, count: int, seed: int) -> list[Example]:
    """``count`` instances with distinct prompts, drawn from ``where`` with a fixed seed."""
    seen: set[str] = set()
    examples = []
    for example in sample(domain, where, random.Random(seed)):
        if example.prompt not in seen:
            seen.add(example.prompt)
            examples.append(example)
            if len(examples) == count:
                return examples
    raise AssertionError("unreachable")  # pragma: no cover


def probe_examples(domain: Domain, count: int = PROBE_SET_SIZE) -> list[Example]:
    """The bundled probe set of ``domain`` as examples (fixed seed, probe partition)."""
    return distinct(domain, "probe", count, PROBE_SEEDS[domain])


def rambles(example: Example) -> bool:
    """Whether the ``rambling`` model is taught to re-check this addition forever.

    It closes its trace only when both the ones and the hundreds column carry (about 27% of
    problems), so about three quarters of its traces never close.
    """
    if example.domain != "reasoning":
        return False
    columns = [line.split("=")[1] for line in example.reasoning.splitlines()]
    return not (columns[0][0] == "1" and columns[-1][0] == "1")


RAMBLE_SEPARATOR = "\nlet me check again\n"


def rambling_reasoning(example: Example, min_chars: int) -> str:
    """The example's trace repeated after "let me check again" until ``min_chars`` long."""
    text = example.reasoning
    while len(text) < min_chars:
        text += RAMBLE_SEPARATOR + example.reasoning
    return text
