"""What rtc-assert costs on top of the engine, and what the cache saves, in one run.

    python benchmarks/bench_gate.py [--backend transformers|vllm] [--outputs 200000]

Side by side on the demo zoo (both demo probe sets, greedy, the zoo's max_new_tokens), the
goals in brackets:

- full gate, cold cache, vs a bare loop of the same engine on the same rendered prompts with
  the same batch size, model loading included in both: overhead ratio [<= 1.05];
- a second run with the base unchanged and a new candidate, vs cold [<= 0.55];
- a fully cached run vs cold [<= 0.05];
- classifier and scorer throughput on synthetic outputs (outputs per second).

These machines are noisy: read the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from rtc_assert import demo
from rtc_assert.backends import load_backend
from rtc_assert.cache import GenerationCache
from rtc_assert.config import RtcConfig
from rtc_assert.generation import build_requests
from rtc_assert.models import resolve_model
from rtc_assert.probes import Probe
from rtc_assert.scoring import score
from rtc_assert.session import RtcSession
from rtc_assert.traces import classify

ROUNDS = 3
OPTIONS = {
    "transformers": {"device": "cpu"},
    "vllm": {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.2},
}


def config(backend: str, candidate: str) -> RtcConfig:
    return RtcConfig.model_validate(
        {
            "candidate": candidate,
            "base": "demo:base",
            "backend": {"name": backend, "options": OPTIONS[backend]},
            "generation": {"max_new_tokens": demo.MAX_NEW_TOKENS, "batch_size": 64},
            "probe_sets": {name: {"source": f"demo:{name}"} for name in demo.PROBE_SET_NAMES},
            "gates": [
                {"metric": "valid_rate", "max_drop": 0.1},
                {"metric": "answer_accuracy", "max_drop": 0.1},
            ],
        }
    )


def timed_gate(backend: str, candidate: str, cache: GenerationCache | None) -> float:
    started = time.perf_counter()
    session = RtcSession(config=config(backend, candidate), cache=cache)
    session.decide_all()
    session.close()
    return time.perf_counter() - started


def timed_bare_loop(backend: str, candidate: str) -> float:
    """The same work with nothing of rtc-assert: load, render, generate."""
    settings = config(backend, candidate).generation
    started = time.perf_counter()
    for spec in ("demo:base", candidate):
        engine = load_backend(backend, resolve_model(spec), OPTIONS[backend])
        for name in demo.PROBE_SET_NAMES:
            requests = build_requests(
                engine.tokenizer, demo.probes(name).probes, settings, model=spec
            )
            engine.generate(requests, settings)
        engine.close()
    return time.perf_counter() - started


def classifier_throughput(count: int) -> float:
    rng = random.Random(0)
    shapes = [
        "<think>\n{a}+{b}: add the ones, carry, add the tens\n</think>\n\n{c}",
        "<think>\n\n</think>\n\n{c}",
        "<think>\nlet me check again, {a} plus {b}",
        "{c}",
    ]
    outputs = []
    for _ in range(count):
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        outputs.append(rng.choice(shapes).format(a=a, b=b, c=a + b))
    probe = Probe(id="p", prompt="q", answer="1000", scorer="numeric")
    started = time.perf_counter()
    for text in outputs:
        trace = classify(text, finish_reason="stop")
        score(probe, trace.answer)
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(OPTIONS), default="transformers")
    parser.add_argument("--outputs", type=int, default=200_000)
    args = parser.parse_args()

    timed_bare_loop(args.backend, "demo:masked")  # warm-up: imports, kernels, thread pools
    bare_times, cold_times = [], []
    for _ in range(ROUNDS):  # alternate, keep the best of each: the machine is noisy
        bare_times.append(timed_bare_loop(args.backend, "demo:masked"))
        with tempfile.TemporaryDirectory() as folder:
            cold_times.append(
                timed_gate(args.backend, "demo:masked", GenerationCache(Path(folder)))
            )
    bare, cold = min(bare_times), min(cold_times)
    with tempfile.TemporaryDirectory() as folder:
        cache = GenerationCache(Path(folder))
        timed_gate(args.backend, "demo:masked", cache)
        new_candidate = timed_gate(args.backend, "demo:collapsed", cache)
        cached = timed_gate(args.backend, "demo:collapsed", cache)
    rate = classifier_throughput(args.outputs)

    print(
        f"backend {args.backend}; demo:base vs a candidate on 2 x 256 probes, greedy; "
        f"best of {ROUNDS} alternating rounds after a warm-up"
    )
    rows = [
        ("bare engine loop (load, render, generate)", bare, None, ""),
        ("full gate, cold cache", cold, cold / bare, "[<= 1.05 of bare]"),
        ("base cached, new candidate", new_candidate, new_candidate / cold, "[<= 0.55 of cold]"),
        ("fully cached", cached, cached / cold, "[<= 0.05 of cold]"),
    ]
    for label, seconds, ratio, goal in rows:
        shown = "" if ratio is None else f"{ratio:6.3f}"
        print(f"{label:44} {seconds:7.2f} s  {shown:>6} {goal}")
    print(f"{'classify + score (synthetic outputs)':44} {rate:,.0f} outputs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
