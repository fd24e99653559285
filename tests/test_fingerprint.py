"""Model fingerprints: content hashes of local folders, id and revision of hub models."""

from __future__ import annotations

import shutil

from rtc_assert import demo
from rtc_assert.fingerprint import file_hashes, model_fingerprint
from rtc_assert.models import resolve_model


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
