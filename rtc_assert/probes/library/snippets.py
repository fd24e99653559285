""" "What does this Python program print?" (scorer ``exact``).

Short programs are built from templates with random values; the reference answer is what the
program printed when the set was generated (run with ``exec``, standard output captured), so
it is right by construction. Programs avoid anything whose output varies between Python
versions or runs (sets of strings, hashes, floats' last digits, time). Easy programs use one
construct; hard ones loops with conditions, recursion, aliasing or dictionaries.
"""

from __future__ import annotations

import contextlib
import io
import random

from rtc_assert.probes.library.family import Difficulty, Example, Family, made_up_word

PROMPT = (
    "What does this Python program print?\n\n```python\n{code}\n```\n\n"
    "Answer with the exact output only."
)


def run(code: str) -> str:
    """What ``code`` prints, without the final newline."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})
    return printed.getvalue().rstrip("\n")


def _numbers(rng: random.Random, count: int, low: int, high: int) -> list[int]:
    return [rng.randrange(low, high) for _ in range(count)]


def _easy(rng: random.Random) -> tuple[str, str]:
    template = rng.randrange(5)
    if template == 0:
        a, b = rng.randrange(20, 200), rng.randrange(3, 13)
        return f"x = {a}\ny = {b}\nprint(x // y, x % y)", "divmod"
    if template == 1:
        items = _numbers(rng, rng.randrange(5, 9), 1, 50)
        start = rng.randrange(0, 3)
        stop = rng.randrange(start + 2, len(items) + 1)
        return f"items = {items}\nprint(items[{start}:{stop}])", "slice"
    if template == 2:
        word = made_up_word(rng, rng.randrange(3, 6))
        step = rng.randrange(2, 4)
        return f's = "{word}"\nprint(s[::{step}], len(s))', "string_step"
    if template == 3:
        count, factor = rng.randrange(3, 9), rng.randrange(2, 7)
        code = f"total = 0\nfor i in range({count}):\n    total += i * {factor}\nprint(total)"
        return code, "loop_sum"
    items = _numbers(rng, rng.randrange(4, 8), -20, 40)
    return f"values = {items}\nprint(sorted(values)[-2], min(values))", "sorted"


def _hard(rng: random.Random) -> tuple[str, str]:
    template = rng.randrange(5)
    if template == 0:
        start = rng.randrange(3, 40)
        code = (
            f"n = {start}\nsteps = 0\nwhile n != 1:\n"
            "    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    steps += 1\nprint(steps)"
        )
        return code, "collatz"
    if template == 1:
        n, a, b = rng.randrange(4, 12), rng.randrange(0, 4), rng.randrange(1, 4)
        code = (
            f"def f(n, a={a}, b={b}):\n    if n == 0:\n        return a\n"
            "    return f(n - 1, b, a + b)\n\n"
            f"print(f({n}))"
        )
        return code, "recursion"
    if template == 2:
        word = made_up_word(rng, rng.randrange(4, 7)) + made_up_word(rng, 2)
        code = (
            f'counts = {{}}\nfor ch in "{word}":\n'
            "    counts[ch] = counts.get(ch, 0) + 1\n"
            "print(max(counts, key=counts.get), len(counts))"
        )
        return code, "dict_count"
    if template == 3:
        first, extra, more = _numbers(rng, 3, 1, 10), rng.randrange(1, 20), rng.randrange(1, 20)
        code = (
            f"a = {first}\nb = a\nb.append({extra})\na = a + [{more}]\nb.append(a[-1])\n"
            "print(len(a), len(b), b[-1])"
        )
        return code, "aliasing"
    limit, modulus = rng.randrange(3, 6), rng.randrange(2, 5)
    code = (
        f"pairs = [(x, y) for x in range(1, {limit}) for y in range(x, {limit + 2}) "
        f"if (x + y) % {modulus} == 0]\nprint(len(pairs), pairs[-1])"
    )
    return code, "comprehension"


def make(rng: random.Random, difficulty: Difficulty, index: int) -> Example:
    """One program of the given difficulty, with the output it printed."""
    del index
    code, kind = _easy(rng) if difficulty == "easy" else _hard(rng)
    return Example(prompt=PROMPT.format(code=code), answer=run(code), scorer="exact", kind=kind)


FAMILY = Family(
    name="snippets",
    version="1",
    seed=505,
    description='"what does this Python program print?" (outputs recorded by running them)',
    make=make,
)
