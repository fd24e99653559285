"""ReasoningGateCallback in a real two-process DDP run (gloo, CPU, ``torchrun``): the main
process alone generates, every process gets its verdict and stops at the same step, and a
check that raises on the main process ends both with an error instead of a deadlock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = Path(__file__).parents[1]


def run_two_processes(out: Path, mode: str) -> tuple[int, list[dict[str, Any]]]:
    """``torchrun --standalone --nproc_per_node 2`` on the worker; its exit code and each
    rank's result. A deadlock fails the test through the timeout."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(WORKER), str(out), mode]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    results = [json.loads((out / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    return done.returncode, results


@pytest.mark.slow
def test_only_the_main_process_generates_and_both_stop_at_the_same_step(tmp_path):
    code, (main, other) = run_two_processes(tmp_path, "collapse")
    assert code == 0, (main, other)
    assert main["world_size"] == other["world_size"] == 2
    assert main["generations"] > 0 and other["generations"] == 0
    assert main["checked"] and other["checked"] == []
    # the collapsing run is stopped at its first failing check, on both processes
    assert main["global_step"] == other["global_step"] == main["checked"][-1] < 40
    assert main["verdicts"] == other["verdicts"]
    assert list(main["verdicts"].values())[-1] == 0.0
    assert all(passed == 1.0 for passed in list(main["verdicts"].values())[:-1])


@pytest.mark.slow
def test_a_check_that_raises_on_the_main_process_ends_both_processes(tmp_path):
    code, (main, other) = run_two_processes(tmp_path, "raise")
    assert code != 0
    assert main["error"] == "RuntimeError: injected failure in the check"
    assert other["error"] == (
        "CallbackError: the reasoning gate check failed on the main process: "
        "RuntimeError: injected failure in the check"
    )
    assert main["global_step"] == other["global_step"] == 2
