"""Reasoning markers that are special tokens survive every backend, without an engine running.

The Gemma-4-style fixture marks reasoning with ``<|channel>thought`` ... ``<channel|>``; here
they are special tokens of the demo tokenizer, as they are of Gemma 4's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from rtc_assert import demo
from rtc_assert.generation.backends.transformers_backend import TransformersBackend
from rtc_assert.generation.backends.vllm_backend import sampling_options
from rtc_assert.generation.requests import (
    Generation,
    GenerationRequest,
    GenerationSettings,
    ServerSplit,
    build_requests,
)
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.runs import run_model
from rtc_assert.traces.classify import TraceStatus
from rtc_assert.traces.detection import detect_template

FIXTURES = Path(__file__).parent / "fixtures" / "chat-templates"
MARKERS = ["<|channel>", "<channel|>"]
MARKERS_PAIR = ["<|channel>thought", "<channel|>"]
PROBES = ProbeSet(
    name="s", version="1", probes=(Probe(id="p", prompt="2+2?", answer="4", scorer="numeric"),)
)


@pytest.fixture(scope="module")
def tokenizer():
    """The demo tokenizer with the Gemma-4-style template, its markers special tokens."""
    loaded = AutoTokenizer.from_pretrained(demo.resolve_model_spec("demo:base"))
    loaded.add_special_tokens({"additional_special_tokens": MARKERS})
    loaded.chat_template = (FIXTURES / "gemma4-style.jinja").read_text(encoding="utf-8")
    return loaded


def test_vllm_sampling_params_keep_special_tokens_unspaced():
    options = sampling_options(GenerationSettings(max_new_tokens=8, seed=3), n=2)
    assert options["skip_special_tokens"] is False
    assert options["spaces_between_special_tokens"] is False
    assert (options["n"], options["max_tokens"], options["seed"]) == (2, 8, 3)


def test_transformers_backend_decodes_with_special_tokens_kept(tokenizer):
    backend = TransformersBackend.__new__(TransformersBackend)
    backend.tokenizer = tokenizer
    backend.eos_token_ids = frozenset({tokenizer.eos_token_id})
    text = "<|channel>thought\n2 and 2 make 4.<channel|>4"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert set(tokenizer.convert_tokens_to_ids(MARKERS)) <= set(ids)
    request = GenerationRequest(PROBES.probes[0], "prompt", 0)
    generation = backend._record(request, [*ids, tokenizer.eos_token_id], 1, GenerationSettings())
    assert (generation.text, generation.finish_reason) == (text, "stop")


class _ChatStub:
    """An ``openai-chat`` backend whose server left the markup in ``content``."""

    name = "openai-chat"
    version = "stub"

    def __init__(self, tokenizer: object, content: str) -> None:
        self.tokenizer = tokenizer
        self.content = content

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        return [
            Generation(
                probe_id=r.probe.id, sample=r.sample, prompt=r.prompt, text=self.content,
                finish_reason="stop", prompt_tokens=1, completion_tokens=1,
                prefilled=r.prefilled,
                split=ServerSplit(reasoning=None, content=self.content),
            )
            for r in requests
        ]  # fmt: skip

    def close(self) -> None:
        pass


def test_chat_tags_left_in_content_are_read_with_the_detected_markup(tokenizer):
    stub = _ChatStub(tokenizer, "<|channel>thought\n2 and 2 make 4.<channel|>4")
    run = run_model(stub, PROBES, GenerationSettings(), model="m")
    (outcome,) = run.outcomes
    assert outcome.trace.status is TraceStatus.VALID
    assert outcome.trace.detail == "closed,tags_in_content"
    assert outcome.trace.answer == "4"


def test_the_record_says_prefilled_as_the_detected_markup_reads_the_prompt(tokenizer):
    """A Gemma-4-style prompt that opens the channel when thinking is on: prefilled, though
    no ``<think>`` is in sight; the backend's record says so."""
    gemma = copy.deepcopy(tokenizer)
    gemma.chat_template = tokenizer.chat_template.replace(
        "{%- if not thinking -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}",
        "{{- '<|channel>thought\\n' -}}{%- if not thinking -%}{{- '<channel|>' -}}{%- endif -%}",
    )
    detected = detect_template(gemma)
    assert detected.prefilled and detected.describe()["tags"] == [MARKERS_PAIR]
    (on,) = build_requests(gemma, PROBES.probes, GenerationSettings(), model="m")
    off_settings = GenerationSettings(enable_thinking=False)
    (off,) = build_requests(gemma, PROBES.probes, off_settings, model="m")
    assert on.prompt.endswith("<|channel>thought\n") and (on.prefilled, off.prefilled) == (
        True,
        False,
    )
    backend = TransformersBackend.__new__(TransformersBackend)
    backend.tokenizer = gemma
    backend.eos_token_ids = frozenset({gemma.eos_token_id})
    for request in (on, off):
        record = backend._record(request, [gemma.eos_token_id], 1, off_settings)
        assert record.prefilled is request.prefilled
