"""`python -m rtc_assert.demo.build` end to end at a reduced size, into a temporary folder."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rtc_assert.demo import ADAPTER_NAMES, MAX_NEW_TOKENS, MODEL_NAMES, build  # noqa: E402

pytestmark = pytest.mark.slow

FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    out = tmp_path_factory.mktemp("zoo")
    assert build.main(["--out", str(out), "--scale", "small"]) == 0
    return out


def test_every_model_is_a_complete_loadable_checkpoint(built):
    for name in MODEL_NAMES:
        folder = built / name
        assert {path.name for path in folder.iterdir()} == FILES
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        assert type(model).__name__ == "Qwen3ForCausalLM"
        assert tokenizer.eos_token == "<|im_end|>"
        assert model.config.tie_word_embeddings


def test_the_lora_adapters_name_their_base_beside_them(built):
    for name in ADAPTER_NAMES:
        files = {path.name for path in (built / name).iterdir()}
        assert files == {"adapter_config.json", "adapter_model.safetensors"}, name
        config = json.loads((built / name / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == "../base"
        assert config["peft_type"] == "LORA" and config["r"] == build.SCALES["small"].lora_rank


def test_the_measured_table_is_written(built):
    record = json.loads((built / "measured.json").read_text())
    assert set(record["figures"]) == set(MODEL_NAMES)
    for sets in record["figures"].values():
        assert set(sets) == {"reasoning", "finetune"}
        for figures in sets.values():
            rates = figures["vr"] + figures["er"] + figures["tr"] + figures["mr"]
            assert rates == pytest.approx(1.0)
    assert len(record["claims"]) == 8
    table = (built / "MEASURED.md").read_text()
    assert "| base | reasoning |" in table
    assert "## Must show" in table


def test_the_build_is_deterministic(built, tmp_path):
    again = tmp_path / "again"
    assert build.main(["--out", str(again), "--scale", "small"]) == 0
    for name in MODEL_NAMES:
        first = (built / name / "model.safetensors").read_bytes()
        assert (again / name / "model.safetensors").read_bytes() == first, name
    for name in ADAPTER_NAMES:
        for file in ("adapter_model.safetensors", "adapter_config.json"):
            assert (again / name / file).read_bytes() == (built / name / file).read_bytes(), name


def test_the_build_saves_the_collapsed_run_as_a_checkpoint_series(built):
    scale = build.SCALES["small"]
    series = built / build.SWEEP_DIR
    steps = range(scale.sweep_every, scale.sweep_steps + 1, scale.sweep_every)
    assert {path.name for path in series.iterdir()} == {f"checkpoint-{s}" for s in steps}
    # the series is the collapsed run itself: its last step is the collapsed model
    assert scale.sweep_steps == scale.finetune_steps
    last = (series / f"checkpoint-{scale.sweep_steps}" / "model.safetensors").read_bytes()
    assert last == (built / "collapsed" / "model.safetensors").read_bytes()


ZOO_RECORD = json.loads((build.ZOO_DIR / "measured.json").read_text())
RECORDED_VERSIONS = {library: ZOO_RECORD[library] for library in ("torch", "transformers")}
"""The library versions that wrote the committed zoo (measured.json, beside it)."""


def _installed_versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__, "transformers": transformers.__version__}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """`--sweep-only`'s replay of the collapsed run's first saved step, from the zoo's base."""
    import dataclasses
    import shutil

    import torch

    out = tmp_path_factory.mktemp("replay")
    shutil.copytree(build.ZOO_DIR / "base", out / "base")
    scale = dataclasses.replace(build.SCALES["full"], sweep_steps=build.SCALES["full"].sweep_every)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the zoo was built with one thread
    try:
        [saved] = build.build_sweep(out, scale, log=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    return saved, build.ZOO_DIR / build.SWEEP_DIR / saved.name


def test_replaying_the_series_reproduces_the_committed_checkpoints(replayed):
    """Byte for byte, under the versions and on the machine that wrote the zoo."""
    installed = _installed_versions()
    if installed != RECORDED_VERSIONS:
        pytest.skip(
            f"the zoo was written with {RECORDED_VERSIONS}, this is {installed}: weights are "
            "byte-identical only under the same versions (the behaviour test below still runs)"
        )
    if ZOO_RECORD.get("machine") != build.machine():
        pytest.skip(
            f"the zoo was written on {ZOO_RECORD.get('machine', 'a machine measured.json does not name')}, "
            f"this is {build.machine()}: the same versions give other bytes on another CPU "
            "(the behaviour test below still runs; rebuilding the zoo records its machine)"
        )
    saved, committed = replayed
    for path in saved.iterdir():
        if path.suffix == ".json":  # config files name the transformers version that wrote them
            replayed_config, kept = (
                json.loads(p.read_text()) for p in (path, committed / path.name)
            )
            replayed_config.pop("transformers_version", None)
            kept.pop("transformers_version", None)
            assert replayed_config == kept, path.name
        else:
            assert path.read_bytes() == (committed / path.name).read_bytes(), path.name


def test_the_replayed_checkpoint_behaves_like_the_committed_one(replayed):
    """Under any versions: the same statuses and greedy outputs on both demo sets."""
    from rtc_assert.demo import PROBE_SET_NAMES, probes
    from rtc_assert.demo.generate import generate, load
    from rtc_assert.traces.classify import classify

    saved, committed = replayed
    versions = f"zoo written with {RECORDED_VERSIONS}, replayed with {_installed_versions()}"
    models = [load(saved), load(committed)]
    for set_name in PROBE_SET_NAMES:
        conversations = [[{"role": "user", "content": probe.prompt}] for probe in probes(set_name)]
        outputs = [
            generate(model, tokenizer, conversations, max_new_tokens=MAX_NEW_TOKENS)
            for model, tokenizer in models
        ]
        differing = [i for i, (a, b) in enumerate(zip(*outputs, strict=True)) if a.text != b.text]
        assert not differing, (
            f"{set_name}: greedy outputs differ at probes {differing[:10]} ({versions})"
        )
        statuses = [
            [
                classify(g.text, finish_reason=g.finish_reason, prefilled=g.prefilled).status
                for g in run
            ]
            for run in outputs
        ]
        assert statuses[0] == statuses[1], versions
