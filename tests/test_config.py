"""thresholds.yaml: the schema, gate expansion, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc_assert.config import ConfigError, load_config

VALID = """\
version: 1
candidate: demo:masked
base: demo:base
backend:
  name: transformers
  options: {device: cpu}
generation:
  max_new_tokens: 64
decision:
  policy: confident
  confidence: 0.9
probe_sets:
  reasoning: {source: "demo:reasoning", limit: 50}
  finetune: {source: "demo:finetune"}
gates:
  - metric: valid_rate
    min: 0.85
  - metric: valid_rate
    max_drop: 0.10
  - metric: truncated_rate
    max: 0.2
    probe_sets: [reasoning]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_expands_gates_per_probe_set(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.generation.max_new_tokens == 64
    assert config.decision.confidence == 0.9
    assert config.probe_sets["reasoning"].limit == 50
    assert [spec.id for spec in config.gate_specs()] == [
        "reasoning::valid_rate[min]",
        "reasoning::valid_rate[max_drop]",
        "reasoning::truncated_rate[max]",
        "finetune::valid_rate[min]",
        "finetune::valid_rate[max_drop]",
    ]
    assert config.needs_base()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("max_new_tokens: 64", "max_new_tokens: 0"),
            r"thresholds.yaml:8: generation.max_new_tokens: Input should be greater than 0",
        ),
        (
            ("max_new_tokens: 64", "max_new_tokens: 64\n  beams: 4"),
            r"thresholds.yaml:9: generation.beams: Extra inputs are not permitted",
        ),
        (
            ("metric: truncated_rate", "metric: truncation"),
            r"thresholds.yaml:20: gates.2.metric: unknown metric 'truncation'; use one of valid_rate, ",
        ),
        (
            ("    max: 0.2\n", "    max: 0.2\n    min: 0.1\n"),
            r"thresholds.yaml:20: gates.2: a gate has exactly one of min, max, max_drop \(got min, max\)",
        ),
        (
            ("probe_sets: [reasoning]", "probe_sets: [gsm8k]"),
            r"thresholds.yaml:22: gates.2.probe_sets: unknown probe set\(s\) gsm8k; defined: reasoning, finetune",
        ),
        (
            ("policy: confident", "policy: lenient"),
            r"thresholds.yaml:10: decision.policy: Input should be 'confident', 'strict' or 'point'",
        ),
        (
            ("name: transformers", "name: tgi"),
            "thresholds.yaml:5: backend.name: unknown backend 'tgi': use one of transformers, vllm, openai, openai-chat",
        ),
        (
            ("options: {device: cpu}", "options: {devcie: cpu}"),
            "thresholds.yaml:6: backend.options.devcie: Extra inputs are not permitted",
        ),
        (
            (
                "name: transformers\n  options: {device: cpu}",
                "name: openai\n  options: {concurrency: many}",
            ),
            "thresholds.yaml:6: backend.options.concurrency: Input should be a valid integer.*\n"
            ".*thresholds.yaml:6: backend.options.base_url: Field required",
        ),
        (
            ("version: 1", "version: 2"),
            r"thresholds.yaml: version: this rtc-assert reads config version 1, the file says 2",
        ),
        (
            ("  - metric: valid_rate\n    min: 0.85\n", "  - metric: valid_rate\n    min: 1.5\n"),
            r"thresholds.yaml:17: gates.0.min: Input should be less than or equal to 1",
        ),
        (("gates:", "gates: [\n"), r"thresholds.yaml:\d+: invalid YAML"),
    ],
)
def test_errors_name_line_and_field(tmp_path, change, message):
    old, new = change
    assert old in VALID
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, VALID.replace(old, new, 1)))


def test_missing_sections_and_files(tmp_path):
    with pytest.raises(ConfigError, match="probe_sets: Field required"):
        load_config(write(tmp_path, "gates:\n  - metric: valid_rate\n    min: 0.5\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n"))
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "absent.yaml")


def test_trace_format_override(tmp_path):
    text = VALID + "trace_format: {open_tag: '[THINK]', close_tag: '[/THINK]'}\n"
    fmt = load_config(write(tmp_path, text)).trace_format.trace_format()
    assert (fmt.open_tag, fmt.close_tag) == ("[THINK]", "[/THINK]")
    with pytest.raises(ConfigError, match="give both open_tag and close_tag"):
        load_config(write(tmp_path, VALID + "trace_format: {open_tag: '[THINK]'}\n"))


def test_several_candidates_get_their_own_gates(tmp_path):
    text = VALID.replace("candidate: demo:masked", "candidates: [demo:masked, demo:collapsed]")
    config = load_config(write(tmp_path, text))
    assert config.candidate is None
    per_candidate = config.per_candidate()
    assert [c.candidate for c in per_candidate] == ["demo:masked", "demo:collapsed"]
    ids = [spec.id for c in per_candidate for spec in c.gate_specs()]
    assert ids[0] == "demo:masked::reasoning::valid_rate[min]"
    assert ids[5] == "demo:collapsed::reasoning::valid_rate[min]"
    assert len(set(ids)) == len(ids) == 10
    single = load_config(write(tmp_path, VALID))
    assert single.per_candidate() == [single]


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ("candidates: [demo:masked, demo:masked]", "each candidate may be named once"),
        (
            "candidate: demo:masked\ncandidates: [demo:collapsed]",
            "either 'candidate' or 'candidates'",
        ),
    ],
)
def test_candidates_errors(tmp_path, candidates, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, VALID.replace("candidate: demo:masked", candidates)))


DUPLICATES = VALID.replace(
    "  - metric: truncated_rate\n",
    "  - metric: valid_rate\n    min: 0.99\n    probe_sets: [reasoning]\n"
    "  - metric: valid_rate\n    max_drop: 0\n  - metric: truncated_rate\n",
)


def test_gates_sharing_set_metric_and_kind_get_their_thresholds_in_unique_ids(tmp_path):
    ids = [spec.id for spec in load_config(write(tmp_path, DUPLICATES)).gate_specs()]
    assert ids == [
        "reasoning::valid_rate[min=0.85]",
        "reasoning::valid_rate[max_drop=0.1]",
        "reasoning::valid_rate[min=0.99]",
        "reasoning::valid_rate[max_drop=0]",
        "reasoning::truncated_rate[max]",
        "finetune::valid_rate[min]",
        "finetune::valid_rate[max_drop=0.1]",
        "finetune::valid_rate[max_drop=0]",
    ]
    assert len(set(ids)) == len(ids)


def test_the_same_gate_twice_is_refused_with_its_line(tmp_path):
    twice = VALID.replace(
        "  - metric: truncated_rate\n",
        "  - metric: valid_rate\n    min: 0.85\n"
        "    probe_sets: [finetune]\n  - metric: truncated_rate\n",
    )
    with pytest.raises(
        ConfigError,
        match=r"thresholds.yaml:20: gates.2: the same gate as "
        r"gates.0 on probe set 'finetune'",
    ):
        load_config(write(tmp_path, twice))
