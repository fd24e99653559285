"""ReasoningGateCallback: bad input refused before training, and a real transformers Trainer
fine-tuning demo:base on the CPU, stopped at the collapse that `rtc_assert.sweep` also finds,
and gated against demo:base generated or read from its lm-eval log alike."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from rtc_assert import demo
from rtc_assert.config import ConfigError, RtcConfig
from rtc_assert.demo.build import SCALES, SEED, finetuning_records
from rtc_assert.finetune import LabelPaddingCollator, Strategy, sft_dataset
from rtc_assert.generation.checkpoints import find_checkpoints
from rtc_assert.integrations.transformers import (
    CallbackError,
    ReasoningGateCallback,
    eval_names,
)
from rtc_assert.session import RtcSession
from rtc_assert.sweep import BaseFile, SweepRecord, run_sweep

CHECK_EVERY = 4
PROBES = 32
SCALE = SCALES["full"]
FIXTURES = Path(__file__).parent / "fixtures" / "generations"
FIXTURE_PROBES = FIXTURES / "probes.jsonl"
"""The first 32 probes of demo:reasoning, which the fixtures' tools ran demo:base on."""
LM_EVAL = FIXTURES / "lm-eval" / "base" / "samples_rtc_demo_reasoning.jsonl"
"""demo:base's generations on FIXTURE_PROBES, written by lm-evaluation-harness (greedy, 64
tokens: the demo's settings); tests/test_sweep_files.py sweeps against the same file."""


def gate_config(**changes: Any) -> RtcConfig:
    """Both demo probe sets, cut to `PROBES`; a VR floor and a VR drop against demo:base."""
    data: dict[str, Any] = {
        "base": "demo:base",
        "backend": {"name": "transformers", "options": {"device": "cpu"}},
        "generation": {"max_new_tokens": demo.MAX_NEW_TOKENS, "batch_size": 64},
        "probe_sets": {
            name: {"source": f"demo:{name}", "limit": PROBES} for name in demo.PROBE_SET_NAMES
        },
        "gates": [{"metric": "valid_rate", "min": 0.8}, {"metric": "valid_rate", "max_drop": 0.15}],
    }
    data.update(changes)
    return RtcConfig.model_validate(data)


class NoTemplate:
    chat_template = None


# bad input, before training --------------------------------------------------------------


def test_a_max_drop_gate_without_a_base_or_its_files_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"^the gates compare against a base model \(max_drop\): set 'base:' in "
        r"thresholds\.yaml to the model training starts from \(its folder or hub id\), or "
        r"give the base's generations under 'generations: base:' in thresholds\.yaml$",
    ):
        ReasoningGateCallback(gate_config(base=None))


FILES_YAML = """\
version: 1
{base}backend: {{name: transformers, options: {{device: cpu}}}}
generation: {{max_new_tokens: 64}}
trace_format: {{open_tag: "<think>", close_tag: "</think>"}}
probe_sets:
  reasoning: {{source: {probes}}}
  finetune: {{source: "demo:finetune", limit: 32}}
generations:
{generations}gates:
  - {{metric: valid_rate, max_drop: 0.15{only}}}
  - {{metric: valid_rate, min: 0.8}}
"""
"""A callback's thresholds.yaml with files under ``generations:``; ``only`` narrows the
max_drop gate's probe sets."""


def files_yaml(
    folder: Path, *, base: str | None, generations: str, only: str = ""
) -> tuple[Path, list[str]]:
    """The file, and its lines (for the line numbers errors name)."""
    path = folder / "thresholds.yaml"
    named = f"base: {base}\n" if base else ""
    text = FILES_YAML.format(base=named, probes=FIXTURE_PROBES, generations=generations, only=only)
    path.write_text(text)
    return path, text.splitlines()


@pytest.mark.parametrize("base", ["demo:base", None])
def test_the_candidates_generations_from_files_are_refused_naming_their_line(tmp_path, base):
    """The candidate is the model being trained: files of a candidate's generations would be
    left unread, so they are refused, with a base model or with a base read from files."""
    generations = f"  candidate:\n    reasoning: {LM_EVAL}\n  base:\n    reasoning: {LM_EVAL}\n"
    path, lines = files_yaml(
        tmp_path, base=base, generations=generations, only=", probe_sets: [reasoning]"
    )
    line = lines.index("  candidate:") + 1
    with pytest.raises(ConfigError) as refused:
        ReasoningGateCallback(path)
    assert str(refused.value) == (
        f"{path}:{line}: generations.candidate: the training gate's candidate is the model "
        "being trained, generated at each check on every probe set, so the candidate's "
        f"generations on 'reasoning' read from {LM_EVAL} would be left unread: remove "
        "generations.candidate from the thresholds.yaml of the training gate "
        "(generations.base may stay: the base is read from its files), or gate those "
        "generations with rtc-assert compare"
    )
    # Without generations.candidate, the same file is taken.
    path.write_text(path.read_text().replace(f"  candidate:\n    reasoning: {LM_EVAL}\n", ""))
    assert ReasoningGateCallback(path).config.generations.keys() == {"base"}


def test_a_max_drop_gate_where_the_base_has_neither_a_file_nor_a_model_is_refused(tmp_path):
    generations = f"  base:\n    reasoning: {LM_EVAL}\n"
    path, lines = files_yaml(tmp_path, base=None, generations=generations)
    line = lines.index("  base:") + 1
    with pytest.raises(ConfigError) as refused:
        ReasoningGateCallback(path)
    assert str(refused.value) == (
        f"{path}:{line}: generations.base: the base's generations are read from files on "
        "'reasoning' only, and thresholds.yaml names no 'base:' to generate it on "
        "'finetune', where a max_drop gate compares against it: add the base's file on "
        "'finetune' under generations.base, or set 'base:' to the model that wrote the "
        "files (it then generates the probe sets without one)"
    )
    # The max_drop gate on the probe set with the file alone: nothing else needs the base.
    files_yaml(tmp_path, base=None, generations=generations, only=", probe_sets: [reasoning]")
    ReasoningGateCallback(path)
    # And a base model named beside the files generates the probe sets without one.
    files_yaml(tmp_path, base="demo:base", generations=generations)
    ReasoningGateCallback(path)


def test_a_probe_set_larger_than_the_check_budget_is_refused():
    with pytest.raises(
        CallbackError,
        match=r"generate 64 times \(reasoning: 32, finetune: 32 probes.*max_probes=48.*'limit: N'",
    ):
        ReasoningGateCallback(gate_config(), max_probes=48)


def test_the_budget_error_names_the_thresholds_file():
    with pytest.raises(
        CallbackError, match=rf"{demo.THRESHOLDS_FILE}: one check would generate 512"
    ):
        ReasoningGateCallback(demo.THRESHOLDS_FILE)


def test_a_tokenizer_without_a_chat_template_is_refused():
    with pytest.raises(CallbackError, match="NoTemplate.*has no chat template"):
        ReasoningGateCallback(gate_config(), tokenizer=NoTemplate())


def test_a_trainer_without_a_tokenizer_is_refused_when_training_begins(tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    callback = ReasoningGateCallback(gate_config())
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    for processing_class, message in ((None, "no processing_class"), (NoTemplate(), "template")):
        with pytest.raises(CallbackError, match=message):
            callback.on_train_begin(
                args, TrainerState(), TrainerControl(), processing_class=processing_class
            )


def test_a_callback_with_nothing_to_trigger_it_is_refused():
    with pytest.raises(CallbackError, match="nothing would trigger a check"):
        ReasoningGateCallback(gate_config(), every_steps=None)


def test_eval_metric_names():
    assert eval_names({"rtc/valid_rate": 1.0, "rtc/finetune/empty_rate": 0.5}) == {
        "eval_rtc_valid_rate": 1.0,
        "eval_rtc_finetune_empty_rate": 0.5,
    }


def test_the_collator_pads_labels_with_the_ignore_index():
    batch = LabelPaddingCollator(pad_token_id=0)(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]},
            {"input_ids": [8], "labels": [8], "attention_mask": [1]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# a real Trainer on the demo ---------------------------------------------------------------


def train(
    out: Path,
    strategy: Strategy,
    callback: ReasoningGateCallback,
    *,
    steps: int,
    save: bool,
    evaluate: bool = False,
    model: Any = None,
    callbacks: list[ReasoningGateCallback] | None = None,
    **arguments: Any,
) -> Any:
    """Fine-tune ``model`` (default demo:base) on the demo's answer-only data with
    ``strategy`` for ``steps`` steps, as `rtc_assert.demo.build` does (batch 32, lr 1e-4,
    AdamW, constant rate), checked by ``callback`` (or every one of ``callbacks``);
    ``arguments`` replace those `TrainingArguments`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(demo.checkpoint("base"))
    if model is None:
        model = AutoModelForCausalLM.from_pretrained(demo.checkpoint("base"), dtype=torch.float32)
    records = list(
        itertools.islice(
            finetuning_records(SEED + 1, SCALE.reasoning_share), steps * SCALE.finetune_batch
        )
    )
    data = sft_dataset(records, tokenizer, strategy)
    args = TrainingArguments(
        **{
            "output_dir": str(out),
            "max_steps": steps,
            "per_device_train_batch_size": SCALE.finetune_batch,
            "learning_rate": SCALE.finetune_lr,
            "lr_scheduler_type": "constant",
            "weight_decay": 0.01,
            "adam_beta2": 0.98,
            "save_strategy": "steps" if save else "no",
            "save_steps": CHECK_EVERY,
            "save_only_model": True,
            "logging_steps": CHECK_EVERY,
            "eval_strategy": "steps" if evaluate else "no",
            "eval_steps": steps // 2,
            "per_device_eval_batch_size": SCALE.finetune_batch,
            "metric_for_best_model": "rtc_finetune_valid_rate" if evaluate else None,
            "report_to": "none",
            "use_cpu": True,
            "disable_tqdm": True,
            "seed": SEED,
            **arguments,
        }
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data.select(range(SCALE.finetune_batch)) if evaluate else None,
        data_collator=LabelPaddingCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=callbacks or [callback],
    )
    trainer.train()
    return trainer


@pytest.mark.slow
def test_the_callback_stops_the_collapsing_run_where_the_sweep_finds_the_collapse(tmp_path):
    callback = ReasoningGateCallback(gate_config(), every_steps=CHECK_EVERY)
    trainer = train(tmp_path, "default", callback, steps=48, save=True)
    record = callback.record
    assert record.first_failing is not None, [
        s.metrics["finetune"].valid_rate for s in record.steps
    ]
    # stopped at the first failing check, which broke the VR floor
    assert trainer.state.global_step == record.first_failing < 48
    assert [step.step for step in record.steps] == list(
        range(CHECK_EVERY, record.first_failing + 1, CHECK_EVERY)
    )
    failed = {gate.gate.id for gate in record.step(record.first_failing).failed_gates}
    assert any(gate.endswith("valid_rate[min]") for gate in failed), failed
    assert all(step.passed for step in record.steps[:-1])
    # the record on disk names each checked step, its checkpoint folder and the verdicts
    written = json.loads((tmp_path / "rtc-gate" / "sweep.json").read_text())
    assert (written["first_failing"], written["last_passing"]) == (
        record.first_failing,
        record.last_passing,
    )
    assert [Path(step["checkpoint"]).name for step in written["steps"]] == [
        f"checkpoint-{step.step}" for step in record.steps
    ]
    assert (tmp_path / "rtc-gate" / "sweep.svg").is_file()
    # the trainer's own log carries the metrics of each check
    logged = [entry for entry in trainer.state.log_history if "rtc/finetune/valid_rate" in entry]
    assert [entry["step"] for entry in logged] == [step.step for step in record.steps]

    # the sweep over the checkpoints this run saved agrees, step by step
    session = RtcSession(config=gate_config(), config_dir=tmp_path)
    try:
        swept = run_sweep(session, find_checkpoints(str(tmp_path)))
    finally:
        session.close()
    assert (swept.first_failing, swept.last_passing) == (record.first_failing, record.last_passing)
    for ours, theirs in zip(record.steps, swept.steps, strict=True):
        assert ours.step == theirs.step
        assert ours.metrics == theirs.metrics
        assert [g.passed for g in ours.gates] == [g.passed for g in theirs.gates]


@pytest.mark.slow
def test_a_base_read_from_its_lm_eval_log_gates_as_the_base_generated_live(tmp_path, caplog):
    """Three gates in one Trainer, so they check the same model at the same steps: against
    demo:base generated when training begins, against its lm-eval log with no base model,
    and against the log with demo:base named as the model that wrote it. The fixture holds
    demo:base's greedy generations on these probes with these settings, so every decision,
    number for number, is the same."""
    svg = "{http://www.w3.org/2000/svg}"
    base_file = {"base": {"reasoning": str(LM_EVAL)}}
    settings: dict[str, Any] = {
        "probe_sets": {"reasoning": {"source": str(FIXTURE_PROBES)}},
        "trace_format": {"open_tag": "<think>", "close_tag": "</think>"},
        "gates": [
            {"metric": "valid_rate", "max_drop": 0.15},
            {"metric": "answer_accuracy", "max_drop": 0.10},
            {"metric": "truncated_rate", "max_drop": 0.10},
            {"metric": "valid_rate", "min": 0.8},
        ],
    }
    configs = {
        "live": gate_config(**settings),
        "files": gate_config(**settings, base=None, generations=base_file),
        "named": gate_config(**settings, generations=base_file),
    }
    callbacks = {
        name: ReasoningGateCallback(
            config, every_steps=CHECK_EVERY, stop_on_failure=False, report_dir=tmp_path / name
        )
        for name, config in configs.items()
    }
    steps = 6 * CHECK_EVERY
    caplog.set_level(logging.INFO, logger="rtc_assert.integrations.transformers")
    gates = list(callbacks.values())
    train(tmp_path / "out", "default", gates[0], steps=steps, save=False, callbacks=gates)
    live, files, named = (callback.record for callback in callbacks.values())
    sha256 = hashlib.sha256(LM_EVAL.read_bytes()).hexdigest()
    base_file = BaseFile(file=str(LM_EVAL), format="lm-eval", sha256=sha256)

    assert [step.step for step in live.steps] == list(range(CHECK_EVERY, steps + 1, CHECK_EVERY))
    assert live.base == "demo:base" and live.base_files == {}
    # Both verdicts are exercised: the first check passes, a max_drop gate fails after.
    assert live.steps[0].passed and live.first_failing == 2 * CHECK_EVERY
    assert not live.step(live.first_failing).passed
    failed = {gate.gate.id for step in live.steps for gate in step.failed_gates}
    assert "reasoning::answer_accuracy[max_drop]" in failed, failed
    for record in (files, named):
        # The same candidate at each step, the same base numbers, the same decisions.
        assert [step.metrics for step in record.steps] == [step.metrics for step in live.steps]
        assert record.base_metrics["reasoning"].rates == live.base_metrics["reasoning"].rates
        assert [step.gates for step in record.steps] == [step.gates for step in live.steps]
        assert [step.passed for step in record.steps] == [step.passed for step in live.steps]
        assert (record.first_failing, record.last_passing) == (
            live.first_failing,
            live.last_passing,
        )
        assert record.base_files == {"reasoning": base_file}
    assert (files.base, named.base) == ("generations:base", "demo:base")
    read = {"generations": {"reasoning": base_file.model_dump()}}
    assert files.fingerprints == {"generations:base": read}
    assert named.fingerprints == {"demo:base": read}
    assert "sha256" in live.fingerprints["demo:base"]  # generated: the model was loaded

    # The log at the end of training, the record on disk and its chart say where the base
    # came from.
    assert (
        f"rtc-assert: base on reasoning: generations read from {LM_EVAL} (lm-eval), not "
        "generated (thresholds.yaml names no base model)" in caplog.messages
    )
    assert (
        f"rtc-assert: base on reasoning: demo:base's generations read from {LM_EVAL} "
        "(lm-eval), not generated" in caplog.messages
    )
    written = SweepRecord.model_validate_json((tmp_path / "files" / "sweep.json").read_text())
    assert written.base_files == files.base_files and written.base == "generations:base"
    chart = ElementTree.parse(tmp_path / "files" / "sweep.svg").getroot()
    (caption,) = chart.findall(f".//{svg}text[@data-base]")
    assert (caption.get("data-base"), caption.text) == (
        "file",
        f"base: read from {LM_EVAL.name} (lm-eval)",
    )


@pytest.mark.slow
def test_the_masked_run_trains_to_the_end_and_every_check_passes(tmp_path):
    callback = ReasoningGateCallback(gate_config(), every_steps=CHECK_EVERY * 2)
    trainer = train(tmp_path, "mask", callback, steps=48, save=False, evaluate=True)
    record = callback.record
    assert trainer.state.global_step == 48
    assert [step.step for step in record.steps] == list(range(8, 49, 8))
    assert record.first_failing is None and record.last_passing == 48
    assert all(Path(step.checkpoint).name.startswith("step-") for step in record.steps)
    # eval_rtc_* metrics reach the trainer's evaluation: metric_for_best_model works on them
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == 2
    assert trainer.state.best_metric == record.step(48).metrics["finetune"].valid_rate.value


@pytest.mark.slow
def test_trl_sft_trainer_takes_the_pretokenized_dataset_and_the_callback(tmp_path):
    """TRL's SFTTrainer, on the pre-tokenized `sft_dataset` as is: the collapsing data stops
    it at the first failing check, as with the plain Trainer."""
    trl = pytest.importorskip("trl")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo.checkpoint("base"))
    model = AutoModelForCausalLM.from_pretrained(demo.checkpoint("base"), dtype=torch.float32)
    steps = 48
    records = itertools.islice(
        finetuning_records(SEED + 1, SCALE.reasoning_share), steps * SCALE.finetune_batch
    )
    callback = ReasoningGateCallback(gate_config(), every_steps=CHECK_EVERY)
    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(
            output_dir=str(tmp_path),
            max_steps=steps,
            per_device_train_batch_size=SCALE.finetune_batch,
            learning_rate=SCALE.finetune_lr,
            lr_scheduler_type="constant",
            weight_decay=0.01,
            adam_beta2=0.98,
            save_strategy="no",
            logging_steps=CHECK_EVERY,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            seed=SEED,
            dataset_kwargs={"skip_prepare_dataset": True},
            # TRL turns gradient checkpointing on under its old name (a FutureWarning)
            activation_checkpointing=False,
        ),
        train_dataset=sft_dataset(records, tokenizer, "default"),
        data_collator=LabelPaddingCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.train()
    record = callback.record
    assert record.first_failing is not None
    assert trainer.state.global_step == record.first_failing < steps
    assert all(step.passed for step in record.steps[:-1])


@pytest.mark.slow
def test_tensorboard_logs_the_rtc_metrics_of_a_callback_passed_in_callbacks(tmp_path, monkeypatch):
    """The real `TensorBoardCallback` (report_to="tensorboard") comes before the user's
    callbacks; the gate moves itself ahead of it when training begins."""
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    callback = ReasoningGateCallback(gate_config(), every_steps=CHECK_EVERY)
    train(tmp_path, "mask", callback, steps=2 * CHECK_EVERY, save=False, report_to="tensorboard")
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/rtc/finetune/valid_rate", "train/rtc/gates_passed"} <= set(
        scalars
    ), scalars
    logged = events.Scalars("train/rtc/finetune/valid_rate")
    assert [(event.step, event.value) for event in logged] == [
        (step.step, step.metrics["finetune"].valid_rate.value) for step in callback.steps
    ]


@pytest.mark.slow
def test_a_lora_model_is_checked_with_its_adapter_active_and_only_at_saves(tmp_path):
    """A real PEFT model (demo:collapsed-lora's adapter on demo:base, trainable, learning
    rate 0 so it stays as saved), checked only at its saves (``every_steps=None``): each
    check measures the adapter, as the sweep does on ``demo:collapsed-lora``, and the model
    is a training PEFT model again after."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(demo.checkpoint("base"), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, demo.checkpoint("collapsed-lora"), is_trainable=True)
    # the adapter names its base relative to its folder; saved elsewhere, peft looks it up
    model.peft_config["default"].base_model_name_or_path = str(demo.checkpoint("base"))
    config = gate_config(gates=[{"metric": "valid_rate", "max_drop": 0.15}])
    callback = ReasoningGateCallback(config, every_steps=None, on_save=True, stop_on_failure=False)
    trainer = train(
        tmp_path, "mask", callback, steps=2 * CHECK_EVERY, save=True, model=model, learning_rate=0.0
    )
    record = callback.record
    assert [Path(step.checkpoint).name for step in record.steps] == [
        f"checkpoint-{step}" for step in (CHECK_EVERY, 2 * CHECK_EVERY)
    ]
    assert record.first_failing == CHECK_EVERY  # the collapsed adapter, not the base
    session = RtcSession(config=config, config_dir=tmp_path)
    try:
        adapter = {name: session.run(name, "demo:collapsed-lora") for name in config.probe_sets}
    finally:
        session.close()
    for step in record.steps:
        assert step.metrics == {name: run.metrics for name, run in adapter.items()}
    assert trainer.model is model and model.training
    assert model.active_adapters == ["default"]
