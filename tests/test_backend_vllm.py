"""vLLM offline and a real ``vllm serve`` on 127.0.0.1, against the transformers backend.

Run in an environment with vLLM (``vllm-cpu`` on machines without a GPU):
``python -m pytest -m vllm``. Elsewhere these tests are skipped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rtc_assert import demo
from rtc_assert.backends import load_backend
from rtc_assert.backends.server import ServerGenerationError
from rtc_assert.generation import Generation, GenerationSettings, build_requests
from rtc_assert.models import resolve_model
from rtc_assert.runs import score_generations

pytest.importorskip("vllm", reason="vLLM is not installed: pip install 'rtc-assert[vllm]'")
pytestmark = pytest.mark.vllm

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
GREEDY = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=64)
VLLM_OPTIONS = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.2}
PROBES_PER_SET = 128


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(checkpoint: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``vllm serve`` (through its module, which works for vllm-cpu too) on a free port."""
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(checkpoint), "--served-model-name", "demo",
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--enforce-eager",
    ]  # fmt: skip
    log = log_path.open("w")
    # Its own process group, so that stopping it also stops vLLM's engine processes.
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {process.returncode}: see {log_path}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(1)
    kill_server(process)
    raise RuntimeError(f"vllm serve did not answer within 300 s: see {log_path}")


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_server(process)


def kill_server(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    process, url = start_server(demo.checkpoint("base"), log_path)
    yield url
    stop_server(process)


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
    process, url = start_server(demo.checkpoint("base"), tmp_path / "serve.log")
    backend = load_backend(
        "openai",
        resolve_model("demo:base"),
        {"base_url": url, "served_model": "demo", "concurrency": 1, "max_retries": 1,
         "backoff_s": 0.1},
    )  # fmt: skip
    probes = demo.probes("reasoning").probes
    requests = build_requests(backend.tokenizer, probes, GREEDY, model="demo:base")
    killer = subprocess.Popen(
        [sys.executable, "-c", f"import os, time; time.sleep(3); os.killpg({process.pid}, 9)"]
    )
    try:
        with pytest.raises(ServerGenerationError, match="cannot reach the server") as raised:
            backend.generate(requests, GREEDY)
    finally:
        killer.wait()
        kill_server(process)
    completed = raised.value.completed
    assert 0 < len(completed) < len(requests)
    assert [g.probe_id for g in completed] == [r.probe.id for r in requests[: len(completed)]]
