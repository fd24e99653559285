"""Scorers: judge an answer against a reference answer, by name.

Scorers see only the answer part of a trace, never the reasoning. Built-in scorers:
``numeric``, ``choice``, ``exact`` and ``regex``; any other name of the form
``"package.module:function"`` imports ``function(answer, reference) -> bool``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from rtc_assert.errors import ScorerError

Judge = Callable[[str, str], bool]
"""``judge(answer, reference) -> correct``."""


@dataclass(frozen=True)
class Scorer:
    """A named judge plus a check that a reference answer is usable with it."""

    name: str
    judge: Judge
    check_reference: Callable[[str], None]

    def __call__(self, answer: str, reference: str) -> bool:
        return self.judge(answer, reference)


def _accept_any_reference(reference: str) -> None:
    del reference


# numeric ---------------------------------------------------------------------------------

_NUMBER = r"(?:(?<![\w)])[-\u2212])?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
_GSM8K_RE = re.compile(r"####\s*\$?\s*(" + _NUMBER + ")")
_REFERENCE_NUMBER_RE = re.compile(r"\s*\$?\s*(" + _NUMBER + r")\s*%?\s*")


def _to_fraction(number: str) -> Fraction:
    return Fraction(number.replace(",", "").replace("$", "").replace("\u2212", "-"))


def extract_number(answer: str) -> Fraction | None:
    """The number an answer gives: the last ``\\boxed{}``, else ``#### n``, else the last number."""
    for boxed in reversed(_BOXED_RE.findall(answer)):
        numbers = _NUMBER_RE.findall(boxed)
        if numbers:
            return _to_fraction(numbers[-1])
    gsm8k = _GSM8K_RE.findall(answer)
    if gsm8k:
        return _to_fraction(gsm8k[-1])
    numbers = _NUMBER_RE.findall(answer)
    return _to_fraction(numbers[-1]) if numbers else None


def _reference_number(reference: str) -> Fraction:
    match = _REFERENCE_NUMBER_RE.fullmatch(reference)
    if match is None:
        raise ScorerError(
            f"reference answer {reference!r} is not a number, as scorer 'numeric' needs "
            "(e.g. '42', '-3.5', '1,000')"
        )
    return _to_fraction(match.group(1))


def _judge_numeric(answer: str, reference: str) -> bool:
    given = extract_number(answer)
    return given is not None and given == _reference_number(reference)


# choice ----------------------------------------------------------------------------------

_LETTER = r"([A-J])(?![A-Za-z0-9])"
_CHOICE_PATTERNS = (
    # "Answer: (C)", "The answer is **C**", "answer C"
    re.compile(r"(?i:answer)(?:\s+(?i:is))?\s*[:\uff1a]?\s*[*_(\[]*" + _LETTER),
    re.compile(r"\\boxed\{\s*\(?" + _LETTER + r"\)?\s*\}"),
)
_LEADING_CHOICE_RE = re.compile(r"\A[\s*_(\[]*" + _LETTER + r"(?!\s+[a-z])")
_STANDALONE_RE = re.compile(r"(?<![A-Za-z0-9])" + _LETTER)
_REFERENCE_CHOICE_RE = re.compile(r"\s*\(?([A-Ja-j])\)?\s*")


def extract_choice(answer: str) -> str | None:
    """The option letter (A-J) an answer picks, or None.

    In order: an explicit "answer: X", a ``\\boxed{X}``, a leading letter ("C.", "**C**",
    "(C) because"), the last letter that does not start a sentence ("I think", "A good"),
    and finally the first standalone letter.
    """
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(answer)
        if found:
            return found[-1]
    leading = _LEADING_CHOICE_RE.match(answer)
    if leading:
        return leading.group(1)
    candidates = list(_STANDALONE_RE.finditer(answer))
    for match in reversed(candidates):
        if not re.match(r"\s+[a-z]", answer[match.end() :]):
            return match.group(1)
    return candidates[0].group(1) if candidates else None


def _reference_choice(reference: str) -> str:
    match = _REFERENCE_CHOICE_RE.fullmatch(reference)
    if match is None:
        raise ScorerError(
            f"reference answer {reference!r} is not an option letter A-J, as scorer 'choice' needs"
        )
    return match.group(1).upper()


def _judge_choice(answer: str, reference: str) -> bool:
    return extract_choice(answer) == _reference_choice(reference)


# exact and regex -------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Collapse runs of whitespace, strip, and case-fold."""
    return " ".join(text.split()).casefold()


def _judge_exact(answer: str, reference: str) -> bool:
    return normalise_text(answer) == normalise_text(reference)


def _compile_reference_regex(reference: str) -> re.Pattern[str]:
    try:
        return re.compile(reference)
    except re.error as error:
        raise ScorerError(
            f"reference answer {reference!r} is not a valid regular expression for scorer "
            f"'regex': {error}"
        ) from error


def _judge_regex(answer: str, reference: str) -> bool:
    return _compile_reference_regex(reference).search(answer) is not None


def _checker(parse_reference: Callable[[str], object]) -> Callable[[str], None]:
    """A reference check that parses the reference and discards the result."""

    def check(reference: str) -> None:
        parse_reference(reference)

    return check


BUILTIN_SCORERS: dict[str, Scorer] = {
    "numeric": Scorer("numeric", _judge_numeric, _checker(_reference_number)),
    "choice": Scorer("choice", _judge_choice, _checker(_reference_choice)),
    "exact": Scorer("exact", _judge_exact, _accept_any_reference),
    "regex": Scorer("regex", _judge_regex, _checker(_compile_reference_regex)),
}


@lru_cache(maxsize=128)
def _import_judge(path: str) -> Judge:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ScorerError(
            f"scorer {path!r}: cannot import module {module_name!r} ({error}); "
            "check the name and that the module is on the Python path"
        ) from error
    judge = getattr(module, attribute, None)
    if not callable(judge):
        raise ScorerError(
            f"scorer {path!r}: module {module_name!r} has no function {attribute!r}; "
            "a custom scorer is 'package.module:function' with function(answer, reference) -> bool"
        )
    return judge


def _checked_user_judge(path: str) -> Judge:
    judge = _import_judge(path)

    def checked(answer: str, reference: str) -> bool:
        result = judge(answer, reference)
        if not isinstance(result, bool):
            raise ScorerError(
                f"scorer {path!r} returned {result!r} ({type(result).__name__}); "
                "a scorer must return True or False"
            )
        return result

    return checked


def get_scorer(name: str) -> Scorer:
    """The scorer called ``name``: a built-in name or ``"package.module:function"``."""
    if name in BUILTIN_SCORERS:
        return BUILTIN_SCORERS[name]
    module_name, colon, attribute = name.partition(":")
    if colon and module_name and attribute:
        return Scorer(name, _checked_user_judge(name), _accept_any_reference)
    raise ScorerError(
        f"unknown scorer {name!r}: use one of {', '.join(sorted(BUILTIN_SCORERS))} "
        "or a custom 'package.module:function'"
    )
