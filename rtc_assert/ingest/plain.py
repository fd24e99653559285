"""The plain generations JSONL: one completion per line, for vLLM offline outputs or any tool.

Each line is a `PlainGeneration`; ``generations.schema.json`` beside this module is its JSON
Schema (`schema`). Lines are validated one at a time as they are read. A line that gives
``reasoning`` (null included) or ``reasoning_tokens`` is a server's split, classified as a
live chat response is (`rtc_assert.traces.server_split.SHAPE_RULES`); any other line is raw
text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rtc_assert.generation.requests import ServerSplit
from rtc_assert.ingest.records import (
    FileDigest,
    FileRecord,
    GenerationsFileError,
    parse_json_line,
    text_lines,
)

SCHEMA_FILE = Path(__file__).with_name("generations.schema.json")


class PlainGeneration(BaseModel):
    """One completion of one probe, as any tool can write it."""

    model_config = ConfigDict(extra="forbid", title="rtc-assert generation")

    probe_id: str = Field(min_length=1, description="The id of the probe in its probe set.")
    sample: int = Field(default=0, ge=0, description="Which sample of the probe (from 0).")
    prompt: str = Field(
        default="",
        description="The generation prompt as sent (after the chat template); its tail tells "
        "a prefilled opening tag or a template that switched thinking off.",
    )
    completion: str | None = Field(
        description="The completion text with special tokens kept (reasoning tags included); "
        "with 'reasoning', the answer part only, null where the server's content was null."
    )
    reasoning: str | None = Field(
        default=None,
        description="The reasoning field of a server's split (its reasoning parser's), null "
        "where the server sent none; given (or with 'reasoning_tokens'), the line is "
        "classified by the server-split rules, as a live chat response is. Leave it out for a "
        "raw completion.",
    )
    reasoning_tokens: int | None = Field(
        default=None,
        ge=0,
        description="The server's count of reasoning tokens "
        "(usage.completion_tokens_details.reasoning_tokens); without 'reasoning', the server "
        "returned no reasoning text (hidden reasoning).",
    )
    finish_reason: Literal["stop", "length"] | None = Field(
        default=None,
        description="How generation ended: 'stop' (end of sequence or a stop string), "
        "'length' (the token limit); null or absent when unknown.",
    )
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Anything else; unread.")

    @model_validator(mode="after")
    def _null_completion_is_split(self) -> PlainGeneration:
        if self.completion is None and not self.is_split:
            raise ValueError(
                "completion may be null only in a server's split (with reasoning or "
                "reasoning_tokens)"
            )
        return self

    @property
    def is_split(self) -> bool:
        """The line holds a server's split, not a raw completion."""
        return "reasoning" in self.model_fields_set or self.reasoning_tokens is not None


def schema() -> dict[str, Any]:
    """The JSON Schema of one line, as shipped in ``generations.schema.json``."""
    return PlainGeneration.model_json_schema()


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "the line"
    more = f" (and {len(error.errors()) - 1} more problems)" if len(error.errors()) > 1 else ""
    return f"field {location}: {first['msg']}{more}; see {SCHEMA_FILE.name}"


def read_plain(path: Path, digest: FileDigest | None = None) -> Iterator[FileRecord]:
    """The records of a plain generations JSONL file, one line at a time (``digest``: fed
    the file's bytes, see `text_lines`)."""
    for number, line in text_lines(path, digest):
        where = f"{path}:{number}"
        try:
            item = PlainGeneration.model_validate_json(line)
        except ValidationError as error:
            if error.errors()[0]["type"] == "json_invalid":
                parse_json_line(line, where)  # the decoder's own message and column
            raise GenerationsFileError(where, _problem(error)) from None
        split = None
        if item.is_split:
            field = None if item.reasoning is None else "reasoning"
            split = ServerSplit(reasoning=item.reasoning, content=item.completion, field=field)
        yield FileRecord(
            where=where,
            text=item.completion or "",
            split=split,
            reasoning_tokens=item.reasoning_tokens,
            finish_reason=item.finish_reason,
            probe_id=item.probe_id,
            sample=item.sample,
            prompt=item.prompt,
            prompt_tokens=item.prompt_tokens,
            completion_tokens=item.completion_tokens,
        )
