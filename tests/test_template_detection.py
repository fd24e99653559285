"""Reasoning markup, prefill and thinking switch detected from 20 real chat templates.

Each template in ../shared/chat-templates is swapped into the demo tokenizer (a real
transformers tokenizer) and rendered the way the gate renders it. The expected table below
was written by reading each template and the README row beside it. Hand-written outputs in
each family's markup then go through `classify` with the prompt the gate would send.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoTokenizer

from rtc_assert import demo
from rtc_assert.config import ConfigError, load_config
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationSettings, build_requests
from rtc_assert.probes.probe import Probe
from rtc_assert.record import run_record, session_record
from rtc_assert.reports.markdown import markdown_summary
from rtc_assert.reports.tables import template_notes
from rtc_assert.runs import run_model
from rtc_assert.traces.classify import STANDARD_TAGS, TraceFormat, TraceStatus, classify
from rtc_assert.traces.detection import (
    SAMPLE_QUESTION,
    TemplateDetectionError,
    detect_template,
)
from rtc_assert.traces.markups import FinalMarker, HarmonyChannels, ThinkResponse

V, E, T, M = TraceStatus.VALID, TraceStatus.EMPTY, TraceStatus.TRUNCATED, TraceStatus.MISSING
THINK = ("<think>", "</think>")
KW = "keyword "
NONE = "none (the template always thinks)"
FLAG = "system flag /no_think"

# file -> (markup, reasoning tags or final-marker prefill, prefilled with thinking on,
#          default prompt closes the block, thinking switch, keywords the gate passes)
EXPECTED = {
    "Qwen3": ("tags", THINK, False, False, KW + "enable_thinking", {"enable_thinking": True}),
    "QwQ-32B": ("tags", THINK, True, False, NONE, {}),
    "Qwen3-VL-Thinking": ("tags", THINK, True, False, NONE, {}),
    "DeepSeek-R1-Distill-Qwen": ("tags", THINK, True, False, NONE, {}),
    "DeepSeek-V3.1": ("tags", THINK, True, True, KW + "thinking", {"thinking": True}),
    "OLMo-3-Think": ("tags", THINK, True, False, NONE, {}),
    "Nemotron-Nano-v2": ("tags", THINK, True, False, FLAG, {}),
    "Nemotron-Super-49B-v1.5": ("tags", THINK, False, False, FLAG, {}),
    "gpt-oss": ("harmony", None, False, False, NONE, {}),
    "Kimi-K2-Thinking": ("tags", THINK, False, False, NONE, {}),
    "GLM-4.5": ("tags", THINK, False, False, KW + "enable_thinking", {"enable_thinking": True}),
    "GLM-4.6": ("tags", THINK, False, False, KW + "enable_thinking", {"enable_thinking": True}),
    "MiniMax-M2": ("tags", THINK, True, False, NONE, {}),
    "Seed-OSS": (
        "tags",
        ("<seed:think>", "</seed:think>"),
        False,
        False,
        KW + "thinking_budget",
        {},
    ),
    "Apriel-1.5-Thinker": ("final_marker", None, False, False, NONE, {}),
    "Apriel-1.6-Thinker": ("final_marker", "Here are my reasoning steps:", True, False, NONE, {}),
    "Magistral-Small-2509": ("tags", ("[THINK]", "[/THINK]"), False, False, NONE, {}),
    "Phi-4-reasoning-vision": ("tags", THINK, False, False, NONE, {}),
    "SmolLM3": ("tags", THINK, False, False, KW + "enable_thinking", {"enable_thinking": True}),
    "Granite-3.3": ("think_response", THINK, False, False, KW + "thinking", {"thinking": True}),
}


@pytest.fixture(scope="module")
def templates(shared_dir: Path) -> dict[str, str]:
    folder = shared_dir / "chat-templates"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the real chat templates are not available here")
    return {path.stem: path.read_text(encoding="utf-8") for path in folder.glob("*.jinja")}


@pytest.fixture(scope="module")
def demo_tokenizer_dir() -> str:
    return demo.resolve_model_spec("demo:base")


def tokenizer_with(folder: str, template: str):
    """The demo tokenizer, loaded by transformers, with another chat template swapped in."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = template
    return tokenizer


def test_every_template_in_the_folder_has_an_expectation(templates):
    assert sorted(templates) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detection_matches_the_table(templates, demo_tokenizer_dir, name):
    markup, tags, prefilled, closes_block, switch, gate_kwargs = EXPECTED[name]
    detected = detect_template(tokenizer_with(demo_tokenizer_dir, templates[name]))
    described = detected.describe()
    assert detected.recognised, detected.evidence
    assert detected.markup.name == markup
    if markup in ("tags", "think_response"):
        assert described["tags"] == [list(tags)]
    if markup == "final_marker":
        assert described["prefill"] == tags
    assert (detected.prefilled, detected.closes_block) == (prefilled, closes_block)
    assert detected.switch.describe() == switch
    assert detected.switch.template_kwargs(True) == gate_kwargs


def family_outputs(markup, tags, prefilled):
    """(case, completion, finish reason, status, detail, answer) in one family's markup."""
    if markup == "harmony":
        analysis, final = "<|channel|>analysis<|message|>", "<|start|>assistant<|channel|>final"
        return [
            ("valid", f"{analysis}2 and 2 make 4.<|end|>{final}<|message|>4<|return|>", "stop",
             V, "closed", "4"),
            ("empty", f"{analysis}<|end|>{final}<|message|>4", "stop", E, "blank", "4"),
            ("truncated", f"{analysis}2 and 2 make", "length", T, "length", ""),
            ("missing", "<|channel|>final<|message|>4", "stop", M, "no_analysis_channel", "4"),
        ]  # fmt: skip
    if markup == "final_marker":
        begin, end = "[BEGIN FINAL RESPONSE]", "[END FINAL RESPONSE]"
        no_marker = (
            ("stop without the marker", "4", "stop", T, "unterminated", "")
            if prefilled
            else ("missing", "4", "stop", M, "no_marker", "4")
        )
        return [
            ("valid", f"2 and 2 make 4.\n{begin}\n4\n{end}", "stop", V, "closed", "4"),
            ("empty", f"{begin}\n4\n{end}", "stop", E, "blank", "4"),
            ("truncated", "2 and 2 make", "length", T, "length", ""),
            no_marker,
        ]
    open_tag, close_tag = tags
    opener = "" if prefilled else open_tag
    answer = "<response>4</response>" if markup == "think_response" else "4"
    # A prefilled prompt starts the reasoning: output without a closer is truncated (rule 2).
    no_tags = (
        ("stop without a closer", "4", "stop", T, "unterminated", "")
        if prefilled
        else ("missing", answer, "stop", M, "no_tags", "4")
    )
    return [
        ("valid", f"{opener}\n2 and 2 make 4.\n{close_tag}\n\n{answer}", "stop", V, "closed", "4"),
        ("empty", f"{opener}\n\n{close_tag}\n\n{answer}", "stop", E, "blank", "4"),
        ("truncated", f"{opener}\n2 and 2 make", "length", T, "length", ""),
        no_tags,
    ]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_family_outputs_classify_with_the_gate_prompt(templates, demo_tokenizer_dir, name):
    tokenizer = tokenizer_with(demo_tokenizer_dir, templates[name])
    detected = detect_template(tokenizer)
    probe = Probe(id="p", prompt=SAMPLE_QUESTION, answer="4", scorer="numeric")
    (request,) = build_requests(
        tokenizer, [probe], GenerationSettings(), model=name, switch=detected.switch
    )
    markup, tags, prefilled, *_ = EXPECTED[name]
    for case, text, finish, status, detail, answer in family_outputs(markup, tags, prefilled):
        trace = classify(text, finish_reason=finish, prompt=request.prompt, fmt=detected.markup)
        assert (trace.status, trace.detail, trace.answer) == (status, detail, answer), case
        if status is V:
            assert trace.reasoning == "2 and 2 make 4."


def test_deepseek_v31_default_prompt_is_thinking_off_not_missing(templates, demo_tokenizer_dir):
    tokenizer = tokenizer_with(demo_tokenizer_dir, templates["DeepSeek-V3.1"])
    detected = detect_template(tokenizer)
    probe = Probe(id="p", prompt=SAMPLE_QUESTION, answer="4", scorer="numeric")
    default = GenerationSettings(enable_thinking=None)  # passes no keyword: the default prompt
    (off,) = build_requests(tokenizer, [probe], default, model="v3.1", switch=detected.switch)
    (on,) = build_requests(tokenizer, [probe], GenerationSettings(), model="v3.1")
    assert off.prompt.endswith("</think>") and on.prompt.endswith("<think>")
    answer_only = classify("The answer is 4.", prompt=off.prompt, fmt=detected.markup)
    assert (answer_only.status, answer_only.detail) == (E, "disabled_by_prompt")
    thinking = classify("2 and 2 make 4.</think>4", prompt=on.prompt, fmt=detected.markup)
    assert (thinking.status, thinking.detail) == (V, "closed")


def test_switching_thinking_off_where_the_template_cannot(templates, demo_tokenizer_dir):
    probe = Probe(id="p", prompt=SAMPLE_QUESTION, answer="4", scorer="numeric")
    off = GenerationSettings(enable_thinking=False)
    qwq = tokenizer_with(demo_tokenizer_dir, templates["QwQ-32B"])
    with pytest.raises(TemplateDetectionError, match="not at all: the model always thinks"):
        build_requests(qwq, [probe], off, model="qwq")
    seed = tokenizer_with(demo_tokenizer_dir, templates["Seed-OSS"])
    (request,) = build_requests(seed, [probe], off, model="seed")
    assert request.prompt.endswith("<seed:think><seed:cot_budget_reflect>")


PLAIN_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_unknown_family_falls_back_to_think_and_says_so(demo_tokenizer_dir, caplog):
    detected = detect_template(tokenizer_with(demo_tokenizer_dir, PLAIN_CHATML))
    assert not detected.recognised
    assert detected.markup is STANDARD_TAGS
    assert "no reasoning markup shows" in detected.evidence
    assert "fell back to the default <think> markup" in detected.evidence
    assert "using the default <think> markup" in caplog.text


def test_the_run_record_and_report_say_what_was_detected_and_used(demo_tokenizer_dir):
    backend = load_backend("transformers", resolve_model("demo:base"), {"device": "cpu"})
    probes = demo.probes("reasoning").head(4)
    settings = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS)
    detected_run = run_record(run_model(backend, probes, settings, model="demo:base"))
    assert detected_run.trace_format["detected"]["recognised"] is True
    assert detected_run.trace_format["used"]["template_kwargs"] == {"enable_thinking": True}
    assert detected_run.metrics.valid_rate.value == 1.0

    backend.tokenizer.chat_template = PLAIN_CHATML  # a family the detector does not know
    run = run_model(backend, probes, settings, model="demo:base")
    backend.close()
    record = session_record({}, [run], [], {}, {})
    fallback = record.runs[0].trace_format
    assert fallback["used"]["tags"][0] == ["<think>", "</think>"]
    assert fallback["used"]["template_kwargs"] == {}
    assert record.runs[0].metrics.valid_rate.value == 1.0  # the default reads <think> traces
    (note,) = template_notes(record)
    assert note.startswith("demo:base: no reasoning markup shows")
    # Markdown shows "<think>" as text, not as an HTML tag that GitHub would drop.
    shown = note.replace("<", "&lt;")
    assert f"- trace format: {shown}" in markdown_summary(record)


CONFIG = """\
candidate: demo:base
probe_sets:
  reasoning: {source: "demo:reasoning"}
gates:
  - metric: valid_rate
    min: 0.5
"""


def write_config(tmp_path: Path, trace_format: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(CONFIG + trace_format, encoding="utf-8")
    return path


def test_trace_format_overrides_detection(tmp_path, templates, demo_tokenizer_dir):
    detected = detect_template(tokenizer_with(demo_tokenizer_dir, templates["QwQ-32B"]))
    unchanged = load_config(write_config(tmp_path, "")).trace_format.setup(detected)
    assert (unchanged.markup, unchanged.prefilled, unchanged.overridden) == (
        detected.markup,
        None,
        (),
    )

    custom = (
        "trace_format:\n  open_tag: '<|begin_of_thought|>'\n"
        "  close_tag: '<|end_of_thought|>'\n  prefilled: false\n"
    )
    setup = load_config(write_config(tmp_path, custom)).trace_format.setup(detected)
    assert setup.markup == TraceFormat("<|begin_of_thought|>", "<|end_of_thought|>")
    used = setup.describe(True)["used"]
    assert (used["prefilled"], used["prefilled_from"]) == (False, "trace_format")
    assert used["overridden"] == ["open_tag", "close_tag", "prefilled"]
    assert setup.describe(True)["detected"]["prefilled"] is True
    # prefilled: false wins over the prompt's <think>\n tail: tag-free output is missing.
    prompt = "<|im_start|>assistant\n<think>\n"
    trace = classify("4", prompt=prompt, fmt=setup.markup, prefilled=setup.prefilled)
    assert trace.status is M

    for name, kind in (
        ("harmony", HarmonyChannels),
        ("final_marker", FinalMarker),
        ("think_response", ThinkResponse),
    ):
        config = load_config(write_config(tmp_path, f"trace_format: {{markup: {name}}}\n"))
        assert isinstance(config.trace_format.setup(detected).markup, kind)


@pytest.mark.parametrize(
    ("trace_format", "message"),
    [
        (
            "trace_format:\n  markup: harmony\n  open_tag: '<a>'\n  close_tag: '</a>'\n",
            r"thresholds.yaml:7: trace_format: open_tag/close_tag do not apply to markup 'harmony'",
        ),
        ("trace_format: {markup: channels}\n", r"thresholds.yaml:7: trace_format.markup: Input"),
        ("trace_format: {prefilled: maybe}\n", r"thresholds.yaml:7: trace_format.prefilled"),
    ],
)
def test_trace_format_errors_name_line_and_field(tmp_path, trace_format, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, trace_format))


WORDS = st.text(alphabet="abc 24+=\n.", max_size=20)


@given(WORDS, WORDS, st.sampled_from(["stop", "length", None]))
def test_harmony_status_follows_the_channels(reasoning, answer, finish):
    fmt = HarmonyChannels()
    closed = classify(
        f"<|channel|>analysis<|message|>{reasoning}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{answer}",
        finish_reason=finish,
        fmt=fmt,
    )
    assert closed.status is (V if reasoning.strip() else E)
    assert (closed.reasoning, closed.answer) == (reasoning.strip(), answer.strip())
    cut = classify(f"<|channel|>analysis<|message|>{reasoning}", finish_reason=finish, fmt=fmt)
    assert cut.status is T and cut.answer == ""
    only_final = classify(f"<|channel|>final<|message|>{answer}", finish_reason=finish, fmt=fmt)
    assert only_final.status is M and only_final.answer == answer.strip()


@given(WORDS, WORDS, st.booleans(), st.sampled_from(["stop", "length", None]))
def test_final_marker_status_follows_the_marker(reasoning, answer, prefilled, finish):
    fmt = FinalMarker()
    closed = classify(
        f"{reasoning}[BEGIN FINAL RESPONSE]{answer}[END FINAL RESPONSE]",
        prefilled=prefilled,
        finish_reason=finish,
        fmt=fmt,
    )
    assert closed.status is (V if reasoning.strip() else E)
    assert closed.answer == answer.strip()
    unmarked = classify(reasoning, prefilled=prefilled, finish_reason=finish, fmt=fmt)
    assert unmarked.status is (T if prefilled or finish == "length" else M)
