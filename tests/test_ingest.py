"""Generations other tools wrote: readers, pairing, the markup rule, front-ends, bad input.

The fixtures under tests/fixtures/generations/ were written by lm-evaluation-harness 0.4.13
and inspect-ai 0.3.285 themselves (regenerate.py there holds the commands).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rtc_assert.cli.main import main
from rtc_assert.config import ConfigError, load_config
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.ingest import GenerationsFileError, detect_format, generations_run
from rtc_assert.ingest.plain import SCHEMA_FILE, schema
from rtc_assert.probes.probe import load_probe_set
from rtc_assert.session import RtcSession
from rtc_assert.traces.classify import TraceFormat

FIXTURES = Path(__file__).parent / "fixtures" / "generations"
PROBES = FIXTURES / "probes.jsonl"
LM_EVAL = str(FIXTURES / "lm-eval" / "{}" / "samples_rtc_demo_reasoning.jsonl")
INSPECT = str(FIXTURES / "inspect" / "{}-deflate.eval")
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


def plain_rows(probes, completion="<think>r</think>1", **extra) -> list[dict]:
    return [{"probe_id": p.id, "completion": completion, **extra} for p in probes]


def test_the_shipped_schema_is_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == schema()


@pytest.mark.parametrize("name", ["base", "collapsed"])
@pytest.mark.parametrize("layout", [LM_EVAL, INSPECT])
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
    assert detect_format(write_lines(tmp_path / "p.jsonl", plain_rows(probes))) == "plain"
    with pytest.raises(GenerationsFileError, match=r"p2.jsonl:1: not a generations file"):
        detect_format(write_lines(tmp_path / "p2.jsonl", [{"x": 1}]))


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
        ("truncated", "unterminated"),
        ("valid", "closed"),
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


def test_thresholds_yaml_gates_on_files(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        THRESHOLDS.format(
            probes=PROBES, candidate=LM_EVAL.format("collapsed"), base=INSPECT.format("base")
        )
    )
    config = load_config(path)
    session = RtcSession(config=config, config_dir=tmp_path)
    (result,) = session.decide_all()
    assert not result.passed
    assert {run.model for run in session.runs} == {"demo:collapsed", "generations:base"}


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
        "generations": LM_EVAL.format("collapsed")
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


def test_cli_eval_and_compare_read_files(capsys, tmp_path):
    common = ["--probes", str(PROBES), "--model", "demo:base", "--report", str(tmp_path)]
    assert main(["eval", "--generations", str(LM_EVAL.format("base")), *common]) == 0
    assert "no finish reason" in capsys.readouterr().out
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
    assert main(["eval", "--generations", str(PROBES), "--probes", str(PROBES)]) == 2
    assert "probes.jsonl:1: not a generations file" in capsys.readouterr().err


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
    for layout in (LM_EVAL, INSPECT):
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
        for layout in ("lm-eval/{}/samples_rtc_demo_reasoning.jsonl", "inspect/{}-deflate.eval"):
            run = generations_run(
                tmp_path / layout.format(name), probes, model=name, tokenizer=tokenizer
            )
            assert statuses(run) == EXPECTED[name]
