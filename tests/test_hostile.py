"""Hostile input and faults (issue #22): no silent pass, no traceback, nothing injected."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from http_stub import Stub
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rtc_assert import demo
from rtc_assert.assertions import assert_valid_rate
from rtc_assert.cli import gate as cli_gate
from rtc_assert.cli.main import main
from rtc_assert.config import ConfigError, load_config
from rtc_assert.decide.gates import GateResult, evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.errors import ScorerError
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.backends.transformers_backend import TransformersBackend
from rtc_assert.generation.cache import CACHE_FILE, CHUNK, next_chunk
from rtc_assert.generation.models import context_length, resolve_model
from rtc_assert.generation.requests import (
    PREFIX_CHARS_PER_TOKEN,
    PREFIX_MARGIN,
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
    ServerSplit,
    build_requests,
    check_prompt_lengths,
)
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.metrics import compute_metrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.record import INTERRUPTED, SessionRecord, read_record, session_record
from rtc_assert.reports.html import html_report
from rtc_assert.reports.markdown import markdown_summary
from rtc_assert.reports.safe_text import one_line, printable
from rtc_assert.reports.sweep import (
    CHART_FILE,
    STOPPED_NOTE,
    SWEEP_FILE,
    sweep_svg,
    table_rows,
    verdict_lines,
)
from rtc_assert.reports.terminal import print_summary
from rtc_assert.runs import Run, score_generations
from rtc_assert.scoring import score
from rtc_assert.sweep import SWEEP_INTERRUPTED, StepRecord, SweepRecord

CONFIG = """\
probe_sets:
  a: {source: "demo:reasoning"}
gates:
  - metric: valid_rate
    %s
"""


def _config(tmp_path: Path, gate: str, extra: str = "") -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(CONFIG % gate + extra, encoding="utf-8")
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return str(raised.value)


# Silent passes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("gate", "shown"), [("min: false", "false"), ("max: yes", "true")])
def test_a_boolean_threshold_is_refused_at_its_line(tmp_path, gate, shown):
    message = _refused(_config(tmp_path, gate))
    assert message == (
        f"{tmp_path / 'thresholds.yaml'}:5: gates.0.{gate.split(':')[0]}: "
        f"a number is needed here, not the boolean {shown}"
    )


def test_a_nan_threshold_is_refused_as_not_finite(tmp_path):
    message = _refused(_config(tmp_path, "min: .nan"))
    assert message.endswith(":5: gates.0.min: a finite number is needed here, not nan")


def test_a_boolean_probe_limit_is_refused(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        'probe_sets:\n  a: {source: "demo:reasoning", limit: yes}\ngates:\n'
        "  - {metric: valid_rate, min: 0.5}\n",
        encoding="utf-8",
    )
    assert "a.limit: a number is needed here, not the boolean true" in _refused(path)


def test_a_second_gates_key_is_refused_with_both_lines(tmp_path):
    path = _config(tmp_path, "min: 0.9", "gates:\n  - {metric: valid_rate, min: 0.0}\n")
    assert _refused(path) == (
        f"{path}:6: 'gates' is given twice (first on line 3); "
        "a second one would replace the first: merge them"
    )


def test_one_bad_gate_gives_one_error(tmp_path):
    message = _refused(_config(tmp_path, "min: 2"))
    assert message.count("\n") == 0 and "gates.0.min" in message


def test_an_unknown_probe_set_is_reported_at_the_gate(tmp_path):
    message = _refused(_config(tmp_path, "min: 0.5\n    probe_sets: [b]"))
    assert message.endswith(":6: gates.0.probe_sets: unknown probe set(s) b; defined: a")


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--model", "demo:base", "--probes", "demo:reasoning", "--limit", "0"],
        ["eval", "--model", "demo:base", "--probes", "demo:reasoning", "--max-new-tokens", "0"],
        ["compare", "--limit", "-3"],
        ["demo", "--limit", "0"],
    ],
)
def test_zero_counts_are_refused_by_the_command_line(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "give a whole number of at least 1" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["--report", "--cache-dir"])
def test_a_report_or_cache_folder_that_is_a_file_is_refused_before_any_work(
    tmp_path, option, capsys
):
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--model", "demo:base", "--probes", "demo:reasoning", option, str(taken)])
    assert exited.value.code == 2
    assert f"{taken} is a file, not a folder" in capsys.readouterr().err
    assert taken.read_text(encoding="utf-8") == ""


def test_plan_refuses_a_base_rate_above_one(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--base-rate", "1.5", "--drop", "0.1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--base-rate: '1.5': give a rate between 0 and 1" in err
    assert "math domain" not in err


def test_sweep_without_probe_sets_says_what_to_give(capsys):
    assert main(["sweep", "--checkpoints", "demo:sweep", "--base", "demo:base"]) == 2
    err = capsys.readouterr().err
    assert "no probe sets to run: give --probes SET (repeatable) or --config" in err
    assert "pydantic" not in err and "validation error" not in err


# Injection through model and probe text ---------------------------------------------------

HOSTILE = "\x1b[2J\x1b]0;pwned\x07[bold red]x[/]\r|<script>\u202e\x9b\x00"
"""Clear screen, a window title, rich markup, a carriage return, a table pipe, HTML, a
direction override, a C1 CSI and a NUL."""
RAW = frozenset("\x1b\x07\r\u202e\x9b\x00")


def _hostile_run(name: str, text: str) -> tuple[Run, GateResult]:
    """A run whose set, ids, prompts and outputs are ``name`` and ``text``: two raw
    completions and two chat replies, the server's reasoning field split off."""
    probe_set = ProbeSet(
        name=name,
        version="1",
        probes=tuple(
            Probe(id=f"{name}{i}", prompt=f"q{name}", answer="4", scorer="exact") for i in range(4)
        ),
    )
    generations = tuple(
        Generation(
            probe_id=probe.id,
            sample=0,
            prompt=probe.prompt or "",
            text=f"<think></think>{text}",
            finish_reason="stop",
            prompt_tokens=1,
            completion_tokens=1,
            prefilled=False,
            split=None if i < 2 else ServerSplit(reasoning=text, content=text, field=name),
        )
        for i, probe in enumerate(probe_set.probes)
    )
    outcomes = tuple(score_generations(probe_set, generations))
    run = Run(
        name,
        "synthetic",
        probe_set,
        GenerationSettings(max_new_tokens=8),
        generations,
        outcomes,
        compute_metrics(outcomes),
    )
    gate = GateSpec(probe_set=name, metric="valid_rate", kind="min", threshold=0.5)
    return run, evaluate_gate(gate, run, None, DecisionConfig(policy="point"))


def _hostile_record(name: str, text: str) -> SessionRecord:
    run, result = _hostile_run(name, text)
    return session_record(
        config={"candidate": name, "base": None},
        runs=[run],
        gates=[result],
        timings={},
        models={},
        error=text,
    )


def _renderings(record: SessionRecord) -> dict[str, str]:
    terminal = io.StringIO()
    print_summary(record, terminal, color=False)
    return {
        "terminal": terminal.getvalue(),
        "markdown": markdown_summary(record),
        "html": html_report(record),
    }


def _sweep_renderings(name: str, text: str) -> dict[str, str]:
    """The sweep's chart, verdict lines and table cells as ``rtc-assert sweep`` shows them."""
    run, result = _hostile_run(name, text)
    step = StepRecord(
        step=1,
        checkpoint=f"/runs/{text}",
        metrics={name: run.metrics},
        gates=[result],
        passed=result.passed,
    )
    record = SweepRecord(
        base=name,
        probe_sets=[name],
        base_metrics={name: run.metrics},
        steps=[step],
        first_failing=None if result.passed else 1,
        last_passing=1 if result.passed else None,
        passing_after_failure=[],
        fingerprints={},
    )
    svg = sweep_svg(record)
    ElementTree.fromstring(svg)  # well-formed XML: no raw control character in it
    cells = " ".join(one_line(cell) for row in table_rows(record, name) for cell in row)
    return {"svg": svg, "verdict": printable("\n".join(verdict_lines(record))), "table": cells}


def _assert_inert(rendered: dict[str, str]) -> None:
    for where, text in rendered.items():
        assert not RAW & set(text), (where, sorted(RAW & set(text)))


def test_control_characters_and_markup_never_reach_a_renderer_raw():
    record = _hostile_record(HOSTILE, HOSTILE)
    rendered = _renderings(record)
    _assert_inert(rendered)
    assert "\\x1b[2J" in rendered["terminal"] and "[bold red]x[/]" in rendered["terminal"]
    assert "&lt;script>" in rendered["markdown"] and "\\|" in rendered["markdown"]
    assert "\\x1b[2J" in rendered["html"] and "&lt;script&gt;" in rendered["html"]
    assert "reasoning" in json.dumps(record.model_dump()["runs"][0]["generations"][2])
    _assert_inert(_sweep_renderings(HOSTILE, HOSTILE))


_HOSTILE_TEXT = st.lists(
    st.sampled_from([*RAW, "\n", "\t", "[b]", "[/]", "|", "<", "a", "é", "\u2066"]),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=15, deadline=None)
@given(name=_HOSTILE_TEXT, text=_HOSTILE_TEXT)
def test_property_random_control_characters_stay_inert(name, text):
    _assert_inert(_renderings(_hostile_record(name, text)))
    _assert_inert(_sweep_renderings(name, text))


def test_gate_failure_explanations_escape_model_output():
    probe_set = ProbeSet(
        name="s",
        version="1",
        probes=(Probe(id="p\x1b]0;t\x07", prompt="q", answer="4", scorer="exact"),),
    )
    generation = Generation(
        probe_id=probe_set.probes[0].id,
        sample=0,
        prompt="q",
        text=HOSTILE,
        finish_reason="stop",
        prompt_tokens=1,
        completion_tokens=1,
        prefilled=False,
    )
    outcomes = tuple(score_generations(probe_set, (generation,)))
    run = Run(
        "m",
        "synthetic",
        probe_set,
        GenerationSettings(max_new_tokens=8),
        (generation,),
        outcomes,
        compute_metrics(outcomes),
    )
    with pytest.raises(AssertionError) as raised:
        assert_valid_rate(run, at_least=0.9, policy="point")
    assert not RAW & set(str(raised.value))
    assert "\\x1b[2J" in str(raised.value)


def test_probes_show_escapes_prompts_ids_and_answers(tmp_path, capsys):
    path = tmp_path / "hostile.jsonl"
    record = {"id": "id\x1b[2J", "prompt": f"line1\r{HOSTILE}\nline2", "answer": "4\x07"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert main(["probes", "show", str(path), "--scorer", "exact"]) == 0
    out = capsys.readouterr().out
    assert not RAW & set(out)
    assert "id\\x1b[2J" in out and "line1\\r" in out and "4\\x07" in out


# Prompts longer than the model's context ----------------------------------------------


def _probe_file(tmp_path: Path, prompt: str) -> Path:
    path = tmp_path / "long.jsonl"
    lines = [
        {"id": "short", "prompt": "1+1", "answer": "2"},
        {"id": "long", "prompt": prompt, "answer": "2"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _eval_argv(path: Path) -> list[str]:
    """``rtc-assert eval`` of demo:base on a `_probe_file`, uncached."""
    return [
        "eval",
        "--model",
        "demo:base",
        "--probes",
        str(path),
        "--scorer",
        "exact",
        "--no-cache",
    ]


def test_a_prompt_longer_than_the_context_is_refused_before_generating(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(TransformersBackend, "generate", None)  # nothing may be generated
    path = _probe_file(tmp_path, "1" * 2000)
    assert main(_eval_argv(path)) == 2
    err = capsys.readouterr().err
    assert (
        "probe set 'long', probe 'long': the rendered prompt is 2,0" in err
        and "tokens, and demo:base's context is 256 positions, so nothing can be generated; "
        "shorten the prompt, drop the probe"
        in err
    )
    assert "Traceback" not in err


def test_a_budget_past_the_context_is_warned_about(tmp_path, caplog, capsys):
    path = _probe_file(tmp_path, "1+2")
    assert main([*_eval_argv(path), "--max-new-tokens", "250"]) == 0
    assert "plus max_new_tokens 250 runs past demo:base's context of 256 positions" in caplog.text
    assert "lower max_new_tokens to" in caplog.text


@pytest.fixture(scope="module")
def demo_tokenizer() -> Any:
    return load_tokenizer(resolve_model("demo:base"))


@pytest.fixture(scope="module")
def trained_bpe() -> Any:
    """A byte-level BPE (GPT-2's pre-tokenizer) trained here, with tokens of 30 characters and
    more: no tokenizer of a real model is on disk offline."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = ["supercalifragilistic", "1234567890" * 4, "=" * 32, "héllo wörld", "<think>"]
    corpus = [" ".join(words[i % 5 :] + words[: i % 5]) for i in range(200)]
    bpe.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    assert max(len(token) for token in tokenizer.get_vocab()) >= 30
    return tokenizer


@pytest.fixture
def tokenized(monkeypatch) -> list[list[int]]:
    """The lengths, in characters, of the texts of every call of a real tokenizer."""
    calls: list[list[int]] = []
    tokenize = PreTrainedTokenizerFast.__call__

    def recording(self: Any, text: Any = None, *args: Any, **kwargs: Any) -> Any:
        calls.append([len(text)] if isinstance(text, str) else [len(t) for t in text])
        return tokenize(self, text, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerFast, "__call__", recording)
    return calls


def _refusal(tokenizer: Any, prompts: list[str], context: int) -> str | None:
    requests = [
        GenerationRequest(Probe(id=f"p{i}", prompt="x", answer="2", scorer="exact"), prompt, 0)
        for i, prompt in enumerate(prompts)
    ]
    try:
        check_prompt_lengths(
            tokenizer, requests, GenerationSettings(), context, probe_set="s", model="m"
        )
    except GenerationError as error:
        return str(error)
    return None


def _whole_count(tokenizer: Any, prompt: str) -> int:
    """What the check counted before it counted prefixes: the whole prompt's tokens."""
    return len(tokenizer([prompt], add_special_tokens=False).input_ids[0])


def _refused_as(size: str, context: int, probe: str = "p0") -> str:
    return (
        f"probe set 's', probe {probe!r}: the rendered prompt is {size}, and m's context is "
        f"{context:,} positions, so nothing can be generated; shorten the prompt, drop the "
        "probe, or use a model with a longer context"
    )


def _at_least(tokens: int, chars: int) -> str:
    return f"at least {tokens:,} tokens (counted on a prefix of its {chars:,} characters)"


def test_a_giant_prompt_is_refused_on_a_prefix_never_tokenized_whole(demo_tokenizer, tokenized):
    context = context_length(resolve_model("demo:base"), demo_tokenizer)
    assert context == 256
    probes = [
        Probe(id="giant", prompt="Add 12 and 34. " * 333_334, answer="46", scorer="exact"),
        Probe(id="short", prompt="1+1", answer="2", scorer="exact"),
    ]
    requests = build_requests(demo_tokenizer, probes, GenerationSettings(), model="demo:base")
    giant, short = (len(request.prompt) for request in requests)
    assert giant > 5_000_000
    tokenized.clear()
    with pytest.raises(GenerationError) as raised:
        check_prompt_lengths(
            demo_tokenizer,
            requests,
            GenerationSettings(),
            context,
            probe_set="hostile",
            model="demo:base",
        )
    prefix = PREFIX_CHARS_PER_TOKEN * (context + PREFIX_MARGIN)
    assert tokenized == [[prefix], [short]]  # of the giant prompt, its first 10,240 characters
    # A token a character, but for the template's "<|im_start|>" (12 characters, one token).
    least = prefix - 11 - PREFIX_MARGIN
    assert str(raised.value) == (
        f"probe set 'hostile', probe 'giant': the rendered prompt is {_at_least(least, giant)}, "
        "and demo:base's context is 256 positions, so nothing can be generated; shorten the "
        "prompt, drop the probe, or use a model with a longer context"
    )


@pytest.mark.parametrize(
    ("repeats", "calls", "size"),
    [
        # 13 characters a token: the first prefix (787 tokens and 9 characters of a cut one)
        # falls short of the margin; the second, 3,150 tokens and 10 characters, does not.
        (100_000, [[10_240], [40_960]], _at_least(3_160 - PREFIX_MARGIN, 1_300_000)),
        # Under twice the second prefix: counted whole, exactly, after the first prefix.
        (4_000, [[10_240], [52_000]], "4,000 tokens"),
    ],
)
def test_long_tokens_grow_the_prefix_or_count_the_prompt_whole(
    demo_tokenizer, tokenized, repeats, calls, size
):
    message = _refusal(demo_tokenizer, ["<|endoftext|>" * repeats], 256)
    assert tokenized == calls
    assert message == _refused_as(size, 256)


PIECES = ["1", "ab", " ", "\n", "é", "<|im_start|>", "<|endoftext|>", "<think>", "=" * 32]
PIECES += ["supercalifragilistic", "1234567890"]
"""Text the demo tokenizer (a token a character, added tokens of 7 to 13) and the trained BPE
(tokens of 30 characters and more) cut differently."""


def _text(pieces: list[tuple[int, int]]) -> str:
    return "".join(PIECES[piece] * repeats for piece, repeats in pieces)


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(
        st.tuples(st.integers(0, len(PIECES) - 1), st.integers(1, 60)), min_size=1, max_size=8
    ),
    offset=st.integers(-3, 3),
)
def test_prompts_at_the_context_get_the_decisions_of_counting_them_whole(
    demo_tokenizer, pieces, offset
):
    prompt = _text(pieces)
    count = _whole_count(demo_tokenizer, prompt)
    context = max(count + offset, 2)  # just under, at, or just over the prompt's length
    message = _refusal(demo_tokenizer, ["1", prompt], context)
    if count >= context:
        assert message == _refused_as(f"{count:,} tokens", context, probe="p1")
    else:
        assert message is None


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo_tokenizer", "trained_bpe"])
def test_any_prompt_gets_the_decision_of_counting_it_whole(request, which):
    tokenizer = request.getfixturevalue(which)
    seen: set[str] = set()

    @settings(max_examples=40, deadline=None)
    @example(pieces=[(0, 50_000)], share=0.01)  # far past the context: refused on a prefix
    @example(pieces=[(5, 3_000)], share=1.0)  # 12 characters a token, at the context
    @example(pieces=[(9, 3_000)], share=1.5)  # fits
    @given(
        pieces=st.lists(
            st.tuples(st.integers(0, len(PIECES) - 1), st.integers(1, 3000)),
            min_size=1,
            max_size=8,
        ),
        share=st.floats(0.0, 2.0),
    )
    def decided_as_whole(pieces: list[tuple[int, int]], share: float) -> None:
        prompt = _text(pieces)
        count = _whole_count(tokenizer, prompt)
        context = max(round(count * share), 1)  # from far short of the prompt to twice it
        message = _refusal(tokenizer, [prompt], context)
        if count < context:
            seen.add("fits")
            assert message is None
        elif message is not None and "at least" in message:
            seen.add("refused on a prefix")
            least = int(message.partition("at least ")[2].partition(" ")[0].replace(",", ""))
            assert context <= least <= count
            assert message == _refused_as(_at_least(least, len(prompt)), context)
        else:
            seen.add("refused")
            assert message == _refused_as(f"{count:,} tokens", context)

    decided_as_whole()
    assert seen == {"fits", "refused", "refused on a prefix"}


def test_eval_refuses_a_giant_prompt_without_tokenizing_it_whole(
    tmp_path, capsys, monkeypatch, tokenized
):
    monkeypatch.setattr(TransformersBackend, "generate", None)  # nothing may be generated
    path = _probe_file(tmp_path, "1" * 2_000_000)
    assert main(_eval_argv(path)) == 2
    err = capsys.readouterr().err
    assert (
        "probe set 'long', probe 'long': the rendered prompt is at least 9,205 tokens (counted "
        "on a prefix of its 2,000,050 characters), and demo:base's context is 256 positions, "
        "so nothing can be generated; shorten the prompt, drop the probe" in err
    )
    assert "Traceback" not in err
    assert max(length for call in tokenized for length in call) == 10_240


def test_probes_check_warns_about_a_giant_prompt(tmp_path, capsys):
    path = _probe_file(tmp_path, "1" * 200_000)
    assert main(["probes", "check", str(path), "--scorer", "exact"]) == 0
    assert (
        f"{path}: warning: probe 'long' has a prompt of 200,000 characters, longer than most "
        "models' context" in capsys.readouterr().out
    )


# The pytest plugin (subprocesses: slow lane) ---------------------------------------------

REPO_THRESHOLDS = Path(__file__).resolve().parent.parent / "thresholds.yaml"


@pytest.fixture
def gated(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", thresholds=REPO_THRESHOLDS.read_text(encoding="utf-8"))
    return pytester


@pytest.mark.slow
def test_a_mistyped_rtc_config_is_an_error_naming_it(gated):
    result = gated.runpytest_subprocess("--rtc-config=thresholds.yml", "thresholds.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--rtc-config thresholds.yml: no such file" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--rtc-limit=0", "'0': give a whole number of at least 1"),
        ("--rtc-report=thresholds.yaml", "thresholds.yaml is a file, not a folder"),
        ("--rtc-cache-dir=thresholds.yaml", "thresholds.yaml is a file, not a folder"),
    ],
)
def test_bad_plugin_options_are_refused_before_any_work(gated, option, message):
    result = gated.runpytest_subprocess(option, "thresholds.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert message in err and "Traceback" not in err


INTERRUPTING_CONFTEST = """
from rtc_assert.generation.backends.transformers_backend import TransformersBackend

generate, calls = TransformersBackend.generate, []


def interrupted_on_the_second_set(self, requests, settings):
    calls.append(1)
    if len(calls) == 2:
        raise KeyboardInterrupt
    return generate(self, requests, settings)


TransformersBackend.generate = interrupted_on_the_second_set
"""


@pytest.mark.slow
def test_ctrl_c_under_pytest_writes_the_partial_record(pytester):
    pytester.makefile(
        ".yaml",
        thresholds="candidate: demo:base\ngeneration: {max_new_tokens: 8}\n"
        "decision: {holm: false, early_stopping: {enabled: false}}\nprobe_sets:\n"
        "  r: {source: 'demo:reasoning', limit: 3}\n  f: {source: 'demo:finetune', limit: 3}\n"
        "gates:\n  - {metric: answer_rate, min: 0.0, probe_sets: [r]}\n"
        "  - {metric: answer_rate, min: 0.0, probe_sets: [f]}\n",
    )
    pytester.makeconftest(INTERRUPTING_CONFTEST)
    result = pytester.runpytest_subprocess("--rtc-no-cache", "--rtc-report=out", "thresholds.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    record = read_record(pytester.path / "out" / "rtc-run.json")
    assert record.error == INTERRUPTED
    assert [run.probe_set for run in record.runs] == ["demo-reasoning"]
    assert [gate.passed for gate in record.gates] == [True]


# Faults: one clear paragraph, nothing lost -----------------------------------------------


def test_a_scorer_that_raises_is_an_error_of_the_run_naming_it():
    probe = Probe(id="p1", prompt="q", answer="4", scorer="exact")
    broken = Probe(id="p1", prompt="q", answer="4", scorer="tests.test_hostile:broken_scorer")
    assert score(probe, "4")
    with pytest.raises(
        ScorerError,
        match=r"scorer 'tests.test_hostile:broken_scorer' raised "
        r"ZeroDivisionError: .* on probe 'p1' .*fix the scorer",
    ):
        score(broken, "4")


def broken_scorer(answer: str, reference: str) -> bool:
    return bool(1 / 0)


def test_the_cache_writes_every_couple_of_seconds_of_work():
    assert next_chunk(0, 0.0, 32) == 32  # the first write after one engine batch
    assert next_chunk(64, 1.0, 32) == 128  # 64 per second: two seconds' worth
    assert next_chunk(10_000, 1.0, 32) == CHUNK  # never more than CHUNK between writes
    assert next_chunk(2, 60.0, 32) == 32  # a slow engine still writes after each batch


def test_ctrl_c_is_one_line_saying_how_to_resume(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_gate, "eval_command", interrupted)
    assert main(["eval", "--model", "demo:base", "--probes", "demo:reasoning"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; the generations finished so far are in the cache" in err
    assert "Traceback" not in err


def test_ctrl_c_inside_generation_writes_the_partial_record(tmp_path, monkeypatch, capsys):
    generate = TransformersBackend.generate
    calls = []

    def interrupted_on_the_second_set(self, requests, settings):
        calls.append(len(requests))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return generate(self, requests, settings)

    monkeypatch.setattr(TransformersBackend, "generate", interrupted_on_the_second_set)
    report = tmp_path / "report"
    argv = ["eval", "--model", "demo:base", "--probes", "demo:reasoning", "--probes",
            "demo:finetune", "--limit", "3", "--max-new-tokens", "8", "--no-cache",
            "--report", str(report)]  # fmt: skip
    assert main(argv) == 130
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == "rtc-assert: interrupted (nothing was cached: --no-cache)"
    assert "Traceback" not in err
    assert f"partial run record: {report / 'rtc-run.json'}" in out
    record = read_record(report / "rtc-run.json")
    assert record.error == INTERRUPTED
    assert [(run.probe_set, len(run.generations)) for run in record.runs] == [("demo-reasoning", 3)]


def test_records_redact_url_credentials_and_keys():
    record = session_record(
        config={"backend": {"options": {"base_url": "https://bob:hunter2@h/v1", "api_key": "k1"}}},
        runs=[],
        gates=[],
        timings={},
        models={},
        error="HTTP 401: Authorization: Bearer abcdefghij",
    )
    text = record.model_dump_json()
    assert "hunter2" not in text and "abcdefghij" not in text and '"k1"' not in text
    assert "https://***@h/v1" in text


def test_truncated_weights_are_one_clear_error_naming_the_folder(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(resolve_model("demo:base").source, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(GenerationError, match=rf"cannot load the weights of .* {folder}: "):
        load_backend("transformers", resolve_model(str(folder)))


# Lost work: a real run killed mid-generation, then resumed (subprocesses: slow lane) ------

REPO = Path(__file__).resolve().parent.parent
SLOW_GENERATION = """\
probe_sets:
  r: {source: "demo:reasoning", limit: 96}
generation: {max_new_tokens: 64, batch_size: 1}
gates:
  - {metric: valid_rate, min: 0.5}
"""
"""One request per engine batch: the run takes seconds, so it can be killed midway."""


def _cli(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """``rtc-assert ARGS`` in a new process, importing this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    code = "import sys; from rtc_assert.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, text=True, cwd=REPO, **popen
    )


def _stored(cache_dir: Path) -> int:
    database = cache_dir / CACHE_FILE
    if not database.is_file():
        return 0
    try:
        with sqlite3.connect(database, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _generations(report: Path) -> list[dict[str, Any]]:
    record = json.loads((report / "rtc-run.json").read_text(encoding="utf-8"))
    return [
        {"generations": run["generations"], "metrics": run["metrics"]} for run in record["runs"]
    ]


@pytest.mark.slow
def test_a_run_killed_mid_generation_loses_seconds_and_resumes_identically(tmp_path):
    config = tmp_path / "thresholds.yaml"
    config.write_text(SLOW_GENERATION, encoding="utf-8")
    cache = tmp_path / "cache"
    command = ("eval", "--model", "demo:base", "--config", str(config), "--cache-dir", str(cache))
    killed = _cli(*command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill after the second write: each write is kept, and writes come seconds apart.
    seen, writes, deadline = 0, [], time.monotonic() + 300
    while len(writes) < 2 and killed.poll() is None and time.monotonic() < deadline:
        stored = _stored(cache)
        if stored > seen:
            seen = stored
            writes.append(time.monotonic())
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"
    assert len(writes) == 2 and writes[1] - writes[0] < 10
    kept = _stored(cache)
    assert seen <= kept < 96  # every write before the kill is kept; the rest was not done

    resumed = _cli(*command, "--report", str(tmp_path / "resumed"), stdout=subprocess.DEVNULL)
    fresh = _cli(*command[:-1], str(tmp_path / "fresh-cache"), "--report", str(tmp_path / "fresh"))
    assert resumed.wait(timeout=600) == 0 and fresh.wait(timeout=600) == 0
    assert _stored(cache) == 96
    assert _generations(tmp_path / "resumed") == _generations(tmp_path / "fresh")


# Ctrl-C for real: SIGINT to a running rtc-assert, the partial record, the resumed run ------

RESUME_HINT = (
    "rtc-assert: interrupted; the generations finished so far are in the cache: run the same "
    "command again to resume"
)
INTERRUPTED_COMPARE = """\
candidate: demo:collapsed
base: demo:base
generation: {max_new_tokens: 64, batch_size: 2}
decision: {holm: false, early_stopping: {enabled: false}}
probe_sets:
  r: {source: "demo:reasoning", limit: 8}
  f: {source: "demo:finetune", limit: 48}
gates:
  - {metric: valid_rate, max_drop: 0.15, probe_sets: [r]}
  - {metric: valid_rate, max_drop: 0.15, probe_sets: [f]}
"""
"""Gates decided one by one: r's runs (8 probes, each model) and gate come first, then f's
runs of 48 probes, two per engine batch, give seconds to interrupt in."""
INTERRUPTED_SWEEP = """\
base: demo:base
generation: {max_new_tokens: 64, batch_size: 2}
probe_sets:
  reasoning: {source: "demo:reasoning", limit: 8}
  finetune: {source: "demo:finetune", limit: 8}
gates:
  - {metric: valid_rate, max_drop: 0.15}
"""
CANARY_TOKENS = 987_654
"""completion_tokens written over every cached generation: only a run that reads the cache
reports it."""


def _sigint_default() -> None:
    """In the child before exec: SIGINT's default disposition, which Python turns into
    KeyboardInterrupt, even where the test runner was started with SIGINT ignored (a
    background job of a non-interactive shell)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interruptible(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """``rtc-assert ARGS`` in a new process that Ctrl-C reaches, output into files."""
    out = (tmp_path / "stdout").open("w", encoding="utf-8")
    err = (tmp_path / "stderr").open("w", encoding="utf-8")
    with out, err:
        return _cli(*args, stdout=out, stderr=err, preexec_fn=_sigint_default)


def _ctrl_c_after(process: subprocess.Popen[str], cache: Path, stored: int) -> int:
    """SIGINT to ``process`` as soon as the cache holds more than ``stored`` generations (its
    work so far is done and more has begun); returns its exit status."""
    deadline = time.monotonic() + 300
    while _stored(cache) <= stored:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, f"no more than {stored} generations in 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=120)


def _assert_one_paragraph(tmp_path: Path) -> None:
    err = (tmp_path / "stderr").read_text(encoding="utf-8")
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # Beside the libraries' progress bars, one message: the last line.
    assert [line for line in err.splitlines() if "rtc-assert" in line] == [RESUME_HINT], err
    assert err.rstrip().endswith(RESUME_HINT), err


def _mark_cached(cache: Path) -> int:
    """Write `CANARY_TOKENS` over every cached generation; returns how many there are."""
    with sqlite3.connect(cache / CACHE_FILE) as connection:
        rows = connection.execute("SELECT key, record FROM generations").fetchall()
        marked = [(json.dumps({**json.loads(r), "completion_tokens": CANARY_TOKENS}), k)
                  for k, r in rows]  # fmt: skip
        connection.executemany("UPDATE generations SET record = ? WHERE key = ?", marked)
    return len(rows)


def _demo_series(tmp_path: Path, *steps: int) -> Path:
    """A copy of these checkpoints of the demo series, to damage."""
    series = tmp_path / "series"
    for step in steps:
        name = f"checkpoint-{step}"
        shutil.copytree(demo.ZOO_DIR / "sweep" / name, series / name)
    return series


@pytest.mark.slow
def test_ctrl_c_stops_compare_with_the_partial_record_and_a_rerun_resumes(tmp_path):
    config = tmp_path / "thresholds.yaml"
    config.write_text(INTERRUPTED_COMPARE, encoding="utf-8")
    cache, partial = tmp_path / "cache", tmp_path / "partial"
    command = ("compare", "--config", str(config), "--cache-dir", str(cache))
    process = _interruptible(tmp_path, *command, "--report", str(partial))
    # Interrupted once both models' runs on r are stored and the candidate's on f has begun.
    assert _ctrl_c_after(process, cache, stored=2 * 8) == 130
    _assert_one_paragraph(tmp_path)
    out = (tmp_path / "stdout").read_text(encoding="utf-8")
    assert f"partial run record: {partial / 'rtc-run.json'}" in out
    record = read_record(partial / "rtc-run.json")
    assert record.error == INTERRUPTED
    assert sorted((run.model, run.probe_set, len(run.generations)) for run in record.runs) == [
        ("demo:base", "demo-reasoning", 8),
        ("demo:collapsed", "demo-reasoning", 8),
    ]
    assert [gate.gate.id for gate in record.gates] == ["r::valid_rate[max_drop]"]

    kept = _mark_cached(cache)
    assert 2 * 8 < kept < 2 * (8 + 48)
    rerun = _cli(*command, "--report", str(tmp_path / "rerun"), stdout=subprocess.DEVNULL)
    assert rerun.wait(timeout=600) == 1  # the collapse fails f's gate
    resumed = read_record(tmp_path / "rerun" / "rtc-run.json")
    assert resumed.error is None and [gate.passed for gate in resumed.gates] == [
        record.gates[0].passed,
        False,
    ]
    generations = [(run.probe_set, g) for run in resumed.runs for g in run.generations]
    assert len(generations) == _stored(cache) == 2 * (8 + 48)
    from_cache = [name for name, g in generations if g.completion_tokens == CANARY_TOKENS]
    assert len(from_cache) == kept  # every generation stored before Ctrl-C is reused
    assert from_cache.count("demo-reasoning") == 2 * 8


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_with_the_checkpoints_gated_so_far_and_a_rerun_resumes(tmp_path):
    config = tmp_path / "thresholds.yaml"
    config.write_text(INTERRUPTED_SWEEP, encoding="utf-8")
    series = _demo_series(tmp_path, 4, 8, 12)
    cache, partial = tmp_path / "cache", tmp_path / "partial"
    command = ("sweep", "--checkpoints", str(series), "--config", str(config),
               "--cache-dir", str(cache))  # fmt: skip
    process = _interruptible(tmp_path, *command, "--report", str(partial))
    # Interrupted once the base and checkpoint-4 are stored (two sets of 8) and step 8 began.
    assert _ctrl_c_after(process, cache, stored=2 * 2 * 8) == 130
    _assert_one_paragraph(tmp_path)
    out = (tmp_path / "stdout").read_text(encoding="utf-8")
    where = f"partial sweep record: {partial / SWEEP_FILE}; chart: {partial / CHART_FILE}"
    assert out.splitlines() == [where]  # and no table or verdict of a sweep not finished
    record = SweepRecord.model_validate_json((partial / SWEEP_FILE).read_text(encoding="utf-8"))
    assert record.error == SWEEP_INTERRUPTED
    assert [step.step for step in record.steps] == [4]
    assert set(record.base_metrics) == {"reasoning", "finetune"}
    assert (record.first_failing, record.last_passing) == (None, 4)
    chart = ElementTree.parse(partial / CHART_FILE).getroot()
    titles = [text.text for text in chart.iter("{http://www.w3.org/2000/svg}text")]
    assert f"reasoning {STOPPED_NOTE}" in titles and f"finetune {STOPPED_NOTE}" in titles

    # checkpoint-4's weights zeroed, with the same size and time, so its fingerprint (and
    # cache keys) stand: the rerun can only get past it by reading its generations back.
    weights = series / "checkpoint-4" / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(bytes(before.st_size))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    full = tmp_path / "full"
    rerun = _cli(*command, "--report", str(full), stdout=subprocess.DEVNULL)
    assert rerun.wait(timeout=600) == 1  # the collapse fails a gate by step 12
    resumed = SweepRecord.model_validate_json((full / SWEEP_FILE).read_text(encoding="utf-8"))
    assert resumed.error is None and [step.step for step in resumed.steps] == [4, 8, 12]
    assert resumed.step(4) == record.step(4) and resumed.base_metrics == record.base_metrics
    assert STOPPED_NOTE not in (full / CHART_FILE).read_text(encoding="utf-8")


SERVER_RUN = """\
backend:
  name: openai
  options: {{base_url: "{url}/v1", served_model: demo, concurrency: 2, max_in_flight: 2}}
generation: {{max_new_tokens: 8, batch_size: 4}}
probe_sets:
  f: {{source: "demo:finetune", limit: 48}}
gates:
  - {{metric: valid_rate, min: 0.0}}
"""
"""The first engine batch (4 requests) is one cache write; the rest is one more chunk."""


def _hanging_server(answered: int) -> Stub:
    """Completions at once for the first ``answered`` requests; the rest wait for the stub's
    ``release`` (far longer than a run waits on Ctrl-C)."""
    completion = {"choices": [{"text": "<think>a</think>b", "finish_reason": "stop"}]}
    counted, lock = [0], threading.Lock()

    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with lock:
            counted[0] += 1
            hang = counted[0] > answered
        if hang:
            server.release.wait(600)
        return 200, completion

    server = Stub(reply)
    return server


@pytest.mark.slow
def test_ctrl_c_stops_a_server_run_at_once_with_every_finished_chunk_cached(tmp_path):
    server = _hanging_server(answered=4)
    try:
        config = tmp_path / "thresholds.yaml"
        config.write_text(SERVER_RUN.format(url=server.url), encoding="utf-8")
        cache = tmp_path / "cache"
        command = ("eval", "--model", "demo:base", "--config", str(config),
                   "--cache-dir", str(cache))  # fmt: skip
        process = _interruptible(tmp_path, *command)
        deadline = time.monotonic() + 300
        while _stored(cache) < 4 or len(server.seen) < 4 + 2:  # the next chunk's two are in flight
            assert process.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "the run did not reach its second chunk"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        # The requests in flight are cancelled, not awaited (the server would hold them 600 s).
        assert process.wait(timeout=60) == 130
        _assert_one_paragraph(tmp_path)
        assert len(server.seen) == 6  # nothing sent after Ctrl-C
        assert _mark_cached(cache) == 4  # the finished chunk; nothing of the one cut short

        server.release.set()
        rerun = _cli(*command, "--report", str(tmp_path / "rerun"), stdout=subprocess.DEVNULL)
        assert rerun.wait(timeout=600) == 0
        record = read_record(tmp_path / "rerun" / "rtc-run.json")
        (run,) = record.runs
        assert len(run.generations) == _stored(cache) == 48
        assert sum(g.completion_tokens == CANARY_TOKENS for g in run.generations) == 4
    finally:
        server.stop()


@pytest.mark.slow
def test_a_sweep_stopped_by_an_error_keeps_the_checkpoints_gated_before(tmp_path, capsys):
    series = _demo_series(tmp_path, 4, 8)
    weights = series / "checkpoint-8" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    report = tmp_path / "report"
    argv = ["sweep", "--base", "demo:base", "--checkpoints", str(series), "--probes",
            "demo:finetune", "--limit", "2", "--max-new-tokens", "8", "--no-cache",
            "--report", str(report)]  # fmt: skip
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert f"partial sweep record: {report / SWEEP_FILE}" in out
    checkpoint = series / "checkpoint-8"
    assert f"rtc-assert: error: cannot load the weights of {str(checkpoint)!r}" in err
    assert "Traceback" not in err
    record = SweepRecord.model_validate_json((report / SWEEP_FILE).read_text(encoding="utf-8"))
    assert [step.step for step in record.steps] == [4]
    assert record.error is not None
    assert record.error.startswith(f"cannot load the weights of {str(checkpoint)!r}")


def test_a_model_folder_without_tokenizer_files_is_one_clear_error(tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(resolve_model("demo:base").source, folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    argv = ["eval", "--model", str(folder), "--probes", "demo:reasoning", "--limit", "2"]
    assert main([*argv, "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert f"cannot load the tokenizer of {str(folder)!r} from the folder {folder}: " in err
    assert "the tokenizer files (tokenizer.json, or vocab.json" in err
    assert "tokenizer.save_pretrained(folder)" in err and "Traceback" not in err


# Weaker messages, sharpened --------------------------------------------------------------


def test_probes_check_accepts_the_csv_that_eval_loads(tmp_path, capsys):
    path = tmp_path / "probes.csv"
    path.write_text('prompt,answer\n"1+1, please",2\n2+2,4\n', encoding="utf-8")
    assert main(["probes", "check", str(path), "--scorer", "exact"]) == 0
    assert "probes version sha256:" in capsys.readouterr().out


def test_a_ragged_csv_row_is_refused_at_its_line(tmp_path, capsys):
    path = tmp_path / "probes.csv"
    path.write_text("prompt,answer\n2+2,4\n1+1, please,2\n", encoding="utf-8")
    assert main(["probes", "check", str(path), "--scorer", "exact"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: 3 fields where the header has 2: quote a field that holds a comma" in err


def test_an_empty_prompt_is_refused_at_its_line(tmp_path, capsys):
    path = tmp_path / "probes.jsonl"
    path.write_text('{"prompt": "2+2", "answer": "4"}\n{"prompt": " ", "answer": "4"}\n')
    assert main(["probes", "check", str(path), "--scorer", "exact"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: field 'prompt': the prompt is blank: give the question to ask" in err


def test_eval_says_it_decided_no_gates(capsys):
    argv = ["eval", "--model", "demo:base", "--probes", "demo:reasoning", "--limit", "2"]
    assert main([*argv, "--max-new-tokens", "8", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "rtc-assert: no gates decided: metrics only" in out and "0 of 0" not in out


def test_classify_escapes_c1_controls_and_direction_overrides(tmp_path, capsys):
    path = tmp_path / "completion.txt"
    text = "<think>a\x9b2J\u202eb</think>\x1b]0;t\x07 4"
    path.write_text(text, encoding="utf-8")
    assert main(["classify", str(path)]) == 0
    out = capsys.readouterr().out
    assert not RAW & set(out) and "\\u009b" in out and "\\u202e" in out
    assert json.loads(out)["reasoning"] == "a\x9b2J\u202eb"


@pytest.mark.slow
def test_k_selecting_one_gate_reports_only_that_gate(pytester):
    pytester.makefile(
        ".yaml",
        thresholds="candidate: demo:base\ngeneration: {max_new_tokens: 8}\n"
        "probe_sets:\n  r: {source: 'demo:reasoning', limit: 4}\n"
        "gates:\n  - {metric: answer_rate, min: 0.0}\n  - {metric: truncated_rate, max: 1.0}\n",
    )
    result = pytester.runpytest_subprocess(
        "--rtc-no-cache", "--rtc-report=out", "-k", "answer_rate", "thresholds.yaml"
    )
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*rtc-assert: 1 of 1 gates passed*"])
    record = read_record(pytester.path / "out" / "rtc-run.json")
    assert [gate.gate.metric for gate in record.gates] == ["answer_rate"]


def test_a_stray_validation_error_reaches_the_user_without_pydantic_banners(monkeypatch, capsys):
    def invalid(args):
        return GenerationSettings(max_new_tokens=0)

    monkeypatch.setattr(cli_gate, "eval_command", invalid)
    assert main(["eval", "--model", "demo:base", "--probes", "demo:reasoning"]) == 2
    err = capsys.readouterr().err
    assert "GenerationSettings: max_new_tokens: Input should be greater than 0" in err
    assert "errors.pydantic.dev" not in err and "validation error for" not in err
