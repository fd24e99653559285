"""What every reader yields, how records are paired with probes, and the file errors.

Every reader streams: it yields one `FileRecord` per completion while it reads, so a file of
any length is paired and classified in memory that grows with the probe set, not the file.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc_assert.errors import GenerationsFileError
from rtc_assert.generation.requests import FinishReason, Generation, ServerSplit
from rtc_assert.probes.probe import Probe, ProbeSet

_SHOWN = 5
"""Names listed in one error before the rest are counted."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One completion read from a file, before it is paired with its probe."""

    where: str
    """``FILE:LINE`` (or ``FILE!MEMBER`` inside an archive), for errors."""
    finish_reason: FinishReason | None
    """None when the file does not say how generation ended."""
    text: str = ""
    """The raw completion, reasoning markup included; unused with ``split``."""
    split: ServerSplit | None = None
    """The reasoning and answer as the file held them apart (a server's reasoning parser,
    Inspect's reasoning parts), classified by `rtc_assert.traces.server_split`."""
    reasoning_tokens: int | None = None
    """The server's count of reasoning tokens, where the file has it."""
    probe_id: str | None = None
    doc_id: int | None = None
    """lm-evaluation-harness: the document's index in its task (paired by position)."""
    sample: int = 0
    prompt: str = ""
    reference: str | None = None
    """The reference answer the file logged (lm-eval's ``target``), checked against the probe's."""
    prompt_tokens: int = 0
    completion_tokens: int = 0


def finish_reason(value: Any, known: dict[str, FinishReason | None], where: str) -> Any:
    """A file's finish or stop reason as ``stop``, ``length`` or None (unknown)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in known:
        raise GenerationsFileError(
            where,
            f"finish reason {value!a} is not one of {', '.join(sorted(known))}",
        )
    return known[value]


HASH_CHUNK = 1 << 20
"""Bytes read at a time from a file being hashed (and the buffer of a hashed text stream)."""


class FileDigest:
    """The SHA-256 of a generations file, taken from the bytes its reader reads.

    A reader that streams the file (the JSONL formats) or reads it whole (an Inspect JSON
    log) feeds every byte it reads and marks the digest `complete` at the end of the file, so
    the file is read once. One that reads out of order (an ``.eval`` zip archive) feeds
    nothing: `finish` then hashes the file in a pass of its own.
    """

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.complete = False
        """Whether every byte of the file went into the digest."""

    def update(self, data: bytes | memoryview) -> None:
        self._sha256.update(data)

    def finish(self, path: Path) -> str:
        """The file's SHA-256 (hex): of the bytes read when they were all of it, else of the
        file read again."""
        if not self.complete:
            self._sha256 = hashlib.sha256()
            with path.open("rb") as stream:
                while chunk := stream.read(HASH_CHUNK):
                    self._sha256.update(chunk)
            self.complete = True
        return self._sha256.hexdigest()


class _Hashing(io.RawIOBase):
    """A binary file that feeds every byte read from it to a `FileDigest`."""

    def __init__(self, raw: io.RawIOBase, digest: FileDigest) -> None:
        self._raw, self._digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        count = self._raw.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_text(path: Path, digest: FileDigest | None) -> io.TextIOBase:
    if digest is None:
        return path.open(encoding="utf-8")
    raw = path.open("rb", buffering=0)
    buffered = io.BufferedReader(_Hashing(raw, digest), buffer_size=HASH_CHUNK)
    return io.TextIOWrapper(buffered, encoding="utf-8")


def text_lines(path: Path, digest: FileDigest | None = None) -> Iterator[tuple[int, str]]:
    """(line number, line) for each non-blank line of a text file, read one at a time.

    ``digest``: fed every byte read, and marked complete at the end of the file.

    Raises:
        GenerationsFileError: the file cannot be read or is not UTF-8.
    """
    try:
        handle = _open_text(path, digest)
    except OSError as error:
        raise GenerationsFileError(str(path), f"cannot read it ({error.strerror})") from None
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
        except UnicodeDecodeError as error:
            raise GenerationsFileError(
                f"{path}:{number + 1}", f"byte {error.start} is not UTF-8; save it as UTF-8"
            ) from None
    if digest is not None:
        digest.complete = True


def parse_json_line(line: str, where: str) -> dict[str, Any]:
    """One JSONL line as an object.

    Raises:
        GenerationsFileError: the line is not JSON (a file cut off midway) or not an object.
    """
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise GenerationsFileError(
            where,
            f"not a JSON line ({error.msg} at column {error.colno}); a file cut off while it "
            "was written ends this way: write it again",
        ) from None
    if not isinstance(value, dict):
        raise GenerationsFileError(
            where, f"a line must be a JSON object, got {type(value).__name__}"
        )
    return value


def json_lines(
    path: Path, digest: FileDigest | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``FILE:LINE``, object) for each non-blank line of a JSONL file (``digest``: see
    `text_lines`)."""
    for number, line in text_lines(path, digest):
        where = f"{path}:{number}"
        yield where, parse_json_line(line, where)


def field(record: dict[str, Any], path: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``record[a][b]...`` for ``path`` ``"a.b"``, checked to be of ``kind``."""
    found, value = _lookup(record, path)
    if not found:
        raise GenerationsFileError(where, f"field {path} is missing")
    return _checked(value, path, kind, where)


def optional_field(
    record: dict[str, Any], path: str, kind: type | tuple[type, ...], where: str
) -> Any:
    """`field`, or None where ``path`` is absent or null."""
    found, value = _lookup(record, path)
    return _checked(value, path, kind, where) if found and value is not None else None


def _lookup(record: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = record
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, None
    return True, value


def _checked(value: Any, path: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise GenerationsFileError(
            where, f"field {path} must be {_kind_name(kind)}, got {type(value).__name__}"
        )
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _listed(names: list[str], total: int) -> str:
    more = f" and {total - len(names)} more" if total > len(names) else ""
    return ", ".join(names) + more


def pair(
    records: Iterable[FileRecord],
    probe_set: ProbeSet,
    source: str,
    prompt_of: Callable[[Probe], str] | None = None,
    gated: ProbeSet | None = None,
) -> Iterator[Generation]:
    """The `Generation` of each record for its probe, checked while it streams by.

    A record is paired by ``probe_id``, else by ``doc_id`` (the probe at that position).
    ``prompt_of`` renders the prompt of a record that stores none (the model's chat
    template). ``gated`` is the part of ``probe_set`` to gate (its ``limit:`` or
    ``sample:``): records of the other probes are paired and checked, then left out, and only
    gated probes need a record. Memory grows with probes x samples (one bit each), not with
    the file.

    Raises:
        GenerationsFileError: a record names no probe of the set, two records are for one
            (probe, sample), a gated probe has no record, or the file holds none.
    """
    probes = probe_set.probes
    kept = None if gated is None else {probe.id for probe in gated.probes}
    index = {probe.id: position for position, probe in enumerate(probes)}
    seen = [bytearray() for _ in probes]
    count = 0
    for record in records:
        if record.probe_id is not None:
            position = index.get(record.probe_id)
            name = ascii(record.probe_id)
        else:
            position = record.doc_id if record.doc_id is not None and record.doc_id >= 0 else None
            if position is not None and position >= len(probes):
                position = None
            name = f"doc_id {record.doc_id}"
        if position is None:
            raise GenerationsFileError(
                record.where,
                f"{name} is no probe of {probe_set.name} ({len(probes)} probes); is this the "
                "log of another task, or of another version of the probe set?",
            )
        bits = seen[position]
        byte, bit = divmod(record.sample, 8)
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits)))
        if bits[byte] >> bit & 1:
            raise GenerationsFileError(
                record.where,
                f"a second record for probe {probes[position].id!a} sample {record.sample}; "
                "give each (probe, sample) once (two runs appended to one file end this way)",
            )
        bits[byte] |= 1 << bit
        probe = probes[position]
        if record.reference is not None and record.reference.strip() != probe.answer.strip():
            raise GenerationsFileError(
                record.where,
                f"{name}'s reference {record.reference[:80]!a} is not probe "
                f"{probe.id!a}'s answer {probe.answer[:80]!a}: this is the log of "
                f"another task, or of another version of {probe_set.name}",
            )
        count += 1
        if kept is not None and probe.id not in kept:
            continue
        prompt = record.prompt or (prompt_of(probe) if prompt_of is not None else "")
        yield Generation(
            probe_id=probe.id,
            sample=record.sample,
            prompt=prompt,
            # A split's text is its content, as a chat backend's generation has it.
            text=record.text if record.split is None else record.split.content or "",
            finish_reason=record.finish_reason,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            prefilled=False,
            reasoning_tokens=record.reasoning_tokens,
            split=record.split,
        )
    if count == 0:
        raise GenerationsFileError(source, "holds no generations (0 records)")
    without = [
        probe.id
        for probe, bits in zip(probes, seen, strict=True)
        if not any(bits) and (kept is None or probe.id in kept)
    ]
    if without:
        needed = len(probes) if kept is None else len(kept)
        raise GenerationsFileError(
            source,
            f"{len(without)} of {needed} probes of {probe_set.name} have no record: "
            f"{_listed([ascii(name) for name in without[:_SHOWN]], len(without))}; generate them "
            "or cut the probe set (limit:, or a probe file of the probes you ran)",
        )
