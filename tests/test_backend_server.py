"""The server backend's failure handling, against local HTTP servers that misbehave on purpose.

The happy path runs against a real ``vllm serve`` in tests/test_backend_vllm.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rtc_assert import demo
from rtc_assert.errors import ServerGenerationError
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationError, GenerationSettings, build_requests

SETTINGS = GenerationSettings(max_new_tokens=8)
Reply = Callable[[dict], tuple[int, dict | bytes]]


def completion(text: str = "<think>a</think>b", finish: str = "stop") -> tuple[int, dict]:
    return 200, {
        "choices": [{"text": text, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3},
    }


@pytest.fixture
def stub_server() -> Iterator[Callable[[Reply], str]]:
    """Start a local server whose answers come from a function; yields a starter."""
    servers: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["_authorization"] = self.headers.get("Authorization")
                status, answer = reply(body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def backend(base_url: str, **options):
    options = {"max_retries": 2, "backoff_s": 0.01, **options}
    return load_backend("openai", resolve_model("demo:base"), {"base_url": base_url, **options})


def requests_for(server_backend, count: int = 3):
    probes = demo.probes("finetune").probes[:count]
    return build_requests(server_backend.tokenizer, probes, SETTINGS, model="demo:base")


def test_request_shape_and_record(stub_server):
    seen = []

    def reply(body: dict) -> tuple[int, dict]:
        seen.append(body)
        return completion("<think>x</think>y<|im_end|>")

    server_backend = backend(stub_server(reply))
    requests = requests_for(server_backend, 2)
    generations = server_backend.generate(requests, SETTINGS)
    assert [g.probe_id for g in generations] == [r.probe.id for r in requests]
    assert generations[0].text == "<think>x</think>y"  # a trailing EOS is dropped
    assert (generations[0].prompt_tokens, generations[0].completion_tokens) == (5, 3)
    body = seen[0]
    assert body["prompt"] in {r.prompt for r in requests}
    assert body["skip_special_tokens"] is False and body["max_tokens"] == 8
    assert body["_authorization"] is None


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    server_backend = backend(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ServerGenerationError, match="cannot reach the server") as raised:
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)
    assert "after 2 attempts" in str(raised.value)


def test_slow_server_times_out(stub_server):
    def slow(body: dict) -> tuple[int, dict]:
        time.sleep(1.0)
        return completion()

    server_backend = backend(stub_server(slow), timeout_s=0.2, max_retries=0)
    with pytest.raises(GenerationError, match="no answer within 0.2 s"):
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)


def test_overload_and_server_errors_are_retried(stub_server):
    calls = []

    def flaky(body: dict) -> tuple[int, dict]:
        calls.append(body)
        return (503, {"error": "busy"}) if len(calls) <= 2 else completion()

    server_backend = backend(stub_server(flaky), concurrency=1)
    (generation,) = server_backend.generate(requests_for(server_backend, 1), SETTINGS)
    assert generation.text == "<think>a</think>b"
    assert len(calls) == 3


def test_client_errors_fail_at_once_with_the_servers_message(stub_server):
    calls = []

    def reject(body: dict) -> tuple[int, dict]:
        calls.append(body)
        return 404, {"error": {"message": "The model `x` does not exist."}}

    server_backend = backend(stub_server(reject), served_model="x", concurrency=1)
    with pytest.raises(GenerationError, match=r"HTTP 404.*does not exist.*served_model 'x'"):
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)
    assert len(calls) == 1


def test_failure_keeps_completed_generations(stub_server):
    failing_prompt = {}

    def fail_last(body: dict) -> tuple[int, dict]:
        return (
            (500, {"error": "boom"}) if body["prompt"] == failing_prompt["value"] else completion()
        )

    server_backend = backend(stub_server(fail_last), concurrency=1, max_retries=0)
    requests = requests_for(server_backend, 4)
    failing_prompt["value"] = requests[-1].prompt
    with pytest.raises(ServerGenerationError) as raised:
        server_backend.generate(requests, SETTINGS)
    assert [g.probe_id for g in raised.value.completed] == [r.probe.id for r in requests[:3]]
    assert "3 generations completed before the failure" in str(raised.value)


def test_api_key_comes_from_the_environment_and_is_never_shown(stub_server, monkeypatch):
    seen = []

    def reply(body: dict) -> tuple[int, dict]:
        seen.append(body["_authorization"])
        return 401, {"error": "bad key"}

    monkeypatch.setenv("RTC_TEST_KEY", "sk-secret-123")
    server_backend = backend(stub_server(reply), api_key_env="RTC_TEST_KEY")
    with pytest.raises(GenerationError) as raised:
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)
    assert seen[0] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in str(raised.value)

    monkeypatch.delenv("RTC_TEST_KEY")
    with pytest.raises(GenerationError, match="RTC_TEST_KEY .* is not set"):
        backend("http://127.0.0.1:9/v1", api_key_env="RTC_TEST_KEY")


def test_unexpected_finish_reason(stub_server):
    server_backend = backend(stub_server(lambda body: completion(finish="content_filter")))
    with pytest.raises(GenerationError, match="finish reason 'content_filter'"):
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)


def test_a_non_string_text_is_a_clear_error(stub_server):
    server_backend = backend(stub_server(lambda body: completion(text=["a"])), concurrency=1)
    with pytest.raises(GenerationError, match=r"choices\[0\]\.text that is list, not a string"):
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)


def test_a_reply_that_is_not_json_names_the_server(stub_server):
    url = stub_server(lambda body: (200, b"<html>proxy"))
    server_backend = backend(url, concurrency=1)
    with pytest.raises(
        GenerationError,
        match=rf"server {url}/completions answered HTTP 200 "
        r"with a body that is not JSON: '<html>proxy'",
    ):
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"backend 'openai': backend\.options\.base_url: Field required; its options are"),
        (
            {"base_url": "http://x/v1", "concurrency": "many"},
            r"backend\.options\.concurrency: Input should be a valid integer",
        ),
        (
            {"base_url": "http://x/v1", "concurrency": 0},
            r"backend\.options\.concurrency: Input should be greater than or equal to 1",
        ),
    ],
)
def test_missing_or_mistyped_server_options(options, message):
    with pytest.raises(GenerationError, match=message):
        load_backend("openai", resolve_model("demo:base"), options)


def test_credentials_and_echoed_keys_are_redacted(stub_server, monkeypatch, caplog):
    monkeypatch.setenv("RTC_TEST_KEY", "sk-secretsecret123")
    replies = iter([(503, {"echo": "Authorization: Bearer sk-secretsecret123"})] * 3)
    url = stub_server(lambda body: next(replies)).replace("http://", "http://bob:hunter2@")
    server_backend = backend(url, api_key_env="RTC_TEST_KEY", concurrency=1)
    with pytest.raises(GenerationError) as raised:
        server_backend.generate(requests_for(server_backend, 1), SETTINGS)
    shown = str(raised.value) + caplog.text + server_backend.version
    assert "hunter2" not in shown and "sk-secretsecret123" not in shown
    assert "http://***@127.0.0.1" in shown and "Bearer ***" in shown


def test_every_request_asks_to_keep_special_tokens():
    """Markers that are special tokens (Gemma 4's channel) survive any extra_body."""
    server_backend = backend("http://127.0.0.1:9/v1", extra_body={"top_k": 5})
    (request,) = requests_for(server_backend, 1)
    payload = server_backend._payload(request, SETTINGS)
    server_backend.close()
    assert payload["skip_special_tokens"] is False and payload["top_k"] == 5
    with pytest.raises(GenerationError, match="skip_special_tokens: true would drop"):
        backend("http://127.0.0.1:9/v1", extra_body={"skip_special_tokens": True})
