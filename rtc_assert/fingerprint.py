"""Model fingerprints for the run record: what exactly was gated.

A local folder is fingerprinted by the SHA-256 of its weight, config, tokenizer and chat
template files. Each file's hash is memoised by (path, size, mtime_ns): in-process, and, given
a `HashMemo` (the generation cache is one), across processes, so unchanged multi-GB weights
are read once, not once per CI job. A file rewritten with the same size and modification time
keeps its old hash, as with make or git's index. A hub model is named by its id and revision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from rtc_assert.models import ModelRef

FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")
CHUNK_BYTES = 1 << 20

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


def model_fingerprint(model: ModelRef, memo: HashMemo | None = None) -> dict[str, str]:
    """``{"spec", "source", "sha256"}`` for a folder; ``{"spec", "hub_id", "revision"}`` else.

    ``memo`` keeps the file hashes of a folder between processes.
    """
    if not model.is_local:
        return {"spec": model.spec, "hub_id": model.source, "revision": model.revision or "main"}
    hashes = file_hashes(Path(model.source), memo)
    combined = hashlib.sha256(
        "".join(f"{name}\0{digest}\n" for name, digest in hashes.items()).encode()
    )
    return {"spec": model.spec, "source": model.source, "sha256": combined.hexdigest()}
