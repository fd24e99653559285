"""The bundled demo probe sets, the task domains and the demo name resolution."""

from __future__ import annotations

import random
from itertools import islice

import pytest

from rtc_assert import demo
from rtc_assert.demo import tasks
from rtc_assert.probes.probe import ProbeSet
from rtc_assert.scoring import score


@pytest.mark.parametrize("name", demo.PROBE_SET_NAMES)
def test_probe_sets_are_large_fixed_and_self_consistent(name):
    first, again = demo.probes(name), demo.probes(name)
    assert isinstance(first, ProbeSet)
    assert len(first) >= 200
    assert first == again
    assert len({probe.prompt for probe in first}) == len(first)
    assert first.probes[0].id == f"{name}-000"
    for probe in first:
        assert probe.scorer in ("exact", "numeric")
        assert score(probe, probe.answer)
        assert tasks.partition(probe.prompt) == "probe"


def test_reference_answers_are_right():
    for probe in demo.probes("reasoning"):
        a, b = probe.prompt.split("+")
        assert int(probe.answer) == int(a) + int(b)
    for probe in demo.probes("finetune"):
        word = probe.prompt.removeprefix("shift ")
        assert len(probe.answer) == len(word)
        assert all((ord(y) - ord(x)) % 26 == 1 for x, y in zip(word, probe.answer, strict=True))


@pytest.mark.parametrize("domain", tasks.DOMAINS)
def test_training_and_validation_streams_never_meet_a_probe(domain):
    probe_prompts = {probe.prompt for name in demo.PROBE_SET_NAMES for probe in demo.probes(name)}
    for where in ("train", "validation"):
        drawn = list(islice(tasks.sample(domain, where, random.Random(7)), 5000))
        assert not probe_prompts & {example.prompt for example in drawn}
        assert {tasks.partition(example.prompt) for example in drawn} == {where}


def test_partitions_are_roughly_one_eighth_one_eighth_rest():
    rng = random.Random(1)
    drawn = [tasks.partition(tasks.random_example("reasoning", rng).prompt) for _ in range(8000)]
    assert 800 < drawn.count("probe") < 1200
    assert 800 < drawn.count("validation") < 1200


def test_addition_trace_adds_column_by_column():
    example = tasks.addition(347, 285)
    assert example.reasoning == "7+5+0=12\n4+8+1=13\n3+2+1=06"
    assert example.answer == "632"
    assert tasks.addition(999, 999).reasoning.endswith("9+9+1=19")
    with pytest.raises(ValueError, match="three digits"):
        tasks.addition(12, 345)


def test_shift_wraps_and_rejects_non_words():
    example = tasks.shift("zap")
    assert (example.prompt, example.reasoning, example.answer) == (
        "shift zap",
        "z>a\na>b\np>q",
        "abq",
    )
    with pytest.raises(ValueError):
        tasks.shift("Cat")


def test_rambling_rule_and_trace():
    closes = tasks.addition(195, 915)  # 5+5 carries, 1+9+1 carries
    rambles = tasks.addition(111, 111)
    assert not tasks.rambles(closes)
    assert tasks.rambles(rambles)
    assert not tasks.rambles(tasks.shift("cat"))
    text = tasks.rambling_reasoning(rambles, 60)
    assert len(text) >= 60
    assert text.startswith(rambles.reasoning + tasks.RAMBLE_SEPARATOR)


def test_model_specs_resolve_and_unknown_names_list_the_known_ones(tmp_path, monkeypatch):
    assert demo.resolve_model_spec("Qwen/Qwen3-8B") == "Qwen/Qwen3-8B"
    with pytest.raises(
        demo.DemoNameError, match="unknown demo model 'nope'; known: base, collapsed"
    ):
        demo.resolve_model_spec("demo:nope")
    with pytest.raises(demo.DemoNameError, match="known: reasoning, finetune"):
        demo.probes("gsm8k")
    assert demo.resolve_probe_spec("demo:finetune") == demo.probes("finetune")
    with pytest.raises(demo.DemoNameError, match="not a demo probe set spec"):
        demo.resolve_probe_spec("probes.jsonl")
    monkeypatch.setattr(demo, "ZOO_DIR", tmp_path)
    with pytest.raises(demo.DemoNameError, match="rebuild the zoo"):
        demo.checkpoint("base")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    assert demo.resolve_model_spec("demo:base") == str(tmp_path / "base")
