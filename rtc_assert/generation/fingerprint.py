"""Model fingerprints for the run record: what exactly was gated.

A local folder is fingerprinted by the SHA-256 of its weight, config, tokenizer and chat
template files. Each file's hash is memoised by (path, size, mtime_ns): in-process, and, given
a `HashMemo` (the generation cache is one), across processes, so unchanged multi-GB weights
are read once, not once per CI job. A file rewritten with the same size and modification time
keeps its old hash, as with make or git's index. A hub model is named by its id and revision.
A PEFT adapter is fingerprinted as its base together with the adapter folder's files.

A spec whose runs were read from files of generations other tools wrote (thresholds.yaml's
``generations:``) names those files under ``generations``, by probe set: each file's path,
format and SHA-256 (`FileFingerprint`), beside the model's own keys where the model was also
loaded (to generate the probe sets without a file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import GenerationError

FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")
CHUNK_BYTES = 1 << 20

FileFingerprint = dict[str, str]
"""A generations file a run was read from: ``{"file", "format", "sha256"}``."""
Fingerprint = dict[str, str | dict[str, FileFingerprint]]
"""What identifies a spec's runs: `model_fingerprint`'s keys for a model that was loaded, and
``generations``: the files its runs were read from, by probe set. (Run records before
record_version 3, and sweep records before they named each file, held one path there, the
last file read, as a string.)"""
FileKey = tuple[str, int, int]
"""(absolute path, size in bytes, mtime in nanoseconds): a file's identity for the memo."""


class HashMemo(Protocol):
    """A persistent store of file hashes by `FileKey`."""

    def known_hashes(self, keys: list[FileKey]) -> dict[FileKey, str]:
        """The stored hashes among ``keys``."""
        ...

    def remember_hashes(self, hashes: Mapping[FileKey, str]) -> None:
        """Store hashes by key."""
        ...


def sha256_of_file(path: str) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=4096)
def _memoised_sha256(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the memo key only: a changed file is hashed again
    return sha256_of_file(path)


def file_hashes(folder: Path, memo: HashMemo | None = None) -> dict[str, str]:
    """SHA-256 of every fingerprinted file in a model folder, by relative path."""
    keys: dict[str, FileKey] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in FINGERPRINTED_SUFFIXES:
            stat = path.stat()
            keys[path.relative_to(folder).as_posix()] = (
                str(path.resolve()),
                stat.st_size,
                stat.st_mtime_ns,
            )
    known = memo.known_hashes(list(keys.values())) if memo is not None else {}
    hashes = {name: known.get(key) or _memoised_sha256(*key) for name, key in keys.items()}
    if memo is not None:
        memo.remember_hashes({key: hashes[name] for name, key in keys.items() if key not in known})
    return hashes


def _combined(hashes: dict[str, str]) -> str:
    return hashlib.sha256(
        "".join(f"{name}\0{digest}\n" for name, digest in hashes.items()).encode()
    ).hexdigest()


def model_fingerprint(model: ModelRef, memo: HashMemo | None = None) -> dict[str, str]:
    """``{"spec", "source", "sha256"}`` for a folder; ``{"spec", "hub_id", "revision"}`` else.

    An adapter adds ``"adapter"`` (its folder) and ``"adapter_sha256"``; ``sha256`` (or the
    hub id) then covers base and adapter together. ``memo`` keeps the file hashes of a folder
    between processes.
    """
    if not model.is_local:
        found = {"spec": model.spec, "hub_id": model.source, "revision": model.revision or "main"}
    else:
        sha = _combined(file_hashes(Path(model.source), memo))
        found = {"spec": model.spec, "source": model.source, "sha256": sha}
    if model.adapter is None:
        return found
    adapter_sha = _combined(file_hashes(Path(model.adapter), memo))
    found.update(adapter=model.adapter, adapter_sha256=adapter_sha)
    if "sha256" in found:
        found["sha256"] = _combined({"base": found["sha256"], "adapter": adapter_sha})
    return found


def check_adapter_base(candidate: ModelRef, base: ModelRef) -> None:
    """Refuse an adapter gated against a base other than the one it was trained on.

    Local bases are compared by content (a copy in another folder is the same base).
    """
    if candidate.adapter is None:
        return
    trained_on, configured = candidate.base, base.base
    if candidate.is_local and base.is_local:
        same = model_fingerprint(trained_on)["sha256"] == model_fingerprint(configured)["sha256"]
    else:
        same = (trained_on.source, trained_on.revision) == (configured.source, configured.revision)
    if not same:
        raise GenerationError(
            f"adapter {candidate.adapter} was trained on {trained_on.source} (its "
            f"adapter_config.json base_model_name_or_path), but the configured base is "
            f"{base.spec} ({configured.source}): gate the adapter against its own base"
        )


def files_read(fingerprint: Mapping[str, object]) -> dict[str, FileFingerprint]:
    """The generations files a fingerprint names, by probe set (none for a model that only
    generated, or an old record's single path, which names no probe set)."""
    files = fingerprint.get("generations")
    return dict(files) if isinstance(files, dict) else {}


def with_files(fingerprint: Fingerprint, files: Mapping[str, FileFingerprint]) -> Fingerprint:
    """``fingerprint`` naming ``files`` (by probe set) beside the files it names already."""
    if not files:
        return fingerprint
    return {**fingerprint, "generations": {**files_read(fingerprint), **files}}


def merged_fingerprints(*groups: Mapping[str, Fingerprint]) -> dict[str, Fingerprint]:
    """Fingerprints by spec from several sessions (or pytest-xdist workers): a spec's files
    are gathered from all of them (one may have read one probe set's file, another the next),
    its other keys taken from the last that has the spec."""
    merged: dict[str, Fingerprint] = {}
    for group in groups:
        for spec, fingerprint in group.items():
            files = {**files_read(merged.get(spec, {})), **files_read(fingerprint)}
            merged[spec] = with_files(dict(fingerprint), files)
    return merged
