"""Client CPU per request of HTTP clients, against a fast local server of canned completions.

    PYTHONPATH=. python benchmarks/client_cpu.py [--requests 2000] [--rounds 3]

Run it with a Python that has httpx and aiohttp (the vLLM environment has both); a client whose
library is missing is left out. A server in a process of its own (the standard library's
asyncio, a few lines of HTTP/1.1 keep-alive) answers every POST at once with the same OpenAI
completion, so the client is the only work that varies; each client's CPU is
``time.process_time()`` of this process alone (every thread of it), the server's not counted.
Every client sends the same completions payload with 1, 16 and 64 requests in flight, over
keep-alive connections already open (one warm-up pass first), in rounds of alternating order.
Rows:

- ``httpx, a thread per request``: ``httpx.Client`` under a thread pool, the library alone.
- ``httpx.AsyncClient``: one asyncio loop, tasks bounded by a semaphore.
- ``aiohttp``: the same with ``aiohttp.ClientSession`` (lm-eval's ``local-completions``).
- ``rtc-assert ServerClient``: rtc-assert's client (retries, the adaptive limit, redaction),
  its limit fixed at the in-flight count.
- ``rtc-assert openai backend``: the whole ``generate`` call, rendering nothing (the prompts
  are built first) but parsing each answer into a ``Generation``.

Prints the median CPU milliseconds per request and each row's ratio to aiohttp's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TEXT = "<think>Two plus two is four, so the answer is four.</think>The answer is 4." * 3
BODY = json.dumps(
    {
        "id": "cmpl-0123456789abcdef",
        "object": "text_completion",
        "created": 1764590000,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "text": TEXT,
                "logprobs": None,
                "finish_reason": "length",
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 41, "total_tokens": 105, "completion_tokens": 64},
    }
).encode()
"""About the size of a demo completion of 64 tokens from vLLM."""
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: Mon, 01 Dec 2026 13:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\ncontent-type: application/json\r\n\r\n"
) + BODY
"""uvicorn's headers, as ``vllm serve`` sends them."""
PROMPT = (
    "<|im_start|>user\nA farmer has 17 sheep and all but 9 run away. How many are left? "
    "Think step by step, then answer with the number.<|im_end|>\n<|im_start|>assistant\n"
)
PAYLOAD = {
    "model": "bench",
    "prompt": PROMPT,
    "max_tokens": 64,
    "temperature": 0.0,
    "top_p": 1.0,
    "seed": 0,
    "n": 1,
    "skip_special_tokens": False,
    "spaces_between_special_tokens": False,
    "add_special_tokens": False,
}
IN_FLIGHT = (1, 16, 64)


# The server, in its own process ----------------------------------------------------------


class _Canned(asyncio.Protocol):
    """Answers each complete request (headers and Content-Length body) with `RESPONSE`."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(RESPONSE)


def serve() -> None:
    """Serve on a free port of 127.0.0.1; print the port, then serve until killed."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Canned, "127.0.0.1", 0, backlog=512)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


# The clients ----------------------------------------------------------------------------

Client = Callable[[str, int, int], None]
"""Send ``count`` requests to ``url`` with ``in_flight`` at a time."""


def httpx_threads(url: str, count: int, in_flight: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    with httpx.Client(limits=limits) as client, ThreadPoolExecutor(in_flight) as pool:

        def one(_: int) -> None:
            client.post(url, json=PAYLOAD).json()

        for _ in range(2):  # warm-up, then the timed pass
            started = _start()
            list(pool.map(one, range(count)))
        _stop(started)


async def _bounded(count: int, in_flight: int, one: Callable[[], Any]) -> None:
    slots = asyncio.Semaphore(in_flight)

    async def task() -> None:
        async with slots:
            await one()

    await asyncio.gather(*(task() for _ in range(count)))


def httpx_async(url: str, count: int, in_flight: int) -> None:
    import httpx

    async def main() -> None:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(limits=limits) as client:

            async def one() -> None:
                (await client.post(url, json=PAYLOAD)).json()

            await _bounded(count, in_flight, one)
            started = _start()
            await _bounded(count, in_flight, one)
            _stop(started)

    asyncio.run(main())


def aiohttp_session(url: str, count: int, in_flight: int) -> None:
    import aiohttp

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                async with session.post(url, json=PAYLOAD) as response:
                    await response.json()

            await _bounded(count, in_flight, one)
            started = _start()
            await _bounded(count, in_flight, one)
            _stop(started)

    asyncio.run(main())


def server_client(url: str, count: int, in_flight: int) -> None:
    from rtc_assert.generation.http_client import ClientOptions, ServerClient

    client = ServerClient("server", ClientOptions(concurrency=in_flight, max_in_flight=in_flight))
    if inspect.iscoroutinefunction(client.post):

        async def call(_: int) -> Any:
            return await client.post(url, PAYLOAD, "bench", "")
    else:

        def call(_: int) -> Any:  # type: ignore[misc]
            return client.post(url, PAYLOAD, "bench", "")

    try:
        for _ in range(2):
            started = _start()
            client.map(range(count), call)  # type: ignore[arg-type]
        _stop(started)
    finally:
        client.close()


def openai_backend(url: str, count: int, in_flight: int) -> None:
    from rtc_assert import demo
    from rtc_assert.generation.backends import load_backend
    from rtc_assert.generation.models import resolve_model
    from rtc_assert.generation.requests import GenerationSettings, build_requests

    options = {"base_url": url.removesuffix("/completions"), "served_model": "bench"}
    options |= {"concurrency": in_flight, "max_in_flight": in_flight}
    backend = load_backend("openai", resolve_model("demo:base"), options)
    settings = GenerationSettings(max_new_tokens=64)
    probes = demo.probes("reasoning").probes
    requests = build_requests(backend.tokenizer, probes, settings, model="bench")
    requests = [requests[i % len(requests)] for i in range(count)]
    try:
        for _ in range(2):
            started = _start()
            backend.generate(requests, settings)
        _stop(started)
    finally:
        backend.close()


CLIENTS: dict[str, tuple[str, Client]] = {
    "httpx, a thread per request": ("httpx", httpx_threads),
    "httpx.AsyncClient, one loop": ("httpx", httpx_async),
    "aiohttp, one loop": ("aiohttp", aiohttp_session),
    "rtc-assert ServerClient": ("httpx", server_client),
    "rtc-assert openai backend": ("httpx", openai_backend),
}
BASELINE = "aiohttp, one loop"

_measured: list[tuple[float, float]] = []


def _start() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _stop(started: tuple[float, float]) -> None:
    cpu, wall = started
    _measured.append((time.process_time() - cpu, time.perf_counter() - wall))


def measure(client: Client, url: str, count: int, in_flight: int) -> tuple[float, float]:
    """CPU and wall seconds of the timed pass."""
    _measured.clear()
    client(url, count, in_flight)
    (result,) = _measured
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", help="a row's name (repeatable)")
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    clients = {}
    for name, (module, client) in CLIENTS.items():
        if args.only and name not in args.only and name != BASELINE:
            continue
        try:
            __import__(module)
        except ImportError:
            print(f"left out: {name} ({module} is not installed)")
            continue
        clients[name] = client
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    cpu: dict[tuple[str, int], list[float]] = {}
    wall: dict[tuple[str, int], list[float]] = {}
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1/completions"
        for round_ in range(args.rounds):
            names = list(clients) if round_ % 2 == 0 else list(reversed(clients))
            for name in names:
                for in_flight in IN_FLIGHT:
                    seconds, elapsed = measure(clients[name], url, args.requests, in_flight)
                    cpu.setdefault((name, in_flight), []).append(seconds)
                    wall.setdefault((name, in_flight), []).append(elapsed)
    finally:
        server.kill()
        server.wait()

    def ms(name: str, in_flight: int) -> float:
        return statistics.median(cpu[name, in_flight]) / args.requests * 1000

    print(
        f"client CPU ms per request (median of {args.rounds} rounds of {args.requests}) and "
        f"x {BASELINE}'s; requests/s (wall); load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'client':30}" + "".join(f"{f'{n} in flight':>16}" for n in IN_FLIGHT) + "  req/s")
    for name in clients:
        cells = ""
        for n in IN_FLIGHT:
            ratio = ms(name, n) / ms(BASELINE, n) if BASELINE in clients else float("nan")
            cells += f"{ms(name, n):7.3f} {ratio:5.2f}x".rjust(16)
        rates = "/".join(
            f"{args.requests / statistics.median(wall[name, n]):.0f}" for n in IN_FLIGHT
        )
        print(f"{name:30}{cells}  {rates}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
