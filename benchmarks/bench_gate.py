"""What rtc-assert costs on top of the engine, and what the cache saves, in one run.

    python benchmarks/bench_gate.py [--backend transformers|vllm] [--rounds 3]
                                    [--outputs 1000000] [--threads N]

Side by side on the demo zoo (both demo probe sets, greedy, the zoo's max_new_tokens), the
goals in brackets:

- full gate, cold cache, vs a bare loop of the same engine on the same rendered prompts with
  the same batch size, model loading included in both: overhead ratio [<= 1.05]. Early
  stopping is off for this and the cache rows, so the gate generates every probe, as the
  bare loop does;
- a second run with the base unchanged and a new candidate, vs cold [<= 0.55];
- a fully cached run vs cold [<= 0.05];
- early stopping on collapsed-vs-base: the share of the probes it generates [<= 0.25], and
  its time against the same gate without early stopping, both from a cold cache;
- classifier and scorer throughput on synthetic outputs (outputs per second).

These machines are shared and noisy: read the ratios of one run, not absolute times across
runs. Each row shows wall seconds and the CPU seconds of this process. With transformers all
the work is in this process, and on a busy machine CPU seconds are the steadier measure of it
(``--threads 1`` keeps torch's threads from spinning against other jobs). vLLM's engine runs in
processes of its own, so there the CPU column is rtc-assert's and vLLM's client-side work only.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rtc_assert import demo
from rtc_assert.config import RtcConfig
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import build_requests
from rtc_assert.probes.probe import Probe
from rtc_assert.scoring import score
from rtc_assert.session import RtcSession
from rtc_assert.traces.classify import classify

T = TypeVar("T")

ROUNDS = 3
OPTIONS = {
    "transformers": {"device": "cpu"},
    "vllm": {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.2},
}


def config(backend: str, candidate: str, *, early_stopping: bool = False) -> RtcConfig:
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
            "decision": {"early_stopping": {"enabled": early_stopping}},
        }
    )


@dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float

    def __truediv__(self, other: Cost) -> Cost:
        return Cost(self.wall / other.wall, self.cpu / other.cpu)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(work: Callable[[], T]) -> tuple[T, Cost]:
    """What ``work`` returns, and its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = work()
    return result, Cost(time.perf_counter() - wall, _cpu_seconds() - cpu)


def cheapest(costs: list[Cost]) -> Cost:
    return Cost(min(c.wall for c in costs), min(c.cpu for c in costs))


def gate(
    backend: str, candidate: str, cache: GenerationCache | None, *, early_stopping: bool = False
) -> tuple[float, Cost]:
    """The share of the probe sets' generations the gate made, and its cost."""

    def decide() -> RtcSession:
        settings = config(backend, candidate, early_stopping=early_stopping)
        session = RtcSession(config=settings, cache=cache)
        session.decide_all()
        session.close()
        return session

    session, cost = measured(decide)
    generated = sum(len(run.generations) for run in session.runs)
    available = 2 * sum(len(demo.probes(name)) for name in demo.PROBE_SET_NAMES)
    return generated / available, cost


def cold_gate(backend: str, candidate: str, *, early_stopping: bool = False) -> tuple[float, Cost]:
    """`gate` with an empty cache."""
    with tempfile.TemporaryDirectory() as folder:
        return gate(
            backend, candidate, GenerationCache(Path(folder)), early_stopping=early_stopping
        )


def bare_loop(backend: str, candidate: str) -> Cost:
    """The cost of the same work with nothing of rtc-assert: load, render, generate."""
    settings = config(backend, candidate).generation

    def generate() -> None:
        for spec in ("demo:base", candidate):
            engine = load_backend(backend, resolve_model(spec), OPTIONS[backend])
            for name in demo.PROBE_SET_NAMES:
                requests = build_requests(
                    engine.tokenizer, demo.probes(name).probes, settings, model=spec
                )
                engine.generate(requests, settings)
            engine.close()

    return measured(generate)[1]


def synthetic_outputs(count: int) -> list[str]:
    """Completions of the four trace shapes, in a fixed random mix."""
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
    return outputs


def throughputs(outputs: list[str]) -> tuple[float, float]:
    """Outputs per second of the classifier, and of the scorer on the classified answers."""
    probe = Probe(id="p", prompt="q", answer="1000", scorer="numeric")
    started = time.perf_counter()
    answers = [classify(text, finish_reason="stop").answer for text in outputs]
    classified = time.perf_counter()
    for answer in answers:
        score(probe, answer)
    scored = time.perf_counter()
    return len(outputs) / (classified - started), len(outputs) / (scored - classified)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(OPTIONS), default="transformers")
    parser.add_argument("--rounds", type=int, default=3, help="bare/cold rounds (default 3)")
    parser.add_argument("--outputs", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    backend = args.backend
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    bare_loop(backend, "demo:masked")  # warm-up: imports, kernels, thread pools
    bare_costs, cold_costs = [], []
    for _ in range(args.rounds):  # alternate, keep the best of each: the machine is noisy
        bare_costs.append(bare_loop(backend, "demo:masked"))
        cold_costs.append(cold_gate(backend, "demo:masked")[1])
    bare, cold = cheapest(bare_costs), cheapest(cold_costs)
    with tempfile.TemporaryDirectory() as folder:
        cache = GenerationCache(Path(folder))
        gate(backend, "demo:masked", cache)
        _, new_candidate = gate(backend, "demo:collapsed", cache)
        _, cached = gate(backend, "demo:collapsed", cache)
    _, full_collapsed = cold_gate(backend, "demo:collapsed")
    share, stopped_early = cold_gate(backend, "demo:collapsed", early_stopping=True)
    classify_rate, score_rate = throughputs(synthetic_outputs(args.outputs))

    print(
        f"backend {backend}; demo:base vs a candidate on 2 x 256 probes, greedy; "
        f"best of {args.rounds} alternating rounds after a warm-up; torch threads "
        f"{args.threads or 'default'}"
    )
    print(f"{'':42} {'wall s':>7} {'ratio':>6}  {'CPU s':>7} {'ratio':>6}  goal")
    rows = [
        ("bare engine loop (load, render, generate)", bare, None, ""),
        ("full gate, cold cache", cold, cold / bare, "<= 1.05 of bare"),
        ("base cached, new candidate", new_candidate, new_candidate / cold, "<= 0.55 of cold"),
        ("fully cached", cached, cached / cold, "<= 0.05 of cold"),
        ("collapsed vs base, full gate, cold", full_collapsed, None, ""),
        ("  with early stopping", stopped_early, stopped_early / full_collapsed, "of full"),
    ]
    for label, cost, ratio, goal in rows:
        wall_ratio, cpu_ratio = (
            ("", "") if ratio is None else (f"{ratio.wall:.3f}", f"{ratio.cpu:.3f}")
        )
        print(
            f"{label:42} {cost.wall:7.2f} {wall_ratio:>6}  {cost.cpu:7.2f} {cpu_ratio:>6}  {goal}"
        )
    print(f"{'probes used by early stopping':42} {share:7.3f} of all probes  [<= 0.25]")
    print(f"{f'classify ({args.outputs:,} synthetic outputs)':42} {classify_rate:,.0f} outputs/s")
    print(f"{f'score ({args.outputs:,} classified answers)':42} {score_rate:,.0f} outputs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
