"""The ``openai-chat`` backend against a local HTTP server answering each documented layout.

Each case is one response shape from ECOSYSTEM.md, classified by
`rtc_assert.traces.server_split.SHAPE_RULES`. The real ``vllm serve --reasoning-parser``
comparison is in tests/test_backend_chat_vllm.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rtc_assert.decide.gates import evaluate_gate
from rtc_assert.decide.spec import DecisionConfig, GateSpec
from rtc_assert.errors import redact
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.backends.chat import OpenAIChatBackend
from rtc_assert.generation.http_client import _Limit
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationError, GenerationSettings, build_requests
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.ingest import GenerationsFileError, generations_run
from rtc_assert.metrics import compute_metrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.record import run_record
from rtc_assert.runs import Run, run_model, score_generations
from rtc_assert.traces.server_split import message_reasoning

SETTINGS = GenerationSettings(max_new_tokens=16)
PROBES = ProbeSet(
    name="t", version="1", probes=[Probe(id="p1", prompt="1+1?", answer="2", scorer="exact")]
)
Reply = Callable[[str, dict[str, Any]], tuple[int, Any, dict[str, str]]]


@pytest.fixture
def server() -> Iterator[Callable[[Reply], str]]:
    """A local server whose answers (status, body, headers) come from ``reply(path, body)``."""
    started: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["_authorization"] = self.headers.get("Authorization")
                status, answer, headers = reply(self.path, body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and hung up

        httpd = Quiet(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def chat(message: dict[str, Any], finish: str = "stop", usage: dict | None = None) -> Reply:
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        "usage": usage or {"prompt_tokens": 4, "completion_tokens": 6},
    }
    return lambda path, request: (200, body, {})


def backend(url: str, **options: Any) -> OpenAIChatBackend:
    options.setdefault("base_url", url + "/v1")
    chat_backend = load_backend("openai-chat", resolve_model("my-model"), options)
    assert isinstance(chat_backend, OpenAIChatBackend)
    return chat_backend


def classified(
    url: str, settings: GenerationSettings = SETTINGS, **options: Any
) -> tuple[str, str, str, str]:
    """(status, detail, reasoning, answer) of one probe through the chat backend."""
    chat_backend = backend(url, **options)
    requests = build_requests(None, PROBES.probes, settings, model="my-model")
    generations = chat_backend.generate(requests, settings)
    chat_backend.close()
    (outcome,) = score_generations(PROBES, generations, budget_counts_as_valid=False)
    trace = outcome.trace
    return trace.status.value, trace.detail, trace.reasoning, trace.answer


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("vLLM", {"reasoning": "one plus one", "content": "2"}),
        ("vLLM before the rename", {"reasoning_content": "one plus one", "content": "2"}),
        ("SGLang", {"reasoning_content": "one plus one", "content": "2"}),
        ("DeepSeek", {"reasoning_content": "one plus one", "content": "2"}),
        ("Fireworks", {"reasoning_content": "one plus one", "content": "2"}),
        ("Together", {"reasoning": "one plus one", "content": "2"}),
        (
            "OpenRouter",
            {
                "content": "2",
                "reasoning_details": [
                    {"type": "reasoning.text", "text": "one plus "},
                    {"type": "reasoning.text", "text": "one"},
                ],
            },
        ),
    ],
)
def test_closed_reasoning_in_each_providers_field(server, layout, message):
    assert classified(server(chat(message))) == ("valid", "closed", "one plus one", "2"), layout


def test_ollama_api_chat_thinking(server):
    seen: list[tuple[str, dict]] = []

    def reply(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        seen.append((path, body))
        message = {"role": "assistant", "thinking": "one plus one", "content": "2"}
        return 200, {"message": message, "done": True, "done_reason": "stop", "eval_count": 5}, {}

    url = server(reply)
    assert classified(url, base_url=url, api="ollama") == ("valid", "closed", "one plus one", "2")
    path, body = seen[0]
    assert path == "/api/chat" and body["think"] is True and body["stream"] is False
    assert body["options"]["num_predict"] == SETTINGS.max_new_tokens


def in_field(field: str, text: str) -> dict[str, Any]:
    """A message's reasoning ``text`` in ``field``, as the providers that use it write it."""
    if field == "reasoning_details":  # OpenRouter: text entries (one signed), joined
        return {
            field: [
                {"type": "reasoning.text", "text": text[:4], "signature": "sig", "index": 0},
                {"type": "reasoning.text", "text": text[4:], "index": 1},
            ]
        }
    return {field: text}


def live_and_from_a_batch_file(
    server: Callable[[Reply], str], tmp_path: Any, reply: Reply
) -> tuple[Run, Run]:
    """The run of one response through the backend from a local server, and the run read from
    an OpenAI batch output line that holds the same body."""
    url = server(reply)
    chat_backend = backend(url)
    requests = build_requests(None, PROBES.probes, SETTINGS, model="my-model")
    generations = tuple(chat_backend.generate(requests, SETTINGS))
    chat_backend.close()
    outcomes = tuple(score_generations(PROBES, generations, budget_counts_as_valid=False))
    metrics = compute_metrics(outcomes)
    live = Run("my-model", "openai-chat", PROBES, SETTINGS, generations, outcomes, metrics)
    path = batch_file(tmp_path, reply)
    return live, generations_run(path, PROBES, model="my-model")  # no markup: the field says


def batch_file(tmp_path: Any, reply: Reply) -> Any:
    """An OpenAI batch output file of one line that holds the body ``reply`` answers."""
    _, body, _ = reply("/v1/chat/completions", {})
    line = {"id": "b", "custom_id": "p1", "response": {"status_code": 200, "body": body}}
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps({**line, "error": None}) + "\n", encoding="utf-8")
    return path


FIELDS = ("reasoning", "reasoning_content", "thinking", "reasoning_details")
SHAPES_IN_EACH_FIELD = [
    # (reasoning, content, finish_reason, (status, detail))
    ("one plus one", "2", "stop", ("valid", "closed")),
    ("\n", "2", "stop", ("empty", "blank,closed")),
    ("", "2", "stop", ("missing", "ambiguous")),
    ("one plus", None, "length", ("truncated", "length")),
    ("one plus", None, "stop", ("truncated", "unterminated_or_misrouted")),
]


@pytest.mark.parametrize(("reasoning", "content", "finish", "expected"), SHAPES_IN_EACH_FIELD)
@pytest.mark.parametrize("field", FIELDS)
def test_a_batch_file_reads_each_reasoning_field_as_the_live_backend_does(
    server, tmp_path, field, reasoning, content, finish, expected
):
    message = {**in_field(field, reasoning), "content": content}
    live, read = live_and_from_a_batch_file(server, tmp_path, chat(message, finish))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail) == expected
    assert trace.reasoning == reasoning.strip()
    assert read.generations[0].split == live.generations[0].split
    assert live.generations[0].split.field == field
    recorded = [run_record(run).generations[0].reasoning_field for run in (live, read)]
    assert recorded == [field, field]


HIDDEN_USAGE = {
    "prompt_tokens": 4,
    "completion_tokens": 90,
    "completion_tokens_details": {"reasoning_tokens": 80},
}


@pytest.mark.parametrize(
    ("message", "usage", "field", "expected"),
    [
        (  # OpenRouter sends both; the plain field is read
            {
                "reasoning": "one plus one",
                "reasoning_details": [{"type": "reasoning.text", "text": "other"}],
                "content": "2",
            },
            None,
            "reasoning",
            ("valid", "closed", "one plus one"),
        ),
        (  # a null field is no value: the next one is read
            {"reasoning": None, "reasoning_content": "one plus one", "content": "2"},
            None,
            "reasoning_content",
            ("valid", "closed", "one plus one"),
        ),
        (
            {"thinking": "one plus one", "reasoning_details": [{"text": "x"}], "content": "2"},
            None,
            "thinking",
            ("valid", "closed", "one plus one"),
        ),
        (  # encrypted reasoning only, its tokens counted: hidden
            {"reasoning_details": [{"type": "reasoning.encrypted", "data": "x"}], "content": "2"},
            HIDDEN_USAGE,
            "reasoning_details",
            ("missing", "hidden", ""),
        ),
        (  # hidden entries skip OpenRouter's own copy only: another field is still read
            {
                "reasoning_content": "one plus one",
                "reasoning_details": [{"type": "reasoning.encrypted", "data": "x"}],
                "content": "2",
            },
            None,
            "reasoning_content",
            ("valid", "closed,partly_hidden", "one plus one"),
        ),
    ],
)
def test_a_batch_file_picks_the_reasoning_field_the_live_backend_picks(
    server, tmp_path, message, usage, field, expected
):
    live, read = live_and_from_a_batch_file(server, tmp_path, chat(message, usage=usage))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail, trace.reasoning) == expected
    assert read.generations[0].split == live.generations[0].split
    assert [run.generations[0].split.field for run in (live, read)] == [field, field]


ENCRYPTED = {"type": "reasoning.encrypted", "data": "gAAAAB-opaque", "format": "x", "index": 1}
HIDDEN_ENTRIES = {
    "encrypted": ENCRYPTED,
    "summary": {"type": "reasoning.summary", "summary": "Added the numbers.", "index": 1},
    "signature alone": {"type": "reasoning.text", "text": None, "signature": "sig", "index": 1},
}
"""OpenRouter's ``reasoning_details`` entries that hold reasoning without its text."""
SHAPES_BESIDE_HIDDEN = [
    # (visible reasoning text, content, finish_reason, (status, detail)): Inspect's rule for
    # redacted parts, a visible trace stands only when it is valid alone
    ("one plus one", "2", "stop", ("valid", "closed,partly_hidden")),
    ("\n", "2", "stop", ("missing", "hidden")),
    ("", "2", "stop", ("missing", "hidden")),
    ("one plus", None, "length", ("missing", "hidden")),
    ("one plus", None, "stop", ("missing", "hidden")),
    (None, "2", "stop", ("missing", "hidden")),  # the hidden entry alone
    (None, None, "length", ("missing", "hidden")),
    (None, None, "stop", ("missing", "hidden")),
]


@pytest.mark.parametrize(("reasoning", "content", "finish", "expected"), SHAPES_BESIDE_HIDDEN)
@pytest.mark.parametrize("entry", HIDDEN_ENTRIES)
def test_reasoning_details_without_text_are_hidden_live_and_from_a_batch_file(
    server, tmp_path, entry, reasoning, content, finish, expected
):
    """No ``reasoning_tokens`` in the usage: the entries alone say the reasoning is hidden."""
    details = (
        [] if reasoning is None else in_field("reasoning_details", reasoning)["reasoning_details"]
    )
    message = {"reasoning_details": [*details, HIDDEN_ENTRIES[entry]], "content": content}
    live, read = live_and_from_a_batch_file(server, tmp_path, chat(message, finish))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail) == expected
    if expected[1] == "hidden":
        assert trace.reasoning == "" and trace.answer == (content or "")
    else:
        assert trace.reasoning == reasoning
    split = live.generations[0].split
    assert split is not None and split.hidden and split.field == "reasoning_details"
    assert read.generations[0].split == split
    assert live.generations[0].reasoning_tokens is None
    recorded = [run_record(run).generations[0].reasoning_field for run in (live, read)]
    assert recorded == ["reasoning_details", "reasoning_details"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (  # an OpenAI model through OpenRouter: its summary, copied into message.reasoning
            {
                "reasoning": "**Adding**\n\nAdded the numbers.",
                "reasoning_details": [
                    {"type": "reasoning.summary", "summary": "**Adding**\n\nAdded the numbers."},
                    ENCRYPTED,
                ],
                "content": "2",
            },
            ("missing", "hidden", ""),
        ),
        (  # Anthropic's thinking and a redacted block: the text entries are the visible part
            {
                "reasoning": "one plus one",
                "reasoning_details": [
                    {"type": "reasoning.text", "text": "one plus one", "signature": "sig"},
                    ENCRYPTED,
                ],
                "content": "2",
            },
            ("valid", "closed,partly_hidden", "one plus one"),
        ),
        (  # a summary beside the text is not read as the trace either
            {
                "reasoning": "Summary. one plus one",
                "reasoning_details": [
                    {"type": "reasoning.summary", "summary": "Summary. "},
                    {"type": "reasoning.text", "text": "one plus one"},
                ],
                "content": "2",
            },
            ("valid", "closed,partly_hidden", "one plus one"),
        ),
        (  # nor a summary entry that carries a text
            {"reasoning_details": [{"type": "reasoning.summary", "text": "x"}], "content": "2"},
            ("missing", "hidden", ""),
        ),
    ],
)
def test_a_summary_is_not_the_trace_nor_openrouters_copy_of_it(server, tmp_path, message, expected):
    live, read = live_and_from_a_batch_file(server, tmp_path, chat(message))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail, trace.reasoning) == expected
    assert read.generations[0].split == live.generations[0].split
    assert live.generations[0].split.field == "reasoning_details"


CONTENT_AS_PARTS = {
    "a text part": [{"type": "text", "text": "2", "annotations": []}],
    "a refusal part": [{"type": "refusal", "refusal": "2"}],
    "text and refusal parts joined": [
        {"type": "text", "text": ""},
        {"type": "refusal", "refusal": "2"},
    ],
}
"""``message.content`` ``"2"`` as lists of OpenAI's content parts: text and refusal parts are
read as the answer, joined in order."""


@pytest.mark.parametrize(
    ("reasoning", "finish", "expected"),
    [
        (reasoning, finish, expected)
        for reasoning, content, finish, expected in SHAPES_IN_EACH_FIELD
        if content
    ],
)
@pytest.mark.parametrize("parts", CONTENT_AS_PARTS)
@pytest.mark.parametrize("field", FIELDS)
def test_content_as_a_list_of_parts_reads_as_its_text_live_and_from_a_batch_file(
    server, tmp_path, field, parts, reasoning, finish, expected
):
    """The same traces as `SHAPES_IN_EACH_FIELD` give with the content ``"2"`` a string."""
    message = {**in_field(field, reasoning), "content": CONTENT_AS_PARTS[parts]}
    live, read = live_and_from_a_batch_file(server, tmp_path, chat(message, finish))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail, trace.reasoning) == (*expected, reasoning.strip())
    assert trace.answer == "2" and live.generations[0].text == read.generations[0].text == "2"
    assert read.generations[0].split == live.generations[0].split
    assert live.generations[0].split.content == "2"


@pytest.mark.parametrize(
    ("reasoning", "finish", "expected"),
    [
        ("one plus one", "stop", ("valid", "closed")),
        ("one plus", "length", ("valid", "closed")),
        ("", "stop", ("missing", "no_output")),
    ],
)
def test_an_empty_list_of_parts_is_empty_content_not_null(
    server, tmp_path, reasoning, finish, expected
):
    """No parts joined is ``""``, as a string content ``""`` is: an answer that came empty."""
    runs = [
        live_and_from_a_batch_file(
            server, tmp_path, chat({"reasoning": reasoning, "content": content}, finish)
        )
        for content in ([], "")
    ]
    traces = [run.outcomes[0].trace for pair in runs for run in pair]
    assert len(set(traces)) == 1
    assert (traces[0].status.value, traces[0].detail) == expected
    assert runs[0][0].generations[0].split.content == ""


UNREADABLE_CONTENT = [
    (  # an image beside the text: no text to classify
        [{"type": "text", "text": "2"}, {"type": "image_url", "image_url": {"url": "data:x"}}],
        r"message.content.1 is a content part of type 'image_url', which is not read",
    ),
    ([{"text": "2"}], r"message.content.0 is a content part of no type"),
    ([{"type": "text", "text": None}], r"message.content.0.text must be a string"),
    ([{"type": "refusal"}], r"message.content.0.refusal must be a string"),
    (["2"], r"message.content.0 must be a content part \(an object\), got str"),
    (2, r"message.content must be a string, a list of content parts or null, got int"),
    ({"text": "2"}, r"message.content must be a string, .* got dict"),
]


@pytest.mark.parametrize(("content", "pattern"), UNREADABLE_CONTENT)
def test_content_that_cannot_be_read_is_refused_live_and_from_a_batch_file(
    server, tmp_path, content, pattern
):
    """Live: naming the URL and the probe; from a file: its line. Never read without it."""
    reply = chat({"reasoning": "one plus one", "content": content})
    url = server(reply)
    with pytest.raises(GenerationError, match=pattern) as raised:
        classified(url)
    assert f"chat server {url}/v1/chat/completions answered probe 'p1'" in str(raised.value)
    with pytest.raises(GenerationsFileError, match=r"batch.jsonl:1: field " + pattern):
        generations_run(batch_file(tmp_path, reply), PROBES, model="my-model")


OMIT = object()


def thinking(*texts: str, closed: Any = True) -> dict[str, Any]:
    """Mistral's thinking chunk of ``texts`` (text chunks); ``closed`` `OMIT` leaves it out."""
    chunk = {"type": "thinking", "thinking": [{"type": "text", "text": text} for text in texts]}
    return chunk if closed is OMIT else {**chunk, "closed": closed}


ANSWER = {"type": "text", "text": "2"}
REFERENCE = {"type": "reference", "reference_ids": [0, 2]}
TOOL_REFERENCE = {"type": "tool_reference", "tool": "web_search", "title": "Sums", "url": "u"}
MISTRAL_SHAPES = {
    # name: (message.content, finish_reason, (status, detail, reasoning, answer))
    "closed": ([thinking("one plus ", "one"), ANSWER], "stop", ("valid", "closed", "one plus one", "2")),
    "closed left out (true by default)": (
        [thinking("one plus one", closed=OMIT), ANSWER], "stop", ("valid", "closed", "one plus one", "2")
    ),
    "closed null": (
        [thinking("one plus one", closed=None), ANSWER], "stop", ("valid", "closed", "one plus one", "2")
    ),
    "answer in several text chunks": (
        [thinking("one plus one"), {"type": "text", "text": "the answer: "}, ANSWER],
        "stop",
        ("valid", "closed", "one plus one", "the answer: 2"),
    ),
    "closed at the cap": ([thinking("one plus one"), ANSWER], "length", ("valid", "closed", "one plus one", "2")),
    "references skipped": (
        [
            {
                "type": "thinking",
                "thinking": [
                    {"type": "text", "text": "one plus "},
                    REFERENCE,
                    {"type": "text", "text": "one"},
                    TOOL_REFERENCE,
                ],
            },
            ANSWER,
        ],
        "stop",
        ("valid", "closed", "one plus one", "2"),
    ),
    "several thinking chunks, one block": (
        [thinking("one plus ", closed=False), thinking("one"), ANSWER],
        "stop",
        ("valid", "closed", "one plus one", "2"),
    ),
    "blank text before the thinking": (
        [{"type": "text", "text": "\n"}, thinking("one plus one"), ANSWER],
        "stop",
        ("valid", "closed", "one plus one", "2"),
    ),
    "empty thinking": ([thinking(), ANSWER], "stop", ("empty", "blank,closed", "", "2")),
    "blank thinking": ([thinking("\n"), ANSWER], "stop", ("empty", "blank,closed", "", "2")),
    "unclosed, natural stop": (
        [thinking("one plus", closed=False)], "stop", ("truncated", "unterminated", "one plus", "")
    ),
    "unclosed, at the cap": (
        [thinking("one plus", closed=False)], "length", ("truncated", "length", "one plus", "")
    ),
    "unclosed, blank text after": (
        [thinking("one plus", closed=False), {"type": "text", "text": " "}],
        "stop",
        ("truncated", "unterminated", "one plus", ""),
    ),
    "unclosed and empty, at the cap": (
        [thinking(closed=False)], "length", ("truncated", "length", "", "")
    ),
    "no text after it, at the cap": (
        [thinking("one plus")], "length", ("truncated", "length", "one plus", "")
    ),
    "no text after it, at the context length": (
        [thinking("one plus")], "model_length", ("truncated", "length", "one plus", "")
    ),
    "no text after it, natural stop": (
        [thinking("one plus")], "stop", ("truncated", "unterminated_or_misrouted", "one plus", "")
    ),
}  # fmt: skip
"""Mistral's reasoning models: the reasoning in ``thinking`` chunks of the content."""


@pytest.mark.parametrize("name", MISTRAL_SHAPES)
def test_mistral_thinking_chunks_are_the_reasoning_live_and_from_a_batch_file(
    server, tmp_path, name
):
    content, finish, expected = MISTRAL_SHAPES[name]
    live, read = live_and_from_a_batch_file(server, tmp_path, chat({"content": content}, finish))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail, trace.reasoning, trace.answer) == expected
    split = live.generations[0].split
    assert read.generations[0].split == split
    assert split is not None and split.field == "content.thinking" and split.parsed_block
    assert split.unclosed is name.startswith("unclosed")
    assert live.generations[0].text == read.generations[0].text == (split.content or "")
    recorded = [run_record(run).generations[0].reasoning_field for run in (live, read)]
    assert recorded == ["content.thinking", "content.thinking"]


def test_a_thinking_chunk_with_no_text_after_it_has_a_null_answer_not_an_empty_one(server):
    """The answer never came: the shape of a reasoning field beside a null content."""
    url = server(chat({"content": [thinking("one plus")]}, finish="length"))
    chat_backend = backend(url)
    requests = build_requests(None, PROBES.probes, SETTINGS, model="my-model")
    (generation,) = chat_backend.generate(requests, SETTINGS)
    chat_backend.close()
    assert generation.split is not None and generation.split.content is None
    assert generation.split.reasoning == "one plus" and generation.text == ""


@pytest.mark.parametrize(
    "beside",
    [
        {"reasoning_content": "one plus one"},  # a proxy's copy of the chunks: read once
        {"reasoning": "one plus one", "reasoning_content": None},
        {"reasoning_content": None, "thinking": None},  # nulls: no value
    ],
)
def test_a_reasoning_field_that_copies_the_thinking_chunks_is_read_once(server, tmp_path, beside):
    message = {**beside, "content": [thinking("one plus ", "one"), ANSWER]}
    live, read = live_and_from_a_batch_file(server, tmp_path, chat(message))
    assert read.outcomes[0].trace == live.outcomes[0].trace
    trace = live.outcomes[0].trace
    assert (trace.status.value, trace.detail, trace.reasoning) == (
        "valid",
        "closed",
        "one plus one",
    )
    fields = [run.generations[0].split.field for run in (live, read)]
    assert fields == ["content.thinking", "content.thinking"]


UNREADABLE_THINKING = [
    # (message, pattern): refused live and from a file, naming the chunk
    (  # reasoning after the answer began: not one block before it
        {"content": [ANSWER, thinking("one plus one")]},
        r"message.content.1 is a thinking chunk after the answer's text \(message.content.0\)",
    ),
    (
        {"content": [thinking("one"), ANSWER, thinking("plus one"), ANSWER]},
        r"message.content.2 is a thinking chunk after the answer's text \(message.content.1\)",
    ),
    (  # an answer after a block that never ended
        {"content": [thinking("one plus", closed=False), ANSWER]},
        r"message.content.1 is text after a thinking chunk that did not close "
        r"\(message.content.0.closed is false\)",
    ),
    (
        {"content": [{"type": "thinking", "thinking": "one plus one"}, ANSWER]},
        r"message.content.0.thinking must be a list of chunks .*, got str",
    ),
    (
        {"content": [{"type": "thinking"}, ANSWER]},
        r"message.content.0.thinking must be a list of chunks .*, got NoneType",
    ),
    (
        {"content": [thinking("one", closed="false"), ANSWER]},
        r"message.content.0.closed must be true or false, got str",
    ),
    (
        {
            "content": [
                thinking("one plus "),
                {"type": "thinking", "thinking": [{"type": "image_url", "image_url": "x"}]},
                ANSWER,
            ]
        },
        r"message.content.1.thinking.0 is a chunk of type 'image_url', which is not read",
    ),
    (
        {"content": [{"type": "thinking", "thinking": [{"text": "one plus one"}]}, ANSWER]},
        r"message.content.0.thinking.0 is a chunk of no type",
    ),
    (
        {"content": [{"type": "thinking", "thinking": ["one plus one"]}, ANSWER]},
        r"message.content.0.thinking.0 must be a chunk \(an object\), got str",
    ),
    (
        {
            "content": [
                {"type": "thinking", "thinking": [REFERENCE, {"type": "text", "text": None}]},
                ANSWER,
            ]
        },
        r"message.content.0.thinking.1.text must be a string, got NoneType",
    ),
    (  # two texts of the reasoning: which one is the trace cannot be told
        {"reasoning_content": "another thought", "content": [thinking("one plus one"), ANSWER]},
        r"message.content.0 is a thinking chunk and message.reasoning_content holds another "
        r"reasoning text",
    ),
    (
        {"reasoning": "", "content": [ANSWER, {"type": "text", "text": ""}, thinking("x")]},
        r"message.content.2 is a thinking chunk after the answer's text \(message.content.0\)",
    ),
    (
        {"reasoning": "", "content": [thinking("one plus one"), ANSWER]},
        r"message.content.0 is a thinking chunk and message.reasoning holds another",
    ),
    (
        {"reasoning_details": [ENCRYPTED], "content": [thinking("one plus one"), ANSWER]},
        r"message.content.0 is a thinking chunk and message.reasoning_details holds reasoning "
        r"without its text",
    ),
]


@pytest.mark.parametrize(("message", "pattern"), UNREADABLE_THINKING)
def test_thinking_chunks_that_cannot_be_read_are_refused_live_and_from_a_batch_file(
    server, tmp_path, message, pattern
):
    reply = chat(message)
    url = server(reply)
    with pytest.raises(GenerationError, match=pattern) as raised:
        classified(url)
    assert f"chat server {url}/v1/chat/completions answered probe 'p1'" in str(raised.value)
    with pytest.raises(GenerationsFileError, match=r"batch.jsonl:1: field " + pattern):
        generations_run(batch_file(tmp_path, reply), PROBES, model="my-model")


@pytest.fixture(scope="module")
def demo_tokenizer() -> Any:
    return load_tokenizer(resolve_model("demo:base"))


PARTLY_HIDDEN = {
    "reasoning_details": [{"type": "reasoning.text", "text": "one plus one"}, ENCRYPTED],
    "content": "2",
}
"""Visible reasoning beside an encrypted entry, its tokens not counted in ``usage``."""


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (PARTLY_HIDDEN, ("valid", "closed,partly_hidden")),
        ({"reasoning_details": [ENCRYPTED], "content": "2"}, ("missing", "hidden")),
    ],
)
def test_hidden_reasoning_has_no_token_count_even_with_a_tokenizer(
    server, tmp_path, demo_tokenizer, message, expected
):
    """The tokenizer would count the visible text alone: the count is unknown instead, and a
    thinking budget the visible count would reach is not said to be exhausted."""
    url = server(chat(message))
    chat_backend = backend(url, thinking_budget=1, tokenizer="demo:base")
    assert chat_backend.tokenizer is not None
    live = run_model(chat_backend, PROBES, SETTINGS, model="my-model")
    chat_backend.close()
    read = generations_run(
        batch_file(tmp_path, chat(message)), PROBES, model="my-model", tokenizer=demo_tokenizer
    )
    for run in (live, read):
        (generation,), (outcome,) = run.generations, run.outcomes
        assert (outcome.trace.status.value, outcome.trace.detail) == expected
        assert generation.reasoning_tokens is None and outcome.reasoning_tokens is None
        assert generation.split is not None and not generation.split.budget_exhausted
        assert run.metrics.mean_reasoning_tokens is None
        record = run_record(run)
        assert record.generations[0].reasoning_tokens is None and record.reasoning_tokens == {}
    assert read.outcomes[0].trace == live.outcomes[0].trace


def test_visible_reasoning_is_counted_with_a_tokenizer_and_the_servers_count_is_kept(
    server, demo_tokenizer
):
    """What the hidden case is measured against: all the reasoning visible, the tokenizer's
    count stands (and reaches the budget); hidden, the server's own count is kept."""
    counted = len(demo_tokenizer("one plus one", add_special_tokens=False).input_ids)
    visible = {"reasoning_details": PARTLY_HIDDEN["reasoning_details"][:1], "content": "2"}
    url = server(chat(visible))
    chat_backend = backend(url, thinking_budget=1, tokenizer="demo:base")
    run = run_model(chat_backend, PROBES, SETTINGS, model="my-model")
    chat_backend.close()
    assert counted > 1 and run.generations[0].reasoning_tokens == counted
    assert run.generations[0].split.budget_exhausted
    assert run.outcomes[0].trace.detail == "budget"
    assert run.metrics.mean_reasoning_tokens is None  # truncated: not a valid trace
    assert run_record(run).reasoning_tokens["all"].total == counted

    url = server(chat(PARTLY_HIDDEN, usage=HIDDEN_USAGE))
    chat_backend = backend(url, tokenizer="demo:base")
    run = run_model(chat_backend, PROBES, SETTINGS, model="my-model")
    chat_backend.close()
    assert run.generations[0].reasoning_tokens == run.outcomes[0].reasoning_tokens == 80
    assert run.metrics.mean_reasoning_tokens == 80
    assert run.outcomes[0].trace.detail == "closed,partly_hidden"


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ([ENCRYPTED, "x", None], ("reasoning_details", None, True)),  # non-entries: passed over
        ([{"type": "reasoning.text", "text": ""}], ("reasoning_details", "", False)),
        ([{"text": "one"}, {"data": "x"}], ("reasoning_details", "one", False)),  # no type
        ([{"type": "reasoning.other", "data": "x"}], (None, None, False)),  # not documented
        ([], (None, None, False)),
    ],
)
def test_which_reasoning_details_entries_are_text_and_which_are_hidden(details, expected):
    assert tuple(message_reasoning({"reasoning_details": details, "content": "2"}))[:3] == expected


def test_encrypted_only_responses_are_hidden_reasoning_and_fail_a_valid_rate_gate(server, tmp_path):
    """No reasoning tokens counted: a reasoning model, not a collapse (missing, ambiguous)."""
    message = {"reasoning": None, "reasoning_details": [ENCRYPTED], "content": "2"}
    runs = live_and_from_a_batch_file(server, tmp_path, chat(message))
    gate = GateSpec(probe_set="t", metric="valid_rate", kind="min", threshold=0.0)
    accuracy = GateSpec(probe_set="t", metric="answer_accuracy", kind="min", threshold=0.5)
    for run in runs:
        assert run.outcomes[0].trace.detail == "hidden" and run.outcomes[0].correct
        assert run.metrics.hidden_reasoning == 1
        assert "1 of 1 generations have hidden reasoning" in (run.metrics.status_unknown() or "")
        result = evaluate_gate(gate, run, None, DecisionConfig())
        assert not result.passed and "hidden reasoning" in result.reason
        assert evaluate_gate(accuracy, run, None, DecisionConfig()).passed
        record = run_record(run)
        assert record.generations[0].detail == "hidden"
        assert record.generations[0].reasoning_field == "reasoning_details"


def test_null_content_with_length_is_truncated(server):
    url = server(chat({"reasoning": "one plus", "content": None}, finish="length"))
    assert classified(url)[:2] == ("truncated", "length")


def test_null_content_with_a_natural_stop_says_it_cannot_tell(server):
    url = server(chat({"reasoning": "one plus one is 2", "content": None}))
    assert classified(url)[:2] == ("truncated", "unterminated_or_misrouted")


def test_no_reasoning_field_is_ambiguous_not_guessed(server):
    url = server(chat({"content": "2"}))
    assert classified(url) == ("missing", "ambiguous", "", "2")


THINKING_OFF = GenerationSettings(max_new_tokens=16, enable_thinking=False)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"thinking_switch": "deepseek"},
        {"thinking_switch": "openrouter"},
        {"thinking_switch": "mistral"},
        {
            "thinking_switch": "none",
            "extra_body": {"chat_template_kwargs": {"enable_thinking": False}},
        },
        {"thinking_switch": "none", "extra_body": {"reasoning_effort": "none"}},
    ],
)
def test_an_answer_alone_when_the_request_turned_thinking_off_is_empty(server, options):
    url = server(chat({"content": "2"}))
    assert classified(url, THINKING_OFF, **options) == ("empty", "disabled_by_prompt", "", "2")


@pytest.mark.parametrize(
    ("enable", "effort", "message", "expected"),
    [
        (True, "high", {"content": [thinking("one plus one"), ANSWER]}, ("valid", "closed")),
        (False, "none", {"content": [ANSWER]}, ("empty", "disabled_by_prompt")),
        (False, "none", {"content": "2"}, ("empty", "disabled_by_prompt")),
        (None, None, {"content": [ANSWER]}, ("missing", "ambiguous")),  # the model's default
    ],
)
def test_mistral_switch_sends_reasoning_effort(server, enable, effort, message, expected):
    """``reasoning_effort: none`` omits the thinking chunk: the answer alone is an empty trace
    switched off by request; ``prompt_mode`` (Magistral's system prompt) is never sent."""
    seen: list[dict] = []

    def reply(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        seen.append(body)
        return chat(message)(path, body)

    settings = GenerationSettings(max_new_tokens=16, enable_thinking=enable)
    assert classified(server(reply), settings, thinking_switch="mistral")[:2] == expected
    assert seen[0].get("reasoning_effort") == effort and "prompt_mode" not in seen[0]
    assert "chat_template_kwargs" not in seen[0]


def test_thinking_off_with_no_switch_sent_stays_ambiguous(server):
    url = server(chat({"content": "2"}))
    assert classified(url, THINKING_OFF, thinking_switch="none")[:2] == ("missing", "ambiguous")


def test_ollama_think_false_answer_alone_is_empty(server):
    def reply(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        assert body["think"] is False
        message = {"role": "assistant", "content": "2"}
        return 200, {"message": message, "done": True, "done_reason": "stop", "eval_count": 1}, {}

    url = server(reply)
    outcome = classified(url, THINKING_OFF, base_url=url, api="ollama")
    assert outcome[:2] == ("empty", "disabled_by_prompt")


def test_blank_reasoning_field_is_an_empty_block(server):
    url = server(chat({"reasoning": "\n", "content": "2"}))
    assert classified(url)[:2] == ("empty", "blank,closed")


def test_tags_left_in_content_are_parsed_as_raw_text(server):
    url = server(chat({"content": "<think>one plus one</think>2"}))
    assert classified(url) == ("valid", "closed,tags_in_content", "one plus one", "2")


def test_hidden_reasoning_makes_the_valid_rate_not_computable(server):
    usage = {
        "prompt_tokens": 4,
        "completion_tokens": 90,
        "completion_tokens_details": {"reasoning_tokens": 80},
    }
    url = server(chat({"content": "2"}, usage=usage))
    chat_backend = backend(url)
    requests = build_requests(None, PROBES.probes, SETTINGS, model="my-model")
    generations = tuple(chat_backend.generate(requests, SETTINGS))
    outcomes = tuple(score_generations(PROBES, generations))
    assert outcomes[0].trace.detail == "hidden" and outcomes[0].reasoning_tokens == 80
    run = Run(
        "my-model",
        "openai-chat",
        PROBES,
        SETTINGS,
        generations,
        outcomes,
        compute_metrics(outcomes),
    )
    gate = GateSpec(probe_set="t", metric="valid_rate", kind="min", threshold=0.0)
    result = evaluate_gate(gate, run, None, DecisionConfig())
    assert not result.passed and "hidden reasoning" in result.reason
    record = run_record(run)
    assert record.reasoning_tokens["all"].total == 80
    assert record.response_shapes and record.generations[0].reasoning_tokens == 80


def test_thinking_budget_detail_and_switches(server):
    seen: list[dict] = []
    usage = {
        "prompt_tokens": 4,
        "completion_tokens": 40,
        "completion_tokens_details": {"reasoning_tokens": 32},
    }

    def reply(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        seen.append(body)
        return chat({"reasoning": "long thought", "content": "2"}, usage=usage)(path, body)

    url = server(reply)
    assert classified(url, thinking_budget=32)[:2] == ("truncated", "budget")
    assert seen[-1]["chat_template_kwargs"] == {"enable_thinking": True}
    assert seen[-1]["thinking_token_budget"] == 32
    classified(url, thinking_switch="openrouter", thinking_budget=32)
    assert seen[-1]["reasoning"] == {"enabled": True, "max_tokens": 32}
    classified(url, thinking_switch="deepseek")
    assert seen[-1]["thinking"] == {"type": "enabled"}
    classified(url, thinking_switch="mistral")
    assert seen[-1]["reasoning_effort"] == "high"
    for switch in ("deepseek", "mistral"):
        with pytest.raises(GenerationError, match="thinking_budget needs"):
            backend(url, thinking_switch=switch, thinking_budget=8)


def test_429_with_retry_after_is_honoured(server):
    calls: list[float] = []

    def reply(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        calls.append(0.0)
        if len(calls) == 1:
            return 429, {"error": "slow down"}, {"Retry-After": "0"}
        return chat({"reasoning": "r", "content": "2"})(path, body)

    url = server(reply)
    assert classified(url, backoff_s=30)[0] == "valid"  # a 30 s backoff would time the test out
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"<html>gateway</html>", "not JSON"),
        ({"object": "chat.completion", "choices": []}, "no choices"),
        (
            {"choices": [{"message": {"role": "assistant", "text": "2"}, "finish_reason": "stop"}]},
            "neither content nor",
        ),
    ],
)
def test_bad_bodies_name_server_and_url_never_the_key(server, monkeypatch, answer, match):
    monkeypatch.setenv("CHAT_KEY", "sk-secret-123")
    url = server(lambda path, body: (200, answer, {}))
    with pytest.raises(GenerationError, match=match) as raised:
        classified(url, api_key_env="CHAT_KEY")
    message = str(raised.value)
    assert f"{url}/v1/chat/completions" in message and "sk-secret-123" not in message


def test_unknown_model_name_says_to_set_served_model(server, monkeypatch):
    monkeypatch.setenv("CHAT_KEY", "sk-secret-123")

    def reply(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        assert body["_authorization"] == "Bearer sk-secret-123"
        return (
            404,
            {"error": {"message": f"model {body['model']} not found; key sk-secret-123"}},
            {},
        )

    with pytest.raises(GenerationError, match="served_model 'my-model'") as raised:
        classified(server(reply), api_key_env="CHAT_KEY")
    assert "sk-secret-123" not in str(raised.value)


def test_unknown_option_is_a_clear_error():
    with pytest.raises(GenerationError, match="openai-chat.*conccurency"):
        load_backend("openai-chat", resolve_model("m"), {"base_url": "http://x", "conccurency": 2})


def test_url_credentials_are_redacted():
    assert (
        redact("see https://user:pw@host/v1 and key k1", ["k1"])
        == "see https://***@host/v1 and key ***"
    )


def test_a_server_that_never_answers_is_a_clear_error(server):
    def hang(path: str, body: dict) -> tuple[int, Any, dict[str, str]]:
        time.sleep(2)
        return chat({"content": "2"})(path, body)

    url = server(hang)
    with pytest.raises(
        GenerationError,
        match=r"chat server .*/v1/chat/completions failed on "
        r"probe 'p1' after 2 attempts: no answer within 0.2 s",
    ):
        classified(url, timeout_s=0.2, max_retries=1, backoff_s=0)


def test_in_flight_limit_grows_while_the_server_keeps_up_and_backs_off_on_overload():
    limit = _Limit(start=4, most=6)
    for _ in range(4 + 5):
        limit.succeeded()
    assert limit.limit == 6
    limit.overloaded()
    assert limit.limit == 4


def test_in_flight_limit_slow_starts_until_the_first_overload():
    limit = _Limit(start=4, most=100)
    for _ in range(4):
        limit.succeeded()
    assert limit.limit == 8  # doubled in one round
    limit.overloaded()
    assert limit.limit == 6
    for _ in range(6):
        limit.succeeded()
    assert limit.limit == 7  # one per round from then on
