"""Classify and score a million outputs from a JSONL file, beside thinkpack's ``parse``.

    PYTHONPATH=. python benchmarks/classify_throughput.py --lines 1000000 \
        --thinkpack-path /path/to/site-packages-with-thinkpack

Writes a plain generations file (``rtc_assert/ingest/generations.schema.json``) of outputs
with 200 to 3,000 characters of reasoning (70% closed, 10% empty, 10% cut off, 10% with no
block), over 1,000 numeric probes with as many samples each. Then:

1. side by side, in one pass over the file: each chunk of lines (the ingest's chunk,
   ``rtc_assert.ingest.CHUNK``) is parsed once, then
   classified by rtc-assert one call per output (``classify``) and per chunk
   (``classify_many``, what the ingest uses), scored, and parsed by thinkpack (``parse`` of
   the chunk's list, its batch form), each timed on its own, in alternating order;
2. rtc-assert's streaming ingest end to end (read, validate, pair, classify, score), in a
   fresh process per size, with its peak memory (``ru_maxrss``) at 100k lines and at all.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rtc_assert.ingest import CHUNK, scored_generations
from rtc_assert.ingest.plain import read_plain
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.scoring import score_trace
from rtc_assert.traces.classify import TraceFormat, classify, classify_many

PROBES = 1000
ALPHABET = "abcdefghijklmnopqrstuvwxyz      0123456789+=\n"


def probe_set() -> ProbeSet:
    rng = random.Random(1)
    probes = tuple(
        Probe(id=f"p{i:04d}", prompt=f"q{i}", answer=str(rng.randint(0, 999)), scorer="numeric")
        for i in range(PROBES)
    )
    return ProbeSet(name="bench", version="1", probes=probes)


def write_file(path: Path, lines: int) -> None:
    rng = random.Random(0)
    answers = [p.answer for p in probe_set().probes]
    # A pool of reasoning texts keeps writing fast; slices of it vary every line.
    pool = "".join(rng.choice(ALPHABET) for _ in range(100_000))
    with path.open("w", encoding="utf-8") as handle:
        for i in range(lines):
            start, size = rng.randrange(90_000), rng.randint(200, 3000)
            reasoning = pool[start : start + size]
            kind = rng.random()
            answer = answers[i % PROBES] if rng.random() < 0.8 else "7"
            if kind < 0.7:
                text, finish = f"<think>\n{reasoning}\n</think>\n\nThe answer is {answer}", "stop"
            elif kind < 0.8:
                text, finish = f"<think>\n\n</think>\n\n{answer}", "stop"
            elif kind < 0.9:
                text, finish = f"<think>\n{reasoning}", "length"
            else:
                text, finish = f"{reasoning[:400]} so {answer}", "stop"
            record = {"probe_id": f"p{i % PROBES:04d}", "sample": i // PROBES}
            record.update(completion=text, finish_reason=finish)
            handle.write(json.dumps(record) + "\n")


def side_by_side(path: Path) -> dict[str, float]:
    from thinkpack import parse
    from thinkpack.model import ModelInfo

    probes = probe_set().by_id()
    fmt, info = TraceFormat(), ModelInfo(prefixed=False)
    times = Counter[str]()
    order = ["rtc classify", "rtc classify_many", "thinkpack parse"]
    agree = total = rounds = same = 0
    with path.open(encoding="utf-8") as handle:
        while True:
            chunk = [json.loads(line) for _, line in zip(range(CHUNK), handle, strict=False)]
            if not chunk:
                break
            texts = [r["completion"] for r in chunk]
            finishes = [r["finish_reason"] for r in chunk]
            rounds += 1
            for name in order[rounds % 3 :] + order[: rounds % 3]:  # each goes first in turn
                started = time.perf_counter()
                if name == "rtc classify":
                    traces = [
                        classify(t, finish_reason=f, fmt=fmt)
                        for t, f in zip(texts, finishes, strict=True)
                    ]
                elif name == "rtc classify_many":
                    many = classify_many(texts, finish_reasons=finishes, fmt=fmt)
                else:
                    parsed = parse(texts, model_info=info)
                times[name] += time.perf_counter() - started
            started = time.perf_counter()
            for record, trace in zip(chunk, many, strict=True):
                score_trace(probes[record["probe_id"]], trace, sample=record["sample"])
            times["rtc score"] += time.perf_counter() - started
            same += traces == many
            for trace, other in zip(many, parsed, strict=True):
                agree += getattr(other, f"has_{trace.status.value}_reasoning")
            total += len(chunk)
    return {**times, "outputs": total, "agree": agree, "chunks": rounds, "same": same}


def ingest(path: Path) -> None:
    """The streaming ingest end to end; prints outputs, seconds and peak memory as JSON."""
    started = time.perf_counter()
    counts = Counter[str]()
    for _, outcome in scored_generations(
        read_plain(path), probe_set(), source=str(path), markup=TraceFormat()
    ):
        counts[outcome.trace.status.value] += 1
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outputs": sum(counts.values()), "seconds": seconds, "peak_mib": peak}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--thinkpack-path", help="a folder where thinkpack is importable")
    parser.add_argument("--ingest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest is not None:
        ingest(args.ingest)
        return 0
    if args.thinkpack_path:
        sys.path.append(args.thinkpack_path)
    with tempfile.TemporaryDirectory() as temp:
        sizes = sorted({min(100_000, args.lines), args.lines})
        files = {}
        for size in sizes:
            files[size] = Path(temp) / f"outputs-{size}.jsonl"
            started = time.perf_counter()
            write_file(files[size], size)
            mb = files[size].stat().st_size / 1e6
            print(f"wrote {size:,} lines ({mb:,.0f} MB) in {time.perf_counter() - started:.0f} s")
        figures = side_by_side(files[args.lines])
        n = figures["outputs"]
        one, many, tp = (
            figures[k] for k in ("rtc classify", "rtc classify_many", "thinkpack parse")
        )
        print(f"rtc-assert classify, one call each: {n / one:,.0f} outputs/s ({one:.1f} s)")
        print(f"rtc-assert classify_many, per chunk: {n / many:,.0f} outputs/s ({many:.1f} s)")
        print(
            f"rtc-assert classify_many + score: {n / (many + figures['rtc score']):,.0f} outputs/s"
        )
        print(f"thinkpack parse, per chunk: {n / tp:,.0f} outputs/s ({tp:.1f} s)")
        print(f"speed ratio vs parse: classify {tp / one:.2f}x, classify_many {tp / many:.2f}x")
        print(
            f"classify_many == classify on {figures['same']} of {figures['chunks']} chunks; "
            f"same status as thinkpack: {figures['agree'] / n:.4f}"
        )
        for size, path in files.items():
            command = [sys.executable, __file__, "--ingest", str(path)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
            print(
                f"ingest end to end, {size:,} lines: {result['outputs'] / result['seconds']:,.0f} "
                f"outputs/s, peak memory {result['peak_mib']:.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
