"""Scorers: numeric, choice, exact, regex and user functions; only the answer is scored."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtc_assert import Probe, ScorerError, classify, get_scorer, score, score_trace
from rtc_assert.probes.scorers import extract_choice, extract_number


def probe(answer: str, scorer: str) -> Probe:
    return Probe(id="p", prompt="q", answer=answer, scorer=scorer)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The answer is 42.", Fraction(42)),
        ("It costs $1,234.50 in total", Fraction("1234.50")),
        ("First 3, then 4, so 7", Fraction(7)),
        ("So the result is \\boxed{2280}. Check: 2000 + 280", Fraction(2280)),
        ("Natalia sold 48/2 = 24 clips.\n#### 72\nThat is 72 clips, not 71", Fraction(72)),
        ("The temperature fell to -5 degrees", Fraction(-5)),
        ("pages 3-4", Fraction(4)),
        ("40,000", Fraction(40000)),
        ("about 50% of them", Fraction(50)),
        ("no digits here", None),
        ("", None),
    ],
)
def test_extract_number(answer, expected):
    assert extract_number(answer) == expected


@pytest.mark.parametrize(
    ("answer", "reference", "correct"),
    [
        ("The answer is 2280.", "2280", True),
        ("2280.0", "2280", True),
        ("$40,000", "40,000", True),
        ("40000", "40,000", True),
        ("#### 5", "5", True),
        ("I got 5 but the answer is 6", "5", False),
        ("", "5", False),
    ],
)
def test_numeric_scorer(answer, reference, correct):
    assert score(probe(reference, "numeric"), answer) is correct


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("C", "C"),
        ("C.", "C"),
        ("**C**", "C"),
        ("Answer: (C)", "C"),
        ("The answer is B.", "B"),
        ("The correct answer is **D**", "D"),
        ("(A) because the others are wrong", "A"),
        ("C: Clc1cccc(C2CO2)c1", "C"),
        ("I think it is B", "B"),
        ("A good option is D", "D"),
        ("C is correct", "C"),
        ("B is right, as I said", "B"),
        ("\\boxed{C}", "C"),
        ("none of these", None),
    ],
)
def test_extract_choice(answer, expected):
    assert extract_choice(answer) == expected


def test_choice_scorer_and_reference_forms():
    assert score(probe("C", "choice"), "Answer: (C)")
    assert score(probe("(c)", "choice"), "C.")
    assert not score(probe("C", "choice"), "B")


@pytest.mark.parametrize(
    ("answer", "reference", "correct"),
    [
        ("  Hello   World ", "hello world", True),
        ("hello\nworld", "Hello World", True),
        ("hello world.", "hello world", False),
    ],
)
def test_exact_scorer(answer, reference, correct):
    assert score(probe(reference, "exact"), answer) is correct


def test_regex_scorer_searches_the_answer():
    assert score(probe(r"\b4\b", "regex"), "it is 4 apples")
    assert not score(probe(r"^4$", "regex"), "44")


def test_scorers_see_only_the_answer_not_the_reasoning():
    trace = classify("<think>the answer is 42</think>I do not know")
    outcome = score_trace(probe("42", "numeric"), trace, sample=3, answer_tokens=4)
    assert not outcome.correct
    assert (outcome.probe_id, outcome.sample, outcome.answer_tokens) == ("p", 3, 4)
    truncated = classify("<think>so it is 42", finish_reason="length")
    assert not score_trace(probe("42", "numeric"), truncated).correct


def test_user_function_scorer(tmp_path, monkeypatch):
    (tmp_path / "my_scorers.py").write_text(
        "def starts_same(answer, reference):\n    return answer[:1] == reference[:1]\n"
        "def not_bool(answer, reference):\n    return 'yes'\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert score(probe("apple", "my_scorers:starts_same"), "avocado")
    with pytest.raises(ScorerError, match="returned 'yes'"):
        score(probe("x", "my_scorers:not_bool"), "x")
    with pytest.raises(ScorerError, match="has no function 'missing'"):
        get_scorer("my_scorers:missing")
    with pytest.raises(ScorerError, match="cannot import module 'no_such_module_xyz'"):
        get_scorer("no_such_module_xyz:f")


def test_unknown_scorer_lists_the_known_ones():
    with pytest.raises(ScorerError, match=r"unknown scorer 'fuzzy'.*choice, exact, numeric, regex"):
        get_scorer("fuzzy")


@pytest.mark.parametrize(
    ("scorer", "reference", "message"),
    [
        ("numeric", "forty", "is not a number"),
        ("choice", "K", "is not an option letter"),
        ("regex", "(unclosed", "not a valid regular expression"),
    ],
)
def test_unusable_reference_answers_are_rejected(scorer, reference, message):
    with pytest.raises(ScorerError, match=message):
        get_scorer(scorer).check_reference(reference)


# Properties ---------------------------------------------------------------------------


@given(st.integers(min_value=-(10**9), max_value=10**9), st.sampled_from(["", "$"]), st.booleans())
def test_numeric_recognises_any_integer_in_common_formats(value, prefix, thousands):
    written = f"{abs(value):,}" if thousands else str(abs(value))
    sign = "-" if value < 0 else ""
    answer = f"So the total is {sign}{prefix}{written}."
    assert extract_number(answer) == value
    assert score(probe(str(value), "numeric"), answer)
    assert not score(probe(str(value + 1), "numeric"), answer)


@given(st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False))
def test_numeric_compares_decimals_as_numbers(value):
    assert score(probe(str(value), "numeric"), f"\\boxed{{{value}}}")


@given(
    st.sampled_from("ABCDEFGHIJ"),
    st.sampled_from(["{}", "{}.", "**{}**", "({})", "Answer: {}", "The answer is ({})"]),
)
def test_choice_recognises_every_letter_in_every_form(letter, form):
    answer = form.format(letter)
    assert extract_choice(answer) == letter
    assert score(probe(letter, "choice"), answer)


@given(st.text(max_size=30).filter(str.strip), st.text(alphabet=" \t\n", max_size=3))
def test_exact_ignores_case_and_surrounding_whitespace(text, pad):
    assert score(probe(text, "exact"), pad + text.upper() + pad) == (
        text.upper().casefold().split() == text.casefold().split()
    )
