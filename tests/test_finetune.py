"""The fine-tuning strategies on the demo tokenizer and on templates with other think handling."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtc_assert.demo.tokenizer import build_hf_tokenizer
from rtc_assert.finetune import (
    IGNORE_INDEX,
    STRATEGIES,
    FinetuneError,
    Record,
    collate,
    render,
    tokenize,
    tokenize_records,
)

transformers = pytest.importorskip("transformers")

PROMPT = "<|im_start|>user\n347+285<|im_end|>\n<|im_start|>assistant\n"
EMPTY_BLOCK = "<think>\n\n</think>\n\n"
RESPONSE = "632<|im_end|>\n"

CHATML_WITHOUT_THINK = (
    "{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] "
    "+ '<|im_end|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
PREFILLED = (
    "{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] "
    "+ '<|im_end|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n<think>\\n' -}}{%- endif -%}"
)
DROPS_REASONING = (
    "{%- for m in messages -%}{%- set c = m['content'].split('</think>')[-1] -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + c + '<|im_end|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_hf_tokenizer()


M = "\u00a4"  # marks a masked token; never a token of the demo vocabulary


def with_template(template: str):
    other = build_hf_tokenizer()
    other.chat_template = template
    return other


def trained_text(tokenizer, example) -> str:
    """The tokens that are in the loss, decoded, with `M` for each masked token."""
    return "".join(
        M if label == IGNORE_INDEX else tokenizer.decode([token])
        for token, label in zip(example.input_ids, example.labels, strict=True)
    )


def test_default_is_the_templates_own_rendering_with_every_token_in_the_loss(tokenizer):
    example = tokenize(Record("347+285", "632"), tokenizer, "default")
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": "347+285"}, {"role": "assistant", "content": "632"}],
        tokenize=False,
    )
    assert example.text == expected == PROMPT + EMPTY_BLOCK + RESPONSE
    assert example.labels == example.input_ids
    assert example.input_ids == tokenizer(example.text, add_special_tokens=False)["input_ids"]
    assert example.attention_mask == [1] * len(example.input_ids)


def test_empty_trains_on_the_empty_block(tokenizer):
    example = tokenize(Record("347+285", "632"), tokenizer, "empty")
    assert example.text == PROMPT + EMPTY_BLOCK + RESPONSE
    assert example.labels == example.input_ids


def test_mask_leaves_the_whole_block_out_of_the_loss(tokenizer):
    example = tokenize(Record("347+285", "632"), tokenizer, "mask")
    assert example.text == PROMPT + EMPTY_BLOCK + RESPONSE
    block_tokens = len(tokenizer(EMPTY_BLOCK, add_special_tokens=False)["input_ids"])
    assert trained_text(tokenizer, example) == PROMPT + M * block_tokens + RESPONSE
    assert example.spans.think == (len(PROMPT), len(PROMPT) + len(EMPTY_BLOCK))


def test_respond_trains_on_the_response_only(tokenizer):
    example = tokenize(Record("347+285", "632"), tokenizer, "respond")
    masked = len(tokenizer(PROMPT + EMPTY_BLOCK, add_special_tokens=False)["input_ids"])
    assert trained_text(tokenizer, example) == M * masked + RESPONSE


def test_a_records_reasoning_fills_the_block_in_every_strategy(tokenizer):
    record = Record("347+285", "632", reasoning="7+5+0=12")
    block = "<think>\n7+5+0=12\n</think>\n\n"
    for strategy in STRATEGIES:
        example = tokenize(record, tokenizer, strategy)
        assert example.text == PROMPT + block + RESPONSE
    assert (
        tokenize(record, tokenizer, "default").labels
        == tokenize(record, tokenizer, "default").input_ids
    )
    masked = tokenize(record, tokenizer, "mask")
    assert "7+5" not in trained_text(tokenizer, masked)
    assert trained_text(tokenizer, masked).endswith(M + RESPONSE)


def test_a_template_without_think_support_gets_an_inline_block(tokenizer):
    plain = with_template(CHATML_WITHOUT_THINK)
    default = tokenize(Record("347+285", "632"), plain, "default")
    assert default.text == PROMPT + RESPONSE
    assert default.spans.think is None
    mask = tokenize(Record("347+285", "632"), plain, "mask")
    assert mask.text == PROMPT + EMPTY_BLOCK + RESPONSE
    assert trained_text(plain, mask).endswith(M * 6 + RESPONSE)


def test_a_prefilled_template_masks_the_opening_tag_from_the_prompt_too():
    prefilled = with_template(PREFILLED)
    example = tokenize(Record("347+285", "632"), prefilled, "mask")
    assert example.text == PROMPT + EMPTY_BLOCK + RESPONSE
    assert example.spans.prompt == (0, len(PROMPT))
    trained = trained_text(prefilled, example)
    assert "<think>" not in trained and "</think>" not in trained
    assert trained == PROMPT + M * 6 + RESPONSE


def test_a_template_that_drops_reasoning_is_refused():
    with pytest.raises(FinetuneError, match="does not keep"):
        tokenize(Record("347+285", "632"), with_template(DROPS_REASONING), "mask")


def test_default_needs_no_block_even_when_the_template_drops_them():
    example = tokenize(Record("347+285", "632"), with_template(DROPS_REASONING), "default")
    assert example.labels == example.input_ids


def test_unknown_strategies_and_incomplete_records_are_refused(tokenizer):
    with pytest.raises(FinetuneError, match="unknown strategy 'bare'.*default, empty"):
        render(Record("a", "b"), tokenizer, "bare")  # type: ignore[arg-type]
    with pytest.raises(FinetuneError, match="'response'"):
        tokenize({"instruction": "a"}, tokenizer, "mask")


def test_mappings_system_prompt_and_max_length(tokenizer):
    examples = tokenize_records(
        [{"instruction": "shift ab", "response": "bc"}], tokenizer, "respond", system="be brief"
    )
    assert examples[0].text.startswith("<|im_start|>system\nbe brief<|im_end|>\n")
    assert trained_text(tokenizer, examples[0]).strip(M) == "bc<|im_end|>\n"
    short = tokenize(Record("347+285", "632"), tokenizer, "mask", max_length=10)
    assert len(short.input_ids) == len(short.labels) == len(short.attention_mask) == 10


def test_collate_pads_on_the_right_with_ignored_labels(tokenizer):
    long = tokenize(Record("347+285", "632"), tokenizer, "mask")
    short = tokenize(Record("1", "2"), tokenizer, "mask")
    batch = collate([long, short], pad_token_id=tokenizer.pad_token_id)
    width = len(long.input_ids)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    pad = width - len(short.input_ids)
    assert batch["input_ids"][1, -pad:].tolist() == [tokenizer.pad_token_id] * pad
    assert batch["labels"][1, -pad:].tolist() == [IGNORE_INDEX] * pad
    assert batch["attention_mask"][1].tolist() == [1] * len(short.input_ids) + [0] * pad
    with pytest.raises(FinetuneError):
        collate([], pad_token_id=0)


TEXT = st.text(alphabet=string.ascii_letters + string.digits + " +=?.,\n", min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(instruction=TEXT, response=TEXT.filter(lambda r: r.strip("\n") == r and r.strip()))
def test_masking_partitions_the_sequence(tokenizer, instruction, response):
    for strategy in STRATEGIES:
        example = tokenize(Record(instruction, response), tokenizer, strategy)
        assert example.input_ids == tokenizer(example.text, add_special_tokens=False)["input_ids"]
        trained = trained_text(tokenizer, example)
        assert trained.endswith(response + "<|im_end|>\n")
        if strategy in ("default", "empty"):
            assert M not in trained
        if strategy == "mask":
            assert trained.startswith(f"<|im_start|>user\n{instruction}<|im_end|>")
            assert "<think>" not in trained
        if strategy == "respond":
            assert trained.strip(M) == response + "<|im_end|>\n"
