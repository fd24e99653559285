"""Counting letters and manipulating strings (scorers ``numeric`` and ``exact``).

Words are made-up lower-case syllable strings, so no model has memorised the answers. Easy:
count a letter in a word, a word's length, reverse a word, the n-th letter. Hard: count a
letter across a phrase, drop the vowels and reverse, sort the letters, count distinct letters,
join the first letters of a phrase's words in reverse order.
"""

from __future__ import annotations

import random

from rtc_assert.probes.library.family import VOWELS, Difficulty, Example, Family, made_up_word

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _easy(rng: random.Random) -> tuple[str, str, str, str]:
    word = made_up_word(rng, rng.randrange(3, 6))
    template = rng.randrange(4)
    if template == 0:
        letter = rng.choice(word)
        text = f"How many times does the letter '{letter}' appear in '{word}'?"
        return text, str(word.count(letter)), "numeric", "count_letter"
    if template == 1:
        return f"How many letters does '{word}' have?", str(len(word)), "numeric", "length"
    if template == 2:
        text = f"Write '{word}' backwards.\n\nAnswer with the reversed word only."
        return text, word[::-1], "exact", "reverse"
    position = rng.randrange(min(len(word), len(ORDINALS)))
    text = f"What is the {ORDINALS[position]} letter of '{word}'?\n\nAnswer with the letter only."
    return text, word[position], "exact", "nth_letter"


def _hard(rng: random.Random) -> tuple[str, str, str, str]:
    template = rng.randrange(5)
    if template == 0:
        count = rng.randrange(3, 6)
        phrase = " ".join(made_up_word(rng, rng.randrange(2, 5)) for _ in range(count))
        letter = rng.choice(phrase.replace(" ", ""))
        text = f"How many times does the letter '{letter}' appear in '{phrase}'?"
        return text, str(phrase.count(letter)), "numeric", "count_letter_phrase"
    word = made_up_word(rng, rng.randrange(5, 8))
    if template == 1:
        kept = "".join(letter for letter in word if letter not in VOWELS)
        text = (
            f"Remove every vowel (a, e, i, o, u) from '{word}' and write what is left "
            "backwards.\n\nAnswer with the resulting string only."
        )
        return text, kept[::-1], "exact", "devowel_reverse"
    if template == 2:
        text = (
            f"Sort the letters of '{word}' in alphabetical order.\n\n"
            "Answer with the sorted letters as one string only."
        )
        return text, "".join(sorted(word)), "exact", "sort_letters"
    if template == 3:
        text = f"How many different letters does '{word}' contain?"
        return text, str(len(set(word))), "numeric", "distinct_letters"
    words = [made_up_word(rng, rng.randrange(1, 4)) for _ in range(rng.randrange(4, 8))]
    text = (
        f"Take the first letter of each word in '{' '.join(words)}', starting from the last "
        "word, and join them.\n\nAnswer with the joined letters only."
    )
    return text, "".join(word[0] for word in reversed(words)), "exact", "first_letters"


def make(rng: random.Random, difficulty: Difficulty, index: int) -> Example:
    """One counting or string question of the given difficulty."""
    del index
    text, answer, scorer, kind = _easy(rng) if difficulty == "easy" else _hard(rng)
    return Example(prompt=text, answer=answer, scorer=scorer, kind=kind)


FAMILY = Family(
    name="strings",
    version="1",
    seed=303,
    description="counting letters and string manipulation on made-up words",
    make=make,
)
