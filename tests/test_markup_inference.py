"""Markups and thinking switches read from templates of shapes no shared template has.

The templates in tests/fixtures/chat-templates were written for these tests; each is
swapped into the demo tokenizer, detected, and outputs in its markup are classified
through the prompt the gate sends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from rtc_assert import demo
from rtc_assert.decide.explain import unrecognised_markup
from rtc_assert.generation.requests import (
    Generation,
    GenerationRequest,
    GenerationSettings,
    build_requests,
)
from rtc_assert.metrics import compute_metrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.runs import Run, score_generations
from rtc_assert.traces.classify import TraceStatus, classify
from rtc_assert.traces.detection import (
    SAMPLE_QUESTION,
    DetectedTemplate,
    TraceSetup,
    detect_template,
)

V, E, T, M = TraceStatus.VALID, TraceStatus.EMPTY, TraceStatus.TRUNCATED, TraceStatus.MISSING
FIXTURES = Path(__file__).parent / "fixtures" / "chat-templates"
PROBE = Probe(id="p", prompt=SAMPLE_QUESTION, answer="4", scorer="numeric")


@pytest.fixture(scope="module")
def tokenizer():
    """The demo tokenizer; each test swaps its own chat template in."""
    return AutoTokenizer.from_pretrained(demo.resolve_model_spec("demo:base"))


def detect(tokenizer, name: str) -> DetectedTemplate:
    tokenizer.chat_template = (FIXTURES / f"{name}.jinja").read_text(encoding="utf-8")
    return detect_template(tokenizer)


def gate_request(tokenizer, detected: DetectedTemplate) -> GenerationRequest:
    (request,) = build_requests(
        tokenizer, [PROBE], GenerationSettings(), model="m", switch=detected.switch
    )
    return request


def gate_prompt(tokenizer, detected: DetectedTemplate) -> str:
    request = gate_request(tokenizer, detected)
    assert request.prefilled is detected.prefilled  # read with the detected markup
    return request.prompt


def test_gemma4_channel_markup_is_read_from_the_template(tokenizer):
    detected = detect(tokenizer, "gemma4-style")
    assert detected.recognised, detected.evidence
    assert detected.describe()["tags"] == [["<|channel>thought", "<channel|>"]]
    assert (detected.prefilled, detected.closes_block) == (False, True)
    assert detected.switch.template_kwargs(True) == {"enable_thinking": True}
    prompt = gate_prompt(tokenizer, detected)
    assert "<|think|>" in prompt and prompt.endswith("<start_of_turn>model\n")
    cases = [
        ("<|channel>thought\n2 and 2 make 4.<channel|>4", "stop", V, "closed", "4"),
        ("<|channel>thought\n<channel|>4", "stop", E, "blank", "4"),
        ("<|channel>thought\n2 and 2 make", "length", T, "length", ""),
        ("4", "stop", M, "no_tags", "4"),
    ]
    for text, finish, status, detail, answer in cases:
        trace = classify(text, finish_reason=finish, prompt=prompt, fmt=detected.markup)
        assert (trace.status, trace.detail, trace.answer) == (status, detail, answer), text
    off = tokenizer.apply_chat_template(
        PROBE.chat_messages(), tokenize=False, add_generation_prompt=True
    )
    trace = classify("4", prompt=off, fmt=detected.markup)
    assert (trace.status, trace.detail) == (E, "disabled_by_prompt")


@pytest.mark.parametrize(
    ("name", "pair", "kwargs", "prefilled"),
    [
        ("reasoning-flag", ["<reasoning_start>", "<reasoning_end>"], {"reasoning": True}, True),
        (
            "reasoning-effort",
            ["<|start|><|think|>", "<|end|><|think|>"],
            {"reasoning_effort": "high"},
            False,
        ),
    ],
)
def test_a_switch_under_another_keyword_is_found_and_used(tokenizer, name, pair, kwargs, prefilled):
    detected = detect(tokenizer, name)
    assert detected.recognised, detected.evidence
    assert detected.describe()["tags"] == [pair]
    assert detected.closes_block  # thinking is off unless switched on
    assert detected.switch.template_kwargs(True) == kwargs
    assert detected.prefilled is prefilled
    prompt = gate_prompt(tokenizer, detected)
    open_tag, close_tag = pair
    opener = "" if prefilled else open_tag
    cases = [
        (f"{opener}2 and 2 make 4.{close_tag}4", "stop", V, "closed", "4"),
        (f"{opener}{close_tag}4", "stop", E, "blank", "4"),
        (f"{opener}2 and 2 make", "length", T, "length", ""),
        ("4", "stop", T if prefilled else M, "unterminated" if prefilled else "no_tags", ""
         if prefilled else "4"),
    ]  # fmt: skip
    for text, finish, status, detail, answer in cases:
        trace = classify(text, finish_reason=finish, prompt=prompt, fmt=detected.markup)
        assert (trace.status, trace.detail, trace.answer) == (status, detail, answer), text


def test_a_template_without_reasoning_stays_unrecognised(tokenizer):
    detected = detect(tokenizer, "no-reasoning")
    assert not detected.recognised
    assert detected.switch.kind == "none"
    assert "fell back to the default <think> markup" in detected.evidence


def unread_run(tokenizer, name: str, text: str) -> Run:
    """A run whose every generation is ``text``, classified with what detection found."""
    detected = detect(tokenizer, name)
    probes = ProbeSet(name="s", version="1", probes=(PROBE,))
    prompt = gate_prompt(tokenizer, detected)
    generation = Generation(
        probe_id="p", sample=0, prompt=prompt, text=text, finish_reason="stop",
        prompt_tokens=1, completion_tokens=1, prefilled=False,
    )  # fmt: skip
    outcomes = tuple(score_generations(probes, [generation], fmt=detected.markup))
    return Run(
        model="m", backend="stub", probe_set=probes, settings=GenerationSettings(),
        generations=(generation,), outcomes=outcomes, metrics=compute_metrics(outcomes, 0.95),
        trace=TraceSetup(detected, detected.markup),
    )  # fmt: skip


def test_all_missing_under_an_unrecognised_markup_says_to_set_trace_format(tokenizer):
    unread = unrecognised_markup(unread_run(tokenizer, "no-reasoning", "<|x|>2+2=4<|y|>4"))
    assert unread is not None and "set trace_format" in unread
    assert "not read as a collapse" in unread
    # A recognised markup with every trace missing is a collapse, reported as one.
    assert unrecognised_markup(unread_run(tokenizer, "gemma4-style", "4")) is None


def synthetic_template(open_tag: str, close_tag: str, switch: str) -> str:
    """A template whose reasoning field renders between the pair; ``switch`` turns it on."""
    return (
        "{%- for m in messages -%}<|turn|>{{ m['role'] }}\n"
        "{%- if m['role'] == 'assistant' and m.get('reasoning_content') -%}"
        f"{{{{ {open_tag!r} + m['reasoning_content'] + {close_tag!r} }}}}"
        "{%- endif -%}{{ m['content'] }}<|end|>\n{%- endfor -%}"
        "{%- if add_generation_prompt -%}<|turn|>assistant\n"
        f"{{%- if not ({switch} is defined and {switch}) -%}}"
        f"{{{{ {open_tag!r} + {close_tag!r} }}}}{{%- endif -%}}{{%- endif -%}}"
    )


MARKER = st.text(alphabet="<>|[]/_:abcxyz", min_size=2, max_size=8).filter(
    lambda text: any(c in "<>|[]" for c in text) and any(c.isalpha() for c in text)
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(MARKER, min_size=1, max_size=2).map("".join),
    st.lists(MARKER, min_size=1, max_size=2).map("".join),
    st.from_regex(r"[a-z]{3,8}_[a-z]{2,6}", fullmatch=True),
)
def test_a_synthetic_template_is_detected_with_its_pair_and_switch(
    tokenizer, open_tag, close_tag, switch
):
    assume(open_tag.lower() != close_tag.lower())
    assume(open_tag not in close_tag and close_tag not in open_tag)
    tokenizer.chat_template = synthetic_template(open_tag, close_tag, switch)
    detected = detect_template(tokenizer)
    assert detected.describe()["tags"] == [[open_tag, close_tag]], detected.evidence
    assert detected.switch.template_kwargs(True) == {switch: True}
    prompt = gate_prompt(tokenizer, detected)
    trace = classify(f"{open_tag}2 and 2 make 4.{close_tag}4", prompt=prompt, fmt=detected.markup)
    assert (trace.status, trace.answer) == (V, "4")


def test_a_system_turn_flag_switches_thinking_on(tokenizer):
    """Gemma 4's way: no keyword, a ``<|think|>`` flag the user writes into the system turn."""
    detected = detect(tokenizer, "gemma4-system-flag")
    assert detected.recognised, detected.evidence
    assert detected.describe()["tags"] == [["<|channel>thought", "<channel|>"]]
    assert (detected.prefilled, detected.closes_block) == (True, True)
    assert detected.switch.how_on() == "system flag '<|think|>' written into the system turn"
    prompt = gate_prompt(tokenizer, detected)
    assert "<start_of_turn>system\n<|think|>" in prompt
    assert prompt.endswith("<start_of_turn>model\n<|channel>thought\n")
    cases = [
        ("2 and 2 make 4.<channel|>4", "stop", V, "closed", "4"),
        ("<channel|>4", "stop", E, "blank", "4"),
        ("2 and 2 make", "length", T, "length", ""),
    ]
    for text, finish, status, detail, answer in cases:
        trace = classify(text, finish_reason=finish, prompt=prompt, fmt=detected.markup)
        assert (trace.status, trace.detail, trace.answer) == (status, detail, answer), text
    # A probe's own system message keeps its text after the flag; off, nothing is added.
    asks = Probe(
        id="s", answer="4", scorer="numeric",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
    )  # fmt: skip
    (on,) = build_requests(
        tokenizer, [asks], GenerationSettings(), model="m", switch=detected.switch
    )
    assert "<start_of_turn>system\n<|think|>\nBe brief.<end_of_turn>" in on.prompt
    off_settings = GenerationSettings(enable_thinking=False)
    (off,) = build_requests(tokenizer, [asks], off_settings, model="m", switch=detected.switch)
    assert "<|think|>" not in off.prompt and off.prompt.endswith("<channel|>")


def test_an_empty_block_of_any_shape_reads_a_new_keyword(tokenizer):
    """No turn shows reasoning: the block the thinking-off prompt writes is the markup, and
    the keyword is judged against it, not against ``<think>``."""
    tokenizer.chat_template = (
        "{%- for m in messages -%}<|turn|>{{ m['role'] }}\n{{ m['content'] }}<|end|>\n"
        "{%- endfor -%}{%- if add_generation_prompt -%}<|turn|>assistant\n"
        "{%- if think_mode != 'deep' -%}{{ '<|begin_thought|>\n<|end_thought|>' }}"
        "{%- endif -%}{%- endif -%}"
    )
    detected = detect_template(tokenizer)
    assert detected.recognised, detected.evidence
    assert detected.describe()["tags"] == [["<|begin_thought|>", "<|end_thought|>"]]
    assert detected.switch.template_kwargs(True) == {"think_mode": "deep"}
    prompt = gate_prompt(tokenizer, detected)
    trace = classify("<|begin_thought|>2+2=4<|end_thought|>4", prompt=prompt, fmt=detected.markup)
    assert (trace.status, trace.answer) == (V, "4")


def test_tags_only_named_in_the_instructions_are_used_unsure(tokenizer, caplog):
    tokenizer.chat_template = (
        "<|turn|>system\nYou may think in <think> tags.\n\nClose them with </think>.<|end|>\n"
        "{%- for m in messages -%}<|turn|>{{ m['role'] }}\n{{ m['content'] }}<|end|>\n"
        "{%- endfor -%}{%- if add_generation_prompt -%}<|turn|>assistant\n{%- endif -%}"
    )
    detected = detect_template(tokenizer)
    assert not detected.recognised
    assert detected.evidence.startswith("unsure: the rendered prompt names <think> and </think>")
    assert detected.describe()["tags"] == [["<think>", "</think>"]]
    assert "set trace_format" in caplog.text


def test_an_answer_header_after_the_closer_is_not_part_of_it(tokenizer):
    tokenizer.chat_template = (
        "{%- for m in messages -%}<|turn|>{{ m['role'] }}\n"
        "{%- if m.get('reasoning_content') -%}"
        "{{ '<think>' + m['reasoning_content'] + '</think><response>' + m['content'] + "
        "'</response>' }}{%- else -%}{{ m['content'] }}{%- endif -%}<|end|>\n"
        "{%- endfor -%}{%- if add_generation_prompt -%}<|turn|>assistant\n{%- endif -%}"
    )
    detected = detect_template(tokenizer)
    assert detected.recognised, detected.evidence
    assert detected.markup.describe() == {
        "markup": "think_response",
        "tags": [["<think>", "</think>"]],
        "answer_tags": ["<response>", "</response>"],
    }
    prompt = gate_prompt(tokenizer, detected)
    trace = classify("<think>2+2=4</think><response>4</response>", prompt=prompt,
                     fmt=detected.markup)  # fmt: skip
    assert (trace.status, trace.answer) == (V, "4")
