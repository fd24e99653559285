"""The trace classifier against DESIGN.md's rules: real-output cases and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtc_assert import STANDARD_FORMATS, TraceFormat, TraceStatus, classify, prompt_state
from rtc_assert.traces.classify import STANDARD_TAGS, TagSet, classify_many
from rtc_assert.traces.markups import FinalMarker, HarmonyChannels

V, E, T, M = TraceStatus.VALID, TraceStatus.EMPTY, TraceStatus.TRUNCATED, TraceStatus.MISSING

QWEN3_PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
QWEN3_NO_THINK_PROMPT = QWEN3_PROMPT + "<think>\n\n</think>\n\n"
R1_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n"
OLMO3_PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>"
DEEPSEEK_V31_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜></think>"

# (case, completion, classify kwargs, status, detail, reasoning, answer)
REAL_OUTPUTS = [
    (
        "qwen3 thinking on",
        "<think>\nOkay, the user asks for 2+2. Two plus two is four.\n</think>\n\n2 + 2 = **4**.",
        {"prompt": QWEN3_PROMPT, "finish_reason": "stop"},
        V,
        "closed",
        "Okay, the user asks for 2+2. Two plus two is four.",
        "2 + 2 = **4**.",
    ),
    (
        "qwen3 collapsed: the model writes an empty block itself",
        "<think>\n\n</think>\n\n2 + 2 = 4.",
        {"prompt": QWEN3_PROMPT, "finish_reason": "stop"},
        E,
        "blank",
        "",
        "2 + 2 = 4.",
    ),
    (
        "qwen3 thinking off by the template",
        "2 + 2 = 4.",
        {"prompt": QWEN3_NO_THINK_PROMPT, "finish_reason": "stop"},
        E,
        "disabled_by_prompt",
        "",
        "2 + 2 = 4.",
    ),
    (
        "deepseek-v3.1 non-thinking prompt ends with a bare closer",
        "The answer is 4.",
        {"prompt": DEEPSEEK_V31_PROMPT, "finish_reason": "stop"},
        E,
        "disabled_by_prompt",
        "",
        "The answer is 4.",
    ),
    (
        "r1 distill, prefilled <think>\\n: only the closer appears",
        "Okay, so I need to add 2 and 2.\nThat gives 4.\n</think>\n\nThe answer is $\\boxed{4}$.",
        {"prompt": R1_PROMPT, "finish_reason": "stop"},
        V,
        "closed",
        "Okay, so I need to add 2 and 2.\nThat gives 4.",
        "The answer is $\\boxed{4}$.",
    ),
    (
        "r1 distill when the prompt is unknown: the opener is implicit",
        "Okay, 2 and 2 make 4.\n</think>\n\n4",
        {"finish_reason": "stop"},
        V,
        "implicit_open",
        "Okay, 2 and 2 make 4.",
        "4",
    ),
    (
        "r1 distill cut at max tokens inside the trace",
        "Okay, so I need to add 2 and 2. Let me think about what addition means. If I have",
        {"prompt": R1_PROMPT, "finish_reason": "length"},
        T,
        "length",
        "Okay, so I need to add 2 and 2. Let me think about what addition means. If I have",
        "",
    ),
    (
        "olmo-3-think prefilled <think> without newline",
        " The user wants 2+2, which is 4.</think>The answer is 4.",
        {"prompt": OLMO3_PROMPT, "finish_reason": "stop"},
        V,
        "closed",
        "The user wants 2+2, which is 4.",
        "The answer is 4.",
    ),
    (
        "olmo-3-think stopped on its own inside the trace",
        " The user wants 2+2. Hmm.",
        {"prompt": OLMO3_PROMPT, "finish_reason": "stop"},
        T,
        "unterminated",
        "The user wants 2+2. Hmm.",
        "",
    ),
    (
        "qwen3 cut at max tokens",
        "<think>\nLet me add 2 and 2 digit by digit: 2 + 2",
        {"prompt": QWEN3_PROMPT, "finish_reason": "length"},
        T,
        "length",
        "Let me add 2 and 2 digit by digit: 2 + 2",
        "",
    ),
    (
        "truncated with no finish reason",
        "<think>\nLet me add",
        {},
        T,
        "unknown",
        "Let me add",
        "",
    ),
    (
        "answer-only output of a collapsed fine-tune",
        "2 + 2 = 4.",
        {"prompt": QWEN3_PROMPT, "finish_reason": "stop"},
        M,
        "no_tags",
        "",
        "2 + 2 = 4.",
    ),
    (
        "answer-only output cut at max tokens is still missing",
        "The sum of two and two is",
        {"finish_reason": "length"},
        M,
        "no_tags",
        "",
        "The sum of two and two is",
    ),
    (
        "text before the opener stays in the reasoning",
        "Sure! <think>2+2=4</think> 4",
        {"finish_reason": "stop"},
        V,
        "text_before_open",
        "Sure! 2+2=4",
        "4",
    ),
    (
        "a second block after the answer",
        "<think>a</think>4<think>b</think>",
        {"finish_reason": "stop"},
        V,
        "multiple_blocks",
        "a",
        "4<think>b</think>",
    ),
    (
        "upper-case <THINKING> tags",
        "<THINKING>two and two</THINKING>4",
        {},
        V,
        "closed",
        "two and two",
        "4",
    ),
    (
        "reasoning tags",
        "<reasoning>x</reasoning>y",
        {},
        V,
        "closed",
        "x",
        "y",
    ),
]


@pytest.mark.parametrize(
    ("completion", "kwargs", "status", "detail", "reasoning", "answer"),
    [case[1:] for case in REAL_OUTPUTS],
    ids=[case[0] for case in REAL_OUTPUTS],
)
def test_real_outputs(completion, kwargs, status, detail, reasoning, answer):
    trace = classify(completion, **kwargs)
    assert (trace.status, trace.detail, trace.reasoning, trace.answer) == (
        status,
        detail,
        reasoning,
        answer,
    )


def test_status_values_are_exactly_the_studys_four():
    assert [s.value for s in TraceStatus] == ["valid", "empty", "truncated", "missing"]
    assert TraceStatus("valid") is TraceStatus.VALID
    assert f"{TraceStatus.EMPTY}" == "empty"


def test_custom_format_replaces_the_standard_tags():
    fmt = TraceFormat("<|begin_of_thought|>", "<|end_of_thought|>")
    trace = classify("<|begin_of_thought|>add<|end_of_thought|>\n4", fmt=fmt)
    assert (trace.status, trace.reasoning, trace.answer) == (V, "add", "4")
    # With a custom format, <think> is ordinary text.
    assert classify("<think>add</think>4", fmt=fmt).status is M


def test_minimum_reasoning_length():
    short = classify("<think>ok</think>4", min_reasoning_chars=5)
    assert (short.status, short.detail) == (E, "below_min_length")
    assert classify("<think>okay then</think>4", min_reasoning_chars=5).status is V
    with pytest.raises(ValueError, match="min_reasoning_chars"):
        classify("x", min_reasoning_chars=0)


def test_trace_format_rejects_unusable_tags():
    with pytest.raises(ValueError, match="non-blank"):
        TraceFormat(" ", "</think>")
    with pytest.raises(ValueError, match="must differ"):
        TraceFormat("<t>", "<T>")


@pytest.mark.parametrize(
    ("prompt", "prefilled", "disabled"),
    [
        (QWEN3_PROMPT, False, False),
        (QWEN3_NO_THINK_PROMPT, False, True),
        (R1_PROMPT, True, False),
        (OLMO3_PROMPT, True, False),
        (OLMO3_PROMPT + "\n\n", True, False),
        (DEEPSEEK_V31_PROMPT, False, True),
        ("<SPECIAL_11>Assistant\n<think></think>", False, True),
        # A closed block with reasoning in it is the user's text, not a switch.
        ("user: <think>my reasoning</think>", False, False),
        # A bare closer after an earlier full block still closes nothing.
        ("<think>a</think>answer<｜Assistant｜></think>", False, True),
    ],
)
def test_prompt_state(prompt, prefilled, disabled):
    state = prompt_state(prompt)
    assert (state.prefilled, state.thinking_disabled) == (prefilled, disabled)


# Properties ---------------------------------------------------------------------------

TAG_FREE = st.text(
    alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=40
)
PAIRS = st.sampled_from(STANDARD_FORMATS)
WHITESPACE = st.text(alphabet=" \t\n\r", max_size=4)


def random_case(draw, tag: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(tag), max_size=len(tag)))
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(tag, flips, strict=True))


@st.composite
def completions(draw):
    """Text built from tag-free pieces and (maybe) an opener and closer in random case."""
    fmt = draw(PAIRS)
    pieces = [draw(TAG_FREE) for _ in range(3)]
    has_open, has_close = draw(st.booleans()), draw(st.booleans())
    text = pieces[0]
    if has_open:
        text += random_case(draw, fmt.open_tag)
    text += pieces[1]
    if has_close:
        text += random_case(draw, fmt.close_tag)
    text += pieces[2]
    return text, pieces, has_open, has_close


@given(completions(), st.booleans(), st.sampled_from([None, "stop", "length"]))
def test_status_follows_the_rules_exhaustively(case, prefilled, finish_reason):
    text, pieces, has_open, has_close = case
    trace = classify(text, prefilled=prefilled, finish_reason=finish_reason)
    if has_close:
        expected_reasoning = (pieces[0] + pieces[1]).strip()
        assert trace.status is (V if expected_reasoning else E)
        assert trace.reasoning == expected_reasoning
        assert trace.answer == pieces[2].strip()
    elif has_open or prefilled:
        assert trace.status is T
        assert trace.answer == ""
        assert trace.reasoning == "".join(pieces).strip()
    else:
        assert trace.status is M
        assert trace.answer == text.strip()
        assert trace.reasoning == ""


@given(TAG_FREE)
def test_tag_free_text_is_missing_unless_prefilled(text):
    assert classify(text).status is M
    assert classify(text, prefilled=True).status is T


@given(TAG_FREE, TAG_FREE, PAIRS, st.booleans(), st.sampled_from([None, "stop", "length"]))
def test_a_closing_tag_is_never_missing_or_truncated(before, after, fmt, prefilled, finish):
    trace = classify(before + fmt.close_tag + after, prefilled=prefilled, finish_reason=finish)
    assert trace.status in (V, E)


@given(completions(), WHITESPACE, WHITESPACE, st.booleans())
def test_invariant_to_tag_case_and_surrounding_whitespace(case, lead, trail, prefilled):
    text = case[0]
    lowered = text
    for fmt in STANDARD_FORMATS:  # the same completion with every tag in lower case
        for tag in (fmt.open_tag, fmt.close_tag):
            lowered = _replace_case_insensitive(lowered, tag, tag.lower())
    reference = classify(lowered, prefilled=prefilled)
    changed = classify(lead + text + trail, prefilled=prefilled)
    assert changed == reference


def _replace_case_insensitive(text: str, tag: str, replacement: str) -> str:
    return re.sub(re.escape(tag), replacement, text, flags=re.IGNORECASE)


@given(completions())
def test_reasoning_and_answer_come_in_order_from_outside_the_tags(case):
    text, _, _, has_close = case
    trace = classify(text)
    lowered = text.lower()
    for fmt in STANDARD_FORMATS:
        assert fmt.open_tag not in trace.reasoning.lower()
        assert fmt.close_tag not in trace.reasoning.lower()
    if has_close and trace.answer:
        assert lowered.rfind(trace.answer.lower()) >= lowered.find(trace.reasoning.lower())
        assert text.endswith(trace.answer) or text.rstrip().endswith(trace.answer)


# The shortcut and the batch ------------------------------------------------------------

TAG_SETS = [
    STANDARD_TAGS,
    TagSet((TraceFormat(),)),
    TagSet((TraceFormat("[T]", "[T]]"),)),  # the opener is a prefix of the closer
    TagSet((TraceFormat("ab", "bc"),)),  # the tags overlap ("abc")
    TagSet((TraceFormat("\n<t>", "</t>"), TraceFormat("<u>", "</t>"))),  # a shared closer
    TagSet((TraceFormat("<think>", "</think>"), TraceFormat("<thinking>", "</thinking>"))),
    # Where every tag starts with "<" the hot path walks the text with str.find; these test
    # the conditions on the tags it needs, and the pairing of a shared closer on that path.
    TagSet((TraceFormat("<t>", "<t>>"),)),  # "<"-led, but the opener prefixes the closer
    TagSet((TraceFormat("<a<", "</a>"),)),  # "<" inside a tag
    TagSet((TraceFormat("<T>", "</T>"), TraceFormat("<U>", "</T>"))),
    TagSet((TraceFormat("<k>", "</k>"),)),  # the Kelvin sign's "<\u212a>" matches it
    TagSet((TraceFormat("ka", "kb"),)),  # one first character, but a cased one
]
FRAGMENTS = st.sampled_from(
    [
        "<think>",
        "</THINK>",
        "<thinking>",
        "</thinking>",
        "<reasoning>",
        "</thought>",
        "[T]",
        "[T]]",
        "ab",
        "bc",
        "\n<t>",
        "</t>",
        "<u>",
        "<",
        "</think>",
        "<t>>",
        "<a<",
        "</a>",
        "<U>",
        "</T>",
        "<\u212a>",
        "</k>",
        "Ka",
        "KB",
        " ",
        "\n",
        "\u00a0",
        "\x1c",
        "x",
        "4",
        "é",
    ]
)


FRAGMENT_TEXT = st.lists(FRAGMENTS, max_size=6).map("".join)


@st.composite
def tag_set_and_text(draw):
    """A tag set and a text that is random fragments, or mostly the shortcut's shape."""
    tags = draw(st.sampled_from(TAG_SETS))
    pair = draw(st.sampled_from(tags.pairs))
    opener, closer = random_case(draw, pair.open_tag), random_case(draw, pair.close_tag)
    lead = draw(st.one_of(WHITESPACE, FRAGMENT_TEXT))
    shaped = lead + opener + draw(FRAGMENT_TEXT) + closer + draw(FRAGMENT_TEXT)
    return tags, draw(st.sampled_from([shaped, draw(FRAGMENT_TEXT) + draw(FRAGMENT_TEXT)]))


def first_tag(text: str, tags: list[str], start: int = 0, end: int | None = None):
    """(position, tag) of the leftmost tag in text[start:end], the longest at a tie."""
    end = len(text) if end is None else end
    for at in range(start, end):
        for tag in sorted(tags, key=len, reverse=True):
            if at + len(tag) <= end and text[at : at + len(tag)].lower() == tag.lower():
                return at, tag
    return None


def rules(text, pairs, finish, prefilled, min_chars):
    """DESIGN.md's three rules, written plainly: the oracle for the classifier's hot path."""
    opens, closes = [p.open_tag for p in pairs], [p.close_tag for p in pairs]
    closing = first_tag(text, closes)
    if closing is None:
        opening = first_tag(text, opens)
        if opening is None:
            if not prefilled:
                return (M, "", text.strip(), "no_tags")
            before, after, reasons = "", text, []
        else:
            before, after = text[: opening[0]], text[opening[0] + len(opening[1]) :]
            reasons = ["text_before_open"] if before.strip() else []
        how = {None: "unknown", "length": "length"}.get(finish, "unterminated")
        return (T, (before + after).strip(), "", ",".join([how, *reasons]))
    start, end = closing[0], closing[0] + len(closing[1])
    opener = {p.close_tag.lower(): p.open_tag for p in pairs}[closing[1].lower()]
    opening = first_tag(text, [opener], 0, start)
    reasons = []
    if opening is None:
        reasoning = text[:start]
        reasons += [] if prefilled else ["implicit_open"]
    else:
        before = text[: opening[0]]
        reasoning = (before if before.strip() else "") + text[opening[0] + len(opener) : start]
        reasons += ["text_before_open"] if before.strip() else []
    if first_tag(text, opens + closes, end):
        reasons.append("multiple_blocks")
    reasoning = reasoning.strip()
    if len(reasoning) < min_chars:
        reasons.insert(0, "below_min_length" if reasoning else "blank")
    return (
        V if len(reasoning) >= min_chars else E,
        reasoning,
        text[end:].strip(),
        ",".join(reasons) or "closed",
    )


@given(
    tag_set_and_text(), st.sampled_from([None, "stop", "length"]), st.booleans(), st.integers(1, 3)
)
@example((TAG_SETS[2], " [T]] 4"), "stop", False, 1)  # the opener overlaps the closer
@example((TAG_SETS[3], "abc"), None, True, 1)
@example((STANDARD_TAGS, "<thinking>x</think>4"), "stop", False, 1)  # another pair's opener
@example((TAG_SETS[4], "\n<t>x</t>4"), "stop", False, 1)  # the shared closer's other opener
@example((TAG_SETS[1], "x</think>4"), "stop", False, 1)  # an implicit opener
@example((TAG_SETS[1], "<think>x</THINK>4"), "stop", False, 1)  # the closer in another case
@example((TAG_SETS[6], "<t>>x<t>>4"), "stop", False, 1)
@example((TAG_SETS[7], "<a<x</a>4"), None, False, 1)
@example((TAG_SETS[7], "<a</a>4"), "stop", False, 1)  # a closer inside the opener
@example((TAG_SETS[8], "<U>x</T>4<"), "length", False, 1)
@example((TAG_SETS[10], "KBx"), "stop", False, 1)
def test_any_tag_set_follows_the_rules(case, finish, prefilled, min_chars):
    tags, text = case
    trace = classify(
        text, finish_reason=finish, prefilled=prefilled, fmt=tags, min_reasoning_chars=min_chars
    )
    assert trace == rules(text, tags.pairs, finish, prefilled, min_chars)


# Tags where lower() is not the regex engine's case folding ("\u017f" folds to "s"), which
# the plain rules above cannot model: the hot path is held to the full rules instead.
FOLDED_TAG_SETS = [
    *TAG_SETS,
    TagSet((TraceFormat("<\u017f>", "<s>x"),)),  # the opener folds to a prefix of the closer
    TagSet((TraceFormat("<\u017f>", "</\u017f>"),)),
]
FOLDED_TEXT = st.lists(
    st.one_of(FRAGMENTS, st.sampled_from(["<s>x", "<S>", "<\u017f>", "</s>", "</\u017f>"])),
    max_size=6,
).map("".join)


@given(
    st.sampled_from(FOLDED_TAG_SETS),
    FOLDED_TEXT,
    st.sampled_from([None, "stop", "length"]),
    st.booleans(),
    st.integers(1, 3),
)
@example(FOLDED_TAG_SETS[-2], "<s>x4", "stop", False, 1)
def test_the_hot_path_gives_what_the_full_rules_give(tags, text, finish, prefilled, min_chars):
    closing = tags._tags.close_any.search(text)
    full = (
        tags._unclosed(text, finish, prefilled)
        if closing is None
        else tags._closed(text, closing, prefilled, min_chars)
    )
    assert tags.split_many([text], [finish], [prefilled], min_chars) == [full]


PROMPTS = st.sampled_from([None, QWEN3_PROMPT, QWEN3_NO_THINK_PROMPT, R1_PROMPT, OLMO3_PROMPT])
MARKUPS = st.sampled_from(
    [None, TraceFormat(), TraceFormat("[T]", "[T]]"), *TAG_SETS, HarmonyChannels(), FinalMarker()]
)


@given(
    MARKUPS,
    st.lists(
        st.tuples(
            st.lists(FRAGMENTS, max_size=8).map("".join),
            st.sampled_from([None, "stop", "length"]),
            PROMPTS,
        ),
        max_size=8,
    ),
    st.sampled_from([None, True, False]),
    st.integers(1, 3),
)
def test_classify_many_gives_what_classify_gives_one_by_one(fmt, rows, prefilled, min_chars):
    texts, finishes, prompts = ([row[i] for row in rows] for i in range(3))
    one_by_one = [
        classify(
            t,
            finish_reason=f,
            prompt=p,
            prefilled=prefilled,
            fmt=fmt,
            min_reasoning_chars=min_chars,
        )
        for t, f, p in zip(texts, finishes, prompts, strict=True)
    ]
    many = classify_many(
        texts,
        finish_reasons=finishes,
        prompts=prompts,
        prefilled=prefilled,
        fmt=fmt,
        min_reasoning_chars=min_chars,
    )
    assert many == one_by_one


def test_classify_many_without_columns_and_with_wrong_lengths():
    texts = ["<think>a</think>1", "b"]
    assert classify_many(texts) == [classify(text) for text in texts]
    with pytest.raises(ValueError, match="finish_reasons has 1 items for 2 texts"):
        classify_many(texts, finish_reasons=["stop"])
    with pytest.raises(ValueError, match="prompts has 3 items for 2 texts"):
        classify_many(texts, prompts=[None, None, None])
    with pytest.raises(ValueError, match="min_reasoning_chars"):
        classify_many(texts, min_reasoning_chars=0)


def test_a_closer_matched_by_case_folding_alone_is_classified():
    # The regex engine matches "\u017f" (long s) to "s"; lower() does not: no KeyError.
    text = "<reasoning>x</rea\u017foning>4"
    assert classify(text) == (V, "x", "4", "closed")
    assert prompt_state("<reasoning></REA\u017fONING>").thinking_disabled
