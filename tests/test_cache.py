"""The generation cache: reuse, keys, damage, interruption and concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from rtc_assert import demo
from rtc_assert.config import RtcConfig
from rtc_assert.generation import cache as cache_module
from rtc_assert.generation.backends import backend_identity, load_backend
from rtc_assert.generation.cache import CachedBackend, GenerationCache, request_key
from rtc_assert.generation.fingerprint import file_hashes, model_fingerprint
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import Generation, GenerationSettings, build_requests
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.session import RtcSession

SETTINGS = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=16)


def cached_backend(cache: GenerationCache, start_engine=None) -> CachedBackend:
    model = resolve_model("demo:base")
    return CachedBackend(
        name="transformers",
        identity=backend_identity("transformers", {}),
        tokenizer=load_tokenizer(model),
        start_engine=start_engine or (lambda: load_backend("transformers", model)),
        cache=cache,
        model=model_fingerprint(model),
    )


def requests(backend, count: int = 12, settings: GenerationSettings = SETTINGS):
    probes = demo.probes("finetune").probes[:count]
    return build_requests(backend.tokenizer, probes, settings, model="demo:base")


def test_a_second_run_starts_no_engine_and_returns_the_same(tmp_path):
    cache = GenerationCache(tmp_path)
    first = cached_backend(cache)
    cold = first.generate(requests(first), SETTINGS)
    assert (first.hits, first.misses) == (0, 12) and first.engine is not None

    second = cached_backend(GenerationCache(tmp_path))
    warm = second.generate(requests(second), SETTINGS)
    assert warm == cold
    assert (second.hits, second.misses) == (12, 0)
    assert second.engine is None, "a fully cached run must not load the weights"


def test_new_settings_or_probes_generate_again(tmp_path):
    cache = GenerationCache(tmp_path)
    cached_backend(cache).generate(requests(cached_backend(cache)), SETTINGS)
    shorter = GenerationSettings(max_new_tokens=8, batch_size=16)
    backend = cached_backend(cache)
    backend.generate(requests(backend, settings=shorter), shorter)
    assert backend.misses == 12
    bigger_batch = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=4)
    backend = cached_backend(cache)
    backend.generate(requests(backend, count=14, settings=bigger_batch), bigger_batch)
    assert (backend.hits, backend.misses) == (12, 2), "batch size is not part of the key"


def test_a_cached_prompt_answers_to_the_probe_id_that_asks_for_it(tmp_path):
    cache = GenerationCache(tmp_path)
    first = cached_backend(cache)
    (original,) = first.generate(requests(first, count=1), SETTINGS)
    probe = demo.probes("finetune").probes[0]
    renamed = probe.model_copy(update={"id": "renamed"})
    second = cached_backend(cache)
    (reused,) = second.generate(
        build_requests(second.tokenizer, [renamed], SETTINGS, model="demo:base"), SETTINGS
    )
    assert second.hits == 1
    assert reused.probe_id == "renamed"
    assert reused.text == original.text


def test_keys_cover_model_backend_prompt_and_sample():
    tokenizer = load_tokenizer(resolve_model("demo:base"))
    probe = demo.probes("finetune").probes[0]
    (request,) = build_requests(tokenizer, [probe], SETTINGS, model="demo:base")
    model = {"source": "/m", "sha256": "a"}
    key = request_key(model, "engine 1", SETTINGS, request)
    assert key == request_key({**model, "spec": "other name"}, "engine 1", SETTINGS, request)
    assert key != request_key({**model, "sha256": "b"}, "engine 1", SETTINGS, request)
    assert key != request_key(model, "engine 2", SETTINGS, request)
    assert key != request_key(model, "engine 1", SETTINGS.model_copy(update={"seed": 1}), request)
    other_sample = type(request)(request.probe, request.prompt, 1)
    assert key != request_key(model, "engine 1", SETTINGS, other_sample)


def test_a_damaged_database_is_moved_aside_and_rebuilt(tmp_path, caplog):
    (tmp_path / "generations.sqlite").write_bytes(b"this is not a database" * 100)
    cache = GenerationCache(tmp_path)
    assert "is damaged" in caplog.text
    assert len(list(tmp_path.glob("generations.sqlite.damaged-*"))) == 1
    assert cache.stats()[0] == 0


def test_an_interrupted_run_keeps_what_it_generated(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "CHUNK", 4)
    model = resolve_model("demo:base")
    engine = load_backend("transformers", model)
    calls = []

    class Interrupted(Exception):
        pass

    class FailsOnSecondChunk:
        name, version, tokenizer = engine.name, engine.version, engine.tokenizer

        def generate(self, batch, settings):
            calls.append(len(batch))
            if len(calls) == 2:
                raise Interrupted("killed")
            return engine.generate(batch, settings)

        def close(self):
            pass

    backend = cached_backend(GenerationCache(tmp_path), start_engine=FailsOnSecondChunk)
    with pytest.raises(Interrupted):
        backend.generate(requests(backend), SETTINGS)
    resumed = cached_backend(GenerationCache(tmp_path))
    resumed.generate(requests(resumed), SETTINGS)
    assert (resumed.hits, resumed.misses) == (4, 8)


def test_a_failed_server_run_keeps_its_completed_generations(tmp_path):
    completed_first = []

    class ServerDown(Exception):
        def __init__(self, completed):
            super().__init__("server gone")
            self.completed = completed

    class DiesAfterOne:
        def generate(self, batch, settings):
            done = Generation(
                probe_id=batch[0].probe.id, sample=0, prompt=batch[0].prompt, text="x",
                finish_reason="stop", prompt_tokens=1, completion_tokens=1, prefilled=False,
            )  # fmt: skip
            completed_first.append(done)
            raise ServerDown([done])

        def close(self):
            pass

    backend = cached_backend(GenerationCache(tmp_path), start_engine=DiesAfterOne)
    with pytest.raises(ServerDown):
        backend.generate(requests(backend, 3), SETTINGS)
    assert GenerationCache(tmp_path).stats()[0] == 1


WRITER = """
import sys
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.generation.requests import Generation
cache = GenerationCache(__import__("pathlib").Path(sys.argv[1]))
for i in range(50):
    g = Generation(probe_id=f"{sys.argv[2]}-{i}", sample=0, prompt="p", text="t",
                   finish_reason="stop", prompt_tokens=1, completion_tokens=1, prefilled=False)
    cache.put_many({f"{sys.argv[2]}-{i}": g})
"""


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(tmp_path):
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name])
        for name in ("a", "b", "c")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    cache = GenerationCache(tmp_path)
    assert cache.stats()[0] == 150
    with sqlite3.connect(cache.path) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_session_with_cache_and_clear(tmp_path):
    config = RtcConfig.model_validate(
        {
            "candidate": "demo:base",
            "generation": {"max_new_tokens": demo.MAX_NEW_TOKENS},
            "probe_sets": {"finetune": {"source": "demo:finetune", "limit": 10}},
            "gates": [{"metric": "valid_rate", "min": 0.5}],
        }
    )

    def stored_file_hashes() -> int:
        with sqlite3.connect(tmp_path / "generations.sqlite") as connection:
            return connection.execute("SELECT COUNT(*) FROM file_hashes").fetchone()[0]

    first = RtcSession(config=config, cache=GenerationCache(tmp_path))
    assert first.decide_all()[0].passed
    cached = first.backend("candidate")
    assert cached.engine.tokenizer is cached.tokenizer, "the engine reuses the loaded tokenizer"
    assert stored_file_hashes() == len(file_hashes(demo.checkpoint("base")))
    second = RtcSession(config=config, cache=GenerationCache(tmp_path))
    assert second.run("finetune").generations == first.run("finetune").generations
    assert second.backend("candidate").engine is None
    assert GenerationCache(tmp_path).clear() == 10
    assert GenerationCache(tmp_path).stats()[0] == 0
    assert stored_file_hashes() == 0
