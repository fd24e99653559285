"""The rtc-assert command line and the pytest plugin's registration, as users meet them."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest

import rtc_assert
from rtc_assert.cli import main


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


def test_console_script_is_installed():
    executable = shutil.which("rtc-assert")
    assert executable, "the rtc-assert console script is not on PATH: is the package installed?"
    result = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"rtc-assert {rtc_assert.__version__}"


def test_pytest_plugin_is_registered(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([f"rtc-assert {rtc_assert.__version__}"])
    result.assert_outcomes(passed=1)
