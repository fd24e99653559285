"""Generations other tools wrote: readers, pairing, the markup rule, front-ends, bad input.

The fixtures under tests/fixtures/generations/ were written by lm-evaluation-harness 0.4.13
and inspect-ai 0.3.285 themselves (regenerate.py there holds the commands).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from rtc_assert.cli.main import main
from rtc_assert.config import ConfigError, Overrides, RtcConfig, load_config
from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.fingerprint import model_fingerprint
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationRequest
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.ingest import (
    FileDigest,
    GenerationsFileError,
    detect_format,
    generations_run,
    read_generations,
)
from rtc_assert.ingest.plain import SCHEMA_FILE, schema
from rtc_assert.probes.probe import load_probe_set
from rtc_assert.record import RECORD_VERSION, read_record, run_record
from rtc_assert.runs import score_generations
from rtc_assert.session import RtcSession
from rtc_assert.traces.classify import TraceFormat

FIXTURES = Path(__file__).parent / "fixtures" / "generations"
PROBES = FIXTURES / "probes.jsonl"
LM_EVAL = str(FIXTURES / "lm-eval" / "{}" / "samples_rtc_demo_reasoning.jsonl")
INSPECT = str(FIXTURES / "inspect" / "{}-deflate.eval")
INSPECT_JSON = str(FIXTURES / "inspect" / "{}.json")
"""The same task and probes as INSPECT, written by ``inspect eval --log-format json``."""
EXPECTED = {"base": {"valid": 32}, "collapsed": {"empty": 32}}
"""What rtc-assert's own run of each checkpoint gives on these probes (see the slow test)."""


@pytest.fixture(scope="module")
def probes():
    return load_probe_set(PROBES)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("demo:base"))


def statuses(run) -> dict[str, int]:
    return dict(Counter(outcome.trace.status.value for outcome in run.outcomes))


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def file_fingerprint(path: str | Path, fmt: str) -> dict[str, str]:
    """What a fingerprint names of a generations file read: path, format and SHA-256."""
    sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"file": str(path), "format": fmt, "sha256": sha256}


def plain_rows(probes, completion="<think>r</think>1", **extra) -> list[dict]:
    return [{"probe_id": p.id, "completion": completion, **extra} for p in probes]


def test_the_shipped_schema_is_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == schema()


@pytest.mark.parametrize("name", ["base", "collapsed"])
@pytest.mark.parametrize("layout", [LM_EVAL, INSPECT, INSPECT_JSON])
def test_files_the_real_tools_wrote_give_rtc_asserts_own_statuses(probes, tokenizer, name, layout):
    run = generations_run(layout.format(name), probes, model=name, tokenizer=tokenizer)
    assert statuses(run) == EXPECTED[name]
    assert run.notes and "no finish reason for 32 of 32" in run.notes[0]


def test_the_zstd_log_inspect_wrote_reads_where_zstd_is_available(probes, tokenizer):
    path = FIXTURES / "inspect" / "base.eval"
    if importlib.util.find_spec("zipfile_zstd") is None and sys.version_info < (3, 14):
        with pytest.raises(GenerationsFileError, match="zstd-compressed.*zipfile-zstd"):
            generations_run(path, probes, model="base", tokenizer=tokenizer)
    else:
        run = generations_run(path, probes, model="base", tokenizer=tokenizer)
        assert statuses(run) == EXPECTED["base"]


def test_formats_are_detected(tmp_path, probes):
    assert detect_format(Path(LM_EVAL.format("base"))) == "lm-eval"
    assert detect_format(Path(INSPECT.format("base"))) == "inspect"
    assert detect_format(Path(INSPECT_JSON.format("base"))) == "inspect"
    assert detect_format(write_lines(tmp_path / "p.jsonl", plain_rows(probes))) == "plain"
    with pytest.raises(GenerationsFileError, match=r"p2.jsonl:1: not a generations file"):
        detect_format(write_lines(tmp_path / "p2.jsonl", [{"x": 1}]))
    # Inspect's JSON log on one line (no indentation) is told by its first bytes as well.
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(json.loads(Path(INSPECT_JSON.format("base")).read_text())))
    assert detect_format(compact) == "inspect"
    assert records(compact) == records(Path(INSPECT_JSON.format("base")))
    other = tmp_path / "results.json"
    other.write_text(json.dumps({"results": {}, "samples": []}, indent=2))
    with pytest.raises(GenerationsFileError, match=r"results.json:1: one JSON document .*not an"):
        detect_format(other)


def records(path: Path, fmt=None) -> list[tuple]:
    """What a reader gives of each record, but where it was read."""
    fields = ("probe_id", "sample", "text", "split", "reasoning_tokens", "finish_reason")
    fields += ("prompt_tokens", "completion_tokens")
    return sorted(
        tuple(getattr(record, name) for name in fields) for record in read_generations(path, fmt)
    )


@pytest.mark.parametrize("name", ["base", "collapsed"])
def test_inspects_json_log_reads_as_its_eval_log(name):
    # Two greedy runs of one task, one per log format: the same samples, record by record.
    json_log = records(Path(INSPECT_JSON.format(name)), "inspect")
    assert len(json_log) == 32
    assert json_log == records(Path(INSPECT.format(name)), "inspect")


def inspect_sample(probe_id: str, content, stop_reason="stop", epoch=1, **extra) -> dict:
    message = {"role": "assistant", "content": content, "source": "generate"}
    output = {"model": "m", "choices": [{"message": message, "stop_reason": stop_reason}]}
    output["usage"] = {"input_tokens": 5, "output_tokens": 9, "total_tokens": 14}
    return {"id": probe_id, "epoch": epoch, "input": "x", "target": "1", "output": output, **extra}


def write_inspect(path: Path, samples: list[dict]) -> Path:
    """The samples as Inspect lays them out: .eval members, or the JSON log's samples list."""
    base = json.loads(Path(INSPECT_JSON.format("base")).read_text(encoding="utf-8"))
    if path.suffix == ".json":
        path.write_text(json.dumps({**base, "samples": samples}, indent=2), encoding="utf-8")
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.json", json.dumps({k: base[k] for k in ("version", "eval")}))
        for sample in samples:
            name = f"samples/{sample.get('id')}_epoch_{sample.get('epoch')}.json"
            archive.writestr(name, json.dumps(sample))
    return path


@pytest.mark.parametrize("suffix", [".eval", ".json"])
def test_inspect_parts_stop_reasons_and_epochs_in_either_log_format(tmp_path, probes, suffix):
    ids = [p.id for p in probes.head(3)]
    reasoning, blank = ({"type": "reasoning", "reasoning": text} for text in ("r", " "))
    nan = {"value": float("nan")}
    samples = [
        # Inspect writes a NaN score as NaN (not JSON, but Python's json reads it).
        inspect_sample(ids[0], [reasoning, {"type": "text", "text": "7"}], scores={"m": nan}),
        inspect_sample(ids[0], "<think>a", stop_reason="max_tokens", epoch=2),
        inspect_sample(ids[1], "<think>a", stop_reason="model_length"),
        inspect_sample(ids[1], "<think>a", stop_reason="unknown", epoch=2),
        inspect_sample(ids[2], [blank, {"type": "text", "text": "1"}]),
        inspect_sample(ids[2], "<think>a</think>1", stop_reason="tool_calls", epoch=2),
    ]
    path = write_inspect(tmp_path / f"log{suffix}", samples)
    run = generations_run(path, probes.head(3), model="m", markup=TraceFormat())
    got = {(o.probe_id, o.sample): (o.trace.status.value, o.trace.detail) for o in run.outcomes}
    assert got == {
        (ids[0], 0): ("valid", "closed"),
        (ids[0], 1): ("truncated", "length"),
        (ids[1], 0): ("truncated", "length"),
        (ids[1], 1): ("truncated", "unknown"),
        (ids[2], 0): ("empty", "blank,closed"),  # the server-split rules: a blank field
        (ids[2], 1): ("valid", "closed"),
    }
    assert {(g.prompt_tokens, g.completion_tokens) for g in run.generations} == {(5, 9)}


@pytest.mark.parametrize("suffix", [".eval", ".json"])
@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ("unknown id", r"{where}: 'nope' is no probe of probes \(32 probes\).*another task"),
        ("no output", r"{where}: sample 'reasoning-003' has no output \(error: 'boom'\)"),
        ("no epoch", r"{where}: field epoch is missing"),
        ("no content", r"{where}: field message.content is missing"),
        ("stop reason", r"{where}: finish reason 'halted' is not one of"),
    ],
)
def test_bad_inspect_samples_name_file_and_sample(tmp_path, probes, suffix, change, pattern):
    samples = [inspect_sample(p.id, "<think>r</think>1") for p in probes]
    bad = samples[3]
    member = f"{'nope' if change == 'unknown id' else bad['id']}_epoch_\\w+"
    where = r"log.json!samples\[3\]" if suffix == ".json" else rf"log.eval!samples/{member}\.json"
    choice = bad["output"]["choices"][0]
    if change == "unknown id":
        bad["id"] = "nope"
    elif change == "no output":
        bad["output"]["choices"] = []
        bad["error"] = "boom"
    elif change == "no epoch":
        bad.pop("epoch")
    elif change == "no content":
        choice["message"].pop("content")
    elif change == "stop reason":
        choice["stop_reason"] = "halted"
    path = write_inspect(tmp_path / f"log{suffix}", samples)
    with pytest.raises(GenerationsFileError, match=pattern.format(where=where)):
        generations_run(path, probes, model="m", markup=TraceFormat())


INSPECT_VLLM = FIXTURES / "inspect-vllm" / "deepseek_r1" / "base.eval"
"""A log of Inspect's ``vllm`` provider against a real ``vllm serve --reasoning-parser
deepseek_r1`` (see test_ingest_split.py): each message a reasoning part and a text part, all
32 ``valid``."""
BLOB = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa/WBMkJYqG+5XShC2tQ6Wx+="
"""What a redacted part's ``reasoning`` holds: an encrypted blob or a signature, not text."""


def redacted(**extra) -> dict:
    return {"type": "reasoning", "reasoning": BLOB, "redacted": True, **extra}


REDACTIONS = {
    # sample: (its new content from the real (reasoning part, text part), its stop reason)
    0: (lambda r, t: [redacted(), t], "stop"),  # Anthropic's redacted_thinking
    # Inspect >= 0.3.156 writes Anthropic's summarized thinking so: a summary, not the trace.
    1: (lambda r, t: [redacted(summary=r["reasoning"]), t], "stop"),
    2: (lambda r, t: [redacted()], "max_tokens"),  # cut before any answer
    3: (lambda r, t: [r, redacted(), t], "stop"),  # visible reasoning beside a redacted part
    4: (lambda r, t: [{**r, "reasoning": " "}, redacted(), t], "stop"),  # blank beside one
}
REDACTED_TRACES = {
    0: ("missing", "hidden"),
    1: ("missing", "hidden"),
    2: ("missing", "hidden"),
    3: ("valid", "closed,partly_hidden"),  # hidden text cannot undo a valid trace
    4: ("missing", "hidden"),  # nor could a blank visible part say it is empty
}


def real_inspect_samples(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("samples/"))
        return [json.loads(archive.read(name)) for name in names]


def redacted_log(path: Path) -> Path:
    """The real log, with the samples of `REDACTIONS` redacted as hosted providers' are and
    their reasoning-token count dropped (the part alone says the reasoning is hidden)."""
    samples = real_inspect_samples(INSPECT_VLLM)
    for index, (change, stop_reason) in REDACTIONS.items():
        choice = samples[index]["output"]["choices"][0]
        reasoning, text = choice["message"]["content"]
        assert (reasoning["type"], text["type"]) == ("reasoning", "text")
        choice["message"]["content"] = change(reasoning, text)
        choice["stop_reason"] = stop_reason
        samples[index]["output"]["usage"].pop("reasoning_tokens")
    return write_inspect(path, samples)


@pytest.mark.parametrize("suffix", [".eval", ".json"])
def test_redacted_reasoning_in_an_inspect_log_is_hidden_reasoning(tmp_path, probes, suffix):
    run = generations_run(redacted_log(tmp_path / f"log{suffix}"), probes, model="m")
    kept = generations_run(INSPECT_VLLM, probes, model="m")
    ids = [sample["id"] for sample in real_inspect_samples(INSPECT_VLLM)]
    by_id = {o.probe_id: o for o in run.outcomes}
    kept_by_id = {o.probe_id: o for o in kept.outcomes}
    generations = {g.probe_id: g for g in run.generations}
    got = {i: (by_id[ids[i]].trace.status.value, by_id[ids[i]].trace.detail) for i in REDACTIONS}
    assert got == REDACTED_TRACES
    others = {
        (o.trace.status.value, o.trace.detail)
        for o in run.outcomes
        if o.probe_id not in {ids[i] for i in REDACTIONS}
    }
    assert others == {("valid", "closed")}
    # Hidden traces are live o-series ones: no reasoning text, the answer kept and scored.
    chat = load_backend("openai-chat", resolve_model("m"), {"base_url": "http://127.0.0.1:9"})
    for index in (0, 1, 2, 4):
        outcome, generation = by_id[ids[index]], generations[ids[index]]
        assert generation.split is not None and generation.split.hidden
        usage = {"completion_tokens_details": {"reasoning_tokens": 80}}
        finish = "length" if index == 2 else "stop"
        message = {"role": "assistant", "content": generation.text}
        body = {"choices": [{"message": message, "finish_reason": finish}], "usage": usage}
        live = chat.parse(GenerationRequest(probes.by_id()[ids[index]], "", 0), body)
        assert score_generations(probes, [live])[0].trace == outcome.trace
        assert generation.finish_reason == finish
        assert outcome.trace.reasoning == "" and BLOB not in outcome.trace.answer
    for index in (0, 1, 3, 4):  # the text parts are still the answer
        assert by_id[ids[index]].trace.answer == kept_by_id[ids[index]].trace.answer
        assert by_id[ids[index]].correct == kept_by_id[ids[index]].correct
    assert by_id[ids[3]].trace.reasoning == kept_by_id[ids[3]].trace.reasoning
    assert generations[ids[2]].text == "" and by_id[ids[2]].trace.answer == ""
    # The run says so, as a live one does, and its status gates fail instead of passing.
    assert run.metrics.hidden_reasoning == 4
    why = run.metrics.status_unknown()
    assert why is not None and why.startswith("4 of 32 generations have hidden reasoning")
    for metric in ("valid_rate", "empty_rate", "reasoning_conditioned_accuracy"):
        gate = GateSpec(probe_set=probes.name, metric=metric, kind="min", threshold=0.0)
        result = evaluate_gate(gate, run, None, DecisionConfig())
        assert not result.passed and f"for the candidate: {why}" in result.reason
    gate = GateSpec(probe_set=probes.name, metric="answer_accuracy", kind="min", threshold=0.0)
    assert evaluate_gate(gate, run, None, DecisionConfig()).passed
    fields = {g.probe_id: g.reasoning_field for g in run_record(run).generations}
    assert [fields[ids[i]] for i in range(4)] == ["redacted reasoning part"] * 3 + ["reasoning"]
    assert kept.metrics.hidden_reasoning == 0 and kept.metrics.status_unknown() is None


def test_eval_of_a_redacted_log_shows_its_status_rates_as_unknown(capsys, tmp_path, monkeypatch):
    """What the command prints and writes: no VR of 0.875 (the 28 visible traces of 32)."""
    monkeypatch.setenv("COLUMNS", "160")  # the table's cells on one line each
    report = tmp_path / "report"
    log = redacted_log(tmp_path / "log.eval")
    assert (
        main(["eval", "--generations", str(log), "--probes", str(PROBES), "--report", str(report)])
        == 0
    )
    printed = " ".join(capsys.readouterr().out.split())
    unknown = "n/a (hidden reasoning)"
    assert f"VR valid reasoning │ {unknown} │" in printed
    assert "pass@1 answers │ 0.969 [0.84, 0.99] │" in printed  # 31 of 32 answers are right
    assert f"VR, ER, TR, MR and Rpass@1 are {unknown}: 4 of 32 generations have hidden" in printed
    assert "0.875" not in printed
    rates = json.loads((report / "rtc-run.json").read_text())["runs"][0]["metrics"]["rates"]
    assert rates["valid_rate"]["value"] is None and rates["valid_rate"]["successes"] == 28
    assert rates["answer_accuracy"]["value"] is not None
    assert f"| VR valid reasoning | {unknown} |" in (report / "summary.md").read_text()
    assert f"<td>{unknown}</td>" in (report / "report.html").read_text()


@pytest.mark.parametrize("suffix", [".eval", ".json"])
def test_an_inspect_log_without_samples_says_so_in_either_format(tmp_path, probes, suffix):
    path = write_inspect(tmp_path / f"log{suffix}", [])
    with pytest.raises(GenerationsFileError, match=rf"log\{suffix}: holds no generations \(0 sam"):
        generations_run(path, probes, model="m", markup=TraceFormat())


@pytest.mark.parametrize("layout", [INSPECT, INSPECT_JSON])
def test_an_inspect_log_of_another_task_is_refused(probes, tokenizer, layout):
    renamed = [p.model_copy(update={"id": f"other-{p.id}"}) for p in probes.probes]
    other = probes.model_copy(update={"name": "other", "probes": renamed})
    first = "!samples/reasoning-000_epoch_1.json" if layout == INSPECT else r"!samples\[0\]"
    pattern = rf"{first}: 'reasoning-000' is no probe of other"
    with pytest.raises(GenerationsFileError, match=pattern):
        generations_run(layout.format("base"), other, model="m", tokenizer=tokenizer)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ("truncated", r"log.json:\d+: not a complete JSON document \(.*\); a log cut off"),
        ("no samples", r"log.json: holds no generations \(0 samples\): Inspect logged no samples"),
        ("empty samples", r"log.json: holds no generations \(0 samples\)"),
        ("samples not a list", r"log.json: field samples must be list, got dict"),
        ("not inspect", r"log.json: not an Inspect log: neither an .eval log .* nor a JSON log"),
        ("jsonl", r"log.json: not an Inspect log"),
        ("not utf-8", r"log.json: byte \d+ is not UTF-8"),
    ],
)
def test_bad_inspect_json_logs_name_the_file(tmp_path, probes, tokenizer, change, pattern):
    path = tmp_path / "log.json"
    text = Path(INSPECT_JSON.format("base")).read_text(encoding="utf-8")
    log = json.loads(text)
    if change == "truncated":  # cut off inside a sample, as an interrupted copy leaves it
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    elif change == "no samples":  # a header-only log (inspect eval --no-log-samples)
        path.write_text(json.dumps({k: v for k, v in log.items() if k != "samples"}, indent=2))
    elif change == "empty samples":
        path.write_text(json.dumps({**log, "samples": []}, indent=2))
    elif change == "samples not a list":
        path.write_text(json.dumps({**log, "samples": {"0": log["samples"][0]}}, indent=2))
    elif change == "not inspect":
        path.write_text(json.dumps({"results": log["results"], "samples": log["samples"]}))
    elif change == "jsonl":  # never read as one document, however long
        write_lines(path, plain_rows(probes, finish_reason="stop"))
    elif change == "not utf-8":
        path.write_bytes(text.encode("utf-8").replace(b"reasoning-005", b"reasoning-\xff05"))
    with pytest.raises(GenerationsFileError, match=pattern):
        generations_run(path, probes, model="m", fmt="inspect", tokenizer=tokenizer)


def test_lm_eval_with_think_end_token_is_refused(tmp_path, probes):
    for name in ("samples_rtc_demo_reasoning.jsonl", "results_rtc_demo_reasoning.json"):
        shutil.copy(FIXTURES / "lm-eval" / "base" / name, tmp_path / name)
    results = tmp_path / "results_rtc_demo_reasoning.json"
    data = json.loads(results.read_text())
    data["config"]["model_args"]["think_end_token"] = "</think>"
    results.write_text(json.dumps(data))
    with pytest.raises(GenerationsFileError, match="think_end_token=.*reasoning is gone"):
        generations_run(tmp_path / "samples_rtc_demo_reasoning.jsonl", probes, model="m")


def test_plain_jsonl_finish_reasons_and_the_server_split(tmp_path, probes):
    ids = [p.id for p in probes.head(5)]
    rows = [
        {"probe_id": ids[0], "completion": "<think>a</think>1", "finish_reason": "stop"},
        {"probe_id": ids[1], "completion": "<think>a", "finish_reason": "length"},
        {"probe_id": ids[2], "completion": "<think>a"},
        {"probe_id": ids[3], "reasoning": "r", "completion": "7", "finish_reason": "stop"},
        {"probe_id": ids[4], "reasoning": "r", "completion": ""},
    ]
    run = generations_run(
        write_lines(tmp_path / "g.jsonl", rows), probes.head(5), model="m", markup=TraceFormat()
    )
    got = [(o.trace.status.value, o.trace.detail) for o in run.outcomes]
    assert got == [
        ("valid", "closed"),
        ("truncated", "length"),
        ("truncated", "unknown"),
        ("valid", "closed"),
        ("valid", "closed"),
    ]
    assert "no finish reason for 2 of 5" in run.notes[0] and "1 truncated" in run.notes[0]


def test_raw_completions_without_a_named_markup_are_refused(tmp_path, probes):
    path = write_lines(tmp_path / "g.jsonl", plain_rows(probes))
    with pytest.raises(GenerationsFileError, match=r"g.jsonl:1: a raw completion.*trace_format"):
        generations_run(path, probes, model="m")


def test_openai_batch_chat_with_reasoning_fields_and_completions(tmp_path, probes):
    def line(custom_id, choice):
        body = {"object": "chat.completion", "choices": [choice], "usage": {"prompt_tokens": 3}}
        return {"id": "b", "custom_id": custom_id, "response": {"status_code": 200, "body": body}}

    ids = [p.id for p in probes.head(4)]
    rows = [
        line(ids[0], {"message": {"content": "9", "reasoning": "x"}, "finish_reason": "stop"}),
        line(
            ids[1],
            {"message": {"content": None, "reasoning_content": "x"}, "finish_reason": "length"},
        ),
        line(ids[2], {"message": {"content": None, "reasoning": "x"}, "finish_reason": "stop"}),
        line(ids[3], {"text": "<think>t</think>4", "finish_reason": "stop"}),
    ]
    run = generations_run(
        write_lines(tmp_path / "batch.jsonl", rows), probes.head(4), model="m", markup=TraceFormat()
    )
    got = [(o.trace.status.value, o.trace.detail) for o in run.outcomes]
    assert got == [
        ("valid", "closed"),
        ("truncated", "length"),
        ("truncated", "unterminated_or_misrouted"),  # as a live chat response of this shape
        ("valid", "closed"),
    ]
    assert [g.split.field if g.split else None for g in run.generations] == [
        "reasoning",
        "reasoning_content",
        "reasoning",
        None,
    ]
    rows[0] = {**rows[0], "response": {"status_code": 500, "body": {}}}
    with pytest.raises(GenerationsFileError, match=r"batch.jsonl:1: request .* status 500"):
        generations_run(write_lines(tmp_path / "batch.jsonl", rows), probes.head(4), model="m")


@pytest.mark.parametrize(
    ("rows", "pattern"),
    [
        ([], r"g.jsonl: holds no generations \(0 records\)"),
        ("truncated", r"g.jsonl:2: not a JSON line .*cut off"),
        ([{"probe_id": "nope", "completion": "x"}], r"g.jsonl:1: 'nope' is no probe of"),
        ("duplicate", r"g.jsonl:3: a second record for probe 'reasoning-000' sample 0"),
        ("missing", r"g.jsonl: 1 of 32 probes of .* have no record: 'reasoning-031'"),
        ([{"probe_id": "reasoning-000"}], r"g.jsonl:1: field completion: Field required"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, probes, rows, pattern):
    path = tmp_path / "g.jsonl"
    good = plain_rows(probes, finish_reason="stop")
    if rows == "truncated":
        path.write_text(json.dumps(good[0]) + "\n" + json.dumps(good[1])[:30] + "\n")
    elif rows == "duplicate":
        write_lines(path, [*good[:2], good[0], *good[2:]])
    elif rows == "missing":
        write_lines(path, good[:-1])
    else:
        write_lines(path, rows)
    with pytest.raises(GenerationsFileError, match=pattern):
        generations_run(path, probes, model="m", markup=TraceFormat())


def test_a_log_of_another_task_is_refused(tmp_path, tokenizer):
    other = load_probe_set(PROBES).model_copy(update={"name": "other"})
    shifted = other.model_copy(update={"probes": other.probes[1:] + other.probes[:1]})
    lines = [json.loads(line) for line in Path(LM_EVAL.format("base")).read_text().splitlines()]
    for line in lines:  # a task whose documents carry no probe id: paired by doc_id
        line["doc"].pop("id")
        line["target"] = line["doc"]["answer"]
    path = write_lines(tmp_path / "samples_other.jsonl", lines)
    with pytest.raises(GenerationsFileError, match=r":1: doc_id 0's reference .*another task"):
        generations_run(path, shifted, model="m", tokenizer=tokenizer)
    assert statuses(generations_run(path, other, model="m", tokenizer=tokenizer)) == {"valid": 32}


THRESHOLDS = """\
version: 1
candidate: demo:collapsed
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {probes}}}
generations:
  candidate:
    reasoning: {candidate}
  base:
    reasoning: {{file: {base}, format: inspect}}
gates:
  - metric: valid_rate
    max_drop: 0.15
"""


@pytest.mark.parametrize("inspect_log", [INSPECT, INSPECT_JSON])
def test_thresholds_yaml_gates_on_files(tmp_path, inspect_log):
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        THRESHOLDS.format(
            probes=PROBES, candidate=LM_EVAL.format("collapsed"), base=inspect_log.format("base")
        )
    )
    config = load_config(path)
    session = RtcSession(config=config, config_dir=tmp_path)
    (result,) = session.decide_all()
    assert not result.passed
    assert {run.model for run in session.runs} == {"demo:collapsed", "generations:base"}


def test_a_gate_against_a_base_log_with_redacted_reasoning_fails_saying_so(tmp_path):
    path = tmp_path / "thresholds.yaml"
    base = redacted_log(tmp_path / "base.eval")
    path.write_text(
        THRESHOLDS.format(probes=PROBES, candidate=LM_EVAL.format("collapsed"), base=base)
    )
    session = RtcSession(config=load_config(path), config_dir=tmp_path)
    (result,) = session.decide_all()
    assert not result.passed
    assert "cannot be computed for the base: 4 of 32 generations have hidden reasoning" in (
        result.reason
    )


def test_a_limit_or_sample_gates_part_of_a_file_written_on_the_whole_set(probes):
    path = LM_EVAL.format("collapsed")
    whole = generations_run(path, probes, model="c", markup=TraceFormat())
    head = generations_run(path, probes, model="c", markup=TraceFormat(), gated=probes.head(8))
    assert [o.probe_id for o in head.outcomes] == [p.id for p in probes.probes[:8]]
    assert head.outcomes == whole.outcomes[:8]
    assert head.probe_set == probes.head(8)
    assert any("24 of its 32 records are of probes outside the 8 gated" in n for n in head.notes)
    assert not any("outside" in note for note in whole.notes)
    drawn = probes.sample(5, seed=3)
    sampled = generations_run(path, probes, model="c", markup=TraceFormat(), gated=drawn)
    assert [o.probe_id for o in sampled.outcomes] == [p.id for p in drawn.probes]


def test_a_file_of_a_limited_run_covers_the_same_limit_only(tmp_path, probes):
    lines = Path(LM_EVAL.format("base")).read_text(encoding="utf-8").splitlines(keepends=True)
    limited = tmp_path / "samples_limited.jsonl"  # as `lm_eval --limit 8` writes it
    limited.write_text("".join(lines[:8]), encoding="utf-8")
    run = generations_run(limited, probes, model="b", markup=TraceFormat(), gated=probes.head(8))
    assert statuses(run) == {"valid": 8}
    with pytest.raises(GenerationsFileError, match=r"2 of 10 probes of .* have no record"):
        generations_run(limited, probes, model="b", markup=TraceFormat(), gated=probes.head(10))


@pytest.mark.parametrize("limit", ["config", "override"])
def test_thresholds_yaml_limit_applies_to_files(tmp_path, limit):
    path = tmp_path / "thresholds.yaml"
    text = THRESHOLDS.format(
        probes=PROBES, candidate=LM_EVAL.format("collapsed"), base=INSPECT.format("base")
    )
    if limit == "config":
        text = text.replace("reasoning: {source: ", "reasoning: {limit: 6, source: ", 1)
    path.write_text(text)
    config = load_config(path)
    config = Overrides(limit=6).apply(config) if limit == "override" else config
    session = RtcSession(config=config, config_dir=tmp_path)
    (result,) = session.decide_all()
    assert not result.passed
    assert {run.model: len(run.outcomes) for run in session.runs} == {
        "demo:collapsed": 6,
        "generations:base": 6,
    }


def test_a_role_with_files_and_no_model_says_it_cannot_generate(tmp_path):
    path = tmp_path / "thresholds.yaml"
    text = THRESHOLDS.format(
        probes=PROBES, candidate=LM_EVAL.format("collapsed"), base=INSPECT.format("base")
    )
    path.write_text(text.replace("candidate: demo:collapsed\n", "", 1))
    session = RtcSession(config=load_config(path), config_dir=tmp_path)
    assert session.run("reasoning").backend == "file:lm-eval"
    # A probe set the file does not hold (here an ad-hoc one) would need a model.
    with pytest.raises(ConfigError, match=r"^the candidate has no model to generate with: "):
        session.run(session.probe_set("reasoning").head(2))
    assert session.fingerprints["generations:candidate"] == {
        "generations": {"reasoning": file_fingerprint(LM_EVAL.format("collapsed"), "lm-eval")}
    }


def test_thresholds_yaml_generations_errors_name_the_line(tmp_path):
    path = tmp_path / "thresholds.yaml"
    text = THRESHOLDS.format(probes=PROBES, candidate="a.jsonl", base="b.eval")
    path.write_text(text.replace("format: inspect", "format: lighteval"))
    with pytest.raises(ConfigError, match=r"thresholds.yaml:10: generations.base.reasoning.format"):
        load_config(path)
    path.write_text(text.replace("    reasoning: a.jsonl", "    reasonin: a.jsonl"))
    with pytest.raises(
        ConfigError,
        match=r"thresholds.yaml:8: generations.candidate.reasonin: unknown probe set\(s\) "
        r"reasonin; defined: reasoning$",
    ):
        load_config(path)
    several = text.replace("candidate: demo:collapsed", "candidates: [demo:base, demo:collapsed]")
    path.write_text(several)
    with pytest.raises(
        ConfigError, match=r"thresholds.yaml:7: generations.candidate: with several candidates"
    ):
        load_config(path)


def files_thresholds(folder: Path, *, candidate: str | None = "demo:collapsed") -> Path:
    """THRESHOLDS in ``folder``: the collapsed model's lm-eval samples as the candidate's
    generations (``candidate`` names their model, or none), the base's Inspect log as the
    base's (no model named)."""
    text = THRESHOLDS.format(
        probes=PROBES, candidate=LM_EVAL.format("collapsed"), base=INSPECT.format("base")
    )
    named = f"candidate: {candidate}\n" if candidate else ""
    path = folder / "thresholds.yaml"
    path.write_text(text.replace("candidate: demo:collapsed\n", named, 1))
    return path


def refusal(path: Path | str, line: int, role: str, file: str, option: str, spec: str) -> str:
    """The pattern of the refusal of ``option spec`` over ``role``'s file at ``path:line``."""
    return (
        rf"^{re.escape(f'{path}:{line}: generations.{role}.reasoning: the {role}')}'s "
        rf"generations on 'reasoning' are read from {re.escape(file)}, so "
        rf"{re.escape(f'{option} {spec}')} would not be generated and the file's generations "
        rf"would be reported as {re.escape(spec)}'s\. Drop {re.escape(option)} to gate the "
        rf"file \(.*\), or, to gate {re.escape(spec)}, remove generations\.{role} from "
        rf"thresholds\.yaml or replace its files with {re.escape(spec)}'s generations$"
    )


@pytest.mark.parametrize("named", ["demo:collapsed", None])
def test_overrides_naming_another_model_over_a_roles_files_are_refused(tmp_path, named):
    config = load_config(files_thresholds(tmp_path, candidate=named))
    path = tmp_path / "thresholds.yaml"
    with pytest.raises(ConfigError) as refused:
        Overrides(candidate="demo:base").apply(config)
    lm_eval = LM_EVAL.format("collapsed")
    line = 8 if named else 7
    assert re.match(
        refusal(path, line, "candidate", lm_eval, "Overrides.candidate", "demo:base"),
        str(refused.value),
    )
    hint = "thresholds.yaml names its model: demo:collapsed" if named else "set 'candidate:'"
    assert hint in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        Overrides(base="demo:base", base_option="--rtc-base").apply(config)
    base_file = INSPECT.format("base")
    assert re.match(
        refusal(path, line + 2, "base", base_file, "--rtc-base", "demo:base"), str(refused.value)
    )
    assert "(to name the model that wrote it, set 'base:' in thresholds.yaml)" in str(refused.value)


def test_overrides_naming_the_files_own_model_change_nothing(tmp_path):
    config = load_config(files_thresholds(tmp_path))
    same = Overrides(candidate="demo:collapsed").apply(config)
    assert same.candidate == "demo:collapsed" and same.generations == config.generations
    session = RtcSession(config=same, config_dir=tmp_path)
    (result,) = session.decide_all()
    assert not result.passed
    assert [(run.model, run.backend) for run in session.runs] == [
        ("demo:collapsed", "file:lm-eval"),
        ("generations:base", "file:inspect"),
    ]
    # One of `candidates` is the files' model as well; a role without files takes any model.
    one = load_config(files_thresholds(tmp_path, candidate=None)).model_copy(
        update={"candidates": ("demo:collapsed",)}
    )
    assert Overrides(candidate="demo:collapsed").apply(one).candidate == "demo:collapsed"
    no_base_files = config.model_copy(
        update={"generations": {"candidate": config.generations["candidate"]}}
    )
    assert Overrides(base="demo:base").apply(no_base_files).base == "demo:base"


def test_a_config_built_in_code_names_the_field_it_refuses_on():
    config = RtcConfig.model_validate(
        {
            "probe_sets": {"reasoning": {"source": str(PROBES)}, "other": {"source": str(PROBES)}},
            "gates": [{"metric": "valid_rate", "min": 0.5}],
            "generations": {"candidate": {"reasoning": "a.jsonl", "other": "b.jsonl"}},
        }
    )
    with pytest.raises(
        ConfigError,
        match=r"^generations\.candidate\.reasoning: the candidate's "
        r"generations on 'reasoning' are read from a\.jsonl \(and on 1 more ",
    ):
        Overrides(candidate="m").apply(config)


def test_cli_eval_and_compare_read_files(capsys, tmp_path):
    def out() -> str:  # the notes as words, however wide the terminal wrapped them
        return " ".join(capsys.readouterr().out.split())

    common = ["--probes", str(PROBES), "--model", "demo:base", "--report", str(tmp_path)]
    assert main(["eval", "--generations", str(LM_EVAL.format("base")), *common]) == 0
    assert "no finish reason" in out()
    compare = [
        "compare",
        "--probes",
        str(PROBES),
        "--candidate-generations",
        str(LM_EVAL.format("collapsed")),
        "--base-generations",
        str(INSPECT.format("base")),
        "--open-tag",
        "<think>",
        "--close-tag",
        "</think>",
    ]
    assert main(compare) == 1
    json_log = ["--generations", INSPECT_JSON.format("base"), "--generations-format", "inspect"]
    assert main(["eval", *json_log, *common]) == 0
    assert "base.json gives no finish reason for 32 of 32" in out()
    assert main(["eval", "--generations", str(PROBES), "--probes", str(PROBES)]) == 2
    assert "probes.jsonl:1: not a generations file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "option", "role"),
    [("compare", "--candidate", "candidate"), ("compare", "--base", "base"),
     ("eval", "--model", "candidate"), ("sweep", "--base", "base")],
)  # fmt: skip
def test_cli_models_over_the_configs_files_are_refused(capsys, tmp_path, command, option, role):
    path = files_thresholds(tmp_path)
    report = tmp_path / "report"
    extra = []
    if command == "sweep":  # checkpoints that would be generated, were the base not refused
        for step in (1, 2):
            (tmp_path / "run" / f"checkpoint-{step}").mkdir(parents=True)
            (tmp_path / "run" / f"checkpoint-{step}" / "config.json").write_text("{}")
        extra = ["--checkpoints", str(tmp_path / "run")]
    assert (
        main([command, "--config", str(path), option, "demo:base", "--report", str(report), *extra])
        == 2
    )
    captured = capsys.readouterr()
    message = captured.err.removeprefix("rtc-assert: error: ").rstrip("\n")
    file = LM_EVAL.format("collapsed") if role == "candidate" else INSPECT.format("base")
    assert re.match(
        refusal(path, 8 if role == "candidate" else 10, role, file, option, "demo:base"), message
    )
    assert "Traceback" not in captured.err and captured.out == ""
    assert not report.exists()  # refused before any work: no record, not even a partial one


def test_cli_models_the_config_or_the_command_line_files_name_are_taken(capsys, tmp_path):
    path = files_thresholds(tmp_path)
    same = ["compare", "--config", str(path), "--candidate", "demo:collapsed"]
    assert main([*same, "--report", str(tmp_path / "same")]) == 1  # the collapse, as configured
    record = json.loads((tmp_path / "same" / "rtc-run.json").read_text())
    assert [(run["model"], run["backend"]) for run in record["runs"]] == [
        ("demo:collapsed", "file:lm-eval"),
        ("generations:base", "file:inspect"),
    ]
    # Files on the command line replace the config's for their role: the model names those.
    own = ["--candidate-generations", LM_EVAL.format("base"), "--candidate", "demo:base"]
    report = tmp_path / "own"
    assert main(["compare", "--config", str(path), *own, "--report", str(report)]) == 0
    record = json.loads((report / "rtc-run.json").read_text())
    assert record["models"]["demo:base"] == {
        "generations": {"reasoning": file_fingerprint(LM_EVAL.format("base"), "lm-eval")}
    }
    assert (
        main(
            [
                "eval",
                "--config",
                str(path),
                "--generations",
                LM_EVAL.format("base"),
                "--model",
                "demo:base",
            ]
        )
        == 0
    )
    capsys.readouterr()


# what the records name of the files read ------------------------------------------------------


BATCH = str(FIXTURES / "vllm-run-batch" / "chat-deepseek_r1" / "{}.jsonl")


def plain_file(path: Path, probes) -> Path:
    """The plain format with CRLF line ends and blank lines: the digest is of the bytes."""
    lines = [json.dumps(row) for row in plain_rows(probes.probes)]
    path.write_bytes(("\r\n\r\n".join(lines) + "\r\n").encode())
    return path


@pytest.mark.parametrize(
    ("layout", "streamed"),
    [(LM_EVAL, True), (INSPECT_JSON, True), (BATCH, True), (INSPECT, False), ("plain", True)],
)
def test_a_files_sha256_is_taken_as_it_is_read(tmp_path, probes, layout, streamed):
    path = (
        plain_file(tmp_path / "g.jsonl", probes)
        if layout == "plain"
        else Path(layout.format("base"))
    )
    digest = FileDigest()
    assert len(list(read_generations(path, digest=digest))) == 32
    # JSONL and a JSON log feed the digest as they are read; an .eval archive (read member
    # by member, out of the file's order) is hashed apart.
    assert digest.complete is streamed
    assert digest.finish(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_read_in_part_is_hashed_whole(tmp_path, probes):
    path = plain_file(tmp_path / "g.jsonl", probes)
    digest = FileDigest()
    records = read_generations(path, digest=digest)
    next(records)
    records.close()  # a reader left midway (an error) has not seen the whole file
    assert not digest.complete
    assert digest.finish(path) == hashlib.sha256(path.read_bytes()).hexdigest()


FOUR_FILES = """\
version: 1
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {probes}}}
  again: {{source: {probes}, limit: 16}}
generations:
  candidate:
    reasoning: {candidate_lm_eval}
    again: {candidate_inspect}
  base:
    reasoning: {base_lm_eval}
    again: {{file: {base_inspect}, format: inspect}}
gates:
  - {{metric: valid_rate, max_drop: 0.15}}
"""
"""Each role's generations from two files, one a probe set, in two formats."""


def test_compare_names_every_file_each_role_was_read_from(tmp_path):
    path = tmp_path / "thresholds.yaml"
    files = {
        "candidate_lm_eval": LM_EVAL.format("collapsed"),
        "candidate_inspect": INSPECT.format("collapsed"),
        "base_lm_eval": LM_EVAL.format("base"),
        "base_inspect": INSPECT_JSON.format("base"),
    }
    path.write_text(FOUR_FILES.format(probes=PROBES, **files))
    report = tmp_path / "report"
    assert main(["compare", "--config", str(path), "--report", str(report)]) == 1
    record = read_record(report / "rtc-run.json")
    assert record.record_version == RECORD_VERSION
    assert record.models == {
        "generations:candidate": {
            "generations": {
                "reasoning": file_fingerprint(files["candidate_lm_eval"], "lm-eval"),
                "again": file_fingerprint(files["candidate_inspect"], "inspect"),
            }
        },
        "generations:base": {
            "generations": {
                "reasoning": file_fingerprint(files["base_lm_eval"], "lm-eval"),
                "again": file_fingerprint(files["base_inspect"], "inspect"),
            }
        },
    }
    # The HTML report's metadata lists the four files, each with its probe set and digest.
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.count("data-generations-file=") == 4
    for name in files.values():
        assert name in page and file_fingerprint(name, "")["sha256"] in page


SAME_PROBES = """\
version: 1
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {probes}}}
  again: {{source: {probes}}}
generations:
  candidate:
    reasoning: {base}
    again: {collapsed}
gates:
  - {{metric: valid_rate, min: 0.5}}
"""
"""Two probe sets of the same probes, each with its own file of the candidate's."""


def test_probe_sets_of_the_same_probes_each_read_their_own_file(tmp_path):
    path = tmp_path / "thresholds.yaml"
    base, collapsed = LM_EVAL.format("base"), LM_EVAL.format("collapsed")
    path.write_text(SAME_PROBES.format(probes=PROBES, base=base, collapsed=collapsed))
    session = RtcSession(config=load_config(path), config_dir=tmp_path)
    results = {result.gate.probe_set: result for result in session.decide_all()}
    # The second set's gate is decided on its own file (it was decided on the first's).
    assert (results["reasoning"].passed, results["again"].passed) == (True, False)
    assert [statuses(run) for run in session.runs] == [{"valid": 32}, {"empty": 32}]
    assert session.fingerprints["generations:candidate"]["generations"] == {
        "reasoning": file_fingerprint(base, "lm-eval"),
        "again": file_fingerprint(collapsed, "lm-eval"),
    }


MODEL_AND_FILE = """\
version: 1
base: demo:base
backend: {{name: transformers, options: {{device: cpu}}}}
generation: {{max_new_tokens: 16}}
probe_sets:
  reasoning: {{source: {probes}}}
  again: {{source: {probes}, limit: 2}}
generations:
  base:
    reasoning: {base}
gates:
  - {{metric: valid_rate, min: 0.5}}
"""


@pytest.mark.parametrize("first", ["reasoning", "again"])
def test_a_model_with_a_file_on_one_probe_set_names_the_file_and_its_weights(tmp_path, first):
    path = tmp_path / "thresholds.yaml"
    path.write_text(MODEL_AND_FILE.format(probes=PROBES, base=LM_EVAL.format("base")))
    session = RtcSession(config=load_config(path), config_dir=tmp_path)
    try:
        for name in (first, *({"reasoning", "again"} - {first})):  # read first, or generated
            session.run(name, "base")
    finally:
        session.close()
    assert session.fingerprints == {
        "demo:base": {
            **model_fingerprint(resolve_model("demo:base")),
            "generations": {"reasoning": file_fingerprint(LM_EVAL.format("base"), "lm-eval")},
        }
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["base", "collapsed"])
def test_the_fixtures_match_rtc_asserts_own_run(probes, name):
    from rtc_assert.generation.backends import load_backend
    from rtc_assert.generation.requests import GenerationSettings
    from rtc_assert.runs import run_model

    backend = load_backend("transformers", resolve_model(f"demo:{name}"), {"device": "cpu"})
    own = run_model(backend, probes, GenerationSettings(max_new_tokens=64), model=name)
    expected = {(o.probe_id, o.sample): o.trace.status for o in own.outcomes}
    assert statuses(own) == EXPECTED[name]
    for layout in (LM_EVAL, INSPECT, INSPECT_JSON):
        run = generations_run(layout.format(name), probes, model=name, tokenizer=backend.tokenizer)
        assert {(o.probe_id, o.sample): o.trace.status for o in run.outcomes} == expected


@pytest.mark.slow
def test_the_fixtures_regenerate_with_the_real_tools(tmp_path):
    pythons = {key: os.environ.get(key) for key in ("LMEVAL_PYTHON", "INSPECT_PYTHON")}
    if not all(pythons.values()):
        pytest.skip("set LMEVAL_PYTHON and INSPECT_PYTHON to interpreters with lm-eval, inspect-ai")
    for key, python in pythons.items():
        module = "lm_eval" if key == "LMEVAL_PYTHON" else "inspect_ai"
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True)  # type: ignore[list-item]
        if found.returncode:
            pytest.skip(f"{module} is not importable by {python}")
    subprocess.run(
        [sys.executable, str(FIXTURES / "regenerate.py"), str(tmp_path)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=1800,
    )
    probes = load_probe_set(tmp_path / "probes.jsonl")
    tokenizer = load_tokenizer(resolve_model("demo:base"))
    for name in EXPECTED:
        layouts = ("lm-eval/{}/samples_rtc_demo_reasoning.jsonl", "inspect/{}-deflate.eval")
        for layout in (*layouts, "inspect/{}.json"):
            run = generations_run(
                tmp_path / layout.format(name), probes, model=name, tokenizer=tokenizer
            )
            assert statuses(run) == EXPECTED[name]
        # Greedy, so Inspect's two log formats hold the same generations.
        assert records(tmp_path / f"inspect/{name}.json") == records(
            tmp_path / f"inspect/{name}-deflate.eval"
        )
