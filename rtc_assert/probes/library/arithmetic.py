"""Multi-step arithmetic word problems with whole-number answers (scorer ``numeric``).

Easy problems take two operations on small numbers; hard ones take three or four, with
multiplication and exact division on larger numbers. Every intermediate value is a whole
number, so the reference answer is exact.
"""

from __future__ import annotations

import random

from rtc_assert.probes.library.family import PEOPLE, Difficulty, Example, Family

SUFFIX = "\n\nGive the final answer as a single number."
ITEMS = ("apples", "marbles", "stickers", "pencils", "cards", "shells", "coins", "stamps")


def _easy(rng: random.Random) -> tuple[str, int, str]:
    name, item = rng.choice(PEOPLE), rng.choice(ITEMS)
    template = rng.randrange(4)
    if template == 0:
        a, b = rng.randrange(10, 60), rng.randrange(5, 40)
        c = rng.randrange(1, a + b)
        text = (
            f"{name} has {a} {item}, buys {b} more and then gives {c} away. "
            f"How many {item} does {name} have now?"
        )
        return text, a + b - c, "buy_give"
    if template == 1:
        a, b = rng.randrange(3, 13), rng.randrange(2, 10)
        c = rng.randrange(1, a * b)
        text = (
            f"A box holds {a} {item}. {name} fills {b} boxes and then takes {c} {item} out. "
            f"How many {item} are left in the boxes?"
        )
        return text, a * b - c, "boxes"
    if template == 2:
        a, b, c = rng.randrange(5, 30), rng.randrange(2, 8), rng.randrange(1, 30)
        text = (
            f"{name} reads {a} pages a day for {b} days and then {c} pages on the next day. "
            f"How many pages has {name} read in all?"
        )
        return text, a * b + c, "pages"
    b, share, c = rng.randrange(2, 9), rng.randrange(2, 12), rng.randrange(1, 10)
    text = (
        f"{b * share} {item} are shared equally among {b} friends, and then each friend "
        f"gets {c} more. How many {item} does each friend have?"
    )
    return text, share + c, "share"


def _hard(rng: random.Random) -> tuple[str, int, str]:
    name = rng.choice(PEOPLE)
    template = rng.randrange(4)
    if template == 0:
        rows, trees, per_tree = rng.randrange(4, 16), rng.randrange(5, 25), rng.randrange(6, 30)
        bag = rng.randrange(6, 25)
        sold = rng.randrange(10, rows * trees * per_tree // 2)
        text = (
            f"An orchard has {rows} rows of {trees} trees, and each tree gives {per_tree} "
            f"apples. The farmer sells {sold} apples and packs the rest into bags of {bag}. "
            "How many bags can be filled completely?"
        )
        return text, (rows * trees * per_tree - sold) // bag, "orchard"
    if template == 1:
        wage, hours, weeks = rng.randrange(12, 40), rng.randrange(10, 40), rng.randrange(3, 12)
        rent = rng.randrange(50, wage * hours)
        text = (
            f"{name} earns ${wage} an hour and works {hours} hours a week for {weeks} weeks, "
            f"paying ${rent} in rent each week. How many dollars does {name} have left after "
            "paying the rent?"
        )
        return text, wage * hours * weeks - rent * weeks, "wages"
    if template == 2:
        fill, drain = rng.randrange(6, 30), rng.randrange(1, 6)
        minutes = rng.randrange(8, 60)
        head_start = rng.randrange(1, 6)
        tank = fill * head_start + (fill - drain) * minutes
        text = (
            f"A tank holds {tank} liters. A pump fills it at {fill} liters a minute while a "
            f"leak drains {drain} liters a minute, but the leak starts only after the first "
            f"{head_start} minutes. Starting empty, after how many minutes is the tank full?"
        )
        return text, minutes + head_start, "tank"
    price = rng.randrange(4, 40) * 20
    percent = rng.choice((5, 10, 15, 20, 25, 30, 40, 50))
    fee, count = rng.randrange(2, 20), rng.randrange(2, 9)
    text = (
        f"A jacket costs ${price}. It is discounted by {percent}%, and a ${fee} fee is added "
        f"to the discounted price. {name} buys {count} jackets. How many dollars does "
        f"{name} pay in all?"
    )
    return text, (price - price * percent // 100 + fee) * count, "discount"


def make(rng: random.Random, difficulty: Difficulty, index: int) -> Example:
    """One word problem of the given difficulty."""
    del index
    text, answer, kind = _easy(rng) if difficulty == "easy" else _hard(rng)
    return Example(prompt=text + SUFFIX, answer=str(answer), scorer="numeric", kind=kind)


FAMILY = Family(
    name="arithmetic",
    version="1",
    seed=101,
    description="multi-step arithmetic word problems, whole-number answers",
    make=make,
)
