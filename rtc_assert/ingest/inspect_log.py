"""Inspect AI logs, in either of Inspect's log formats (``--log-format``):

- ``.eval`` (the default): a zip with one ``samples/ID_epoch_N.json`` member per sample,
  read one member at a time;
- ``.json``: one JSON document, ``{"version", "status", "eval", ..., "samples": [...]}``,
  each item of ``samples`` the same sample record as an ``.eval`` member. The document is
  read whole (Inspect itself writes and reads it whole): memory about 3.5 times the file's
  size, see docs/existing-generations.md.

Both give their samples to one per-sample reader. ``output.choices[i].message.content`` is a
string or a list of parts: ``reasoning`` parts (``ContentReasoning``) and ``text`` parts.
``stop_reason`` gives the finish reason, ``usage.reasoning_tokens`` the server's count of
reasoning tokens. The sample id is the probe id; epoch N is sample N - 1. Written against
inspect-ai 0.3.285.

Reasoning parts are Inspect's record of a split, not always a server's. Its OpenAI-compatible
providers (``vllm``, ``openai-api``) keep a server's non-empty reasoning field as a part
(``internal`` names the field) and otherwise parse a closed ``<think>`` block out of the text
themselves (``internal: "think"``, kept when empty); providers with thinking blocks of their
own (Anthropic, Google) write those. A message with reasoning parts is classified by the
server-split rules (`rtc_assert.traces.server_split.SHAPE_RULES`), read as:

- reasoning: the parts' text; its field: ``internal``, else ``reasoning part``;
- content: the text parts, where none or only empty ones are null content: Inspect writes a
  server's null content as an empty text part, and a provider cut inside its thinking sends
  no text. A reasoning part without an answer is therefore ``truncated`` (``length`` at
  ``max_tokens``), as the server's own response is;
- ``internal: "think"``: a block Inspect parsed from closed tags, so blank reasoning is an
  empty block (``empty``), not the ``ambiguous`` of a server's empty field, for which Inspect
  writes no part at all;
- ``redacted: true``: the provider returned the reasoning without its text (Anthropic's
  ``redacted_thinking`` and, since inspect-ai 0.3.156, its summarized thinking; OpenAI's
  encrypted reasoning; Google's thought signatures). The part's ``reasoning`` is the
  encrypted blob or signature and its ``summary`` at most a summary, so neither is read: the
  split is hidden (`ServerSplit.hidden`), classified ``missing`` with detail ``hidden`` as a
  live o-series response is, whatever the stop reason. Visible reasoning parts beside it
  are kept, and stand only when they make a valid trace alone (``closed,partly_hidden``).

A string content (the ``hf`` provider's raw text; a server's answer with no reasoning) is raw
text, classified with the named markup. Checked on logs Inspect's ``vllm`` provider wrote
against a real ``vllm serve`` (tests/fixtures/generations/inspect-vllm/), whose model events
keep the server's own response.

Inspect compresses ``.eval`` members with zstd: Python 3.14 reads them, older Pythons need the
``zipfile-zstd`` package (imported here when installed).
"""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
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
    optional_field,
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

JSON_LOG = re.compile(
    rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"version"\s*:\s*\d+\s*,\s*"status"\s*:\s*"\w*"\s*,'
    rb'\s*"eval"\s*:\s*\{'
)
"""How an Inspect JSON log begins: Inspect writes ``version``, ``status`` and ``eval`` first
(``EvalLog``'s field order is its file format), with or without indentation."""
_HEAD = 1024
"""Bytes read to tell an Inspect JSON log (the signature needs about 60)."""

NO_SAMPLES = (
    "holds no generations (0 samples): Inspect logged no samples (the eval ran with "
    "--no-log-samples, or stopped before a sample finished); rerun it with samples logged"
)


def _message(content: Any, where: str) -> tuple[ServerSplit | None, str]:
    """A message's content: its reasoning parts as a split, or (None, the text) without any."""
    if isinstance(content, str):
        return None, content
    if not isinstance(content, list):
        raise GenerationsFileError(where, "field message.content must be a string or a list")
    reasoning: list[dict[str, Any]] = []
    texts: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "reasoning":
            reasoning.append(part)
        elif kind == "text":
            texts.append(str(part.get("text", "")))
    if not reasoning:
        return None, "".join(texts)
    # A redacted part's ``reasoning`` is an encrypted blob or a signature, and its
    # ``summary`` not the trace: hidden reasoning, read from neither.
    visible = [part for part in reasoning if not part.get("redacted")]
    source = visible[0].get("internal") if visible else None
    split = ServerSplit(
        reasoning="".join(str(part.get("reasoning", "")) for part in visible) if visible else None,
        content="".join(texts) or None,  # Inspect writes a null content as ""
        field=source
        if isinstance(source, str)
        else ("reasoning part" if visible else "redacted reasoning part"),
        parsed_block=source == "think",
        hidden=len(visible) < len(reasoning),
    )
    return split, ""


def is_inspect_json(path: Path) -> bool:
    """Whether ``path`` begins as an Inspect JSON log; reads only its first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
    except OSError:
        return False
    return JSON_LOG.match(head) is not None


def read_inspect(path: Path, digest: FileDigest | None = None) -> Iterator[FileRecord]:
    """The records of an Inspect log: an ``.eval`` archive or a JSON log.

    ``digest``: fed a JSON log's bytes as it is read; an archive, read member by member out
    of the file's order, feeds it nothing (`FileDigest.finish` hashes it apart).

    Raises:
        GenerationsFileError: neither format, a member or document that is not JSON, a log
            with no samples, or a sample without the fields Inspect writes.
    """
    samples = _eval_samples(path) if zipfile.is_zipfile(path) else _json_samples(path, digest)
    count = 0
    for where, sample in samples:
        count += 1
        yield from _records(sample, where)
    if count == 0:
        raise GenerationsFileError(str(path), NO_SAMPLES)


def _eval_samples(path: Path) -> Iterator[tuple[str, Any]]:
    """(``FILE!MEMBER``, sample) for each sample of an ``.eval`` log, one member at a time."""
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
            yield where, sample


def _json_samples(path: Path, digest: FileDigest | None) -> Iterator[tuple[str, Any]]:
    """(``FILE!samples[I]``, sample) for each sample of a JSON log, read whole.

    The file's first bytes are checked first, so a JSONL file (or anything else) given as
    ``inspect`` is refused without being read as one document.
    """
    if not is_inspect_json(path):
        raise GenerationsFileError(
            str(path),
            "not an Inspect log: neither an .eval log (a zip archive) nor a JSON log (one "
            'JSON document that begins {"version": N, "status": ..., "eval": {...}, as '
            "inspect eval --log-format json writes it)",
        )
    data = path.read_bytes()
    if digest is not None:
        digest.update(data)
        digest.complete = True
    try:
        document = json.loads(data)
    except json.JSONDecodeError as error:
        raise GenerationsFileError(
            f"{path}:{error.lineno}",
            f"not a complete JSON document ({error.msg} at column {error.colno}); a log cut "
            "off while it was written or copied ends this way: write it again",
        ) from None
    except UnicodeDecodeError as error:
        raise GenerationsFileError(
            str(path), f"byte {error.start} is not UTF-8: not a log Inspect wrote"
        ) from None
    del data
    samples = document.get("samples")
    samples = [] if samples is None else field(document, "samples", list, str(path))
    del document  # the header; each sample is dropped once read, below
    for index, sample in enumerate(samples):
        samples[index] = None
        yield f"{path}!samples[{index}]", sample


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
    split, text = _message(field(choice, "message.content", (str, list), where), where)
    yield FileRecord(
        where=where,
        text=text,
        split=split,
        reasoning_tokens=optional_field(output, "usage.reasoning_tokens", int, where),
        finish_reason=finish_reason(choice.get("stop_reason"), STOP_REASONS, where),
        probe_id=str(probe_id),
        sample=epoch - 1,
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
    )
