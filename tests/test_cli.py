"""The rtc-assert command line and the pytest plugin's registration, as users meet them."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rtc_assert
from rtc_assert.cli.main import main


def test_classify_reads_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("<think>2+2=4</think>\n4"))
    assert main(["classify", "--finish-reason", "stop"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {"status": "valid", "detail": "closed", "reasoning": "2+2=4", "answer": "4"}


def test_classify_file_with_custom_tags_and_prefill(tmp_path, capsys):
    path = tmp_path / "out.txt"
    path.write_text("still thinking", encoding="utf-8")
    assert main(["classify", str(path), "--prefilled", "--finish-reason", "length"]) == 0
    assert json.loads(capsys.readouterr().out)["detail"] == "length"
    path.write_text("[THINK]plan[/THINK]done", encoding="utf-8")
    assert main(["classify", str(path), "--open-tag", "[THINK]", "--close-tag", "[/THINK]"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "valid"


def test_classify_names_an_unreadable_file(tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("<think>caf\xe9</think>ok".encode("latin-1"))
    assert main(["classify", str(latin)]) == 2
    error = capsys.readouterr().err
    assert f"{latin}: byte 10 is not UTF-8; save the file as UTF-8 text" in error
    assert "Traceback" not in error
    assert main(["classify", str(tmp_path / "gone.txt")]) == 2
    assert "gone.txt: cannot read it (No such file or directory)" in capsys.readouterr().err


def test_classify_other_markups(monkeypatch, capsys):
    harmony = (
        "<|channel|>analysis<|message|>2+2=4<|end|><|start|>assistant<|channel|>final<|message|>4"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(harmony))
    assert main(["classify", "--markup", "harmony"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == "4"
    monkeypatch.setattr(sys, "stdin", io.StringIO("4"))
    assert (
        main(["classify", "--markup", "harmony", "--open-tag", "<a>", "--close-tag", "</a>"]) == 2
    )
    assert "do not apply to markup 'harmony'" in capsys.readouterr().err


def test_classify_needs_both_tags(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["classify", "--open-tag", "[THINK]"])
    assert raised.value.code == 2
    assert "--open-tag and --close-tag go together" in capsys.readouterr().err


def test_probes_check_reports_and_flags_bad_references(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "q", "answer": "12"}\n', encoding="utf-8")
    assert main(["probes", "check", str(good), "--scorer", "numeric"]) == 0
    assert "1 probes (1 numeric)" in capsys.readouterr().out

    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"id": "x", "prompt": "q", "answer": "1", "scorer": "pkg_absent:f"}\n')
    assert main(["probes", "check", str(odd)]) == 2
    assert "cannot import module 'pkg_absent'" in capsys.readouterr().err


def test_probes_check_names_the_bad_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "answer": "1"}\nnot json\n', encoding="utf-8")
    assert main(["probes", "check", str(bad), "--scorer", "exact"]) == 2
    assert f"rtc-assert: error: {bad}:2: invalid JSON" in capsys.readouterr().err


def test_probes_check_on_the_paper_probes(paper_probes_dir, capsys):
    path = paper_probes_dir / "chemistry_256.jsonl"
    assert main(["probes", "check", str(path), "--scorer", "choice"]) == 0
    assert "256 probes (256 choice)" in capsys.readouterr().out


def console_script() -> str:
    """The rtc-assert script pip installed beside this interpreter (the venv need not be active)."""
    script = Path(sys.executable).parent / "rtc-assert"
    found = str(script) if script.is_file() else shutil.which("rtc-assert")
    assert found, "no rtc-assert console script beside Python or on PATH: is the package installed?"
    return found


@pytest.mark.slow
def test_console_script_is_installed():
    result = subprocess.run(
        [console_script(), "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"rtc-assert {rtc_assert.__version__}"


@pytest.mark.slow
def test_pytest_plugin_is_registered(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([f"rtc-assert {rtc_assert.__version__}"])
    result.assert_outcomes(passed=1)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script(), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_compare_fails_a_collapse_and_writes_the_record(tmp_path):
    report = tmp_path / "report"
    result = run_cli(
        "compare", "--base", "demo:base", "--candidate", "demo:collapsed",
        "--probes", "demo:reasoning", "--limit", "32", "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "reasoning::valid_rate[max_drop]" in result.stdout
    assert "FAIL" in result.stdout
    record = json.loads((report / "rtc-run.json").read_text())
    assert {run["model"] for run in record["runs"]} == {"demo:base", "demo:collapsed"}
    assert not all(gate["passed"] for gate in record["gates"])


@pytest.mark.slow
def test_compare_stops_early_on_a_collapse_and_says_after_how_many_probes(tmp_path):
    report = tmp_path / "report"
    result = run_cli(
        "compare", "--base", "demo:base", "--candidate", "demo:collapsed",
        "--probes", "demo:reasoning", "--report", str(report), "--no-cache",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "demo-reasoning (64 of 256 probes, early stopping)" in result.stdout
    record = json.loads((report / "rtc-run.json").read_text())
    decided = "decided after 64 of 256 probes (early stopping, look 1 of 4)"
    assert any(decided in gate["reason"] for gate in record["gates"])
    assert {run["probes_available"] for run in record["runs"]} == {256}
    assert all(len(run["generations"]) == 64 for run in record["runs"])
    assert "decided after 64 of 256 probes" in (report / "summary.md").read_text()


@pytest.mark.slow
def test_compare_passes_identical_models():
    result = run_cli(
        "compare", "--base", "demo:base", "--candidate", "demo:base",
        "--probes", "demo:finetune", "--limit", "24",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 gates passed" in result.stdout


@pytest.mark.slow
def test_compare_decides_gates_sharing_set_metric_and_kind_each_on_their_own(tmp_path, capsys):
    config = tmp_path / "thresholds.yaml"
    config.write_text(
        "generation: {max_new_tokens: 64}\n"
        "probe_sets:\n  finetune: {source: 'demo:finetune', limit: 16}\n"
        "gates:\n  - {metric: valid_rate, min: 0.0}\n  - {metric: valid_rate, min: 1.0}\n",
        encoding="utf-8",
    )
    argv = ["compare", "--config", str(config), "--candidate", "demo:collapsed", "--no-cache"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "finetune::valid_rate[min=0]" in out and "finetune::valid_rate[min=1]" in out
    assert "1 of 2 gates passed, 1 failed" in out


def test_eval_prints_one_models_metrics(tmp_path):
    probes = tmp_path / "sums.jsonl"
    probes.write_text('{"prompt": "123+456", "answer": "579"}\n', encoding="utf-8")
    result = run_cli("eval", "--model", "demo:base", "--probes", str(probes), "--scorer", "numeric")
    assert result.returncode == 0, result.stderr
    assert "sums (1 probes)" in result.stdout and "VR valid reasoning" in result.stdout


@pytest.mark.slow
def test_cli_bad_input_is_exit_status_2(tmp_path):
    result = run_cli(
        "compare", "--base", "demo:base", "--candidate", "demo:nope", "--probes", "demo:finetune"
    )
    assert result.returncode == 2
    assert "unknown demo model 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_catches_the_collapse_and_passes_the_masked_model(tmp_path):
    result = run_cli("demo", "--limit", "48", "--report", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate FAILED" in result.stdout and "gate PASSED" in result.stdout
    for candidate in ("collapsed", "masked"):
        record = json.loads((tmp_path / candidate / "rtc-run.json").read_text())
        assert record["config"]["candidate"] == f"demo:{candidate}"
        assert (tmp_path / candidate / "report.html").is_file()


def test_plan_sizes_a_probe_set(capsys):
    assert main(["plan", "--base-rate", "0.95", "--drop", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("580 probes: a 'valid_rate' gate with max_drop 0.05")
    assert "the normal approximation alone says 550" in out
    assert main(["plan", "--metric", "empty_rate", "--base-rate", "0.02", "--drop", "0.05"]) == 0
    assert "a true rise of 0.1" in capsys.readouterr().out
    assert main(["plan", "--base-rate", "0.2", "--drop", "0.15"]) == 2
    assert "below half the base rate" in capsys.readouterr().err


def test_the_demo_gate_is_the_repository_gate():
    """`rtc-assert demo` ships its own copy of thresholds.yaml (pip installs no repo root):
    the two must not drift apart."""
    root = Path(__file__).resolve().parent.parent / "thresholds.yaml"
    packaged = Path(rtc_assert.__file__).parent / "demo" / "thresholds.yaml"
    assert packaged.read_text(encoding="utf-8") == root.read_text(encoding="utf-8")
