"""Race-order deduction puzzles with one provably correct option (scorer ``choice``).

A hidden finishing order of four (easy) or five (hard) runners is drawn; true clues are added
until exactly one order satisfies them all (checked by trying every order), then clues that
are not needed are dropped. The question asks who finished in some place, with four options;
because the order is unique, exactly one option is right. The right letter cycles through
A-D, so every letter is the answer equally often at each difficulty.
"""

from __future__ import annotations

import random
from itertools import permutations

from rtc_assert.probes.library.family import PEOPLE, Difficulty, Example, Family

LETTERS = "ABCD"
PLACES = ("first", "second", "third", "fourth", "fifth")
RUNNERS = {"easy": 4, "hard": 5}

Clue = tuple[str, str, str | int]
"""(kind, runner, other runner or 0-based place)."""
Order = tuple[str, ...]


def holds(clue: Clue, order: Order) -> bool:
    """Whether a clue is true of a finishing order."""
    kind, runner, other = clue
    place = order.index(runner)
    if kind == "at":
        return place == other
    if kind == "not_at":
        return place != other
    other_place = order.index(str(other))
    if kind == "before":
        return place < other_place
    if kind == "just_before":
        return place + 1 == other_place
    return abs(place - other_place) > 1  # "apart"


def describe(clue: Clue) -> str:
    """A clue as an English sentence."""
    kind, runner, other = clue
    if kind == "at":
        return f"{runner} finished {PLACES[int(other)]}."
    if kind == "not_at":
        return f"{runner} did not finish {PLACES[int(other)]}."
    if kind == "before":
        return f"{runner} finished ahead of {other}."
    if kind == "just_before":
        return f"{runner} finished immediately ahead of {other}."
    return f"{runner} and {other} did not finish next to each other."


def describe_all(clues: list[Clue]) -> list[str]:
    """The clues as numbered sentences."""
    return [f"{number}. {describe(clue)}" for number, clue in enumerate(clues, start=1)]


def solutions(runners: tuple[str, ...], clues: list[Clue]) -> list[Order]:
    """Every finishing order that satisfies all the clues."""
    return [order for order in permutations(runners) if all(holds(c, order) for c in clues)]


def _true_clue(rng: random.Random, order: Order, asked: int) -> Clue:
    """A random clue true of ``order`` that does not simply name who finished ``asked``."""
    while True:
        kind = rng.choice(("at", "not_at", "before", "just_before", "apart"))
        runner = rng.choice(order)
        if kind in ("at", "not_at"):
            clue: Clue = (kind, runner, rng.randrange(len(order)))
        else:
            clue = (kind, runner, rng.choice([name for name in order if name != runner]))
        giveaway = kind == "at" and (clue[2] == asked or order.index(runner) == asked)
        if holds(clue, order) and not giveaway:
            return clue


def puzzle(rng: random.Random, size: int) -> tuple[Order, list[Clue], int]:
    """A hidden order, a minimal list of clues that pins it down, and the asked place."""
    names = list(PEOPLE)
    rng.shuffle(names)
    order = tuple(names[:size])
    asked = rng.randrange(size)
    clues: list[Clue] = []
    while len(solutions(order, clues)) > 1:
        clue = _true_clue(rng, order, asked)
        if clue not in clues:
            clues.append(clue)
    for clue in list(clues):
        rest = [kept for kept in clues if kept != clue]
        if len(solutions(order, rest)) == 1:
            clues = rest
    return order, clues, asked


def make(rng: random.Random, difficulty: Difficulty, index: int) -> Example:
    """One puzzle whose right option is letter ``LETTERS[index // 2 % 4]``."""
    order, clues, asked = puzzle(rng, RUNNERS[difficulty])
    (solution,) = solutions(order, clues)
    winner = solution[asked]
    others = [name for name in order if name != winner]
    rng.shuffle(others)
    answer = LETTERS[index // 2 % len(LETTERS)]
    options = others[: len(LETTERS) - 1]
    options.insert(LETTERS.index(answer), winner)
    runners = sorted(order)
    text = "\n".join(
        [
            f"{', '.join(runners[:-1])} and {runners[-1]} ran a race; there were no ties.",
            *describe_all(clues),
            f"Who finished {PLACES[asked]}?",
            "",
            *(f"{letter}) {name}" for letter, name in zip(LETTERS, options, strict=True)),
            "",
            "Answer with the letter of the correct option.",
        ]
    )
    return Example(
        prompt=text,
        answer=answer,
        scorer="choice",
        kind=f"race_{len(order)}",
        metadata={"order": list(solution)},
    )


FAMILY = Family(
    name="deduction",
    version="1",
    seed=404,
    description="race-order deduction puzzles, one provably correct option of four",
    make=make,
)
