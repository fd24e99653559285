"""What a generations file's SHA-256 costs when a run is read from it (the record names it).

    PYTHONPATH=. python benchmarks/file_digest.py --lines 300000

Writes the plain generations file of ``classify_throughput.py`` (outputs with 200 to 3,000
characters of reasoning), then times, in alternating order, ``--rounds`` times each:

1. reading it (``read_generations``: read, decode, parse and validate every line) without a
   digest;
2. the same, the digest fed as the file is read (`rtc_assert.ingest.FileDigest`, what a
   session does);
3. the same without a digest, then the file hashed in a pass of its own (what reading the
   file twice would cost);
4. the streaming ingest end to end (read, validate, pair, classify, score) without, then with,
   the digest.

Before each timing the file's pages are dropped from the page cache
(``posix_fadvise(DONTNEED)``, this file only), so each first read is from the disk; the
separate pass of 3 then reads what the first just cached. Each case prints its median CPU
seconds (``time.process_time``: what the load of other processes moves least) and its median
wall-clock seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from classify_throughput import probe_set, write_file

from rtc_assert.ingest import FileDigest, read_generations, scored_generations
from rtc_assert.traces.classify import TraceFormat


def evict(path: Path) -> None:
    """Drop ``path``'s pages from the page cache, so the next read is from the disk."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    probes = probe_set()
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "outputs.jsonl"
        write_file(path, args.lines)
        size = path.stat().st_size
        expected = sha256_of(path)
        print(f"{args.lines:,} lines, {size / 1e6:,.0f} MB")

        def read(digest: FileDigest | None) -> None:
            for _ in read_generations(path, "plain", digest):
                pass

        def streamed() -> None:
            digest = FileDigest()
            read(digest)
            assert digest.complete and digest.finish(path) == expected

        def twice() -> None:
            read(None)
            assert sha256_of(path) == expected

        def ingest(digest: FileDigest | None) -> None:
            records = read_generations(path, "plain", digest)
            for _ in scored_generations(records, probes, source="b", markup=TraceFormat()):
                pass

        def ingest_streamed() -> None:
            digest = FileDigest()
            ingest(digest)
            assert digest.finish(path) == expected

        cases: dict[str, Callable[[], None]] = {
            "read, no digest": lambda: read(None),
            "read, digest as it is read": streamed,
            "read, then hashed in a second pass": twice,
            "ingest end to end, no digest": lambda: ingest(None),
            "ingest end to end, digest as it is read": ingest_streamed,
        }
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        wall: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                evict(path)
                started, started_cpu = time.perf_counter(), time.process_time()
                cases[name]()
                cpu[name].append(time.process_time() - started_cpu)
                wall[name].append(time.perf_counter() - started)
        median = {name: statistics.median(seconds) for name, seconds in cpu.items()}
        base = {"read": median["read, no digest"]}
        base["ingest"] = median["ingest end to end, no digest"]
        for name in cases:
            against = base["ingest" if name.startswith("ingest") else "read"]
            print(
                f"{name}: CPU {median[name]:.2f} s ({(median[name] / against - 1) * 100:+.1f}%), "
                f"wall {statistics.median(wall[name]):.2f} s (CPU per run: "
                f"{', '.join(f'{s:.2f}' for s in cpu[name])})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
