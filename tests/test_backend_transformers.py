"""The transformers backend on real demo checkpoints, and the errors users meet first."""

from __future__ import annotations

import json
import shutil

import pytest

from rtc_assert import demo
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import (
    Backend,
    GenerationError,
    GenerationSettings,
    build_requests,
)
from rtc_assert.probes.probe import Probe
from rtc_assert.runs import run_model
from rtc_assert.traces.classify import TraceStatus

GREEDY = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=16)


@pytest.fixture(scope="module")
def base():
    return load_backend("transformers", resolve_model("demo:base"), {"device": "cpu"})


@pytest.fixture(scope="module")
def mixed_probes():
    """Reasoning probes (long traces) and finetune probes (short ones) in one list."""
    return demo.probes("reasoning").probes[:12] + demo.probes("finetune").probes[:12]


def test_greedy_run_on_the_base_model(base):
    probe_set = demo.probes("reasoning").head(24)
    run = run_model(base, probe_set, GREEDY, model="demo:base")
    assert [g.probe_id for g in run.generations] == [p.id for p in probe_set]
    for generation in run.generations:
        assert generation.finish_reason == "stop"
        assert "<|im_end|>" not in generation.text and "<|endoftext|>" not in generation.text
        assert "</think>" in generation.text  # tags survive decoding
        assert generation.prompt.endswith("<|im_start|>assistant\n")
        assert 0 < generation.completion_tokens <= GREEDY.max_new_tokens
        assert generation.prompt_tokens == len(base.tokenizer(generation.prompt).input_ids)
    assert run.metrics.valid_rate.value >= 0.9
    assert run.metrics.mean_reasoning_tokens > 0
    for outcome in run.outcomes:  # counted in one batch, as one text at a time would
        for text, count in [
            (outcome.trace.reasoning, outcome.reasoning_tokens),
            (outcome.trace.answer, outcome.answer_tokens),
        ]:
            assert count == len(base.tokenizer(text, add_special_tokens=False).input_ids)


def test_finish_reason_is_per_sequence_inside_a_batch(base, mixed_probes):
    settings = GenerationSettings(max_new_tokens=24, batch_size=len(mixed_probes))
    requests = build_requests(base.tokenizer, mixed_probes, settings, model="demo:base")
    generations = base.generate(requests, settings)
    reasons = {g.finish_reason for g in generations}
    assert reasons == {"stop", "length"}, "the mix should hold short and long completions"
    for generation in generations:
        if generation.finish_reason == "length":
            assert generation.completion_tokens == settings.max_new_tokens
        else:
            assert generation.completion_tokens < settings.max_new_tokens


def test_batching_and_sorting_do_not_change_greedy_outputs(base, mixed_probes):
    one = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=1)
    many = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=8)
    requests = build_requests(base.tokenizer, mixed_probes, one, model="demo:base")
    single = [g.text for g in base.generate(requests, one)]
    batched = [g.text for g in base.generate(requests, many)]
    same = sum(a == b for a, b in zip(single, batched, strict=True))
    assert same >= 0.95 * len(requests)


def test_seeded_sampling_is_reproducible(base, mixed_probes):
    def sample(seed: int) -> list[str]:
        settings = GenerationSettings(
            max_new_tokens=16, temperature=2.0, seed=seed, samples=2, batch_size=8
        )
        requests = build_requests(base.tokenizer, mixed_probes[:6], settings, model="demo:base")
        generations = base.generate(requests, settings)
        assert [g.sample for g in generations] == [0, 1] * 6
        return [g.text for g in generations]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_thinking_switch_reaches_the_chat_template(base):
    probe = demo.probes("finetune").probes[0]
    off = GenerationSettings(enable_thinking=False, max_new_tokens=8)
    (request,) = build_requests(base.tokenizer, [probe], off, model="demo:base")
    assert request.prompt.endswith("<think>\n\n</think>\n\n")
    (generation,) = base.generate([request], off)
    assert not generation.prefilled


def test_unknown_folder(tmp_path):
    with pytest.raises(GenerationError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(GenerationError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_hub_id_without_network_says_what_to_do():
    model = resolve_model("rtc-assert-tests/no-such-model@main")
    assert (model.source, model.revision) == ("rtc-assert-tests/no-such-model", "main")
    with pytest.raises(GenerationError, match="local Hugging Face cache"):
        load_backend("transformers", model)


def test_tokenizer_without_chat_template(tmp_path):
    folder = tmp_path / "no-template"
    shutil.copytree(demo.checkpoint("base"), folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config))
    backend = load_backend("transformers", resolve_model(str(folder)))
    with pytest.raises(GenerationError, match="add a chat_template.jinja"):
        build_requests(backend.tokenizer, demo.probes("finetune").probes[:1], GREEDY, model="m")


def test_unknown_backend_and_option():
    model = resolve_model("demo:base")
    with pytest.raises(GenerationError, match="unknown backend 'tgi': use one of"):
        load_backend("tgi", model)
    with pytest.raises(GenerationError, match="has no option.*devices.*device, dtype"):
        load_backend("transformers", model, {"devices": "cpu"})


def test_greedy_samples_are_refused(base):
    settings = GenerationSettings(samples=3)
    with pytest.raises(GenerationError, match="temperature=0 repeats one greedy output"):
        build_requests(base.tokenizer, demo.probes("finetune").probes[:1], settings, model="m")


def test_vllm_missing_names_the_extra():
    pytest.importorskip("transformers")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here: the missing-extra message cannot show")
    with pytest.raises(GenerationError, match=r"pip install 'rtc-assert\[vllm\]'"):
        load_backend("vllm", resolve_model("demo:base"))


def test_all_statuses_are_reachable_on_the_zoo(base):
    """A tight budget truncates the base model's traces: the classifier sees the cut."""
    probe_set = demo.probes("reasoning").head(8)
    run = run_model(base, probe_set, GenerationSettings(max_new_tokens=6), model="demo:base")
    statuses = {o.trace.status for o in run.outcomes}
    assert statuses == {TraceStatus.TRUNCATED}
    assert {o.trace.detail for o in run.outcomes} == {"length"}


def test_cuda_out_of_memory_halves_the_batch_and_says_so(base, mixed_probes, monkeypatch, caplog):
    """No GPU here: the engine's OOM is raised on purpose for batches above 4 prompts."""
    import torch

    real_batch = base._generate_batch
    sizes = []

    def batch_or_oom(requests, settings, offset):
        sizes.append(len(requests))
        if len(requests) > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_batch(requests, settings, offset)

    monkeypatch.setattr(base, "_generate_batch", batch_or_oom)
    settings = GenerationSettings(max_new_tokens=8, batch_size=16)
    requests = build_requests(base.tokenizer, mixed_probes, settings, model="demo:base")
    generations = base.generate(requests, settings)
    assert [g.probe_id for g in generations] == [r.probe.id for r in requests]
    assert sizes[:3] == [16, 8, 4]
    assert "CUDA out of memory: retrying with batch size 8" in caplog.text
    assert "retrying with batch size 4" in caplog.text


def test_a_one_device_device_map_loads_there_and_generates_the_same(
    base: Backend, mixed_probes: tuple[Probe, ...]
) -> None:
    import torch

    from rtc_assert.generation.backends.transformers_backend import TransformersBackend

    mapped = TransformersBackend(resolve_model("demo:base"), device_map="cpu")
    assert mapped.device == "cpu" and mapped.model.device.type == "cpu"
    assert next(mapped.model.parameters()).dtype == torch.float32  # auto dtype on the CPU
    settings = GenerationSettings(max_new_tokens=16, batch_size=8)
    requests = build_requests(base.tokenizer, mixed_probes[:8], settings, model="demo:base")
    expected = [g.text for g in base.generate(requests, settings)]
    assert [g.text for g in mapped.generate(requests, settings)] == expected
    mapped.close()


def test_the_device_of_a_device_map_is_where_inputs_go() -> None:
    import torch

    from rtc_assert.generation.backends.transformers_backend import _pick_device

    assert _pick_device("auto", "cuda:1") == "cuda:1"
    assert _pick_device("cpu", "cuda:1") == "cpu"  # an explicit device wins
    detected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _pick_device("auto", "auto") == _pick_device("auto", "balanced") == detected
    assert _pick_device("auto") == detected
