"""The pytest plugin as users meet it: a throwaway project, a real pytest run, real models.

Each run is a subprocess: in-process runs would drop and re-import torch between runs. A run
that several tests read is made once per module (`passing_build`, `collapsed_build`), and runs
that do not test the cache itself share one generation cache (`shared_cache`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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
    """``pytest ARGS`` in a fresh process inside ``folder``, as `runpytest_subprocess` runs it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thresholds.yaml").write_text(REPO_THRESHOLDS.read_text(encoding="utf-8"))
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
