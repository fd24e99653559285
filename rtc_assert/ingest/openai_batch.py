"""OpenAI Batch output JSONL, as the Batch API and ``vllm run-batch`` write it.

One line per request: ``{id, custom_id, response: {status_code, request_id, body}, error}``.
The body is a chat completion (``choices[i].message.content``, with the reasoning in a field
of its own where a reasoning parser split it out) or a completion (``choices[i].text``).
``custom_id`` is the probe id; choice ``i`` is sample ``i``.

A chat message is classified as a live ``openai-chat`` response is: its reasoning field (the
first of `rtc_assert.traces.server_split.MESSAGE_REASONING_FIELDS` with a value, read by
`rtc_assert.traces.server_split.message_reasoning`: ``reasoning``, ``reasoning_content``,
``thinking``, ``reasoning_details[].text``; a value of another kind is an error), whether
part of it is hidden (``reasoning_details`` entries without text: encrypted, a summary),
``content`` (null kept; a list of text and refusal parts joined, read by
`rtc_assert.traces.server_split.message_content`, which refuses a part of another type;
Mistral's ``thinking`` chunks are the reasoning, field ``content.thinking``) and
``usage.completion_tokens_details.reasoning_tokens`` (with one choice) by
`rtc_assert.traces.server_split.SHAPE_RULES`. A completion's ``text`` is raw text.

Written against the OpenAI Batch output format and vLLM 0.32.0's ``run-batch``, checked on
files it wrote (tests/fixtures/generations/vllm-run-batch/, tests/test_ingest_vllm_batch.py):

- It takes chat completions only (no ``/v1/completions``). With ``--reasoning-parser`` the
  reasoning is in ``message.reasoning`` (0.32 writes no ``reasoning_content``; an empty block
  is blank reasoning) and the answer in ``content``. By the parsers' source, ``content`` is null
  when the block never closed, but also when it closed at the very end, and ``deepseek_r1``
  takes a text with no tags at all for reasoning: all three are one shape (truncated,
  ``unterminated_or_misrouted``). Without a parser, ``content`` holds the raw text, tags
  included, beside ``reasoning: null`` (``tags_in_content``: the markup must be named).
- A success has ``error: null``. A failed request has ``body: null``, ``status_code`` its HTTP
  status and ``error`` vLLM's error response (``{error: {message, type, param, code}}``), or a
  string for a request it could not route. The Batch API writes ``error: {code, message}``
  with ``response: null``, or an HTTP error's ``{error: {...}}`` as the body.
- ``finish_reason`` is ``stop`` or ``length``, or ``abort``, ``repetition`` (vLLM's
  repetition detector cut the output) and ``tool_calls``; a Mistral body's ``model_length``
  (the context window was reached) counts as ``length``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtc_assert.generation.requests import FinishReason, ServerSplit
from rtc_assert.ingest.records import (
    FileDigest,
    FileRecord,
    GenerationsFileError,
    field,
    finish_reason,
    json_lines,
    optional_field,
)
from rtc_assert.traces.server_split import (
    MESSAGE_REASONING_FIELDS,
    message_content,
    message_reasoning,
)

FINISH_REASONS: dict[str, FinishReason | None] = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",  # Mistral: the context window was reached
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": None,
    "abort": None,
    "repetition": None,
}
"""OpenAI and vLLM finish reasons; an output filtered, aborted or cut by vLLM's repetition
detector ended neither by itself nor at the token cap: it says nothing of the trace."""


def _split(choice: dict[str, Any], where: str) -> ServerSplit:
    """A chat choice's message as the server split it: its reasoning field (if any), content."""
    message = field(choice, "message", dict, where)
    try:
        content = message_content(message)
    except ValueError as error:
        raise GenerationsFileError(where, f"field {error}") from None
    for name, kind in MESSAGE_REASONING_FIELDS.items():
        optional_field(choice, f"message.{name}", kind, where)  # a field of another kind: refused
    try:
        read = message_reasoning(message)
    except ValueError as error:
        raise GenerationsFileError(where, f"field {error}") from None
    return ServerSplit(
        reasoning=read.text,
        content=content,
        field=read.field,
        parsed_block=read.block,
        hidden=read.hidden,
        unclosed=read.unclosed,
    )


def _error_message(error: Any) -> str:
    """An error's message, from vLLM's ``{error: {message, type}}``, the Batch API's
    ``{code, message}`` or a plain string."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("type") or error.get("code")
        return error["message"] + (f" ({kind})" if isinstance(kind, str) and kind else "")
    return error if isinstance(error, str) else json.dumps(error)


def _failure(line: dict[str, Any], custom_id: str, where: str) -> None:
    """Raise for a request that failed: an ``error``, no response, or a status other than 200."""
    response = line.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    error = line.get("error") or (body.get("error") if isinstance(body, dict) else None)
    if error or response is None:
        status = response.get("status_code") if isinstance(response, dict) else None
        raise GenerationsFileError(
            where,
            f"request {custom_id!a} failed"
            + (f" with status {status}" if isinstance(status, int) else "")
            + (f": {ascii(_error_message(error))[:300]}" if error else ": no response")
            + "; rerun it",
        )
    status = field(line, "response.status_code", int, where)
    if status != 200:
        raise GenerationsFileError(where, f"request {custom_id!a} has status {status}; rerun it")


def read_openai_batch(path: Path, digest: FileDigest | None = None) -> Iterator[FileRecord]:
    """The records of a Batch output file, one line at a time (``digest``: fed the file's
    bytes, see `text_lines`)."""
    for where, line in json_lines(path, digest):
        custom_id = field(line, "custom_id", str, where)
        _failure(line, custom_id, where)
        body = field(line, "response.body", dict, where)
        choices = field(body, "choices", list, where)
        usage = body.get("usage") or {}
        single = len(choices) == 1
        # The usage is the request's: per choice only when there is one.
        counted = "usage.completion_tokens_details.reasoning_tokens"
        reasoning_tokens = optional_field(body, counted, int, where) if single else None
        for index, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise GenerationsFileError(where, f"field choices.{index} must be an object")
            reason = finish_reason(choice.get("finish_reason"), FINISH_REASONS, where)
            if "message" in choice:
                split, text = _split(choice, where), ""
            else:
                split, text = None, field(choice, "text", str, where)
            yield FileRecord(
                where=where,
                text=text,
                split=split,
                reasoning_tokens=reasoning_tokens,
                finish_reason=reason,
                probe_id=custom_id,
                sample=int(choice.get("index", index)),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0) if single else 0,
            )
