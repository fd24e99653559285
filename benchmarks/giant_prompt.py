"""How long refusing a 5 MB prompt takes, on demo:base (context 256 positions).

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/giant_prompt.py

Times whichever rtc-assert ``PYTHONPATH`` holds, so the code before a change is timed by the
same script from an export of that commit (``git archive COMMIT | tar -x -C DIR``, then
``PYTHONPATH=DIR``). A probe file holds a short probe and one whose prompt is ``--chars``
characters of prose and numbers. Two figures, each the best of ``--rounds``:

1. ``check_prompt_lengths`` alone, on the prompts as rendered by demo:base's chat template;
2. ``rtc-assert eval --model demo:base`` on the file, a fresh process per round, from start to
   the refusal (exit status 2), and its peak memory, beside the same command on the short
   probe alone, which refuses nothing and generates one completion: what the giant prompt
   adds is the difference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rtc_assert
from rtc_assert.errors import GenerationError
from rtc_assert.generation.models import context_length, resolve_model
from rtc_assert.generation.requests import (
    GenerationSettings,
    build_requests,
    check_prompt_lengths,
)
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.probes.probe import Probe

SENTENCE = "Add 1234 and 5678, then halve the sum; say why. "
CLI = """
import re, sys
from pathlib import Path
import rtc_assert
from rtc_assert.cli.main import main
print("rtc-assert-from", rtc_assert.__file__, file=sys.stderr)
try:
    sys.exit(main(sys.argv[1:]))
finally:
    status = Path("/proc/self/status").read_text()
    print("peak-kib", re.search(r"VmHWM:\\s*(\\d+)", status)[1], file=sys.stderr)
"""
"""The CLI, saying which rtc-assert it runs first and its peak memory (VmHWM: the process's
own, not inherited across exec as ru_maxrss can be) last."""


def probe_file(folder: Path, name: str, prompts: dict[str, str]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": probe_id, "prompt": prompt, "answer": "2"}) + "\n"
            for probe_id, prompt in prompts.items()
        ),
        encoding="utf-8",
    )
    return path


def time_check(prompt: str, rounds: int) -> tuple[list[float], str]:
    model = resolve_model("demo:base")
    tokenizer = load_tokenizer(model)
    context = context_length(model, tokenizer)
    assert context is not None
    probes = [
        Probe(id="short", prompt="1+1", answer="2", scorer="exact"),
        Probe(id="long", prompt=prompt, answer="2", scorer="exact"),
    ]
    settings = GenerationSettings()
    requests = build_requests(tokenizer, probes, settings, model="demo:base")
    times, message = [], ""
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            check_prompt_lengths(
                tokenizer, requests, settings, context, probe_set="giant", model="demo:base"
            )
        except GenerationError as error:
            message = str(error)
        times.append(time.perf_counter() - start)
    if not message:
        raise SystemExit("the giant prompt was not refused")
    return times, message


def time_eval(path: Path, rounds: int, status: int) -> tuple[list[float], int]:
    """Each round's wall seconds, and the largest peak memory (KiB) of a round's process."""
    argv = [sys.executable, "-c", CLI, "eval", "--model", "demo:base", "--probes", str(path)]
    argv += ["--scorer", "exact", "--no-cache", "--max-new-tokens", "8"]
    times, peak = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        # Run from the file's folder: "-c" puts the working folder first on sys.path, ahead
        # of PYTHONPATH, and a checkout there would be the code timed.
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=path.parent)
        times.append(time.perf_counter() - start)
        if f"rtc-assert-from {rtc_assert.__file__}" not in done.stderr:
            raise SystemExit(f"eval ran another rtc-assert than {rtc_assert.__file__}")
        if done.returncode != status:
            raise SystemExit(f"eval exited {done.returncode}, not {status}:\n{done.stderr}")
        peak = max(peak, int(done.stderr.rpartition("peak-kib ")[2]))
    return times, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prompt = (SENTENCE * (args.chars // len(SENTENCE) + 1))[: args.chars]
    print(f"rtc-assert from {Path(rtc_assert.__file__).parent}")
    times, message = time_check(prompt, args.rounds)
    rounds = ", ".join(f"{seconds:.3f}" for seconds in times)
    print(f"check_prompt_lengths, {args.chars:,} characters: best {min(times):.3f} s ({rounds})")
    print(f"  {message}")
    with tempfile.TemporaryDirectory() as folder:
        giant = probe_file(Path(folder), "giant", {"short": "1+1", "long": prompt})
        short = probe_file(Path(folder), "short", {"short": "1+1"})
        for name, path, status in (("refused", giant, 2), ("the short probe alone", short, 0)):
            times, peak = time_eval(path, args.rounds, status)
            rounds = ", ".join(f"{seconds:.2f}" for seconds in times)
            print(f"eval, {name}: best {min(times):.2f} s ({rounds}); peak {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
