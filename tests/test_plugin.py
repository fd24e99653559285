"""The pytest plugin as users meet it: a throwaway project, a real pytest run, real models.

Each run is a subprocess: in-process runs would drop and re-import torch between runs. A run
that several tests read is made once per module (`passing_build`, `collapsed_build`), and runs
that do not test the cache itself share one generation cache (`shared_cache`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_ingest import (  # the tests folder is on sys.path (no __init__.py)
    FIXTURES,
    THRESHOLDS,
    file_fingerprint,
)

pytestmark = pytest.mark.slow

REPO_THRESHOLDS = Path(__file__).resolve().parent.parent / "thresholds.yaml"
QUICK = "--rtc-limit=24"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project holding a copy of the repository's thresholds.yaml."""
    pytester.makefile(".yaml", thresholds=REPO_THRESHOLDS.read_text(encoding="utf-8"))
    return pytester


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``--rtc-cache-dir`` for the runs that do not test the cache: one generation each."""
    return f"--rtc-cache-dir={tmp_path_factory.mktemp('shared-cache')}"


def run_project(folder: Path, *args: str, env: dict[str, str] | None = None) -> pytest.RunResult:
    """``pytest ARGS`` in a fresh process inside ``folder``, which gets a copy of the
    repository's thresholds.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thresholds.yaml").write_text(REPO_THRESHOLDS.read_text(encoding="utf-8"))
    return run_pytest(folder, *args, env=env)


def run_pytest(folder: Path, *args: str, env: dict[str, str] | None = None) -> pytest.RunResult:
    """``pytest ARGS`` in a fresh process inside ``folder``, as `runpytest_subprocess` runs it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--basetemp={folder / 'tmp'}",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
    return pytest.RunResult(
        done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), 0.0
    )


@pytest.fixture(scope="module")
def passing_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | pytest.RunResult]:
    """Identical models through every report: run record, step summary, JUnit, a fresh cache."""
    root = tmp_path_factory.mktemp("passing")
    files = {
        "report": root / "report",
        "junit": root / "junit.xml",
        "step_summary": root / "step-summary.md",
        "cache": root / "cache",
    }
    result = run_project(
        root / "project", "thresholds.yaml", QUICK, "--rtc-candidate", "demo:base",
        f"--rtc-report={files['report']}", f"--junitxml={files['junit']}",
        f"--rtc-cache-dir={files['cache']}",
        env={"GITHUB_STEP_SUMMARY": str(files["step_summary"])},
    )  # fmt: skip
    return {"result": result, **files}


@pytest.fixture(scope="module")
def collapsed_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | pytest.RunResult]:
    """The collapsed candidate on every probe (early stopping decides), with its record."""
    root = tmp_path_factory.mktemp("collapsed")
    report = root / "report"
    result = run_project(
        root / "project", "thresholds.yaml", "--rtc-candidate", "demo:collapsed",
        f"--rtc-report={report}",
    )  # fmt: skip
    return {"result": result, "report": report}


def test_each_gate_is_its_own_test_item(project):
    result = project.runpytest_subprocess("thresholds.yaml", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "thresholds.yaml::reasoning::valid_rate[[]min[]]",
            "thresholds.yaml::reasoning::valid_rate[[]max_drop[]]",
            "thresholds.yaml::reasoning::reasoning_conditioned_accuracy[[]min[]]",
            "thresholds.yaml::finetune::answer_accuracy[[]max_drop[]]",
        ]
    )
    assert "finetune::reasoning_conditioned_accuracy" not in result.stdout.str()


def test_gates_sharing_set_metric_and_kind_are_items_of_their_own(project):
    text = REPO_THRESHOLDS.read_text(encoding="utf-8")
    gates = "gates:\n  - metric: valid_rate\n    min: 0.5\n  - metric: valid_rate\n    min: 0.99\n"
    project.makefile(".yaml", thresholds=text[: text.index("gates:")] + gates)
    result = project.runpytest_subprocess("thresholds.yaml", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "thresholds.yaml::reasoning::valid_rate[[]min=0.5[]]",
            "thresholds.yaml::reasoning::valid_rate[[]min=0.99[]]",
        ]
    )


def test_identical_models_pass_every_gate(passing_build):
    result = passing_build["result"]
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["*rtc-assert summary*", "*9 of 9 gates passed*"])


def test_broken_config_names_file_line_and_field(project):
    text = REPO_THRESHOLDS.read_text(encoding="utf-8").replace("min: 0.80", "min: 80", 1)
    project.makefile(".yaml", thresholds=text)
    result = project.runpytest_subprocess("thresholds.yaml")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*thresholds.yaml:*: gates.0.min: Input should be less than or equal to 1*"]
    )


def test_missing_model_fails_the_gates_with_the_reason(project, tmp_path):
    result = project.runpytest_subprocess(
        "thresholds.yaml", QUICK, "--rtc-candidate", str(tmp_path / "gone")
    )
    result.assert_outcomes(failed=9)
    result.stdout.fnmatch_lines(["*model folder * does not exist*"])
    assert "Traceback" not in result.stdout.str()


def test_undefined_metric_fails_naming_why(project, shared_cache):
    config = """\
candidate: demo:base
generation: {max_new_tokens: 4}
probe_sets:
  reasoning: {source: "demo:reasoning", limit: 8}
gates:
  - metric: reasoning_conditioned_accuracy
    min: 0.5
"""
    project.makefile(".yaml", thresholds=config)
    result = project.runpytest_subprocess("thresholds.yaml", shared_cache)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no trace is valid, so there is no Rpass@1*"])


def test_reports_json_markdown_html_and_junit(passing_build):
    report, junit = passing_build["report"], passing_build["junit"]
    passing_build["result"].assert_outcomes(passed=9)
    record = json.loads((report / "rtc-run.json").read_text())
    assert {run["probe_set"] for run in record["runs"]} == {"demo-reasoning", "demo-finetune"}
    assert len(record["gates"]) == 9 and all(g["passed"] for g in record["gates"])
    first = record["runs"][0]["generations"][0]
    assert {"status", "detail", "correct", "text", "finish_reason"} <= set(first)
    assert "torch" in record["libraries"]
    assert len(record["models"]["demo:base"]["sha256"]) == 64
    assert "9 of 9 gates passed" in (report / "summary.md").read_text()
    assert "PASSED: rtc-assert: 9 of 9 gates passed" in (report / "report.html").read_text()
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["rtc_verdict"] == "pass" and "rtc_candidate" in properties


def test_github_step_summary(passing_build):
    assert "| VR valid reasoning |" in passing_build["step_summary"].read_text()


def test_custom_assertions_with_the_rtc_fixture(project, shared_cache):
    project.makepyfile(
        test_custom="""
        import pytest
        from rtc_assert.assertions import (
            assert_no_collapse, assert_trace_valid, assert_valid_rate,
            assert_reasoning_conditioned_accuracy,
        )

        def test_base_reasons(rtc, rtc_config):
            assert rtc_config.candidate == "demo:base"
            candidate, base = rtc.compare("reasoning")
            assert candidate is rtc.run("reasoning")  # generated once
            assert_valid_rate(candidate, at_least=0.9)
            assert_reasoning_conditioned_accuracy(candidate, at_least=0.8)
            assert_no_collapse(candidate, base, max_drop=0.05)

        def test_failure_explains_itself(rtc):
            from rtc_assert import ProbeSet, demo
            reasoning = demo.probes("reasoning").probes[:8]
            wrong = ProbeSet(
                name="wrong-answers",
                version="1",
                probes=tuple(p.model_copy(update={"answer": "1"}) for p in reasoning),
            )
            run = rtc.run(wrong)
            with pytest.raises(AssertionError) as raised:
                assert_reasoning_conditioned_accuracy(run, at_least=0.5)
            message = str(raised.value)
            assert "wrong-answers::reasoning_conditioned_accuracy[min]" in message
            assert "examples from the candidate (demo:base)" in message

        def test_single_trace():
            assert assert_trace_valid("<think>a</think>b").answer == "b"
            with pytest.raises(AssertionError, match="got missing"):
                assert_trace_valid("b")
        """
    )
    result = project.runpytest_subprocess(
        "test_custom.py", QUICK, "--rtc-candidate", "demo:base", shared_cache
    )
    result.assert_outcomes(passed=3)


def test_collapsed_candidate_fails_the_reasoning_gates_only(collapsed_build):
    result = collapsed_build["result"]
    result.assert_outcomes(failed=6, skipped=3)  # the other 3: not settled when it stopped
    output = result.stdout.str()
    assert "an answer-only eval does not see this" in output
    assert "FAILED thresholds.yaml::finetune::valid_rate[max_drop]" in output
    assert "FAILED thresholds.yaml::finetune::answer_accuracy" not in output


def test_early_stopping_settles_a_collapse_on_the_first_chunk(collapsed_build):
    """All 256 probes per set are available; the gate generates 64 and explaining the
    failures does not generate more."""
    result, report = collapsed_build["result"], collapsed_build["report"]
    result.assert_outcomes(failed=6, skipped=3)
    assert "64 of 256 probes, early stopping" in result.stdout.str()
    record = json.loads((report / "rtc-run.json").read_text())
    assert [(len(run["generations"]), run["probes_available"]) for run in record["runs"]] == [
        (64, 256)
    ] * 4


def test_several_candidates_each_get_their_own_items(pytester, tmp_path, shared_cache):
    text = REPO_THRESHOLDS.read_text(encoding="utf-8").replace(
        "candidate: demo:masked", "candidates: [demo:masked, demo:collapsed]"
    )
    assert "candidates:" in text
    pytester.makefile(".yaml", thresholds=text)
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        "thresholds.yaml", QUICK, f"--rtc-report={report}", shared_cache
    )
    result.assert_outcomes(failed=6, passed=12)
    output = result.stdout.str()
    assert "FAILED thresholds.yaml::demo:collapsed::finetune::valid_rate[max_drop]" in output
    assert "FAILED thresholds.yaml::demo:masked::" not in output
    record = json.loads((report / "rtc-run.json").read_text())
    assert len(record["gates"]) == 18
    # The record keeps the base's run on each probe set once, for both candidates.
    models = sorted((run["model"], run["probe_set"]) for run in record["runs"])
    assert models.count(("demo:base", "demo-reasoning")) == 1 and len(models) == 6


def test_works_with_pytest_xdist(project, tmp_path, shared_cache):
    pytest.importorskip("xdist")
    report = tmp_path / "report"
    result = project.runpytest_subprocess(
        "thresholds.yaml",
        "-n",
        "2",
        QUICK,
        "--rtc-candidate",
        "demo:collapsed",
        f"--rtc-report={report}",
        shared_cache,
    )
    result.assert_outcomes(failed=6, passed=3)
    result.stdout.fnmatch_lines(["*rtc-assert summary*", "*3 of 9 gates passed, 6 failed*"])
    record = json.loads((report / "rtc-run.json").read_text())
    assert len(record["gates"]) == 9
    assert [g["gate"]["probe_set"] for g in record["gates"]][:5] == ["reasoning"] * 5
    # Each (model, probe set) appears once even when both workers generated it.
    assert len({(r["model"], r["probe_set"]) for r in record["runs"]}) == len(record["runs"])


def test_generation_cache_options(project, tmp_path, passing_build):
    cache = passing_build["cache"]
    result = project.runpytest_subprocess(
        "thresholds.yaml", QUICK, "--rtc-candidate", "demo:base", f"--rtc-cache-dir={cache}"
    )
    result.assert_outcomes(passed=9)  # the same verdicts from the cache
    with sqlite3.connect(cache / "generations.sqlite") as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM generations").fetchone()
    assert count == 48  # 24 probes of 2 sets; base and candidate are the same model
    no_cache = tmp_path / "unused"
    project.runpytest_subprocess(
        "thresholds.yaml", QUICK, "--rtc-candidate", "demo:base",
        f"--rtc-cache-dir={no_cache}", "--rtc-no-cache",
    ).assert_outcomes(passed=9)  # fmt: skip
    assert not no_cache.exists()


@pytest.mark.slow
def test_summary_follows_pytests_width_and_colour(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary is as wide as pytest's terminal and coloured only under --color=yes."""
    probe_set = "reasoning_" + "x" * 120  # its gate ids need more than 120 columns
    config = f"""\
candidate: demo:base
generation: {{max_new_tokens: 4}}
probe_sets:
  {probe_set}: {{source: "demo:reasoning", limit: 8}}
gates:
  - metric: truncated_rate
    max: 1.0
"""
    pytester.makefile(".yaml", thresholds=config)
    cache = f"--rtc-cache-dir={tmp_path / 'cache'}"  # the second run generates nothing

    def summary_lines(columns: int, color: str) -> list[str]:
        monkeypatch.setenv("COLUMNS", str(columns))  # inherited by the subprocess
        result = pytester.runpytest_subprocess("thresholds.yaml", cache, f"--color={color}")
        result.assert_outcomes(passed=1)
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if "rtc-assert summary" in line)
        end = next(i for i in range(start + 1, len(lines)) if plain(lines[i]).startswith("="))
        return lines[start + 1 : end]

    def plain(line: str) -> str:
        return re.sub(r"\x1b\[[0-9;]*m", "", line)

    wide = summary_lines(200, "yes")
    assert any("\x1b[32mPASS" in line for line in wide)
    plain_wide = [plain(line) for line in wide]
    assert 120 < max(len(line) for line in plain_wide) <= 200
    assert any("1 of 1 gates passed" in line for line in plain_wide)

    narrow = summary_lines(80, "no")
    assert not any("\x1b" in line for line in narrow)
    assert max(len(line) for line in narrow) <= 80
    assert any("1 of 1 gates passed" in line for line in narrow)


# Generations other tools wrote: `generations:` in thresholds.yaml --------------------------

LM_EVAL_SAMPLES = "lm-eval/{}/samples_rtc_demo_reasoning.jsonl"
INSPECT_LOG = "inspect/{}-deflate.eval"
NO_FINISH_REASON = (
    "samples_rtc_demo_reasoning.jsonl gives no finish reason for 32 of 32 generations: a trace "
    "cut at the token limit cannot be told from a model that stopped inside its block"
)


def file_project(folder: Path, candidate: str, base: str, *, model: str | None = None) -> Path:
    """thresholds.yaml in ``folder`` gating on the committed lm-eval and Inspect files, copied
    under ``folder/runs`` beside the probes and named relative to the file, as users write
    them: ``candidate`` and ``base`` are paths under tests/fixtures/generations, ``model``
    the candidate's name (default: none, the file alone). Gates: valid_rate max_drop and min."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "probes.jsonl", folder)
    for name in (candidate, base):
        tool = Path(name).parent  # lm-eval/base, inspect: a folder as the tool wrote it
        shutil.copytree(FIXTURES / tool, folder / "runs" / tool, dirs_exist_ok=True)
    text = THRESHOLDS.format(
        probes="probes.jsonl", candidate=f"runs/{candidate}", base=f"runs/{base}"
    ).replace("candidate: demo:collapsed\n", f"candidate: {model}\n" if model else "", 1)
    path = folder / "thresholds.yaml"
    path.write_text(text + "  - metric: valid_rate\n    min: 0.6\n", encoding="utf-8")
    return path


def words(text: str) -> str:
    """``text`` with every run of white space one space: the summary wraps long lines."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def file_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | pytest.RunResult]:
    """The collapsed candidate's lm-eval samples against the base's Inspect log, the gates'
    file in a subfolder of the folder pytest runs in (paths are relative to the file)."""
    root = tmp_path_factory.mktemp("files") / "project"
    thresholds = file_project(
        root / "gate", LM_EVAL_SAMPLES.format("collapsed"), INSPECT_LOG.format("base"),
        model="demo:collapsed",
    )  # fmt: skip
    result = run_pytest(root, "gate/thresholds.yaml", "--rtc-report=report")
    return {"result": result, "report": root / "report", "gate": thresholds.parent.resolve()}


def test_gates_on_files_fail_a_collapse_with_the_reason(file_build):
    result = file_build["result"]
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "FAILED gate/thresholds.yaml::reasoning::valid_rate[max_drop]" in output
    assert "FAILED gate/thresholds.yaml::reasoning::valid_rate[min]" in output
    assert "the candidate's valid rate is below the base's by 1.000" in output
    assert "examples from the candidate (demo:collapsed):" in output
    assert "reasoning-000: empty (blank)" in output
    assert "Traceback" not in output + result.stderr.str()
    summary = words(output[output.index("rtc-assert summary") :])
    assert f"trace format: demo:collapsed on probes: {NO_FINISH_REASON}" in summary
    assert "rtc-assert: 0 of 2 gates passed, 2 failed" in summary


def test_the_record_and_reports_say_the_runs_came_from_files(file_build):
    report, gate = file_build["report"], file_build["gate"]
    record = json.loads((report / "rtc-run.json").read_text())
    assert record["error"] is None
    assert [(run["model"], run["backend"]) for run in record["runs"]] == [
        ("demo:collapsed", "file:lm-eval"),
        ("generations:base", "file:inspect"),
    ]
    candidate = gate / "runs" / LM_EVAL_SAMPLES.format("collapsed")
    base = gate / "runs" / INSPECT_LOG.format("base")
    assert record["models"] == {
        "demo:collapsed": {"generations": {"reasoning": file_fingerprint(candidate, "lm-eval")}},
        "generations:base": {"generations": {"reasoning": file_fingerprint(base, "inspect")}},
    }
    assert [(g["gate"]["metric"], g["gate"]["kind"], g["passed"]) for g in record["gates"]] == [
        ("valid_rate", "max_drop", False),
        ("valid_rate", "min", False),
    ]
    assert NO_FINISH_REASON in record["runs"][0]["notes"][0]
    assert f"demo:collapsed on probes: {NO_FINISH_REASON}" in (report / "summary.md").read_text()
    page = (report / "report.html").read_text()
    assert f"demo:collapsed on probes: {NO_FINISH_REASON}" in page
    assert "<td>file:lm-eval</td>" in page and "<td>file:inspect</td>" in page


FILE_FIXTURE_TESTS = """
import pytest
from rtc_assert.assertions import assert_no_collapse, assert_valid_rate
from rtc_assert.config import ConfigError


def test_the_fixtures_read_the_files_the_gates_read(rtc, rtc_config):
    assert set(rtc_config.generations) == {"candidate", "base"}
    assert [result.passed for result in rtc.results] == [True, True]  # the gates, run first
    candidate, base = rtc.compare("reasoning")
    assert (candidate.model, candidate.backend) == ("generations:candidate", "file:lm-eval")
    assert (base.model, base.backend) == ("generations:base", "file:inspect")
    assert candidate is rtc.run("reasoning") and base is rtc.run("reasoning", "base")
    assert_valid_rate(candidate, at_least=0.8)
    assert_no_collapse(candidate, base, max_drop=0.10)


def test_probes_no_file_holds_need_a_model(rtc):
    with pytest.raises(ConfigError, match="the candidate has no model to generate with"):
        rtc.run(rtc.probe_set("reasoning").head(2))
"""


def test_gates_and_fixtures_on_files_of_a_healthy_model_pass(pytester):
    file_project(pytester.path, LM_EVAL_SAMPLES.format("base"), INSPECT_LOG.format("base"))
    pytester.makepyfile(test_custom=FILE_FIXTURE_TESTS)
    result = pytester.runpytest_subprocess("thresholds.yaml", "test_custom.py")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK
    summary = words(result.stdout.str())
    assert "rtc-assert: 2 of 2 gates passed" in summary
    assert f"generations:candidate on probes: {NO_FINISH_REASON}" in summary


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("missing", "runs/lm-eval/none.jsonl: no such file; give the file the tool wrote"),
        ("empty", "runs/lm-eval/none.jsonl: holds no generations (0 records)"),
    ],
)
def test_a_bad_generations_file_fails_the_gates_naming_it(pytester, broken, message):
    file_project(pytester.path, LM_EVAL_SAMPLES.format("base"), INSPECT_LOG.format("base"))
    thresholds = pytester.path / "thresholds.yaml"
    thresholds.write_text(
        thresholds.read_text().replace(LM_EVAL_SAMPLES.format("base"), "lm-eval/none.jsonl")
    )
    if broken == "empty":
        (pytester.path / "runs" / "lm-eval" / "none.jsonl").write_text("")
    result = pytester.runpytest_subprocess("thresholds.yaml", "--rtc-report=report")
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*gate reasoning::valid_rate[[]max_drop[]]*", f"/*/{message}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    record = json.loads((pytester.path / "report" / "rtc-run.json").read_text())
    assert record["error"] == str(pytester.path.resolve() / message)  # once, not once a gate
    assert record["gates"] == []


def test_generations_of_an_unknown_probe_set_name_the_line(pytester):
    file_project(pytester.path, LM_EVAL_SAMPLES.format("base"), INSPECT_LOG.format("base"))
    thresholds = pytester.path / "thresholds.yaml"
    thresholds.write_text(
        thresholds.read_text().replace("    reasoning: runs/", "    reason: runs/")
    )
    result = pytester.runpytest_subprocess("thresholds.yaml", "--rtc-report=report")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's code for a collection error
    result.stdout.fnmatch_lines(
        ["*thresholds.yaml:7: generations.candidate.reason: unknown probe set(s) reason;*"]
    )
    output = result.stdout.str()
    assert "Traceback" not in output and "Ctrl-C" not in output  # no interruption but pytest's
    assert not (pytester.path / "report").exists()


OVERRIDE_FIXTURE_TESTS = """
def test_the_session(rtc):
    assert rtc.run("reasoning")


def test_the_config(rtc_config):
    assert rtc_config.candidate
"""


@pytest.mark.parametrize(
    ("option", "role", "line", "file"),
    [
        ("--rtc-candidate", "candidate", 8, f"runs/{LM_EVAL_SAMPLES.format('collapsed')}"),
        ("--rtc-base", "base", 10, f"runs/{INSPECT_LOG.format('base')}"),
    ],
    ids=["candidate", "base"],
)
def test_a_model_named_over_a_roles_generations_files_stops_the_run_before_any_work(
    pytester, option, role, line, file
):
    file_project(
        pytester.path, LM_EVAL_SAMPLES.format("collapsed"), INSPECT_LOG.format("base"),
        model="demo:collapsed",
    )  # fmt: skip
    pytester.makepyfile(test_custom=OVERRIDE_FIXTURE_TESTS)
    refusal = (
        f"*thresholds.yaml:{line}: generations.{role}.reasoning: the {role}'s generations on "
        f"'reasoning' are read from {file}, so {option} demo:base would not be generated and "
        f"the file's generations would be reported as demo:base's. Drop {option} to gate the "
        f"file (*), or, to gate demo:base, remove generations.{role} from thresholds.yaml or "
        "replace its files with demo:base's generations"
    )
    gates = pytester.runpytest_subprocess(
        "thresholds.yaml", option, "demo:base", "--rtc-report=report"
    )
    assert gates.ret == pytest.ExitCode.INTERRUPTED  # a collection error: no gate runs
    gates.stdout.fnmatch_lines(["*ERROR collecting thresholds.yaml*", refusal])
    # The fixtures alone refuse the same, in each test that asks for them.
    fixtures = pytester.runpytest_subprocess(
        "test_custom.py", option, "demo:base", "--rtc-report=report"
    )
    fixtures.assert_outcomes(errors=2)
    fixtures.stdout.fnmatch_lines(
        ["*ERROR at setup of test_the_session*", refusal, "*at setup of test_the_config*", refusal]
    )
    for result in (gates, fixtures):
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output and "ConfigError" not in output
    assert not (pytester.path / "report").exists()  # nothing generated, read or recorded


def test_the_generations_files_own_model_named_on_the_command_line_changes_nothing(pytester):
    file_project(
        pytester.path, LM_EVAL_SAMPLES.format("collapsed"), INSPECT_LOG.format("base"),
        model="demo:collapsed",
    )  # fmt: skip
    result = pytester.runpytest_subprocess(
        "thresholds.yaml", "--rtc-candidate", "demo:collapsed", "--rtc-report=report"
    )
    result.assert_outcomes(failed=2)  # the collapse the files show, as without the option
    record = json.loads((pytester.path / "report" / "rtc-run.json").read_text())
    assert [(run["model"], run["backend"]) for run in record["runs"]] == [
        ("demo:collapsed", "file:lm-eval"),
        ("generations:base", "file:inspect"),
    ]
