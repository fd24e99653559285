"""A persistent generation cache: a base model unchanged between CI runs is generated once.

Generations live in one SQLite file (standard library, WAL mode, safe for pytest-xdist
workers and parallel CI jobs sharing a folder), keyed by a content fingerprint: the model's
files (or hub id and revision), the backend and its version, every generation setting that
shapes the output, the rendered prompt and the sample index. ``batch_size`` is left out: it
changes throughput, not what is generated. New generations are stored every couple of
seconds (`COMMIT_SECONDS`), so an interrupted run loses seconds of work and resumes where it
stopped. A damaged database is moved aside, with a warning, and a new one is started. The
same file keeps the hashes of model files (a `rtc_assert.generation.fingerprint.HashMemo`),
so a new process does not read unchanged weights again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc_assert.generation.fingerprint import FileKey
from rtc_assert.generation.requests import (
    Backend,
    Generation,
    GenerationRequest,
    GenerationSettings,
)

logger = logging.getLogger(__name__)

CACHE_FILE = "generations.sqlite"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS file_hashes (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
    "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL)",
)
CHUNK = 256
"""Most requests generated between two writes to the cache."""
COMMIT_SECONDS = 2.0
"""Aim of the time between two writes: an interrupted run loses about this much work."""


def next_chunk(done: int, seconds: float, batch_size: int) -> int:
    """Requests to generate before the next write: about `COMMIT_SECONDS` of work at the pace
    so far, one engine batch at least, `CHUNK` at most (the first chunk is one batch)."""
    if done == 0 or seconds <= 0:
        return max(1, min(batch_size, CHUNK))
    return max(1, min(max(batch_size, int(done / seconds * COMMIT_SECONDS)), CHUNK))


class GenerationCache:
    """Generations by key, and model file hashes by path, in ``DIRECTORY/generations.sqlite``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        try:
            self._check()
        except sqlite3.DatabaseError as error:
            moved = self.path.with_name(f"{CACHE_FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.replace(moved)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(CACHE_FILE + suffix).unlink(missing_ok=True)
            logger.warning(
                "generation cache %s is damaged (%s): moved to %s, starting a new one",
                self.path,
                error,
                moved.name,
            )
            self._check()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=60)
        # With WAL, NORMAL syncs at checkpoints rather than on every commit: a power cut may
        # lose the last generations stored, never the database's integrity.
        connection.execute("PRAGMA synchronous=NORMAL")
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def _check(self) -> None:
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                connection.execute(statement)
            (verdict,) = connection.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(verdict)

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        """The cached generations among ``keys``."""
        found: dict[str, Generation] = {}
        with self._connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, record FROM generations WHERE key IN ({marks})", chunk
                )
                found.update((key, Generation.model_validate_json(record)) for key, record in rows)
        return found

    def put_many(self, items: dict[str, Generation]) -> None:
        """Store generations; an existing key keeps its first value."""
        with self._connect() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO generations (key, record) VALUES (?, ?)",
                [(key, generation.model_dump_json()) for key, generation in items.items()],
            )

    def known_hashes(self, keys: list[FileKey]) -> dict[FileKey, str]:
        """The stored hashes of files whose path, size and mtime are unchanged."""
        wanted = set(keys)
        paths = [path for path, _, _ in keys]
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT path, size, mtime_ns, sha256 FROM file_hashes "
                f"WHERE path IN ({','.join('?' * len(paths))})",
                paths,
            ).fetchall()
        return {
            (p, size, mtime): digest
            for p, size, mtime, digest in rows
            if (p, size, mtime) in wanted
        }

    def remember_hashes(self, hashes: Mapping[FileKey, str]) -> None:
        """Store file hashes; one row per path, the latest replacing the one before."""
        with self._connect() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256) "
                "VALUES (?, ?, ?, ?)",
                [(*key, digest) for key, digest in hashes.items()],
            )

    def stats(self) -> tuple[int, int]:
        """(number of generations, bytes on disk)."""
        with self._connect() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM generations").fetchone()
        size = sum(
            p.stat().st_size
            for p in self.path.parent.glob(CACHE_FILE + "*")
            if p.is_file() and "damaged" not in p.name
        )
        return count, size

    def clear(self) -> int:
        """Delete every generation and file hash; returns how many generations there were."""
        with self._connect() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM generations").fetchone()
            connection.execute("DELETE FROM generations")
            connection.execute("DELETE FROM file_hashes")
        with self._connect() as connection:
            connection.execute("VACUUM")
        return count


def request_key(
    model: dict[str, str], identity: str, settings: GenerationSettings, request: GenerationRequest
) -> str:
    """The content fingerprint of one generation."""
    content = {
        "model": {k: v for k, v in model.items() if k != "spec"},
        "backend": identity,
        "settings": settings.model_dump(exclude={"batch_size"}),
        "prompt": request.prompt,
        "sample": request.sample,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass
class CachedBackend:
    """A backend that generates only what the cache lacks, storing as it goes.

    The engine is started on the first miss: a fully cached run loads no weights.
    """

    name: str
    identity: str
    """`rtc_assert.generation.backends.backend_identity` of the engine."""
    tokenizer: Any
    start_engine: Callable[[], Backend]
    cache: GenerationCache
    model: dict[str, str]
    """The model's fingerprint (see `rtc_assert.generation.fingerprint`)."""
    hits: int = 0
    misses: int = 0
    engine: Backend | None = None

    @property
    def version(self) -> str:
        return self.identity

    def _engine(self) -> Backend:
        """The engine, started on first use."""
        if self.engine is None:
            self.engine = self.start_engine()
        return self.engine

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """Cached generations where there are, the engine's for the rest, in request order."""
        keys = [request_key(self.model, self.identity, settings, r) for r in requests]
        found = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        self.hits += len(requests) - len(missing)
        self.misses += len(missing)
        started, start = time.perf_counter(), 0
        while start < len(missing):
            size = next_chunk(start, time.perf_counter() - started, settings.batch_size)
            chunk = missing[start : start + size]
            start += len(chunk)
            engine = self._engine()
            try:
                generated = engine.generate([requests[i] for i in chunk], settings)
            except Exception as error:
                # A server that failed midway hands over what it finished: keep it.
                self._keep_completed(getattr(error, "completed", None) or [], chunk, keys, requests)
                raise
            new = {keys[i]: g for i, g in zip(chunk, generated, strict=True)}
            self.cache.put_many(new)
            found.update(new)
        # A prompt cached under another probe id (a renamed probe, another set) is this one's;
        # its prefill is read with this run's markup.
        return [
            found[key].model_copy(
                update={"probe_id": request.probe.id, "prefilled": request.prefilled}
            )
            for key, request in zip(keys, requests, strict=True)
        ]

    def _keep_completed(
        self,
        completed: list[Generation],
        chunk: list[int],
        keys: list[str],
        requests: Sequence[GenerationRequest],
    ) -> None:
        by_request = {(g.probe_id, g.sample): g for g in completed}
        self.cache.put_many(
            {
                keys[i]: by_request[(requests[i].probe.id, requests[i].sample)]
                for i in chunk
                if (requests[i].probe.id, requests[i].sample) in by_request
            }
        )

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
