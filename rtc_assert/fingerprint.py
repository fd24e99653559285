"""Model fingerprints for the run record: what exactly was gated.

A local folder is fingerprinted by the SHA-256 of its weight, config, tokenizer and chat
template files; each file's hash is memoised in-process by (path, size, mtime), so a model
used by many runs is hashed once. A hub model is named by its id and revision.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from rtc_assert.models import ModelRef

FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")
CHUNK_BYTES = 1 << 20


@lru_cache(maxsize=4096)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the memo key only: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every fingerprinted file in a model folder, by relative path."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in FINGERPRINTED_SUFFIXES:
            stat = path.stat()
            relative = path.relative_to(folder).as_posix()
            hashes[relative] = _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)
    return hashes


def model_fingerprint(model: ModelRef) -> dict[str, str]:
    """``{"spec", "source", "sha256"}`` for a folder; ``{"spec", "hub_id", "revision"}`` else."""
    if not model.is_local:
        return {"spec": model.spec, "hub_id": model.source, "revision": model.revision or "main"}
    hashes = file_hashes(Path(model.source))
    combined = hashlib.sha256(
        "".join(f"{name}\0{digest}\n" for name, digest in hashes.items()).encode()
    )
    return {"spec": model.spec, "source": model.source, "sha256": combined.hexdigest()}
