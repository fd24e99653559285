"""Inspect AI ``.eval`` logs: a zip with one ``samples/ID_epoch_N.json`` member per sample.

``output.choices[i].message.content`` is a string or a list of parts: ``reasoning`` parts
(``ContentReasoning``) and ``text`` parts. Reasoning parts are the split reasoning (Inspect
moved a closed ``<think>`` block, or a server's reasoning field, into them); a text with no
reasoning part is classified as it stands. ``stop_reason`` gives the finish reason. The
sample id is the probe id; epoch N is sample N - 1. Written against inspect-ai 0.3.285.

Inspect compresses members with zstd: Python 3.14 reads them, older Pythons need the
``zipfile-zstd`` package (imported here when installed).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
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
)

with contextlib.suppress(ImportError):
    import zipfile_zstd  # type: ignore[import-not-found]  # noqa: F401 (adds zstd to zipfile)

STOP_REASONS: dict[str, FinishReason | None] = {
    "stop": "stop",
    "tool_calls": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "content_filter": None,
    "unknown": None,
}


def _parts(content: Any, where: str) -> tuple[str | None, str]:
    """(reasoning or None, answer text) of a message's content."""
    if isinstance(content, str):
        return None, content
    if not isinstance(content, list):
        raise GenerationsFileError(where, "field message.content must be a string or a list")
    reasoning: list[str] = []
    texts: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "reasoning":
            if part.get("redacted"):
                raise GenerationsFileError(
                    where,
                    "the reasoning is redacted (the provider returned it encrypted): there "
                    "is no trace to classify; gate a model whose reasoning text is returned",
                )
            reasoning.append(str(part.get("reasoning", "")))
        elif kind == "text":
            texts.append(str(part.get("text", "")))
    return ("".join(reasoning) if reasoning else None), "".join(texts)


def read_inspect(path: Path) -> Iterator[FileRecord]:
    """The records of an ``.eval`` log, one sample member at a time."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise GenerationsFileError(
            str(path), f"not an Inspect .eval log (a zip archive): {error}"
        ) from None
    with archive:
        for name in archive.namelist():
            if not (name.startswith("samples/") and name.endswith(".json")):
                continue
            where = f"{path}!{name}"
            try:
                sample = json.loads(archive.read(name))
            except NotImplementedError:
                raise GenerationsFileError(
                    where,
                    "the member is zstd-compressed, which this Python's zipfile cannot read: "
                    "pip install zipfile-zstd (or use Python 3.14+)",
                ) from None
            except (json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile) as error:
                raise GenerationsFileError(where, f"not a sample record: {error}") from None
            yield from _records(sample, where)


def _records(sample: Any, where: str) -> Iterator[FileRecord]:
    if not isinstance(sample, dict):
        raise GenerationsFileError(where, "a sample must be a JSON object")
    probe_id = field(sample, "id", (str, int), where)
    epoch = field(sample, "epoch", int, where)
    output = field(sample, "output", dict, where)
    usage = output.get("usage") or {}
    choices = field(output, "choices", list, where)
    if not choices:
        raise GenerationsFileError(
            where, f"sample {probe_id!a} has no output (error: {sample.get('error')!a})"
        )
    choice = choices[0]
    reasoning, text = _parts(field(choice, "message.content", (str, list), where), where)
    yield FileRecord(
        where=where,
        text=join_split(reasoning, text) if reasoning is not None else text,
        finish_reason=finish_reason(choice.get("stop_reason"), STOP_REASONS, where),
        probe_id=str(probe_id),
        sample=epoch - 1,
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        split=reasoning is not None,
    )
