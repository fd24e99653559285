"""A prepared GPU check of the transformers backend: CUDA, bfloat16, device_map, CUDA OOM.

    python benchmarks/gpu_check.py [--probes 256] [--threads N]

Needs only torch, transformers and peft beside rtc-assert, and one CUDA GPU; meant to run in
well under five minutes on one (the demo models are tiny). In order:

1. CPU reference: every demo model (base, collapsed, partial, rambling, masked) on both demo
   probe sets, greedy, float32, batched; the statuses of its traces.
2. CUDA: the same generations on ``device="cuda"`` with the default dtype (bfloat16 on CUDA),
   and the share of probes whose status agrees with the CPU's, per model and probe set.
3. ``device_map="cuda:0"`` and ``device_map="auto"``: the weights land on the GPU and the
   texts equal those of ``device="cuda"``.
4. CUDA out of memory, for real: the card is filled with tensors until a little less memory
   is left than one batch of every request needs, so the generation raises
   ``torch.cuda.OutOfMemoryError`` and the backend halves its batch until it fits. The run
   must recover, say so in its log, and give the texts of an unconstrained run at the batch
   size it ended on.

It prints a markdown table (check, figure, ok) to paste into BENCHMARKS.md, and the
generations per second on CUDA and on the CPU.

Exit status: 0 every check ok; 1 a check failed; 3 CUDA is not available here, so it stopped
after the CPU reference (it says so: "CUDA not available: stopped before the GPU checks").
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the zoo ships with the package

import torch
import transformers

from rtc_assert import demo
from rtc_assert.generation.backends.transformers_backend import TransformersBackend
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import (
    Generation,
    GenerationRequest,
    GenerationSettings,
    build_requests,
)
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.probes.probe import ProbeSet
from rtc_assert.runs import score_generations

NO_CUDA = 3
AGREEMENT_OK = 0.90
"""Share of probes with the CPU's status for a CUDA bfloat16 row to read ok."""
BACKEND_LOGGER = "rtc_assert.generation.backends.transformers_backend"
MIB = 1 << 20


@dataclass
class Row:
    check: str
    figure: str
    ok: bool


@dataclass
class Timing:
    generations: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.generations / self.seconds if self.seconds else 0.0


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    timings: dict[str, Timing] = field(default_factory=dict)

    def add(self, check: str, figure: str, ok: bool) -> None:
        self.rows.append(Row(check, figure, ok))
        print(f"  {'ok  ' if ok else 'FAIL'} {check}: {figure}", flush=True)

    def time(self, device: str, count: int, seconds: float) -> None:
        timing = self.timings.setdefault(device, Timing())
        timing.generations += count
        timing.seconds += seconds


@dataclass(frozen=True)
class Outputs:
    texts: list[str]
    statuses: list[str]


def _generate(
    backend: TransformersBackend,
    probe_set: ProbeSet,
    requests: Sequence[GenerationRequest],
    settings: GenerationSettings,
) -> tuple[Outputs, float]:
    started = time.perf_counter()
    generations: list[Generation] = backend.generate(requests, settings)
    if backend.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    scored = score_generations(probe_set, generations)
    outputs = Outputs([g.text for g in generations], [s.trace.status.value for s in scored])
    return outputs, seconds


def _share(ours: Sequence[str], theirs: Sequence[str]) -> tuple[float, str]:
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    return same / len(ours), f"{same / len(ours):.3f} ({same} of {len(ours)})"


def _weights(backend: TransformersBackend) -> tuple[str, torch.dtype]:
    parameter = next(backend.model.parameters())
    return parameter.device.type, parameter.dtype


@dataclass
class Workload:
    """The demo probe sets, their rendered requests (the same for every demo model)."""

    probe_sets: dict[str, ProbeSet]
    requests: dict[str, list[GenerationRequest]]
    settings: GenerationSettings


def _workload(count: int, batch_size: int) -> Workload:
    settings = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=batch_size)
    tokenizer = load_tokenizer(resolve_model("demo:base"))
    probe_sets = {name: demo.probes(name).head(count) for name in demo.PROBE_SET_NAMES}
    requests = {
        name: build_requests(tokenizer, probe_set.probes, settings, model="demo:base")
        for name, probe_set in probe_sets.items()
    }
    return Workload(probe_sets, requests, settings)


def _run_model(
    model: str, options: dict[str, Any], work: Workload, results: Results
) -> tuple[TransformersBackend, dict[str, Outputs]]:
    """One demo model on both probe sets after a short warm-up; timed per device."""
    backend = TransformersBackend(resolve_model(f"demo:{model}"), **options)
    first = next(iter(work.requests.values()))
    backend.generate(first[:4], work.settings)  # warm-up: kernels, allocator, caches
    outputs = {}
    for name, probe_set in work.probe_sets.items():
        outputs[name], seconds = _generate(backend, probe_set, work.requests[name], work.settings)
        results.time(backend.device.split(":")[0], len(work.requests[name]), seconds)
    return backend, outputs


def cpu_reference(
    models: Sequence[str], work: Workload, results: Results
) -> dict[str, dict[str, Outputs]]:
    reference = {}
    for model in models:
        backend, reference[model] = _run_model(model, {"device": "cpu"}, work, results)
        device, dtype = _weights(backend)
        backend.close()
        if (device, dtype) != ("cpu", torch.float32):
            results.add(f"CPU reference demo:{model} in float32", f"{device} {dtype}", False)
    count = sum(len(r) for r in work.requests.values())
    results.add(
        "CPU float32 reference statuses (greedy, batched)",
        f"{len(models)} models x {count} probes",
        True,
    )
    return reference


def cuda_agreement(
    models: Sequence[str],
    work: Workload,
    reference: dict[str, dict[str, Outputs]],
    results: Results,
    device: str = "cuda",
) -> dict[str, Outputs]:
    """Each model on CUDA in the default dtype; returns demo:base's outputs."""
    base_outputs: dict[str, Outputs] = {}
    for model in models:
        backend, outputs = _run_model(model, {"device": device}, work, results)
        device, dtype = _weights(backend)
        backend.close()
        results.add(
            f"demo:{model} weights on CUDA in bfloat16 (dtype auto)",
            f"{device} {str(dtype).removeprefix('torch.')}",
            (device, dtype) == ("cuda", torch.bfloat16),
        )
        for name, probe_set in work.probe_sets.items():
            share, figure = _share(outputs[name].statuses, reference[model][name].statuses)
            results.add(
                f"status agreement CUDA bf16 vs CPU fp32, demo:{model}, {probe_set.name}",
                figure,
                share >= AGREEMENT_OK,
            )
        if model == "base":
            base_outputs = outputs
    return base_outputs


def device_maps(
    work: Workload,
    on_cuda: dict[str, Outputs],
    results: Results,
    maps: Sequence[str] = ("cuda:0", "auto"),
) -> None:
    """``device_map`` loads: the weights on the GPU, the texts of ``device="cuda"``."""
    for device_map in maps:
        check = f'device_map="{device_map}": demo:base on the GPU, texts of device="cuda"'
        try:
            backend, outputs = _run_model("base", {"device_map": device_map}, work, Results())
        except Exception as error:  # reported, not raised: the other checks still run
            results.add(check, f"{type(error).__name__}: {error}", False)
            continue
        device, _ = _weights(backend)
        backend.close()
        same = sum(
            a == b
            for name in work.probe_sets
            for a, b in zip(outputs[name].texts, on_cuda[name].texts, strict=True)
        )
        total = sum(len(texts) for texts in work.requests.values())
        figure = f"weights on {device}, {same} of {total} texts equal"
        results.add(check, figure, device == "cuda" and same == total)


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _captured_warnings() -> Iterator[_Messages]:
    handler = _Messages()
    logger = logging.getLogger(BACKEND_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _fill_card(leave: int) -> list[torch.Tensor]:
    """Allocate tensors until about ``leave`` bytes of the GPU are free; keep them alive."""
    fill: list[torch.Tensor] = []
    for _ in range(3):  # emptying the cache can free what was cached: top up again
        torch.cuda.empty_cache()
        chunk = 1 << 34
        while chunk >= 2 * MIB:
            free, _ = torch.cuda.mem_get_info()
            if free - chunk < leave:
                chunk //= 2
                continue
            try:
                fill.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
            except torch.cuda.OutOfMemoryError:
                chunk //= 2
    torch.cuda.empty_cache()
    return fill


def cuda_oom(work: Workload, oom_requests: int, results: Results) -> None:
    """A batch of every request on a nearly full card: the backend halves it until it fits."""
    probe_set = work.probe_sets["reasoning"]
    requests = work.requests["reasoning"]
    requests = (requests * (oom_requests // len(requests) + 1))[:oom_requests]
    big = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=len(requests))
    backend = TransformersBackend(resolve_model("demo:base"), device="cuda")
    fill: list[torch.Tensor] = []
    try:
        backend.generate(requests[:4], big)  # warm-up
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        unconstrained, _ = _generate(backend, probe_set, requests, big)
        needed = torch.cuda.max_memory_allocated() - before
        # Less than a third of what one batch of everything needs: that batch and its half
        # cannot fit, a quarter should; the backend halves until it does.
        leave = needed // 3
        fill = _fill_card(leave)
        free, total = torch.cuda.mem_get_info()
        with _captured_warnings() as log:
            try:
                constrained, _ = _generate(backend, probe_set, requests, big)
            except Exception as error:  # out of memory even at batch 1, or anything else
                message = (str(error).splitlines() or [""])[0]
                results.add(
                    "CUDA OOM: a real OutOfMemoryError halves the batch and recovers",
                    f"{type(error).__name__} with {free / MIB:.0f} MiB free: {message}",
                    False,
                )
                return
        sizes = [
            int(m) for m in re.findall(r"retrying with batch size (\d+)", " ".join(log.messages))
        ]
        filled = sum(t.numel() for t in fill)
        path = " -> ".join(str(size) for size in [len(requests), *sizes])
        results.add(
            "CUDA OOM: a real OutOfMemoryError halves the batch and recovers",
            f"batch {path}; one batch needs {needed / MIB:.0f} MiB, "
            f"{free / MIB:.0f} MiB left free of {total / MIB:.0f} ({filled / MIB:.0f} filled)",
            bool(sizes),
        )
        del fill[:]
        torch.cuda.empty_cache()
        if not sizes:
            return
        final = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=sizes[-1])
        same_batches, _ = _generate(backend, probe_set, requests, final)
        texts_share, texts = _share(constrained.texts, same_batches.texts)
        results.add(
            f"CUDA OOM: texts equal an unconstrained run at batch {sizes[-1]}",
            texts,
            texts_share == 1.0,
        )
        status_share, statuses = _share(constrained.statuses, unconstrained.statuses)
        results.add(
            f"CUDA OOM: statuses agree with the unconstrained batch of {len(requests)}",
            statuses,
            status_share >= AGREEMENT_OK,
        )
    finally:
        del fill[:]
        backend.close()


def print_tables(results: Results) -> None:
    print("\n| check | figure | ok |\n| --- | --- | --- |")
    for row in results.rows:
        print(f"| {row.check} | {row.figure} | {'ok' if row.ok else 'FAIL'} |")
    print("\n| device | generations | seconds | generations/s |\n| --- | --- | --- | --- |")
    for device, timing in results.timings.items():
        print(
            f"| {device} | {timing.generations} | {timing.seconds:.2f} | {timing.per_second:.1f} |"
        )
    cpu, cuda = results.timings.get("cpu"), results.timings.get("cuda")
    if cpu and cuda and cpu.per_second:
        ratio = cuda.per_second / cpu.per_second
        print(f"\nCUDA bf16 / CPU fp32 generations per second: {ratio:.1f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--probes", type=int, default=256, help="probes of each demo set")
    parser.add_argument("--models", nargs="+", default=list(demo.MODEL_NAMES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--oom-requests", type=int, default=2048, help="requests in the out-of-memory batch"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    transformers.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    work = _workload(args.probes, args.batch_size)
    results = Results()
    print(
        f"torch {torch.__version__}; {len(args.models)} demo models x "
        f"{', '.join(f'{len(r)} {n}' for n, r in work.requests.items())} probes, greedy, "
        f"max_new_tokens {demo.MAX_NEW_TOKENS}, batch {args.batch_size}",
        flush=True,
    )
    print("CPU reference (float32):", flush=True)
    reference = cpu_reference(args.models, work, results)
    if not torch.cuda.is_available():
        print_tables(results)
        print(
            f"\nCUDA not available: stopped before the GPU checks "
            f"({time.perf_counter() - started:.1f} s; exit status {NO_CUDA})"
        )
        return NO_CUDA
    print(f"CUDA ({torch.cuda.get_device_name(0)}):", flush=True)
    on_cuda: dict[str, Outputs] = {}
    try:
        on_cuda = cuda_agreement(args.models, work, reference, results)
        if on_cuda:
            device_maps(work, on_cuda, results)
        cuda_oom(work, args.oom_requests, results)
    except Exception as error:  # a table with the failure beats a traceback without one
        message = (str(error).splitlines() or [""])[0]
        results.add("the GPU checks ran to the end", f"{type(error).__name__}: {message}", False)
    print_tables(results)
    failed = sum(not row.ok for row in results.rows)
    print(
        f"\n{len(results.rows) - failed} of {len(results.rows)} checks ok "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
