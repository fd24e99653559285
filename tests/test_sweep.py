"""Checkpoint sweeps: ordering a series, gating the demo zoo's real collapse, the chart."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from synthetic_runs import synthetic_run  # the tests folder is on sys.path (no __init__.py)
from test_cli import run_cli

from rtc_assert import demo
from rtc_assert.config import ConfigError, Overrides, RtcConfig, load_config
from rtc_assert.generation.checkpoints import CheckpointSeriesError, find_checkpoints, step_number
from rtc_assert.probes.probe import load_probe_set
from rtc_assert.reports.sweep import (
    CAPTION_CHARS,
    CHART_FILE,
    PANEL_HEIGHT,
    PLOT_HEIGHT,
    SERIES,
    TOP,
    sweep_svg,
    table_rows,
    write_sweep,
)
from rtc_assert.session import RtcSession
from rtc_assert.sweep import BaseFile, StepRecord, SweepRecord, run_sweep

SWEEP_STEPS = [4, 8, 12, 16, 20, 24]
SVG = "{http://www.w3.org/2000/svg}"


def make_checkpoints(root: Path, *names: str, marker: str = "config.json") -> None:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / marker).write_text("{}")


# finding and ordering a series ---------------------------------------------------------------


def test_checkpoints_are_ordered_by_step_number_not_by_name(tmp_path):
    make_checkpoints(tmp_path, "checkpoint-1000", "checkpoint-200", "checkpoint-30")
    make_checkpoints(tmp_path, "step_400", marker="adapter_config.json")
    (tmp_path / "logs").mkdir()  # not a model folder: not a checkpoint
    found = find_checkpoints(str(tmp_path))
    assert [c.step for c in found] == [30, 200, 400, 1000]
    assert [c.name for c in found] == [
        "checkpoint-30",
        "checkpoint-200",
        "step_400",
        "checkpoint-1000",
    ]


def test_a_glob_selects_checkpoints(tmp_path):
    make_checkpoints(tmp_path, "run-a/checkpoint-20", "run-a/checkpoint-10", "run-b/checkpoint-5")
    found = find_checkpoints(str(tmp_path / "run-a" / "checkpoint-*"))
    assert [c.step for c in found] == [10, 20]


def test_the_demo_series_is_found_in_the_zoo():
    found = find_checkpoints("demo:sweep")
    assert [c.step for c in found] == SWEEP_STEPS
    assert all(c.path.parent == demo.ZOO_DIR / "sweep" for c in found)


@given(
    prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.", min_size=1, max_size=12),
    step=st.integers(min_value=0, max_value=10**9),
)
def test_the_step_is_the_last_number_in_the_name(prefix, step):
    assert step_number(Path(f"epoch-3{prefix}{step}")) == step
    assert step_number(Path(prefix)) is None


@pytest.mark.parametrize(
    ("names", "spec", "message"),
    [
        ((), "{root}", "holds no checkpoints: no subfolder has config.json or adapter_config.json"),
        (("final", "checkpoint-2"), "{root}", "without a step number in their name: {root}/final"),
        (("a/checkpoint-2", "b/step-2"), "{root}/*/*", "have the same step number 2"),
        (("checkpoint-2",), "{root}/checkpoint-2", "is itself a model folder"),
        ((), "{root}/nothing-*", "no such folder, and no folder matches it as a glob"),
    ],
)
def test_bad_series_are_refused_with_what_to_do(tmp_path, names, spec, message):
    make_checkpoints(tmp_path, *names)
    with pytest.raises(CheckpointSeriesError, match=message.format(root=tmp_path)):
        find_checkpoints(spec.format(root=tmp_path))


def test_a_glob_that_matches_other_files_is_refused(tmp_path):
    make_checkpoints(tmp_path, "checkpoint-2")
    (tmp_path / "checkpoint-4.log").write_text("")
    with pytest.raises(CheckpointSeriesError, match="1 path.* not model folders.*checkpoint-4.log"):
        find_checkpoints(str(tmp_path / "checkpoint-*"))


# the sweep on the demo zoo's collapsed run ---------------------------------------------------


def demo_config(limit: int) -> RtcConfig:
    config = load_config(demo.ZOO_DIR.parent / "thresholds.yaml")
    return Overrides(limit=limit).apply(config)


@pytest.fixture(scope="module")
def swept() -> tuple[RtcSession, SweepRecord]:
    session = RtcSession(config=demo_config(32), config_dir=demo.ZOO_DIR.parent)
    try:
        return session, run_sweep(session, find_checkpoints("demo:sweep"))
    finally:
        session.close()


@pytest.mark.slow
def test_the_sweep_finds_where_the_demo_collapses(swept):
    _, record = swept
    assert [step.step for step in record.steps] == SWEEP_STEPS
    assert (record.last_passing, record.first_failing) == (4, 8)
    assert record.step(4).passed and not record.step(8).passed
    failed = {gate.gate.id for gate in record.step(8).failed_gates}
    assert "finetune::valid_rate[max_drop]" in failed
    # the traces on the fine-tuning domain go first, then those on the reasoning domain
    assert record.step(24).metrics["finetune"].valid_rate.value == 0.0
    assert record.step(24).metrics["reasoning"].valid_rate.value < 0.8


@pytest.mark.slow
def test_the_base_is_generated_once_for_the_whole_sweep(swept):
    session, record = swept
    base_runs = [run for run in session.runs if run.model == "demo:base"]
    assert len(base_runs) == len(record.probe_sets) == 2
    assert len(session.runs) == 2 * (1 + len(SWEEP_STEPS))
    assert set(record.fingerprints) == {"demo:base"} | {s.checkpoint for s in record.steps}


@pytest.mark.slow
def test_the_table_has_the_base_then_every_step(swept):
    _, record = swept
    rows = table_rows(record, "finetune")
    assert [row[0] for row in rows] == ["base", *map(str, SWEEP_STEPS)]
    assert rows[1][-1] == "PASS" and rows[2][-1].startswith("FAIL")
    assert rows[-1][-2] == "n/a", "Rpass@1 without a valid trace is undefined, not 0"


@pytest.mark.slow
def test_the_chart_draws_each_metric_and_marks_the_verdicts(swept):
    _, record = swept
    root = ElementTree.fromstring(sweep_svg(record))
    panels = root.findall(f"{SVG}g[@data-probe-set]")
    assert [panel.get("data-probe-set") for panel in panels] == ["reasoning", "finetune"]
    finetune = panels[1]
    lines = {line.get("data-metric"): line for line in finetune.iter(f"{SVG}polyline")}
    assert set(lines) == {metric for metric, _, _ in SERIES}
    valid = [
        tuple(map(float, point.split(","))) for point in lines["valid_rate"].get("points").split()
    ]
    assert len(valid) == len(SWEEP_STEPS)
    top = PANEL_HEIGHT + TOP  # the second panel's plot area starts here
    for (_, y), step in zip(valid, record.steps, strict=True):
        expected = top + (1 - step.metrics["finetune"].valid_rate.value) * PLOT_HEIGHT
        assert y == pytest.approx(expected, abs=0.051)  # one decimal
    # undefined Rpass@1 (no valid trace at step 24) is left out, never drawn at 0
    rpass_points = lines["reasoning_conditioned_accuracy"].get("points").split()
    assert len(rpass_points) == len(SWEEP_STEPS) - 1
    markers = {m.get("data-marker"): m for m in finetune.findall(f"{SVG}g[@data-marker]")}
    assert set(markers) == {"last_passing", "first_failing"}
    x_of = {kind: float(m.find(f"{SVG}line").get("x1")) for kind, m in markers.items()}
    assert x_of["last_passing"] == pytest.approx(valid[0][0])
    assert x_of["first_failing"] == pytest.approx(valid[1][0])


# the chart in headless chromium: nothing drawn over anything else ------------------------------


PROBES = Path(__file__).parent / "fixtures" / "generations" / "probes.jsonl"
LONG_FILE = (
    "/logs/lm-eval/my-org__reasoning-model-finetune-v2-rc1/"
    "samples_my_organisations_long_reasoning_task_2026-12-01T00-00-00.000000.jsonl"
)
"""A base file whose caption runs past the legend's left edge."""
CHART_BOXES = """() => {
  const box = (element, what) => {
    const r = element.getBoundingClientRect();
    return {what, left: r.left, top: r.top, right: r.right, bottom: r.bottom};
  };
  const chart = document.querySelector("svg").getBoundingClientRect();
  const panels = [...document.querySelectorAll("g[data-probe-set]")].map((panel) => [
    ...[...panel.querySelectorAll("g[data-marker] text")].map(
      (label) => box(label, `${label.parentNode.dataset.marker} label`)),
    ...[...panel.querySelectorAll("g[data-legend]")].map(
      (row) => box(row, `legend ${row.dataset.legend}`)),
    ...[...panel.querySelectorAll("text[data-base]")].map((text) => box(text, "base caption")),
    ...[...panel.querySelectorAll("text[data-title]")].map((text) => box(text, "title")),
  ]);
  return {chart: box(document.querySelector("svg"), "chart"), panels};
}"""


def chart_record(steps: list[int], failing: int | None) -> SweepRecord:
    """Two probe sets, every step failing from ``failing`` on; the base read from a file with
    a long name on one of them (made-up metrics, no model)."""
    probes = load_probe_set(PROBES).head(4)
    metrics = {
        name: synthetic_run("m", probes, ["<think>r</think>748"] * 4).metrics
        for name in ("reasoning", "finetune")
    }
    records = [
        StepRecord(
            step=step,
            checkpoint=f"/run/checkpoint-{step}",
            metrics=metrics,
            gates=[],
            passed=failing is None or step < failing,
        )
        for step in steps
    ]
    passing = [step for step in steps if failing is None or step < failing]
    return SweepRecord(
        base="my-org/reasoning-model-base",
        probe_sets=list(metrics),
        base_metrics=metrics,
        steps=records,
        first_failing=failing,
        last_passing=passing[-1] if passing else None,
        passing_after_failure=[],
        fingerprints={},
        base_files={"reasoning": BaseFile(file=LONG_FILE, format="lm-eval")},
    )


def _meet(one: dict, other: dict) -> bool:
    return min(one["right"], other["right"]) > max(one["left"], other["left"]) and min(
        one["bottom"], other["bottom"]
    ) > max(one["top"], other["top"])


@pytest.mark.browser
@pytest.mark.parametrize(
    ("steps", "failing"),
    [
        ([*range(1, 11)], 1),  # the first step fails: its marker at the plot's left edge
        ([*range(1, 11)], 5),  # the middle
        ([*range(1, 11)], 10),  # the last: its marker at the plot's right edge, by the legend
        ([*range(1, 11)], 9),  # next to last: both markers on the right
        ([*range(1, 11)], None),  # every step passes: the last pass marker at the right edge
        ([4], 4),  # one checkpoint, in the middle of the axis
    ],
)
def test_the_charts_labels_legend_and_captions_never_overlap(browser, tmp_path, steps, failing):
    write_sweep(chart_record(steps, failing), tmp_path)
    page = browser.new_page()
    try:
        page.goto((tmp_path / CHART_FILE).as_uri())
        boxes = page.evaluate(CHART_BOXES)
    finally:
        page.close()
    chart = boxes["chart"]
    for panel in boxes["panels"]:
        kinds = {box["what"] for box in panel}
        assert {"title", "legend VR", "legend Rpass@1"} <= kinds
        markers = {"first_failing label", "last_passing label"} & kinds
        assert markers == {
            *(["first_failing label"] if failing is not None else []),
            *(["last_passing label"] if failing != steps[0] else []),
        }
        for index, one in enumerate(panel):
            assert chart["left"] <= one["left"] and one["right"] <= chart["right"], one
            for other in panel[index + 1 :]:
                assert not _meet(one, other), (one, other)
    # The legend starts below the base caption's line, so no caption, however long, meets it.
    (reasoning, _) = boxes["panels"]
    (caption,) = (box for box in reasoning if box["what"] == "base caption")
    assert all(box["top"] > caption["bottom"] for box in reasoning if box["what"][:6] == "legend")


def test_a_long_base_caption_is_cut_in_the_middle_and_whole_in_its_tooltip():
    chart = ElementTree.fromstring(sweep_svg(chart_record([1, 2], 2)))
    caption = chart.find(f"{SVG}g[@data-probe-set='reasoning']/{SVG}text[@data-base]")
    words = f"base: my-org/reasoning-model-base, read from {Path(LONG_FILE).name} (lm-eval)"
    assert len(words) > CAPTION_CHARS == len(caption.text)
    head, tail = caption.text.split("\u2026")
    assert words.startswith(head) and words.endswith(tail) and tail.endswith("(lm-eval)")
    assert caption.find(f"{SVG}title").text == f"{words}: {LONG_FILE}"


def test_gates_against_a_base_need_one():
    config = demo_config(4).model_copy(update={"base": None})
    with pytest.raises(ConfigError, match="pass --base"):
        run_sweep(RtcSession(config=config), find_checkpoints("demo:sweep"))


# the command line ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_command_prints_and_writes_the_record_and_chart(tmp_path):
    report = tmp_path / "out"
    result = run_cli(
        "sweep", "--base", "demo:base", "--checkpoints", "demo:sweep",
        "--config", str(demo.ZOO_DIR.parent / "thresholds.yaml"), "--limit", "32",
        "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "first failing checkpoint: step 8" in result.stdout
    assert "last passing checkpoint: step 4" in result.stdout
    record = json.loads((report / "sweep.json").read_text())
    assert (record["first_failing"], record["last_passing"]) == (8, 4)
    assert [step["step"] for step in record["steps"]] == SWEEP_STEPS
    ElementTree.parse(report / "sweep.svg")


@pytest.mark.slow
def test_sweep_command_names_an_empty_folder(tmp_path):
    result = run_cli(
        "sweep", "--base", "demo:base", "--checkpoints", str(tmp_path), "--probes", "demo:finetune"
    )
    assert result.returncode == 2
    assert f"{tmp_path} holds no checkpoints" in result.stderr
    assert "Traceback" not in result.stderr
