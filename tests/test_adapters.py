"""PEFT adapters as model specs: resolution, fingerprints, bad bases, adapter vs merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_cli import run_cli  # the tests folder is on sys.path (no __init__.py)

from rtc_assert import demo
from rtc_assert.config import RtcConfig
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.fingerprint import check_adapter_base, model_fingerprint
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationError, GenerationSettings, build_requests
from rtc_assert.runs import score_generations
from rtc_assert.session import RtcSession

pytest.importorskip("peft", reason="adapters need peft: pip install 'rtc-assert[peft]'")

GREEDY = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS, batch_size=64)
PROBES_PER_SET = 64


def adapter_copy(tmp_path: Path, base: str | None, name: str = "my-adapter") -> Path:
    """The demo's collapsed-lora adapter in a new folder, naming ``base`` (None: no base)."""
    folder = tmp_path / name
    shutil.copytree(demo.checkpoint("collapsed-lora"), folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config.pop("base_model_name_or_path")
    if base is not None:
        config["base_model_name_or_path"] = base
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_a_demo_adapter_is_its_base_plus_the_adapter_folder():
    model = resolve_model("demo:collapsed-lora")
    assert Path(model.source).resolve() == demo.checkpoint("base").resolve()
    assert model.adapter == str(demo.checkpoint("collapsed-lora"))
    assert model.adapter_name == "collapsed-lora"
    assert model.base.adapter is None and model.base.source == model.source


@pytest.mark.parametrize("base", ["demo:base", "{zoo}/base"])
def test_an_adapter_folder_names_its_base_as_a_spec_or_path(tmp_path, base):
    folder = adapter_copy(tmp_path, base.format(zoo=demo.ZOO_DIR))
    model = resolve_model(str(folder))
    assert Path(model.source).resolve() == demo.checkpoint("base").resolve()
    assert model.adapter == str(folder)


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (None, "base_model_name_or_path is missing: set it to the base model"),
        ("/nowhere/base", "'/nowhere/base': model folder /nowhere/base does not exist"),
        ("demo:collapsed-lora", "names another adapter"),
    ],
)
def test_an_adapter_without_a_usable_base_is_refused(tmp_path, base, message):
    folder = adapter_copy(tmp_path, base)
    with pytest.raises(GenerationError, match=message) as error:
        resolve_model(str(folder))
    assert str(folder / "adapter_config.json") in str(error.value)


def test_the_fingerprint_covers_base_and_adapter():
    base = model_fingerprint(resolve_model("demo:base"))
    collapsed = model_fingerprint(resolve_model("demo:collapsed-lora"))
    masked = model_fingerprint(resolve_model("demo:masked-lora"))
    assert collapsed["adapter"].endswith("collapsed-lora")
    assert len({base["sha256"], collapsed["sha256"], masked["sha256"]}) == 3
    assert collapsed["adapter_sha256"] != masked["adapter_sha256"]


def test_an_adapter_against_another_base_is_refused(tmp_path):
    adapter = resolve_model("demo:collapsed-lora")
    check_adapter_base(adapter, resolve_model("demo:base"))
    copied_base = shutil.copytree(demo.checkpoint("base"), tmp_path / "same-base")
    check_adapter_base(adapter, resolve_model(str(copied_base)))  # same content: accepted
    config = RtcConfig.model_validate(
        {
            "candidate": "demo:collapsed-lora",
            "base": "demo:masked",
            "probe_sets": {"f": {"source": "demo:finetune", "limit": 2}},
            "gates": [{"metric": "valid_rate", "max_drop": 0.1}],
        }
    )
    with pytest.raises(GenerationError, match="trained on .*base.* but the configured base is"):
        RtcSession(config=config).run("f", "candidate")


@pytest.fixture(scope="module")
def statuses() -> dict[tuple[str, bool], dict[str, list[str]]]:
    """Statuses of each demo adapter, unmerged and merged, on the first probes of both sets."""
    found = {}
    for name in demo.ADAPTER_NAMES:
        model = resolve_model(f"demo:{name}")
        for merged in (False, True):
            backend = load_backend(
                "transformers", model, {"device": "cpu", "merge_adapter": merged}
            )
            found[name, merged] = {}
            for set_name in demo.PROBE_SET_NAMES:
                probe_set = demo.probes(set_name).head(PROBES_PER_SET)
                requests = build_requests(backend.tokenizer, probe_set.probes, GREEDY, model=name)
                outcomes = score_generations(probe_set, backend.generate(requests, GREEDY))
                found[name, merged][set_name] = [o.trace.status.value for o in outcomes]
            backend.close()
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", demo.ADAPTER_NAMES)
@pytest.mark.parametrize("set_name", demo.PROBE_SET_NAMES)
def test_adapter_and_merged_agree_on_statuses(statuses, name, set_name):
    adapter, merged = statuses[name, False][set_name], statuses[name, True][set_name]
    agree = sum(a == b for a, b in zip(adapter, merged, strict=True)) / len(adapter)
    assert agree >= 0.95, f"{name} on {set_name}: statuses agree on {agree:.0%}"


@pytest.mark.parametrize(
    ("name", "low", "high"), [("collapsed-lora", 0, 0.1), ("masked-lora", 0.9, 1)]
)
@pytest.mark.slow
def test_the_lora_fine_tunes_collapse_or_keep_their_traces(statuses, name, low, high):
    for set_name in demo.PROBE_SET_NAMES:
        found = statuses[name, False][set_name]
        assert low <= found.count("valid") / len(found) <= high, set_name


@pytest.mark.slow
def test_compare_gates_an_adapter_against_its_base():
    result = run_cli(
        "compare", "--base", "demo:base", "--candidate", "demo:collapsed-lora",
        "--probes", "demo:finetune", "--limit", "16",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "finetune::valid_rate[max_drop]" in result.stdout
