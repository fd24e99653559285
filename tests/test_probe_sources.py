"""Probe sets from data sets (hf:, save_to_disk folders, Parquet, CSV) and thresholds.yaml.

Everything is offline: the tests write small data sets in tmp_path with the real `datasets`
library, and the hub is unreachable (HF_HUB_OFFLINE=1, set by the root conftest).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets", reason="the datasets extra is not installed")

from rtc_assert.config import ConfigError, load_config  # noqa: E402
from rtc_assert.errors import ProbeFileError  # noqa: E402
from rtc_assert.probes.sources import ProbeSourceError, load_source  # noqa: E402
from rtc_assert.record import run_record  # noqa: E402
from rtc_assert.scoring import score  # noqa: E402
from rtc_assert.session import RtcSession  # noqa: E402

ROWS = [
    {"question": f"What is {a} + {a + 1}?", "final": a + a + 1, "qid": 100 + a} for a in range(10)
]
MAPPING = {"prompt": "question", "answer": "final", "id": "qid"}
GSM8K = {"answer_pattern": r"####\s*(.+)", "scorer": "numeric"}


def test_a_save_to_disk_folder_with_a_field_mapping(tmp_path):
    datasets.Dataset.from_list(ROWS).save_to_disk(tmp_path / "arith")
    probe_set = load_source("arith", base_dir=tmp_path, fields=MAPPING, scorer="numeric")
    assert (probe_set.name, len(probe_set)) == ("arith", 10)
    first = probe_set.probes[0]
    assert (first.id, first.prompt, first.answer, first.scorer) == (
        "100",
        "What is 0 + 1?",
        "1",
        "numeric",
    )
    assert all(score(probe, probe.answer) for probe in probe_set)
    assert probe_set.version.startswith("sha256:")
    assert load_source("arith", base_dir=tmp_path, fields=MAPPING, scorer="numeric") == probe_set

    changed = [dict(row, final=0) if row["qid"] == 105 else row for row in ROWS]
    datasets.Dataset.from_list(changed).save_to_disk(tmp_path / "arith2")
    edited = load_source("arith2", base_dir=tmp_path, fields=MAPPING, scorer="numeric")
    assert edited.version != probe_set.version, "a changed data set gets a new version"


def test_a_dataset_dict_folder_needs_its_split(tmp_path):
    table = datasets.Dataset.from_list(ROWS)
    datasets.DatasetDict({"train": table, "test": table.select(range(3))}).save_to_disk(
        tmp_path / "dd"
    )
    with pytest.raises(
        ProbeSourceError, match=r"holds the splits train, test; choose one with 'split:'"
    ):
        load_source("dd", base_dir=tmp_path, fields=MAPPING, scorer="numeric")
    test = load_source("dd", base_dir=tmp_path, fields=MAPPING, scorer="numeric", split="test")
    assert [probe.id for probe in test] == ["100", "101", "102"]


def test_parquet_with_default_columns_chat_messages_and_per_row_scorers(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "2+2?"}], "answer": "4", "scorer": "numeric"},
        {
            "messages": [
                {"role": "system", "content": "Pick."},
                {"role": "user", "content": "A or B?"},
            ],
            "answer": "B",
            "scorer": "choice",
        },
    ]
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "chat.parquet")
    probe_set = load_source("chat.parquet", base_dir=tmp_path)
    assert probe_set.name == "chat"
    assert [p.scorer for p in probe_set] == ["numeric", "choice"]
    assert probe_set.probes[1].chat_messages()[0] == {"role": "system", "content": "Pick."}
    assert probe_set.probes[0].id.startswith("p-"), "no id column: ids come from the content"


def test_csv_errors_name_the_file_line(tmp_path):
    path = tmp_path / "probes.csv"
    path.write_text('prompt,answer\n"two\nlines",4\nthird,\n', encoding="utf-8")
    with pytest.raises(ProbeFileError, match=r"probes\.csv:4: field 'answer'.*blank"):
        load_source(str(path), scorer="numeric")
    path.write_text("prompt,answer\none,1\ntwo,2\n", encoding="utf-8")
    assert [p.answer for p in load_source(str(path), scorer="numeric")] == ["1", "2"]


def test_mapping_mistakes_name_the_columns(tmp_path):
    datasets.Dataset.from_list(ROWS).to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(
        ProbeSourceError,
        match=r"no 'prompt' or 'messages' column.*columns are question, final, qid",
    ):
        load_source("rows.parquet", base_dir=tmp_path, scorer="numeric")
    with pytest.raises(ProbeSourceError, match=r"no column 'query'; the columns are question"):
        load_source("rows.parquet", base_dir=tmp_path, fields={"prompt": "query"})
    with pytest.raises(ProbeSourceError, match=r"row 0: no scorer"):
        load_source("rows.parquet", base_dir=tmp_path, fields=MAPPING)
    rows = [dict(row, final=str(row["final"])) for row in ROWS]
    rows[3]["final"] = "seven"
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ProbeSourceError, match=r"bad.parquet: row 3: .*'seven' is not a number"):
        load_source("bad.parquet", base_dir=tmp_path, fields=MAPPING, scorer="numeric")


def test_answer_pattern_cuts_the_reference_out_of_a_worked_answer(tmp_path):
    rows = [
        {"question": "Six crates of 224 bottles?", "answer": "6 * 224 = 1344\n#### 1,344"},
        {"question": "Half of 10?", "answer": "10 / 2 = 5\n#### 5"},
    ]
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "gsm.parquet")
    probe_set = load_source(
        "gsm.parquet", base_dir=tmp_path, fields={"prompt": "question"}, **GSM8K
    )
    assert [p.answer for p in probe_set] == ["1,344", "5"]
    assert score(probe_set.probes[0], "so 1344 bottles")
    rows.append({"question": "No marker?", "answer": "7"})
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "gsm.parquet")
    with pytest.raises(
        ProbeSourceError,
        match=r"gsm.parquet: row 2: answer_pattern '####.*' does not match the answer '7'",
    ):
        load_source("gsm.parquet", base_dir=tmp_path, fields={"prompt": "question"}, **GSM8K)
    with pytest.raises(ProbeSourceError, match="is not a regular expression"):
        load_source("gsm.parquet", base_dir=tmp_path, answer_pattern="(", scorer="numeric")


def test_hf_spec_loads_through_datasets(tmp_path, monkeypatch):
    """``load_dataset`` reads OWNER/NAME from a local folder of that name before the hub."""
    (tmp_path / "acme" / "arith").mkdir(parents=True)
    datasets.Dataset.from_list(ROWS).to_parquet(tmp_path / "acme" / "arith" / "test.parquet")
    monkeypatch.chdir(tmp_path)
    probe_set = load_source("hf:acme/arith:test", fields=MAPPING, scorer="numeric")
    assert (probe_set.name, len(probe_set)) == ("hf:acme/arith:test", 10)
    with pytest.raises(ProbeSourceError, match=r"Unknown split"):
        load_source("hf:acme/arith:validation", fields=MAPPING, scorer="numeric")


def test_hf_spec_with_the_hub_unreachable_says_how_to_use_a_local_copy():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(ProbeSourceError) as raised:
        load_source("hf:rtc-assert-tests/absent:main:test")
    message = str(raised.value)
    assert "hub is unreachable" in message
    assert "save_to_disk(DIR)" in message and "source to DIR" in message


@pytest.mark.parametrize("spec", ["hf:gsm8k", "hf:openai/gsm8k", "hf:a/b:c:d:e"])
def test_malformed_hf_specs_show_the_format(spec):
    with pytest.raises(
        ProbeSourceError, match=r"hf:OWNER/NAME:SPLIT or hf:OWNER/NAME:CONFIG:SPLIT"
    ):
        load_source(spec)


def test_data_set_options_on_other_sources_are_refused(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "q", "answer": "1"}\n', encoding="utf-8")
    with pytest.raises(ProbeSourceError, match="'fields' and 'answer_pattern' read data-set"):
        load_source("p.jsonl", base_dir=tmp_path, fields={"prompt": "q"})
    with pytest.raises(ProbeSourceError, match="'split' applies to save_to_disk folders only"):
        load_source("library:arithmetic", split="test")


def write_config(tmp_path: Path) -> Path:
    datasets.Dataset.from_list(ROWS * 3).map(
        lambda row, i: {"qid": i}, with_indices=True
    ).save_to_disk(tmp_path / "data" / "arith")
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        """\
version: 1
candidate: demo:base
generation: {max_new_tokens: 16}
probe_sets:
  calendar: {source: "library:calendar", limit: 4}
  mine:
    source: data/arith
    fields: {prompt: question, answer: final, id: qid}
    scorer: numeric
    sample: 12
    seed: 3
gates:
  - {metric: valid_rate, min: 0.5}
""",
        encoding="utf-8",
    )
    return path


def test_thresholds_yaml_uses_a_library_set_and_a_data_set_side_by_side(tmp_path):
    path = write_config(tmp_path)
    session = RtcSession(load_config(path), config_dir=path.parent)
    calendar, mine = session.probe_set("calendar"), session.probe_set("mine")
    assert [p.id for p in calendar] == [f"calendar-{i:03d}" for i in range(4)]
    assert len(mine) == 12
    ids = [int(p.id) for p in mine]
    assert ids == sorted(ids) and len(set(ids)) == 12, "a sample keeps the set's order"
    again = RtcSession(load_config(path), config_dir=path.parent).probe_set("mine")
    assert again == mine, "a seeded sample is the same every run"


def test_the_readme_example_with_a_library_set_and_a_data_set_is_valid(tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL) if "library:" in b]
    (tmp_path / "thresholds.yaml").write_text(block, encoding="utf-8")
    config = load_config(tmp_path / "thresholds.yaml")
    assert config.probe_sets["calendar"].source == "library:calendar"
    gsm8k = config.probe_sets["gsm8k"]
    assert gsm8k.source.startswith("hf:") and gsm8k.fields == {"prompt": "question"}
    assert re.search(gsm8k.answer_pattern, "48 + 24 = 72\n#### 72").group(1) == "72"


def test_config_refuses_unknown_probe_fields(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        "probe_sets:\n  s:\n    source: x.csv\n    fields: {question: q}\ngates:\n  - {metric: valid_rate, min: 0.5}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"thresholds.yaml:4: probe_sets.s.fields.question"):
        load_config(path)


def test_a_library_set_version_reaches_the_run_record(tmp_path):
    path = write_config(tmp_path)
    session = RtcSession(load_config(path), config_dir=path.parent)
    record = run_record(session.run("calendar"))
    assert (record.probe_set, record.probe_set_version) == ("calendar", "1")
    assert [g.probe_id for g in record.generations] == [f"calendar-{i:03d}" for i in range(4)]
