"""Model fingerprints: content hashes of local folders, id and revision of hub models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rtc_assert import demo
from rtc_assert.generation import fingerprint
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.generation.fingerprint import file_hashes, model_fingerprint, sha256_of_file
from rtc_assert.generation.models import resolve_model


def test_demo_models_have_distinct_stable_fingerprints():
    base = model_fingerprint(resolve_model("demo:base"))
    assert base == model_fingerprint(resolve_model("demo:base"))
    assert base["sha256"] != model_fingerprint(resolve_model("demo:collapsed"))["sha256"]
    assert base["spec"] == "demo:base"
    assert "model.safetensors" in file_hashes(demo.checkpoint("base"))


def test_a_changed_file_changes_the_fingerprint(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(demo.checkpoint("base"), folder)
    before = model_fingerprint(resolve_model(str(folder)))["sha256"]
    config = folder / "generation_config.json"
    config.write_text(config.read_text().replace("64", "65"))
    assert model_fingerprint(resolve_model(str(folder)))["sha256"] != before


def test_hub_models_are_named_by_id_and_revision():
    fingerprint = model_fingerprint(resolve_model("org/model@v2"))
    assert fingerprint == {"spec": "org/model@v2", "hub_id": "org/model", "revision": "v2"}


def test_a_new_process_reads_unchanged_files_from_the_cache_not_the_disk(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(demo.checkpoint("base"), folder)
    reads = []

    def counting_sha256(path: str) -> str:
        reads.append(Path(path).name)
        return sha256_of_file(path)

    monkeypatch.setattr(fingerprint, "sha256_of_file", counting_sha256)

    def fingerprint_in_a_new_process() -> str:
        fingerprint._memoised_sha256.cache_clear()  # what a new process starts with
        memo = GenerationCache(tmp_path / "cache")
        return model_fingerprint(resolve_model(str(folder)), memo)["sha256"]

    first = fingerprint_in_a_new_process()
    assert sorted(reads) == sorted(file_hashes(folder))
    assert first == model_fingerprint(resolve_model(str(folder)))["sha256"]

    reads.clear()
    assert fingerprint_in_a_new_process() == first
    assert reads == [], "unchanged files must not be read again"

    weights = folder / "model.safetensors"
    later = weights.stat().st_mtime_ns + 1_000_000_000
    os.utime(weights, ns=(later, later))
    assert fingerprint_in_a_new_process() == first, "a touched file keeps its content hash"
    assert reads == ["model.safetensors"]

    reads.clear()
    config = folder / "config.json"
    stat = config.stat()
    config.write_text(config.read_text().replace("128", "129"))  # same size
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert fingerprint_in_a_new_process() != first
    assert reads == ["config.json"]
