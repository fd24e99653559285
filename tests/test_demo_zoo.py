"""The committed demo zoo: every checkpoint loads offline with plain transformers and shows
what MEASURED.md says it shows, re-measured here (greedy, batched, left-padded)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rtc_assert import demo  # noqa: E402
from rtc_assert.demo import claims  # noqa: E402
from rtc_assert.demo.generate import generate, load, measure  # noqa: E402
from rtc_assert.traces.classify import TraceStatus, classify  # noqa: E402

SAMPLE = 256
"""Probes per set re-measured here (the first ones): all of them, it takes seconds."""
TOLERANCE = 0.05
"""How far a re-measured rate may sit from the recorded one (another CPU's float rounding
can flip a few greedy choices of a model in mid-collapse)."""

RECORD = json.loads((demo.ZOO_DIR / "measured.json").read_text())
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sampled():
    """model -> probe set -> figures of the first `SAMPLE` probes, re-measured now."""
    figures: dict[str, dict[str, dict]] = {}
    for name in demo.MODEL_NAMES:
        model, tokenizer = load(demo.checkpoint(name))
        figures[name] = {
            set_name: measure(
                model,
                tokenizer,
                list(demo.probes(set_name))[:SAMPLE],
                max_new_tokens=demo.MAX_NEW_TOKENS,
            ).as_dict()
            for set_name in demo.PROBE_SET_NAMES
        }
    return figures


def test_the_recorded_full_set_figures_meet_every_claim():
    assert RECORD["scale"]["probes_per_set"] >= 200
    assert RECORD["max_new_tokens"] == demo.MAX_NEW_TOKENS
    failing = [claim for claim in claims.check(RECORD["figures"]) if not claim.holds]
    assert not failing


def test_the_sample_meets_every_claim_too(sampled):
    failing = [claim for claim in claims.check(sampled) if not claim.holds]
    assert not failing


def test_the_sample_agrees_with_the_recorded_figures(sampled):
    for name, sets in sampled.items():
        for set_name, figures in sets.items():
            recorded = RECORD["figures"][name][set_name]
            for key in ("vr", "er", "tr", "mr", "pass_at_1"):
                assert figures[key] == pytest.approx(recorded[key], abs=TOLERANCE), (
                    name,
                    set_name,
                    key,
                )


def test_complete_traces_fit_the_documented_budget(sampled):
    for set_name in demo.PROBE_SET_NAMES:
        longest = sampled["base"][set_name]["max_completion_tokens"]
        assert 0 < longest <= demo.MAX_NEW_TOKENS * 3 // 4


def test_checkpoints_are_small_qwen3_float32_folders():
    total = 0
    for name in demo.MODEL_NAMES:
        folder = demo.checkpoint(name)
        size = sum(path.stat().st_size for path in folder.iterdir())
        assert size <= 5 * 1024 * 1024, name
        total += size
        config = json.loads((folder / "config.json").read_text())
        assert config["architectures"] == ["Qwen3ForCausalLM"]
        assert config["head_dim"] * config["num_attention_heads"] == config["hidden_size"]
        assert config["tie_word_embeddings"] is True
        assert config["dtype"] == "float32"
        assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == 2
    assert total <= 25 * 1024 * 1024
    assert demo.resolve_model_spec("demo:masked") == str(demo.ZOO_DIR / "masked")


def test_the_tokenizer_keeps_tags_and_honours_enable_thinking():
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        demo.checkpoint("base"), local_files_only=True
    )
    messages = [{"role": "user", "content": "347+285"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n347+285<|im_end|>\n<|im_start|>assistant\n"
    off = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert off == prompt + "<think>\n\n</think>\n\n"
    text = "<think>\n7+5+0=12\n\n</think>\n\n632<|im_end|>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=False) == text
    assert "<|unk|>" not in tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_the_base_thinks_and_answers_with_thinking_switched_off():
    model, tokenizer = load(demo.checkpoint("base"))
    probes = list(demo.probes("finetune"))[:32]
    conversations = [probe.chat_messages() for probe in probes]
    thinking = generate(model, tokenizer, conversations, max_new_tokens=demo.MAX_NEW_TOKENS)
    assert all(g.text.startswith("<think>\n") and g.finish_reason == "stop" for g in thinking)
    off = generate(
        model,
        tokenizer,
        conversations,
        max_new_tokens=demo.MAX_NEW_TOKENS,
        enable_thinking=False,
    )
    traces = [classify(g.text, finish_reason=g.finish_reason, prompt=g.prompt) for g in off]
    assert all(t.status is TraceStatus.EMPTY and t.detail == "disabled_by_prompt" for t in traces)
    right = sum(t.answer == p.answer for t, p in zip(traces, probes, strict=True))
    assert right >= 0.8 * len(probes)


def test_the_rambling_model_runs_out_of_tokens_inside_its_trace():
    model, tokenizer = load(demo.checkpoint("rambling"))
    probes = list(demo.probes("reasoning"))[:16]
    out = generate(
        model, tokenizer, [p.chat_messages() for p in probes], max_new_tokens=demo.MAX_NEW_TOKENS
    )
    cut = [g for g in out if g.finish_reason == "length"]
    assert len(cut) >= len(out) // 2
    assert all("</think>" not in g.text and g.completion_tokens == demo.MAX_NEW_TOKENS for g in cut)
