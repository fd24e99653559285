"""The bundled probe library: frozen files reproduce, answers are right, shapes hold."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import subprocess
import sys
from collections import Counter
from itertools import permutations

import pytest

from rtc_assert.cli.main import main
from rtc_assert.probes import library as probe_library
from rtc_assert.probes.library import build
from rtc_assert.probes.library.family import SET_SIZE
from rtc_assert.probes.probe import ProbeSet
from rtc_assert.scoring import score

NAMES = list(probe_library.FAMILIES)
PINNED = {
    # A generator change that alters a frozen file must bump the family's version, so that
    # old and new results never mix; then pin the new (version, sha256) here.
    "arithmetic": ("1", "419a4297b870a36dd9e5735e144a3728e3261dd3faba5e8ea5e96d99c332a458"),
    "calendar": ("1", "eaef53e342b3c88de5c91ea6b0c7e60f0941edcab37795308b09137c28fccded"),
    "strings": ("1", "83fe43965e89f4729d60afd1fed07588b1cb48efb6fea42850d8f24d38ba5625"),
    "deduction": ("1", "c0367673c4fb3015a214306fe7d37ca6ba93bed7a138bab9f9ce0c388de723c1"),
    "snippets": ("1", "e5079127630cf3599916108b818285bbfbb5116b323121fabeb4c0b21ab1246c"),
}


def load(name: str) -> ProbeSet:
    return probe_library.load(name)


@pytest.mark.parametrize("name", NAMES)
def test_regenerating_reproduces_the_frozen_file_byte_for_byte(name):
    frozen = probe_library.data_file(name).read_bytes()
    assert build.render(probe_library.FAMILIES[name]).encode("utf-8") == frozen


@pytest.mark.parametrize("name", NAMES)
def test_a_changed_set_carries_a_new_version(name):
    digest = hashlib.sha256(probe_library.data_file(name).read_bytes()).hexdigest()
    version = probe_library.FAMILIES[name].version
    assert (version, digest) == PINNED[name], (
        f"{name} changed: bump FAMILY.version in its module, then pin ({version!r}, {digest!r})"
    )


@pytest.mark.slow
def test_build_writes_the_files_and_check_finds_stale_ones(tmp_path, monkeypatch, capsys):
    packaged = {name: probe_library.data_file(name).read_bytes() for name in NAMES}
    monkeypatch.setattr(probe_library, "DATA_DIR", tmp_path)
    assert build.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert build.main([]) == 0
    assert {name: probe_library.data_file(name).read_bytes() for name in NAMES} == packaged
    assert build.main(["--check"]) == 0
    (tmp_path / "calendar.jsonl").write_bytes(packaged["calendar"].replace(b"Monday", b"Sunday"))
    assert build.main(["--check"]) == 1
    assert "calendar.jsonl" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_sets_have_stable_ids_unique_prompts_and_both_difficulties(name):
    probe_set = load(name)
    assert (probe_set.name, probe_set.version) == (name, probe_library.FAMILIES[name].version)
    assert [probe.id for probe in probe_set] == [f"{name}-{i:03d}" for i in range(SET_SIZE)]
    assert len({probe.prompt for probe in probe_set}) == SET_SIZE
    difficulties = [probe.metadata["difficulty"] for probe in probe_set]
    assert difficulties == ["easy", "hard"] * (SET_SIZE // 2), "alternating, so head() mixes"
    assert probe_set == load(name)


@pytest.mark.parametrize("name", NAMES)
def test_reference_answers_score_as_correct_and_others_mostly_do_not(name):
    probe_set = load(name)
    assert all(score(probe, probe.answer) for probe in probe_set)
    shuffled = [probe.answer for probe in probe_set]
    random.Random(0).shuffle(shuffled)
    right_by_chance = sum(score(p, a) for p, a in zip(probe_set, shuffled, strict=True))
    # Four options give about a quarter by chance; exact answers rarely coincide.
    assert right_by_chance < 0.35 * SET_SIZE


def test_multiple_choice_answers_are_balanced_at_each_difficulty():
    probe_set = load("deduction")
    for difficulty in ("easy", "hard"):
        letters = Counter(p.answer for p in probe_set if p.metadata["difficulty"] == difficulty)
        assert letters == {"A": 32, "B": 32, "C": 32, "D": 32}


CLUES = [
    (
        re.compile(r"(\w+) finished immediately ahead of (\w+)\."),
        lambda o, a, b: o.index(a) + 1 == o.index(b),
    ),
    (re.compile(r"(\w+) finished ahead of (\w+)\."), lambda o, a, b: o.index(a) < o.index(b)),
    (
        re.compile(r"(\w+) and (\w+) did not finish next to each other\."),
        lambda o, a, b: abs(o.index(a) - o.index(b)) > 1,
    ),
    (re.compile(r"(\w+) did not finish (\w+)\."), lambda o, a, p: o.index(a) != PLACES.index(p)),
    (re.compile(r"(\w+) finished (\w+)\."), lambda o, a, p: o.index(a) == PLACES.index(p)),
]
PLACES = ["first", "second", "third", "fourth", "fifth"]


def test_each_puzzle_read_from_its_text_has_exactly_one_right_option():
    """Solve every puzzle from its prompt alone, by trying every finishing order."""
    for probe in load("deduction"):
        lines = probe.prompt.splitlines()
        runners = re.fullmatch(r"(.+) ran a race; there were no ties\.", lines[0]).group(1)
        runners = re.split(r", | and ", runners)
        checks = []
        for line in lines[1:]:
            clue = re.fullmatch(r"\d+\. (.+)", line)
            if clue:
                pattern, check = next((p, c) for p, c in CLUES if p.fullmatch(clue.group(1)))
                checks.append((check, pattern.fullmatch(clue.group(1)).groups()))
        asked = PLACES.index(re.search(r"Who finished (\w+)\?", probe.prompt).group(1))
        options = dict(re.findall(r"^([A-D])\) (\w+)$", probe.prompt, re.MULTILINE))
        orders = [o for o in permutations(runners) if all(c(o, *args) for c, args in checks)]
        assert len(orders) == 1, probe.id
        assert [letter for letter, name in options.items() if name == orders[0][asked]] == [
            probe.answer
        ], probe.id


@pytest.mark.slow
def test_snippet_answers_are_what_a_fresh_interpreter_prints():
    programs = [
        re.search(r"```python\n(.*)\n```", probe.prompt, re.DOTALL).group(1)
        for probe in load("snippets")
    ]
    runner = (
        "import contextlib, io, json, sys\n"
        "outputs = []\n"
        "for code in json.load(sys.stdin):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        exec(code, {})\n"
        "    outputs.append(out.getvalue().rstrip('\\n'))\n"
        "print(json.dumps(outputs))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", runner],
        input=json.dumps(programs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == [probe.answer for probe in load("snippets")]


def test_calendar_answers_agree_with_strftime():
    checked = 0
    for probe in load("calendar"):
        weekday = re.match(r"What day of the week is (\d{4}-\d{2}-\d{2})\?", probe.prompt)
        later = re.match(r"What is the date (\d+) days after (\d{4}-\d{2}-\d{2})\?", probe.prompt)
        if weekday:
            day = dt.datetime.strptime(weekday.group(1), "%Y-%m-%d")
            assert probe.answer == day.strftime("%A")  # C locale: English names
            checked += 1
        elif later:
            start = dt.date.fromisoformat(later.group(2))
            assert dt.date.fromisoformat(probe.answer) - start == dt.timedelta(int(later.group(1)))
            checked += 1
    assert checked > 30


def test_string_answers_agree_with_the_prompts():
    checked = 0
    for probe in load("strings"):
        count = re.fullmatch(
            r"How many times does the letter '(\w)' appear in '([a-z ]+)'\?", probe.prompt
        )
        backwards = re.match(r"Write '(\w+)' backwards\.", probe.prompt)
        if count:
            assert int(probe.answer) == count.group(2).count(count.group(1)) >= 1
            checked += 1
        elif backwards:
            assert probe.answer == backwards.group(1)[::-1]
            checked += 1
    assert checked > 30


def test_arithmetic_answers_are_positive_whole_numbers():
    assert all(int(probe.answer) > 0 for probe in load("arithmetic"))


def test_library_specs_name_a_set_or_one_difficulty():
    hard = probe_library.resolve_probe_spec("library:arithmetic:hard")
    assert (hard.name, hard.version, len(hard)) == ("arithmetic:hard", "1", SET_SIZE // 2)
    assert {probe.metadata["difficulty"] for probe in hard} == {"hard"}
    assert probe_library.resolve_probe_spec("library:calendar") == load("calendar")
    with pytest.raises(probe_library.LibraryNameError, match="known: arithmetic, calendar"):
        probe_library.resolve_probe_spec("library:algebra")
    with pytest.raises(probe_library.LibraryNameError, match="use easy or hard"):
        probe_library.resolve_probe_spec("library:strings:medium")
    with pytest.raises(probe_library.LibraryNameError, match="not a library probe set spec"):
        probe_library.resolve_probe_spec("demo:reasoning")


def test_cli_lists_the_library(capsys):
    assert main(["probes", "list"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert f"library:{name}: {name} version 1: 256 probes (" in out
    assert out.count("128 easy, 128 hard") == len(NAMES)
    assert "library:deduction: deduction version 1: 256 probes (256 choice)" in out


def test_cli_shows_examples_scorer_and_size(capsys):
    assert main(["probes", "show", "snippets", "--count", "2"]) == 0
    out = capsys.readouterr().out
    first, second = load("snippets").probes[:2]
    assert out.startswith("library:snippets: snippets version 1: 256 probes (256 exact)\n")
    assert f"{first.id} [easy, {first.metadata['kind']}]" in out
    assert f"{second.id} [hard, {second.metadata['kind']}]" in out
    assert f"  answer (exact): {first.answer}\n" in out
    assert "  | ```python\n" in out
    assert load("snippets").probes[2].id not in out


def test_cli_show_takes_any_source_and_names_unknown_ones(tmp_path, capsys):
    path = tmp_path / "mine.csv"
    path.write_text("prompt,answer\nWhat is 2+2?,4\n", encoding="utf-8")
    assert main(["probes", "show", str(path), "--scorer", "numeric"]) == 0
    assert "mine version sha256:" in capsys.readouterr().out
    assert main(["probes", "show", "algebra"]) == 2
    assert "'algebra' is neither a library set (arithmetic, calendar" in capsys.readouterr().err
