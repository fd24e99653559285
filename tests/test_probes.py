"""Probe-set loading: the study's files, YAML and JSONL shapes, and every bad-input message."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rtc_assert import Probe, ProbeFileError, ProbeSet, load_probe_set, score


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


@pytest.mark.parametrize(
    ("file", "scorer"), [("gsm8k_256.jsonl", "numeric"), ("chemistry_256.jsonl", "choice")]
)
def test_paper_probe_files_load_and_score_their_own_answers(paper_probes_dir, file, scorer):
    probe_set = load_probe_set(paper_probes_dir / file, scorer=scorer)
    assert len(probe_set) == 256
    assert probe_set.name == Path(file).stem
    assert probe_set.version.startswith("sha256:")
    assert all(probe.scorer == scorer for probe in probe_set)
    assert all(score(probe, probe.answer) for probe in probe_set)

    shuffled = [probe.answer for probe in probe_set]
    random.Random(0).shuffle(shuffled)
    correct = sum(score(probe, answer) for probe, answer in zip(probe_set, shuffled, strict=True))
    # Four options: chance is about a quarter; numbers rarely coincide.
    assert correct < 0.4 * len(probe_set)


def test_paper_probe_ids_are_stable_and_unique(paper_probes_dir):
    first = load_probe_set(paper_probes_dir / "gsm8k_256.jsonl", scorer="numeric")
    second = load_probe_set(paper_probes_dir / "gsm8k_256.jsonl", scorer="numeric")
    assert [p.id for p in first] == [p.id for p in second]
    assert len({p.id for p in first}) == 256
    assert first.probes[0].chat_messages() == [{"role": "user", "content": first.probes[0].prompt}]


def test_jsonl_with_ids_messages_metadata_and_numeric_answers(tmp_path):
    path = write(
        tmp_path,
        "set.jsonl",
        jsonl(
            {"id": "a", "prompt": "1+1?", "answer": 2, "scorer": "numeric"},
            {
                "id": "b",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Pick"},
                ],
                "answer": "C",
                "scorer": "choice",
                "metadata": {"level": 2},
            },
        )
        + "\n",  # blank lines are allowed
    )
    probe_set = load_probe_set(path)
    a, b = probe_set.probes
    assert (a.id, a.answer, a.scorer) == ("a", "2", "numeric")
    assert b.chat_messages()[0] == {"role": "system", "content": "Be brief."}
    assert b.metadata == {"level": 2}
    assert probe_set.by_id()["b"] is b


def test_version_changes_with_the_file(tmp_path):
    path = write(tmp_path, "s.jsonl", jsonl({"prompt": "q", "answer": "1"}))
    before = load_probe_set(path, scorer="exact").version
    write(tmp_path, "s.jsonl", jsonl({"prompt": "q", "answer": "2"}))
    assert load_probe_set(path, scorer="exact").version != before
    assert load_probe_set(path, scorer="exact", version="v7", name="mine").version == "v7"


def test_yaml_mapping_with_header(tmp_path):
    path = write(
        tmp_path,
        "set.yaml",
        "name: arithmetic\nversion: '3'\nscorer: numeric\nprobes:\n"
        "  - id: one\n    prompt: 2+2?\n    answer: 4\n"
        "  - prompt: 3+3?\n    answer: '6'\n    scorer: exact\n",
    )
    probe_set = load_probe_set(path)
    assert (probe_set.name, probe_set.version) == ("arithmetic", "3")
    assert [p.scorer for p in probe_set] == ["numeric", "exact"]
    assert probe_set.probes[1].id.startswith("p-")


def test_yaml_list(tmp_path):
    path = write(tmp_path, "list.yml", "- prompt: a\n  answer: b\n")
    assert len(load_probe_set(path, scorer="exact")) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            '{"prompt": "q", "answer": "1"}\n{"prompt": "q",\n',
            r"bad.jsonl:2: invalid JSON",
        ),
        (
            "noanswer.jsonl",
            jsonl({"prompt": "a", "answer": "1"}, {"prompt": "b"}),
            r"noanswer.jsonl:2: missing 'answer'",
        ),
        (
            "dup.jsonl",
            jsonl(
                {"id": "x", "prompt": "a", "answer": "1"},
                {"id": "y", "prompt": "b", "answer": "1"},
                {"id": "x", "prompt": "c", "answer": "1"},
            ),
            r"dup.jsonl:3: duplicate probe id 'x' \(first on line 1\)",
        ),
        (
            "samecontent.jsonl",
            jsonl({"prompt": "a", "answer": "1"}, {"prompt": "a", "answer": "1"}),
            r"samecontent.jsonl:2: duplicate probe id 'p-[0-9a-f]{12}' \(first on line 1\)",
        ),
        (
            "scorer.jsonl",
            jsonl({"prompt": "a", "answer": "1", "scorer": "fuzzy"}),
            r"scorer.jsonl:1: .*unknown scorer 'fuzzy'",
        ),
        ("empty.jsonl", "", r"empty.jsonl: the file is empty"),
        ("blank.jsonl", "\n  \n", r"blank.jsonl: the file is empty"),
        (
            "latin1.jsonl",
            '{"prompt": "caf\xe9", "answer": "1"}\n'.encode("latin-1"),
            r"latin1.jsonl:1: not UTF-8",
        ),
        (
            "both.jsonl",
            jsonl({"prompt": "a", "messages": [{"role": "user", "content": "a"}], "answer": "1"}),
            r"both.jsonl:1: .*exactly one of 'prompt' and 'messages'",
        ),
        (
            "neither.jsonl",
            jsonl({"answer": "1"}),
            r"neither.jsonl:1: .*exactly one of 'prompt' and 'messages'",
        ),
        ("array.jsonl", "[1, 2]\n", r"array.jsonl:1: a probe must be an object/mapping, got list"),
        (
            "role.jsonl",
            jsonl({"messages": [{"role": "robot", "content": "a"}], "answer": "1"}),
            r"role.jsonl:1: field 'messages.0.role'",
        ),
        (
            "extra.jsonl",
            jsonl({"prompt": "a", "answer": "1", "anwser": "2"}),
            r"extra.jsonl:1: field 'anwser': Extra inputs",
        ),
        (
            "notnum.jsonl",
            jsonl({"prompt": "a", "answer": "many", "scorer": "numeric"}),
            r"notnum.jsonl:1: .*'many' is not a number",
        ),
        (
            "blankans.jsonl",
            jsonl({"prompt": "a", "answer": "  "}),
            r"blankans.jsonl:1: .*reference answer is blank",
        ),
        ("probes.txt", "x", r"probes.txt: unknown probe file type"),
        ("bad.yaml", "probes:\n  - prompt: [unclosed\n", r"bad.yaml:\d+: invalid YAML"),
        ("keys.yaml", "name: x\nprobs: []\n", r"keys.yaml:1: unknown top-level keys \['probs'\]"),
        ("scalar.yaml", "just text\n", r"scalar.yaml:1: a YAML probe file is a list"),
        ("noprobes.yaml", "name: x\nprobes: []\n", r"noprobes.yaml: no probes in the file"),
        (
            "line.yaml",
            "probes:\n  - prompt: a\n    answer: '1'\n  - prompt: b\n",
            r"line.yaml:4: missing 'answer'",
        ),
    ],
)
def test_bad_input_names_file_line_and_reason(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(ProbeFileError, match=message) as raised:
        load_probe_set(path, scorer="exact")
    assert raised.value.path == path


def test_missing_scorer_says_how_to_give_one(tmp_path):
    path = write(tmp_path, "s.jsonl", jsonl({"prompt": "a", "answer": "1"}))
    with pytest.raises(
        ProbeFileError, match=r"s.jsonl:1: no scorer: give the probe a 'scorer' key"
    ):
        load_probe_set(path)


def test_unreadable_file(tmp_path):
    with pytest.raises(ProbeFileError, match="cannot read the file"):
        load_probe_set(tmp_path / "absent.jsonl")


def test_probe_set_rejects_duplicate_ids_built_in_python():
    probe = Probe(id="a", prompt="q", answer="1", scorer="exact")
    with pytest.raises(ValueError, match="duplicate probe id 'a'"):
        ProbeSet(name="s", version="1", probes=(probe, probe))


def test_head_cuts_a_set_for_quick_runs():
    probes = tuple(Probe(id=str(i), prompt="q", answer="1", scorer="exact") for i in range(5))
    probe_set = ProbeSet(name="s", version="1", probes=probes)
    assert [p.id for p in probe_set.head(2)] == ["0", "1"]
    assert len(probe_set.head(50)) == 5
    with pytest.raises(ValueError, match="at least one probe"):
        probe_set.head(0)
