"""Instructions per output of rtc-assert's classifiers and thinkpack's ``parse``, by callgrind.

    PYTHONPATH=. python benchmarks/classify_instructions.py --thinkpack-path /path/to/site

Instruction counts do not move with the machine's load, unlike the times of
``classify_throughput.py`` (same outputs, same generator). Each contender runs in its own
process under ``valgrind --tool=callgrind``: 10,000 outputs classified three times, less the
same process that only reads them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from classify_throughput import write_file

LINES = 10_000
ROUNDS = 3
CONTENDERS = ("classify_many", "classify", "thinkpack")


def run(contender: str, path: Path) -> None:
    """Read the outputs, warm every contender up, then classify them ROUNDS times."""
    from thinkpack import parse
    from thinkpack.model import ModelInfo

    from rtc_assert.traces.classify import TraceFormat, classify, classify_many

    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    texts, finishes = [r["completion"] for r in rows], [r["finish_reason"] for r in rows]
    fmt, info = TraceFormat(), ModelInfo(prefixed=False)
    classify_many(texts[:10], finish_reasons=finishes[:10], fmt=fmt)
    parse(texts[:10], model_info=info)
    for _ in range(ROUNDS):
        if contender == "classify_many":
            classify_many(texts, finish_reasons=finishes, fmt=fmt)
        elif contender == "classify":
            [classify(t, finish_reason=f, fmt=fmt) for t, f in zip(texts, finishes, strict=True)]
        elif contender == "thinkpack":
            parse(texts, model_info=info)


def instructions(contender: str, path: Path, env_path: str) -> int:
    with tempfile.TemporaryDirectory() as temp:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={temp}/out",
            sys.executable,
            __file__,
            "--run",
            contender,
            "--file",
            str(path),
            "--thinkpack-path",
            env_path,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thinkpack-path", required=True, help="where thinkpack is importable")
    parser.add_argument("--run", choices=[*CONTENDERS, "none"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.append(args.thinkpack_path)
    if args.run is not None:
        run(args.run, args.file)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "outputs.jsonl"
        write_file(path, LINES)
        baseline = instructions("none", path, args.thinkpack_path)
        counts = {
            name: (instructions(name, path, args.thinkpack_path) - baseline) / (LINES * ROUNDS)
            for name in CONTENDERS
        }
    for name, count in counts.items():
        print(
            f"{name}: {count:,.0f} instructions per output, "
            f"{counts['thinkpack'] / count:.2f}x fewer than thinkpack"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
