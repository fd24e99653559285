"""The HTML report: its content and escaping as text, then the page in headless chromium.

Records are real: a demo collapsed-vs-base run through the CLI, or synthetic generations
classified, scored, measured and gated by the library's own pipeline.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape
from synthetic_runs import synthetic_run

from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.record import SessionRecord, session_record
from rtc_assert.reports.charts import running_valid_rate
from rtc_assert.reports.html import (
    MAX_EXAMPLE_ROWS,
    TEXT_HEAD_BYTES,
    TEXT_TAIL_BYTES,
    allocate,
    cut_text,
    escaped_size,
    html_report,
    write_html_report,
)

HOSTILE = (
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    '"><svg onload="window.__pwned = 3">',
    "</pre></article><script>window.__pwned = 4</script>",
    '<iframe srcdoc="<script>parent.__pwned = 5</script>"></iframe>',
    "</script><script>window.__pwned = 6</script>",
    "{{ 7 * 7 }} {% raw %}",
)


def synthetic_record(
    base_texts: list[str],
    candidate_texts: list[str],
    *,
    base: str = "synthetic:base",
    candidate: str = "synthetic:candidate",
    probe_ids: list[str] | None = None,
) -> SessionRecord:
    """Base and candidate on one probe set whose reference answer is 42, gated on VR."""
    ids = probe_ids or [f"p{index:05d}" for index in range(len(base_texts))]
    probe_set = ProbeSet(
        name="synthetic",
        version="1",
        probes=tuple(Probe(id=i, prompt="q", answer="42", scorer="exact") for i in ids),
    )
    base_run = synthetic_run(base, probe_set, base_texts)
    candidate_run = synthetic_run(candidate, probe_set, candidate_texts)
    decision = DecisionConfig(bootstrap_samples=200)
    gates = [
        evaluate_gate(
            GateSpec(probe_set="synthetic", metric="valid_rate", kind="max_drop", threshold=0.1),
            candidate_run,
            base_run,
            decision,
        ),
        evaluate_gate(
            GateSpec(probe_set="synthetic", metric="answer_accuracy", kind="min", threshold=0.5),
            candidate_run,
            None,
            decision,
        ),
    ]
    return session_record(
        config={"candidate": candidate, "base": base, "decision": decision.model_dump()},
        runs=[base_run, candidate_run],
        gates=gates,
        timings={f"generate {candidate}": 1.5},
        models={candidate: {"spec": candidate, "sha256": "ab" * 32}},
    )


def _hostile_record() -> SessionRecord:
    bad = "<img src=x onerror=window.__pwned=7>"
    base_texts = [f"<think>{h}</think>42" for h in HOSTILE]
    candidate_texts = [f"<think></think>{h}" for h in HOSTILE[:-2]] + [
        f"<think>{HOSTILE[-2]}",
        HOSTILE[-1],
    ]
    return synthetic_record(
        base_texts,
        candidate_texts,
        base=f"base{bad}",
        candidate='candidate"><script>window.__pwned=8</script>',
        probe_ids=[f"probe-{index}{bad}" for index in range(len(HOSTILE))],
    )


def _large_texts(count: int) -> tuple[list[str], list[str]]:
    """Reasoning from 200 to 3,000 characters; the candidate's traces mostly collapsed."""
    base, candidate = [], []
    for index in range(count):
        reasoning = "step: carry the one, check the sum. " * (5 + index % 80)
        base.append(f"<think>{reasoning}</think>\n\n42")
        kind = index % 10
        if kind < 6:
            candidate.append("<think>\n\n</think>\n\n42")
        elif kind < 8:
            candidate.append(f"<think>{reasoning}</think>\n\n{41 + index % 2}")
        elif kind < 9:
            candidate.append(f"<think>{reasoning}")
        else:
            candidate.append("42")
    return base, candidate


# ---- the page as text --------------------------------------------------------------------


class _Tags(HTMLParser):
    """Every element and attribute name an HTML parser finds in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: Counter[str] = Counter()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements[tag] += 1
        self.attributes.update(name for name, _ in attrs)


def test_hostile_model_text_is_escaped_everywhere():
    page = html_report(_hostile_record())
    tags = _Tags()
    tags.feed(page)
    assert tags.elements["script"] == 1  # the page's own filter script
    assert not {"img", "iframe"} & set(tags.elements)
    assert not {name for name in tags.attributes if name.startswith("on")}
    text = html.unescape(page)
    for hostile in HOSTILE:
        assert hostile in text
        assert "<" not in hostile or hostile not in page


def test_page_is_self_contained():
    page = html_report(synthetic_record(["<think>a</think>42"], ["<think></think>42"]))
    for remote in ("http://", "https://", "src=", "@import", "url("):
        assert remote not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_page_shows_verdict_gates_metrics_and_metadata():
    record = synthetic_record(
        ["<think>a</think>42"] * 20, ["<think></think>42"] * 10 + ["<think>c</think>41"] * 10
    )
    page = html_report(record)
    assert [g.passed for g in record.gates] == [False, True]
    assert "FAILED: rtc-assert: 1 of 2 gates passed, 1 failed" in page
    assert page.count('<tr class="gate fail">') == 1
    for result in record.gates:
        # Escaped as the page's template escapes (jinja2 writes ' as &#39;).
        assert str(escape(result.gate.id)) in page and str(escape(result.reason)) in page
    assert "VR valid reasoning" in page and "Rpass@1 valid &amp; correct" in page
    assert "ab" * 32 in page  # the fingerprint
    assert f"<th>python</th><td>{record.python}</td>" in page
    assert "1.50 s" in page
    assert 'data-status="empty"' in page and 'data-regressed="1"' in page


def test_page_shows_the_trace_format_notes():
    """A run's warnings (here: a generations file without finish reasons) are on the page,
    as in the terminal and Markdown summaries; a record without any shows no notes."""
    record = synthetic_record(["<think>a</think>42"] * 3, ["<think>a</think>42"] * 3)
    assert 'id="notes"' not in html_report(record)
    note = "g.jsonl gives no finish reason for 3 of 3 generations"
    noted = record.model_copy(
        update={"runs": [record.runs[0], record.runs[1].model_copy(update={"notes": [note]})]}
    )
    page = html_report(noted)
    assert f"<li>synthetic:candidate on synthetic: {note}</li>" in page


def test_a_passing_record_says_passed():
    record = synthetic_record(["<think>a</think>42"] * 3, ["<think>a</think>42"] * 3)
    assert all(g.passed for g in record.gates)
    page = html_report(record)
    assert '<header id="verdict" class="passed">' in page and "PASSED: " in page


def test_charts_draw_the_run_rates():
    record = synthetic_record(["<think>a</think>42"] * 4, ["<think></think>42"] * 3 + ["42"])
    page = html_report(record)
    # 300 units of axis from x=220: the candidate's bar is 75% empty and 25% missing.
    assert 'class="status-empty" x="220.0" y="34" width="225.0"' in page
    assert 'class="status-missing" x="445.0" y="34" width="75.0"' in page
    # pass@1 is 1 for both; Rpass@1 of the base is 1, the candidate's is undefined.
    assert page.count('class="point" cx="520.0"') == 3
    assert page.count('class="value undefined"') == 1
    assert "undefined: no valid trace" in page
    # VR over probe order: the base stays at 1 (y=0), the candidate at 0 (y=100).
    assert 'points="40.0,0.0 266.7,0.0 493.3,0.0 720.0,0.0"' in page
    assert 'points="40.0,100.0 266.7,100.0 493.3,100.0 720.0,100.0"' in page


def test_early_stopped_runs_end_short_of_the_probe_sets_axis():
    record = synthetic_record(["<think>a</think>42"] * 4, ["<think></think>42"] * 4)
    stopped = record.model_copy(
        update={"runs": [run.model_copy(update={"probes_available": 8}) for run in record.runs]}
    )
    page = html_report(stopped)
    # The axis spans all 8 probes (680 units from x=40): 4 probes reach x=331.4, not 720.
    assert 'points="40.0,0.0 137.1,0.0 234.3,0.0 331.4,0.0"' in page
    assert "after 4 of 8 probes (early stopping decided)" in page
    assert ">probe 8</text>" in page


@pytest.mark.slow
def test_large_run_is_capped_and_says_what_it_left_out():
    base, candidate = _large_texts(10_000)
    record = synthetic_record(base, candidate)
    page = html_report(record)
    assert len(page.encode()) < 15_000_000
    assert page.count('<article class="example"') == MAX_EXAMPLE_ROWS
    assert f"{20_000 - MAX_EXAMPLE_ROWS:,} generations are not listed" in page


@pytest.mark.slow
def test_page_size_is_bounded_whatever_the_models_write():
    text = "<&\u4e2d\U0001f600" * 5000  # 4 characters, 17 bytes once escaped
    base = [f"<think>{text}</think>{text}" for _ in range(1500)]
    candidate = [f"<think>{text}" for _ in range(1500)]
    record = synthetic_record(base, candidate)
    assert sum(len(g.text) for run in record.runs for g in run.generations) > 50_000_000
    assert len(html_report(record).encode()) < 15_000_000


def test_running_valid_rate_follows_probe_order():
    candidate = ["<think>a</think>42", "<think></think>42", "<think>b</think>42", "42"]
    record = synthetic_record(["<think>a</think>42"] * 4, candidate)
    assert running_valid_rate(record.runs[1]) == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2])


@given(st.lists(st.integers(0, 5000), max_size=12), st.integers(0, 4000))
def test_allocate_is_fair_and_uses_the_budget(totals, budget):
    shown = allocate(totals, budget)
    assert all(0 <= s <= t for s, t in zip(shown, totals, strict=True))
    assert sum(shown) == min(budget, sum(totals))
    capped = [s for s, t in zip(shown, totals, strict=True) if s < t]
    if capped:  # nobody gets more than one row above a group that was cut
        assert max(shown) <= min(capped) + 1


@given(st.text(max_size=2000) | st.text("<&a\u00e9\u4e2d\U0001f600", max_size=2000))
def test_cut_text_keeps_what_fits_and_both_ends(text):
    cut = cut_text(text)
    if escaped_size(text) <= TEXT_HEAD_BYTES + TEXT_TAIL_BYTES:
        assert cut == text
        return
    head, note, tail = cut.split("\n[... ", 1)[0], *cut.split("\n[... ", 1)[1].split(" ...]\n", 1)
    assert text.startswith(head) and text.endswith(tail)
    assert escaped_size(head) <= TEXT_HEAD_BYTES and escaped_size(tail) <= TEXT_TAIL_BYTES
    assert (
        note == f"{len(text) - len(head) - len(tail):,} characters cut here; rtc-run.json has them"
    )


def test_regressions_come_first_when_examples_are_capped():
    base = ["<think>a</think>42"] * 40
    candidate = ["<think>a</think>42"] * 10 + ["<think></think>42"] * 30  # 10-39 regressed
    page = html_report(synthetic_record(base, candidate), max_rows=8)
    # 8 rows: 2 of the candidate's 10 valid, 3 of its 30 empty, 3 of the base's 40, and
    # the base's 3 are those of regressed probes although probes 0-9 come first.
    assert page.count('<article class="example"') == 8
    assert page.count('data-regressed="1"') == 6
    assert "p00010" in page and "p00000" in page and "p00001" in page


# ---- the CLI -----------------------------------------------------------------------------


def _console_script() -> str:
    script = Path(sys.executable).parent / "rtc-assert"
    found = str(script) if script.is_file() else shutil.which("rtc-assert")
    assert found, "no rtc-assert console script beside Python or on PATH"
    return found


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_console_script(), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """A real collapsed-vs-base run on 16 probes of each demo set, with its reports."""
    folder = tmp_path_factory.mktemp("demo-report")
    result = _cli(
        "compare", "--base", "demo:base", "--candidate", "demo:collapsed",
        "--probes", "demo:reasoning", "--probes", "demo:finetune", "--limit", "16",
        "--report", str(folder), "--no-cache",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # the collapse fails the gate
    assert (folder / "report.html").is_file()
    return folder


@pytest.mark.slow
def test_report_command_renders_a_record(demo_report, tmp_path):
    target = tmp_path / "out" / "page.html"
    result = _cli("report", str(demo_report / "rtc-run.json"), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text(encoding="utf-8") == (demo_report / "report.html").read_text(
        encoding="utf-8"
    )


@pytest.mark.slow
def test_report_command_names_a_bad_record(tmp_path):
    bad = tmp_path / "rtc-run.json"
    bad.write_text(json.dumps({"runs": []}), encoding="utf-8")
    result = _cli("report", str(bad))
    assert result.returncode == 2
    assert f"{bad}: not an rtc-assert run record" in result.stderr
    assert "rtc_assert_version: Field required" in result.stderr
    assert "Traceback" not in result.stderr


# ---- the page in headless chromium (the `browser` fixture: conftest.py) --------------------


class ReportPage:
    """A report open in the browser, with every console error and uncaught exception."""

    def __init__(self, context, path: Path, timeout_ms: float = 30_000) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(path.resolve().as_uri(), timeout=timeout_ms)

    def visible_examples(self) -> int:
        return self.page.locator("#example-list .example:visible").count()

    def close(self) -> None:
        self.page.close()


def _spread(context, png: bytes) -> dict:
    """Luminance variance and distinct colours of a PNG, decoded by the browser's canvas."""
    page = context.new_page()
    try:
        return page.evaluate(
            """async (url) => {
              const image = new Image();
              image.src = url;
              await image.decode();
              const canvas = document.createElement("canvas");
              canvas.width = image.width;
              canvas.height = image.height;
              const context = canvas.getContext("2d");
              context.drawImage(image, 0, 0);
              const data = context.getImageData(0, 0, image.width, image.height).data;
              let sum = 0, squares = 0;
              const colours = new Set();
              for (let i = 0; i < data.length; i += 4) {
                const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
                sum += y;
                squares += y * y;
                colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
              }
              const n = data.length / 4;
              return {variance: squares / n - (sum / n) ** 2, colours: colours.size};
            }""",
            "data:image/png;base64," + base64.b64encode(png).decode(),
        )
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.browser
def test_demo_report_in_the_browser(browser, demo_report, tmp_path):
    record = json.loads((demo_report / "rtc-run.json").read_text(encoding="utf-8"))
    view = ReportPage(browser, demo_report / "report.html")
    page = view.page

    failed = [g["gate"] for g in record["gates"] if not g["passed"]]
    assert failed
    header = page.inner_text("#verdict h1")
    assert header.startswith("FAILED") and f"{len(failed)} failed" in header
    failed_rows = page.locator("#gates tr.gate.fail")
    assert failed_rows.count() == len(failed)
    assert failed_rows.first.is_visible() and "FAIL" in failed_rows.first.inner_text()

    statuses = Counter(
        (g["status"], run["model"]) for run in record["runs"] for g in run["generations"]
    )
    total = sum(statuses.values())
    assert view.visible_examples() == total
    for status in ("empty", "valid", "truncated"):
        page.click(f"button[data-status-filter='{status}']")
        expected = sum(n for (s, _), n in statuses.items() if s == status)
        assert view.visible_examples() == expected
        assert page.inner_text("#shown-count") == f"{expected} of {total} examples shown"
    page.select_option("#filter-model", "demo:collapsed")
    page.click("button[data-status-filter='valid']")
    assert view.visible_examples() == statuses[("valid", "demo:collapsed")]
    page.click("button[data-status-filter='']")
    page.select_option("#filter-model", "")
    page.check("#filter-regressed")
    regressed = page.locator("#example-list .example:visible")
    assert regressed.count() > 0
    assert {regressed.nth(i).get_attribute("data-regressed") for i in range(regressed.count())} == {
        "1"
    }

    shot = page.screenshot(path=str(tmp_path / "report.png"))
    empty = tmp_path / "blank.html"
    empty.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
    blank = _spread(browser, ReportPage(browser, empty).page.screenshot())
    spread = _spread(browser, shot)
    assert blank["variance"] < 1 and blank["colours"] <= 2  # the check tells blank from drawn
    assert spread["variance"] > 100 and spread["colours"] > 20
    assert view.errors == []


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_generations_neversynthetic_run(browser, tmp_path):
    path = write_html_report(_hostile_record(), tmp_path / "report.html")
    view = ReportPage(browser, path)
    page = view.page
    for button in ("empty", "missing", "truncated", ""):
        page.click(f"button[data-status-filter='{button}']")
    for details in page.locator("details").all():
        details.locator("summary").click()
    page.check("#filter-regressed")
    page.uncheck("#filter-regressed")
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.scripts.length") == 1
    assert page.locator("img, iframe, svg[onload]").count() == 0
    text = page.inner_text("#example-list")
    for hostile in HOSTILE:
        assert hostile in text  # shown as text
    assert view.errors == []


@pytest.mark.slow
@pytest.mark.browser
def test_a_report_of_20000_generations_opens(browser, tmp_path):
    base, candidate = _large_texts(10_000)
    path = write_html_report(synthetic_record(base, candidate), tmp_path / "report.html")
    size = os.path.getsize(path)
    assert size < 15_000_000
    # Opening and filtering must finish within Playwright's timeout: the test's own timeout.
    view = ReportPage(browser, path, timeout_ms=60_000)
    page = view.page
    assert view.visible_examples() == MAX_EXAMPLE_ROWS
    page.click("button[data-status-filter='missing']")
    assert 0 < view.visible_examples() < MAX_EXAMPLE_ROWS
    assert page.locator("#left-out").is_visible()
    assert view.errors == []
