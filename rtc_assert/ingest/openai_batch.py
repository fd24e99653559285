"""OpenAI Batch output JSONL, as the Batch API and ``vllm run-batch`` write it.

One line per request: ``{id, custom_id, response: {status_code, body}, error}``. The body is
a chat completion (``choices[i].message.content``, with ``reasoning`` or ``reasoning_content``
where a reasoning parser split the reasoning out) or a completion (``choices[i].text``).
``custom_id`` is the probe id; choice ``i`` is sample ``i``. Written against the OpenAI Batch
output format and vLLM 0.10-0.11's ``run-batch``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtc_assert.generation.requests import FinishReason
from rtc_assert.ingest.records import (
    FileRecord,
    GenerationsFileError,
    field,
    finish_reason,
    join_split,
    json_lines,
)

FINISH_REASONS: dict[str, FinishReason | None] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": None,
    "abort": None,
}
"""OpenAI and vLLM finish reasons; a filtered or aborted output says nothing of the trace."""


def _reasoning(message: dict[str, Any], where: str) -> str | None:
    # vLLM renamed reasoning_content to reasoning (late 2025); SGLang, DeepSeek keep the old.
    for name in ("reasoning", "reasoning_content"):
        value = message.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise GenerationsFileError(where, f"field message.{name} must be a string")
            return value
    return None


def read_openai_batch(path: Path) -> Iterator[FileRecord]:
    """The records of a Batch output file, one line at a time."""
    for where, line in json_lines(path):
        custom_id = field(line, "custom_id", str, where)
        if line.get("error"):
            raise GenerationsFileError(
                where, f"request {custom_id!a} failed: {ascii(line['error'])[:200]}"
            )
        status = field(line, "response.status_code", int, where)
        if status != 200:
            raise GenerationsFileError(
                where, f"request {custom_id!a} has status {status}; rerun it"
            )
        body = field(line, "response.body", dict, where)
        choices = field(body, "choices", list, where)
        usage = body.get("usage") or {}
        single = len(choices) == 1
        for index, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise GenerationsFileError(where, f"field choices.{index} must be an object")
            reason = finish_reason(choice.get("finish_reason"), FINISH_REASONS, where)
            if "message" in choice:
                message = field(choice, "message", dict, where)
                content = message.get("content")
                if content is not None and not isinstance(content, str):
                    raise GenerationsFileError(where, "field message.content must be a string")
                reasoning = _reasoning(message, where)
                text, split = join_split(reasoning, content), reasoning is not None
            else:
                text, split = field(choice, "text", str, where), False
            yield FileRecord(
                where=where,
                text=text,
                finish_reason=reason,
                probe_id=custom_id,
                sample=int(choice.get("index", index)),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0) if single else 0,
                split=split,
            )
