"""Sweeps against a base read from files: the same verdicts as a base generated live, where
the base came from in the record, the table and the chart, and what a sweep refuses."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from synthetic_runs import synthetic_run  # the tests folder is on sys.path (no __init__.py)

from rtc_assert import demo
from rtc_assert.cli.main import main
from rtc_assert.config import ConfigError, load_config
from rtc_assert.probes.probe import load_probe_set
from rtc_assert.reports.sweep import base_lines, sweep_svg, table_rows
from rtc_assert.session import RtcSession
from rtc_assert.sweep import BaseFile, StepRecord, SweepRecord, check_sweep, run_sweep

FIXTURES = Path(__file__).parent / "fixtures" / "generations"
PROBES = FIXTURES / "probes.jsonl"
"""The first 32 probes of demo:reasoning, which the fixtures' tools ran demo:base on."""
LM_EVAL = FIXTURES / "lm-eval" / "base" / "samples_rtc_demo_reasoning.jsonl"
"""demo:base's generations on PROBES, written by lm-evaluation-harness (greedy, 64 tokens)."""
SVG = "{http://www.w3.org/2000/svg}"

SWEEP = """\
version: 1
{base}backend: {{name: transformers, options: {{device: cpu}}}}
generation: {{max_new_tokens: 64}}
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {probes}}}
{generations}gates:
  - {{metric: valid_rate, max_drop: 0.15}}
  - {{metric: answer_accuracy, max_drop: 0.10}}
  - {{metric: truncated_rate, max_drop: 0.10}}
  - {{metric: valid_rate, min: 0.8}}
"""
"""A sweep on PROBES, with the fixtures' generation settings (greedy, at most 64 tokens)."""


def sweep_yaml(
    folder: Path, *, base: str | None, generations: str = "", name: str = "thresholds.yaml"
) -> Path:
    path = folder / name
    named = f"base: {base}\n" if base else ""
    path.write_text(SWEEP.format(base=named, probes=PROBES, generations=generations))
    return path


BASE_FILE = f"generations:\n  base:\n    reasoning: {LM_EVAL}\n"


def base_file(path: Path, fmt: str) -> BaseFile:
    """What a sweep record names of a base file it read: path, format, SHA-256."""
    return BaseFile(
        file=str(path), format=fmt, sha256=hashlib.sha256(path.read_bytes()).hexdigest()
    )


def series(root: Path, *steps: int) -> Path:
    """Checkpoints of the demo series as ``root/checkpoint-N`` links (nothing copied)."""
    for step in steps:
        (root / f"checkpoint-{step}").parent.mkdir(parents=True, exist_ok=True)
        (root / f"checkpoint-{step}").symlink_to(demo.ZOO_DIR / "sweep" / f"checkpoint-{step}")
    return root


def empty_series(root: Path) -> Path:
    """Two checkpoint folders that are never loaded (the sweep is refused before)."""
    for step in (1, 2):
        (root / f"checkpoint-{step}").mkdir(parents=True)
        (root / f"checkpoint-{step}" / "config.json").write_text("{}")
    return root


# the same verdicts as a base generated live ---------------------------------------------------


@pytest.mark.slow
def test_a_sweep_against_the_bases_lm_eval_log_gates_as_against_the_base_generated(
    tmp_path, capsys
):
    checkpoints = str(series(tmp_path / "run", 4, 24))
    cache = ["--cache-dir", str(tmp_path / "cache")]  # each checkpoint generated once for all

    def sweep(name: str, config: Path, *options: str) -> SweepRecord:
        report = tmp_path / name
        argv = ["sweep", "--checkpoints", checkpoints, "--config", str(config), *options, *cache]
        code = main([*argv, "--report", str(report)])
        record = SweepRecord.model_validate_json((report / "sweep.json").read_text())
        assert code == (0 if record.first_failing is None else 1)
        return record

    live = sweep("live", sweep_yaml(tmp_path, base="demo:base", name="live.yaml"))
    capsys.readouterr()
    files = sweep("files", sweep_yaml(tmp_path, base=None, generations=BASE_FILE))
    out = " ".join(capsys.readouterr().out.split())
    named = sweep(
        "named", sweep_yaml(tmp_path, base="demo:base", generations=BASE_FILE, name="named.yaml")
    )
    # The command line's --base-generations, as compare's, over a config with no base at all.
    cli_yaml = sweep_yaml(tmp_path, base=None, name="cli.yaml")
    cli = sweep("cli", cli_yaml, "--base-generations", str(LM_EVAL))

    assert live.base_files == {} and live.base == "demo:base"
    assert [step.step for step in live.steps] == [4, 24]
    verdicts = [(step.step, [(g.gate.id, g.passed) for g in step.gates]) for step in live.steps]
    assert not live.step(24).passed  # both verdicts are exercised: step 4 passes, 24 fails
    assert live.step(4).passed
    for record in (files, named, cli):
        assert [(s.step, [(g.gate.id, g.passed) for g in s.gates]) for s in record.steps] == (
            verdicts
        )
        # The same generations, read or generated, give the same numbers behind each verdict.
        assert [step.gates for step in record.steps] == [step.gates for step in live.steps]
        assert (record.first_failing, record.last_passing) == (24, 4)
        base = record.base_metrics["reasoning"]
        assert base.rates == live.base_metrics["reasoning"].rates
        assert record.base_files == {"reasoning": base_file(LM_EVAL, "lm-eval")}
        # The checkpoints were generated (through the cache), not read from any file.
        assert all("sha256" in record.fingerprints[step.checkpoint] for step in record.steps)
    assert (files.base, named.base, cli.base) == (
        "generations:base",
        "demo:base",
        "generations:base",
    )
    read = {"generations": {"reasoning": base_file(LM_EVAL, "lm-eval").model_dump()}}
    assert files.fingerprints["generations:base"] == read
    assert "demo:base" not in files.fingerprints  # no base model loaded, not even its tokenizer
    assert named.fingerprints["demo:base"] == read

    # Where the base came from: printed, in the table, and on the chart.
    assert (
        f"base on reasoning: generations read from {LM_EVAL} (lm-eval), not generated "
        "(thresholds.yaml names no base model)" in out
    )
    assert table_rows(files, "reasoning")[0][:2] == (
        "base",
        f"generations:base (read from {LM_EVAL.name})",
    )
    chart = ElementTree.parse(tmp_path / "files" / "sweep.svg").getroot()
    (caption,) = chart.findall(f".//{SVG}text[@data-base]")
    assert caption.get("data-base") == "file"
    assert caption.text == f"base: read from {LM_EVAL.name} (lm-eval)"
    assert caption.find(f"{SVG}title").text == str(LM_EVAL)
    (live_caption,) = (
        ElementTree.parse(tmp_path / "live" / "sweep.svg")
        .getroot()
        .findall(f".//{SVG}text[@data-base]")
    )
    assert (live_caption.get("data-base"), live_caption.text) == (
        "generated",
        "base: demo:base, generated",
    )


INSPECT_JSON = FIXTURES / "inspect" / "base.json"
"""demo:base's generations on PROBES, written by Inspect AI (``--log-format json``)."""
TWO_FILES = f"""\
version: 1
backend: {{name: transformers, options: {{device: cpu}}}}
generation: {{max_new_tokens: 64}}
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {PROBES}}}
  again: {{source: {PROBES}, limit: 8}}
generations:
  base:
    reasoning: {LM_EVAL}
    again: {INSPECT_JSON}
gates:
  - {{metric: valid_rate, max_drop: 0.15}}
"""
"""A sweep whose base is read from two files, one a probe set, in two formats."""


@pytest.mark.slow
def test_a_sweep_names_every_file_the_base_was_read_from(tmp_path, capsys):
    path = tmp_path / "thresholds.yaml"
    path.write_text(TWO_FILES)
    report = tmp_path / "report"
    argv = ["sweep", "--config", str(path), "--checkpoints", str(series(tmp_path / "run", 4))]
    assert main([*argv, "--report", str(report)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    record = SweepRecord.model_validate_json((report / "sweep.json").read_text())
    files = {
        "reasoning": base_file(LM_EVAL, "lm-eval"),
        "again": base_file(INSPECT_JSON, "inspect"),
    }
    assert record.base_files == files
    assert record.fingerprints["generations:base"] == {
        "generations": {name: file.model_dump() for name, file in files.items()}
    }
    for name, file in files.items():
        assert f"base on {name}: generations read from {file.file} ({file.format})" in out
    chart = ElementTree.parse(report / "sweep.svg").getroot()
    captions = {
        panel.get("data-probe-set"): panel.find(f"{SVG}text[@data-base]")
        for panel in chart.findall(f"{SVG}g[@data-probe-set]")
    }
    assert {name: caption.find(f"{SVG}title").text for name, caption in captions.items()} == {
        "reasoning": str(LM_EVAL),
        "again": str(INSPECT_JSON),
    }


# where the base came from, in the reports -----------------------------------------------------


def rendered_record(base: str | None, files: dict[str, BaseFile]) -> SweepRecord:
    """A record of one step on two probe sets, the base's runs made up (no model)."""
    probes = load_probe_set(PROBES)
    metrics = {
        name: synthetic_run("m", probes.head(4), ["<think>r</think>748"] * 4).metrics
        for name in ("reasoning", "finetune")
    }
    step = StepRecord(
        step=1, checkpoint="/run/checkpoint-1", metrics=metrics, gates=[], passed=True
    )
    return SweepRecord(
        base=base,
        probe_sets=list(metrics),
        base_metrics=metrics,
        steps=[step],
        first_failing=None,
        last_passing=1,
        passing_after_failure=[],
        fingerprints={},
        base_files=files,
    )


def test_the_reports_say_which_base_runs_were_read_from_files_and_which_generated():
    file = BaseFile(file="/logs/base/samples_reasoning.jsonl", format="lm-eval")
    record = rendered_record("my-org/base", {"reasoning": file})
    assert base_lines(record) == [
        "base on reasoning: my-org/base's generations read from "
        "/logs/base/samples_reasoning.jsonl (lm-eval), not generated",
        "base on finetune: my-org/base, generated",
    ]
    assert (
        table_rows(record, "reasoning")[0][1] == "my-org/base (read from samples_reasoning.jsonl)"
    )
    assert table_rows(record, "finetune")[0][1] == "my-org/base"
    chart = ElementTree.fromstring(sweep_svg(record))
    captions = {
        panel.get("data-probe-set"): panel.find(f"{SVG}text[@data-base]")
        for panel in chart.findall(f"{SVG}g[@data-probe-set]")
    }
    assert (
        captions["reasoning"].text
        == "base: my-org/base, read from samples_reasoning.jsonl (lm-eval)"
    )
    assert captions["finetune"].text == "base: my-org/base, generated"
    # A base generated everywhere adds no line: the table names its model.
    assert base_lines(rendered_record("my-org/base", {})) == []
    # A sweep.json written before base_files existed is still read: every base run generated.
    old = json.loads(rendered_record("my-org/base", {}).model_dump_json())
    del old["base_files"]
    assert SweepRecord.model_validate(old).base_files == {}
    # And one whose fingerprint named a single file, as a path, without its probe set.
    old["fingerprints"] = {"generations:base": {"generations": "/logs/base/samples.jsonl"}}
    assert SweepRecord.model_validate(old).fingerprints == old["fingerprints"]
    # A base file named before its SHA-256 was recorded.
    assert BaseFile.model_validate({"file": "/b.eval", "format": "inspect"}).sha256 is None


def test_a_base_with_files_on_some_probe_sets_only_has_a_run_on_those():
    record = rendered_record(
        "generations:base", {"reasoning": BaseFile(file="/b.eval", format="inspect")}
    )
    del record.base_metrics["finetune"]  # no base file there, and no base model to generate it
    assert base_lines(record) == [
        "base on reasoning: generations read from /b.eval (inspect), not generated "
        "(thresholds.yaml names no base model)"
    ]
    assert [row[0] for row in table_rows(record, "finetune")] == ["1"]  # no base row
    chart = ElementTree.fromstring(sweep_svg(record))
    assert len(list(chart.findall(f".//{SVG}text[@data-base]"))) == 1


# what a sweep refuses -------------------------------------------------------------------------


CANDIDATE_FILE = f"generations:\n  candidate:\n    reasoning: {LM_EVAL}\n"


@pytest.mark.parametrize("base", ["demo:base", None])
def test_a_sweep_refuses_the_candidates_generations_from_files(tmp_path, capsys, base):
    generations = CANDIDATE_FILE + ("" if base else f"  base:\n    reasoning: {LM_EVAL}\n")
    path = sweep_yaml(tmp_path, base=base, generations=generations)
    report = tmp_path / "report"
    argv = ["sweep", "--config", str(path), "--checkpoints", str(empty_series(tmp_path / "run"))]
    assert main([*argv, "--report", str(report)]) == 2
    captured = capsys.readouterr()
    line = 9 if base else 8  # the line of generations.candidate
    assert captured.err == (
        f"rtc-assert: error: {path}:{line}: generations.candidate: a sweep gates each "
        "checkpoint, generating it on every probe set, so the candidate's generations on "
        f"'reasoning' read from {LM_EVAL} would be left unread: remove generations.candidate "
        "from the thresholds.yaml of the sweep (generations.base may stay: the base is read "
        "from its files), or gate those generations with rtc-assert compare\n"
    )
    assert captured.out == "" and not report.exists()  # refused before any work
    with pytest.raises(ConfigError, match=r"generations\.candidate: a sweep gates each"):
        run_sweep(RtcSession(config=load_config(path)), [])


TWO_SETS = f"""\
version: 1
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {PROBES}}}
  finetune: {{source: "demo:finetune"}}
generations:
  base:
    reasoning: {LM_EVAL}
gates:
  - {{metric: valid_rate, max_drop: 0.15{{only}}}}
  - {{metric: valid_rate, min: 0.5}}
"""


def test_a_base_read_from_files_only_must_cover_the_probe_sets_a_max_drop_gate_gates(
    tmp_path, capsys
):
    path = tmp_path / "thresholds.yaml"
    path.write_text(TWO_SETS.replace("{only}", ""))
    argv = ["sweep", "--config", str(path), "--checkpoints", str(empty_series(tmp_path / "run"))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"rtc-assert: error: {path}:7: generations.base: the base's generations are read from "
        "files on 'reasoning' only, and thresholds.yaml names no 'base:' to generate it on "
        "'finetune', where a max_drop gate compares against it: add the base's file on "
        "'finetune' under generations.base, or set 'base:' to the model that wrote the files"
    )
    # The max_drop gate on the probe set with the file alone: nothing else needs the base.
    path.write_text(TWO_SETS.replace("{only}", ", probe_sets: [reasoning]"))
    check_sweep(load_config(path))
    # And a base named beside the files generates the probe sets without one.
    path.write_text("base: demo:base\n" + TWO_SETS.replace("{only}", ""))
    check_sweep(load_config(path))


def test_a_sweep_with_neither_a_base_nor_its_files_says_both_ways(tmp_path, capsys):
    path = sweep_yaml(tmp_path, base=None)
    argv = ["sweep", "--config", str(path), "--checkpoints", str(empty_series(tmp_path / "run"))]
    assert main(argv) == 2
    assert re.search(
        r"pass --base or set 'base:' in thresholds\.yaml, or give the base's generations "
        r"under 'generations: base:' in thresholds\.yaml$",
        capsys.readouterr().err.rstrip("\n"),
    )


def test_sweep_base_generations_are_of_one_probe_set(tmp_path, capsys):
    argv = ["sweep", "--checkpoints", str(empty_series(tmp_path / "run")),
            "--probes", str(PROBES), "--probes", "demo:finetune",
            "--base-generations", str(LM_EVAL)]  # fmt: skip
    assert main(argv) == 2
    assert "a generations file is of one probe set: give exactly one --probes" in (
        capsys.readouterr().err
    )


def test_sweep_base_with_its_base_generations_names_their_model(tmp_path, capsys):
    """--base with --base-generations names the files' model (as compare's): not refused
    over a config whose base files the command line replaces."""
    path = sweep_yaml(tmp_path, base=None, generations=BASE_FILE)
    other = tmp_path / "other.jsonl"
    argv = ["sweep", "--config", str(path), "--checkpoints", str(empty_series(tmp_path / "run"))]
    # Without --base-generations, --base over the config's files is refused ...
    assert main([*argv, "--base", "demo:base"]) == 2
    assert "generations.base.reasoning: the base's generations" in capsys.readouterr().err
    # ... with them, --base is their model, and the sweep reads the new file first.
    report = ["--report", str(tmp_path / "report")]
    assert main([*argv, "--base", "demo:base", "--base-generations", str(other), *report]) == 2
    err = capsys.readouterr().err
    assert str(other) in err and "generations.base.reasoning: the base's" not in err
