"""The server client's event loop: order, in-flight bounds, callers inside a running loop,
Ctrl-C, what a failure stops, proxies from the environment, and its thread's end.

Retries, backoff, ``Retry-After``, the adaptive limit's arithmetic and redaction are tested
through the backends in tests/test_backend_server.py and tests/test_backend_chat.py.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from http_stub import Reply, Stub

from rtc_assert.errors import ServerGenerationError
from rtc_assert.generation.http_client import ClientOptions, ServerClient


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    started: list[Stub] = []

    def start(reply: Reply, tls: ssl.SSLContext | None = None) -> Stub:
        started.append(Stub(reply, tls))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def echo(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"index": body["index"]}


def client(**options: Any) -> ServerClient:
    return ServerClient("server", ClientOptions(**{"max_retries": 0, **options}))


def post_all(http: ServerClient, url: str, count: int) -> list[Any]:
    async def call(index: int) -> Any:
        return (await http.post(url, {"index": index}, f"request {index}", "check"))["index"]

    return http.map(range(count), call)


def test_results_come_back_in_request_order_under_the_in_flight_limit(stub):
    def slow_first(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        time.sleep(0.02 * (8 - body["index"] % 8))  # the later, the sooner answered
        return echo(path, body)

    server = stub(slow_first)
    http = client(concurrency=4, max_in_flight=4)
    assert post_all(http, server.url, 40) == list(range(40))
    http.close()
    assert len(server.seen) == 40 and server.most_in_flight == 4
    assert http.limit.in_flight == 0 and http.limit.limit == 4


def test_a_caller_inside_a_running_event_loop_is_answered(stub):
    """Jupyter, or an async training loop, calls the backend as any other code does."""
    server = stub(echo)
    http = client()

    async def inside() -> list[Any]:
        assert asyncio.get_running_loop() is not None
        return post_all(http, server.url, 5)

    assert asyncio.run(inside()) == list(range(5))
    assert post_all(http, server.url, 3) == [0, 1, 2]  # and again, from outside a loop
    http.close()


def test_after_a_failure_nothing_more_is_sent_and_requests_in_flight_are_kept(stub):
    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body["index"] == 1:
            time.sleep(0.1)  # the others are in flight by now
            return 400, {"error": "bad request"}
        time.sleep(0.4)
        return echo(path, body)

    server = stub(reply)
    http = client(concurrency=4, max_in_flight=64)
    with pytest.raises(ServerGenerationError, match="HTTP 400: .*bad request") as raised:
        post_all(http, server.url, 50)
    assert raised.value.completed == [0, 2, 3]  # in request order
    assert len(server.seen) == 4
    assert http.limit.in_flight == 0
    http.close()


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here, even where the runner was started ignoring it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
def test_ctrl_c_cancels_every_request_in_flight_at_once(stub, sigint_raises):
    assert threading.current_thread() is threading.main_thread()
    server = stub(lambda path, body: (server.release.wait(60), echo(path, body))[1])
    http = client(concurrency=4, max_in_flight=4)

    def ctrl_c_once_four_are_in_flight() -> None:
        deadline = time.monotonic() + 30
        while server.in_flight < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_four_are_in_flight, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        post_all(http, server.url, 20)
    assert time.monotonic() - started < 10  # not the 60 s the server holds each answer
    assert len(server.seen) == 4
    assert http.limit.in_flight == 0 and not http.limit.waiters

    async def tasks_left() -> int:
        return len(asyncio.all_tasks()) - 1

    assert http._state is not None
    loop = http._state.loop
    assert asyncio.run_coroutine_threadsafe(tasks_left(), loop).result(timeout=10) == 0
    server.release.set()
    assert post_all(http, server.url, 6) == list(range(6))  # the client still works
    http.close()


def test_close_ends_the_thread_and_a_client_never_closed_ends_it_when_collected(stub):
    server = stub(echo)
    http = client()
    assert http._state is None  # started on first use
    post_all(http, server.url, 2)
    assert http._state is not None
    first = http._state.thread
    assert first.is_alive() and first.daemon
    http.close()
    assert not first.is_alive()
    assert post_all(http, server.url, 2) == [0, 1]  # a later call starts anew
    second = http._state.thread
    assert second.is_alive()
    del http
    gc.collect()
    assert not second.is_alive()


def test_proxies_come_from_the_environment_as_httpx_took_them(stub, monkeypatch):
    server, proxy = stub(echo), stub(echo)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = client()
    assert post_all(http, server.url + "/v1/completions", 1) == [0]
    http.close()
    assert [path for path, _, _ in proxy.seen] == [server.url + "/v1/completions"]
    assert not server.seen

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    http = client()
    assert post_all(http, server.url + "/v1/completions", 1) == [0]
    http.close()
    assert [path for path, _, _ in server.seen] == ["/v1/completions"]


def test_credentials_in_the_url_are_sent_as_basic_auth_over_the_api_key(stub, monkeypatch):
    """As httpx did: ``user:password@`` in the URL wins over ``api_key_env``'s bearer token."""
    monkeypatch.setenv("RTC_TEST_KEY", "sk-secret")
    server = stub(echo)
    http = client(api_key_env="RTC_TEST_KEY")
    post_all(http, server.url, 1)
    post_all(http, server.url.replace("http://", "http://bob:pw@"), 1)
    http.close()
    assert [headers["Authorization"] for _, _, headers in server.seen] == [
        "Bearer sk-secret",
        "Basic Ym9iOnB3",
    ]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="makes its certificate with openssl")
def test_certificates_come_from_ssl_cert_file_else_certifi_as_httpx_took_them(
    stub, tmp_path, monkeypatch
):
    key, certificate = tmp_path / "key.pem", tmp_path / "certificate.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    server = stub(echo, tls)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    http = client()
    with pytest.raises(ServerGenerationError, match="cannot reach the server .*Certificate"):
        post_all(http, server.url, 1)  # certifi's authorities did not sign it
    http.close()

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    http = client()
    assert post_all(http, server.url, 2) == [0, 1]
    http.close()
