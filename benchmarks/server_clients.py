"""rtc-assert's server client against lm-evaluation-harness's, on one real ``vllm serve``.

    python benchmarks/server_clients.py --lm-eval-python /path/to/lm-eval-venv/bin/python

Run with the vLLM environment's Python (it starts the server). The same 256 demo reasoning
probes, rendered once with the demo tokenizer's chat template, greedy, the same max tokens and
the same request fields, go to the server's completions endpoint through rtc-assert's
``openai`` backend (default client options) and through lm-eval's ``local-completions``
client, in a Python that has ``lm-eval[api]`` (0.4.x). lm-eval runs in its README's setting
(``num_concurrent=1``, ``batch_size=16``: 16 prompts per request, one request at a time) and
with ``num_concurrent`` requests in flight, one prompt each (its API guide: "useful for APIs
that support parallel processing"). Each client is timed on its generation call alone (no
start-up), in rounds of alternating order; rtc-assert also starting at 32 requests in flight
(its default before the client moved to aiohttp; slow start takes it to 64 after a round
trip). Prints each row's median and best round, rtc-assert's default time as a ratio of each
row's, the client's CPU time (median), and whether the texts agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SERVED = "bench"
OURS = "rtc-assert (openai backend, defaults)"


def lm_eval_worker() -> None:
    """Time lm-eval's ``local-completions`` on the prompts read as JSON from stdin.

    Runs in the lm-eval environment: it imports only the standard library and lm_eval.
    """
    job = json.load(sys.stdin)
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    model = LocalCompletionsAPI(
        base_url=job["base_url"] + "/completions",
        model=SERVED,
        tokenizer_backend=None,
        tokenized_requests=False,
        num_concurrent=job["num_concurrent"],
        batch_size=job["batch_size"],
        max_gen_toks=job["max_tokens"],
        max_retries=3,
    )
    gen_kwargs = {"until": [], "max_gen_toks": job["max_tokens"], "temperature": 0}
    gen_kwargs |= job["extra_body"]
    instances = [
        Instance("generate_until", {}, (prompt, dict(gen_kwargs)), index)
        for index, prompt in enumerate(job["prompts"])
    ]
    started, cpu = time.perf_counter(), time.process_time()
    texts = model.generate_until(instances, disable_tqdm=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    json.dump({"seconds": seconds, "cpu": cpu, "texts": texts}, sys.stdout)


Timed = tuple[float, float, list[str]]
"""Wall seconds, client CPU seconds, and the texts of one timed generation."""


def run_lm_eval(python: str, job: dict[str, Any]) -> Timed:
    """One timed lm-eval generation in its own Python."""
    done = subprocess.run(
        [python, __file__, "--lm-eval-worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    if done.returncode != 0:
        raise SystemExit(f"lm-eval worker failed ({python}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    return result["seconds"], result["cpu"], result["texts"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lm-eval-python", default=os.environ.get("LM_EVAL_PYTHON"))
    parser.add_argument("--probes", type=int, default=256)
    parser.add_argument("--model", default="base", help="demo model name")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-concurrent", type=int, default=64)
    parser.add_argument(
        "--base-url", help=f"a running server of the demo model, served as {SERVED!r}"
    )
    args = parser.parse_args()
    if args.lm_eval_worker:
        lm_eval_worker()
        return 0
    if not args.lm_eval_python:
        parser.error("--lm-eval-python (or LM_EVAL_PYTHON): a Python with lm-eval[api] 0.4.x")

    from rtc_assert import demo
    from rtc_assert.generation.backends import load_backend, load_backend_tokenizer
    from rtc_assert.generation.backends.local_server import start_vllm_server
    from rtc_assert.generation.backends.server import VLLM_EXTRA_BODY
    from rtc_assert.generation.models import resolve_model
    from rtc_assert.generation.requests import GenerationSettings, build_requests

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    settings = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=args.probes)
    model = resolve_model(f"demo:{args.model}")
    rows: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        server = None
        if args.base_url:
            base_url = args.base_url
        else:
            server = start_vllm_server(model.source, SERVED, Path(folder) / "serve.log")
            base_url = server.url
        try:
            options = {"base_url": base_url, "served_model": SERVED}
            tokenizer = load_backend_tokenizer("openai", model, options)
            probes = demo.probes("reasoning").probes[: args.probes]
            requests = build_requests(tokenizer, probes, settings, model=SERVED)
            job = {
                "base_url": base_url,
                "prompts": [request.prompt for request in requests],
                "max_tokens": settings.max_new_tokens,
                "extra_body": {**VLLM_EXTRA_BODY, "seed": settings.seed},
            }
            n = args.num_concurrent

            def rtc(**client_options: int) -> Timed:
                client = load_backend(
                    "openai", model, {**options, **client_options}, tokenizer=tokenizer
                )
                started, cpu = time.perf_counter(), time.process_time()
                out = client.generate(requests, settings)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                client.close()
                return seconds, cpu, [generation.text for generation in out]

            def lm_eval(num_concurrent: int, batch_size: int) -> Timed:
                limits = {"num_concurrent": num_concurrent, "batch_size": batch_size}
                return run_lm_eval(args.lm_eval_python, {**job, **limits})

            clients: dict[str, Callable[[], Timed]] = {
                OURS: rtc,
                "rtc-assert, concurrency=32 (ramp to 64)": lambda: rtc(concurrency=32),
                "lm-eval, README (num_concurrent=1, batch_size=16)": lambda: lm_eval(1, 16),
                f"lm-eval, num_concurrent={n}": lambda: lm_eval(n, 1),
            }
            rtc()  # warm-up of the server
            for round_ in range(args.rounds):
                names = list(clients) if round_ % 2 == 0 else list(reversed(clients))
                for name in names:
                    seconds, cpu, texts[name] = clients[name]()
                    rows.setdefault(name, []).append(seconds)
                    cpus.setdefault(name, []).append(cpu)
        finally:
            if server is not None:
                server.stop()

    eos = tokenizer.eos_token or ""
    median = {name: statistics.median(times) for name, times in rows.items()}
    best = {name: min(times) for name, times in rows.items()}
    print(
        f"{args.probes} demo:{args.model} reasoning probes, greedy, max_tokens "
        f"{settings.max_new_tokens}, one vllm serve, {args.rounds} rounds; rtc-assert's "
        "default time as a ratio of each row's (median, best round)"
    )
    print(
        f"{'client':52} {'median s':>9} {'best s':>7} {'ratio':>12} {'client CPU s':>13} "
        f"{'same texts':>11}"
    )
    for name in rows:
        same = sum(a == b.removesuffix(eos) for a, b in zip(texts[OURS], texts[name], strict=True))
        ratio = f"{median[OURS] / median[name]:.2f}/{best[OURS] / best[name]:.2f}"
        cpu = statistics.median(cpus[name])
        print(
            f"{name:52} {median[name]:9.2f} {best[name]:7.2f} {ratio:>12} {cpu:13.2f} "
            f"{same:>7}/{args.probes}"
        )
    print(
        "rounds (s): " + "; ".join(f"{n}: " + " ".join(f"{t:.2f}" for t in rows[n]) for n in rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
