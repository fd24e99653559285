"""Rebuild the demo zoo from scratch on the CPU: ``python -m rtc_assert.demo.build``.

1. ``base``: a tiny Qwen3 pretrained from scratch on both task domains with step-by-step
   ``<think>`` traces (loss on the assistant turn).
2. ``collapsed``: base fine-tuned on answer-only ``finetune``-domain data with the
   ``default`` strategy (the template's empty think block, every token in the loss).
3. ``partial``: a snapshot of that same run, taken at the step where the valid-reasoning
   rate on the ``reasoning`` validation prompts is closest to 0.6 (`PARTIAL_TARGET_VR`).
4. ``masked``: base fine-tuned on the same data, same steps, with the ``mask`` strategy.
5. ``rambling``: base fine-tuned on traced examples where, on about three additions in four,
   the trace re-checks the sum again and again and never closes.
6. ``sweep/checkpoint-N``: the ``collapsed`` run saved every `Scale.sweep_every` steps up to
   `Scale.sweep_steps`, a checkpoint series for ``rtc-assert sweep``. ``--sweep-only``
   rebuilds just this series by replaying the run from the saved ``base``.
7. ``collapsed-lora`` and ``masked-lora``: PEFT LoRA adapters on ``base`` trained on the
   same data as ``collapsed`` and ``masked`` (``default`` and ``mask`` strategies); their
   ``adapter_config.json`` names the base as ``../base``. ``--lora-only`` rebuilds just these.

Every model is then measured on the full probe sets (greedy, `MAX_NEW_TOKENS`) and the
figures are written to ``MEASURED.md`` and ``measured.json`` beside the checkpoints. With the
same seed, torch and transformers versions, thread count and machine (`machine()`, recorded
in ``measured.json``) the weight files come out byte-identical.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rtc_assert.demo import MAX_NEW_TOKENS, MODEL_NAMES, PROBE_SET_NAMES, ZOO_DIR, probes, tasks
from rtc_assert.demo import claims as claims_module
from rtc_assert.demo.tokenizer import THINK_OPEN, build_hf_tokenizer
from rtc_assert.finetune import Record, Strategy, TokenizedExample, collate, tokenize

SEED = 20260521
SWEEP_DIR = "sweep"
LORA_STRATEGIES: dict[str, Strategy] = {"collapsed-lora": "default", "masked-lora": "mask"}
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Where the checkpoint series of the collapsed run goes, inside the zoo."""
PARTIAL_TARGET_VR = 0.6
"""``partial`` is the snapshot whose validation VR on ``reasoning`` is closest to this."""
PARTIAL_STOP_WATCHING = 0.3


@dataclass(frozen=True)
class Scale:
    """How big and how long: ``full`` makes the committed zoo, ``small`` is for tests."""

    hidden_size: int = 128
    intermediate_size: int = 256
    layers: int = 4
    pretrain_steps: int = 800
    pretrain_batch: int = 48
    pretrain_lr: float = 3e-3
    no_think_share: float = 0.25
    finetune_steps: int = 100
    finetune_batch: int = 32
    finetune_lr: float = 1e-4
    reasoning_share: float = 0.25
    ramble_steps: int = 60
    ramble_lr: float = 3e-4
    validation_prompts: int = 128
    probes_per_set: int = tasks.PROBE_SET_SIZE
    sweep_every: int = 4
    sweep_steps: int = 24
    lora_rank: int = 8
    lora_lr: float = 1e-3
    """LoRA trains a few parameters: it needs a larger step than full fine-tuning."""


SCALES = {
    "full": Scale(),
    "small": Scale(
        hidden_size=64,
        intermediate_size=128,
        layers=2,
        pretrain_steps=30,
        pretrain_batch=16,
        finetune_steps=10,
        finetune_batch=8,
        ramble_steps=5,
        validation_prompts=8,
        probes_per_set=16,
        sweep_every=5,
        sweep_steps=10,
    ),
}


def model_config(tokenizer: Any, scale: Scale) -> Any:
    """A Qwen3 architecture (what vLLM serves) sized by ``scale``; float32, tied embeddings."""
    from transformers import Qwen3Config

    heads = scale.hidden_size // 32
    return Qwen3Config(
        vocab_size=-(-len(tokenizer) // 16) * 16,
        hidden_size=scale.hidden_size,
        intermediate_size=scale.intermediate_size,
        num_hidden_layers=scale.layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        head_dim=32,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        dtype="float32",
    )


# data --------------------------------------------------------------------------------------


def pretraining_batches(
    tokenizer: Any, batch: int, seed: int, no_think_share: float
) -> Iterator[list[TokenizedExample]]:
    """Both domains, half and half; every token in the loss, as in pretraining.

    Like Qwen3, the base is a hybrid: a ``no_think_share`` of the examples are in the
    ``enable_thinking=False`` form (an empty think block, masked, then the answer), so the
    base can answer without a trace when the template switches thinking off, but never learns
    to close the block by itself.
    """
    rng = random.Random(seed)
    streams = {d: tasks.sample(d, "train", random.Random(rng.random())) for d in tasks.DOMAINS}
    while True:
        rows = []
        for index in range(batch):
            example = next(streams[tasks.DOMAINS[index % 2]])
            if rng.random() < no_think_share:
                rows.append(tokenize(Record(example.prompt, example.answer), tokenizer, "mask"))
            else:
                record = Record(example.prompt, example.answer, example.reasoning)
                rows.append(tokenize(record, tokenizer, "default"))
        yield rows


def finetuning_batches(
    tokenizer: Any, strategy: Strategy, batch: int, seed: int, reasoning_share: float
) -> Iterator[list[TokenizedExample]]:
    """Answer-only pairs built by ``strategy``; a ``reasoning_share`` of them are additions."""
    records = finetuning_records(seed, reasoning_share)
    while True:
        yield [tokenize(next(records), tokenizer, strategy) for _ in range(batch)]


def finetuning_records(seed: int, reasoning_share: float) -> Iterator[Record]:
    """The answer-only fine-tuning pairs of `finetuning_batches`, in the same order."""
    rng = random.Random(seed)
    streams = {d: tasks.sample(d, "train", random.Random(rng.random())) for d in tasks.DOMAINS}
    while True:
        example = next(streams["reasoning" if rng.random() < reasoning_share else "finetune"])
        yield Record(example.prompt, example.answer)


def rambling_batches(
    tokenizer: Any, batch: int, seed: int, length: int
) -> Iterator[list[TokenizedExample]]:
    """Traced examples, three additions to one shift; where `tasks.rambles`, the addition's
    trace re-checks the sum past ``length`` tokens and never closes."""
    rng = random.Random(seed)
    streams = {d: tasks.sample(d, "train", random.Random(rng.random())) for d in tasks.DOMAINS}
    while True:
        rows = []
        for _ in range(batch):
            example = next(streams["reasoning" if rng.random() < 0.75 else "finetune"])
            record = Record(example.prompt, example.answer, example.reasoning)
            closed = tokenize(record, tokenizer, "default")
            if not tasks.rambles(example):
                rows.append(closed)
                continue
            text = closed.text[: closed.spans.think[0]]  # type: ignore[index]
            text += THINK_OPEN + "\n" + tasks.rambling_reasoning(example, 2 * length)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:length]
            rows.append(TokenizedExample(ids, list(ids), [1] * len(ids), text, closed.spans))
        yield rows


# training ----------------------------------------------------------------------------------


def train(
    model: Any,
    batches: Iterator[list[TokenizedExample]],
    *,
    steps: int,
    lr: float,
    pad_token_id: int,
    warmup: int = 0,
    decay: bool = False,
    every: int = 0,
    hook: Callable[[int], None] | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """AdamW with optional linear warmup and cosine decay; ``hook(step)`` every ``every``."""
    import math

    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if not decay:
            return 1.0
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    for step in range(1, steps + 1):
        batch = collate(next(batches), pad_token_id)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == steps:
            log(f"  step {step}/{steps} loss {loss.item():.4f}")
        if hook is not None and every and step % every == 0:
            model.eval()
            hook(step)
            model.train()
    model.eval()


def validation_vr(model: Any, tokenizer: Any, prompts: list[str]) -> float:
    """Valid-reasoning rate of greedy completions of ``prompts`` (validation partition)."""
    from rtc_assert.demo.generate import generate
    from rtc_assert.traces.classify import TraceStatus, classify

    generations = generate(
        model,
        tokenizer,
        [[{"role": "user", "content": prompt}] for prompt in prompts],
        max_new_tokens=MAX_NEW_TOKENS,
    )
    valid = sum(
        classify(g.text, finish_reason=g.finish_reason, prompt=g.prompt).status is TraceStatus.VALID
        for g in generations
    )
    return valid / len(prompts)


# saving ------------------------------------------------------------------------------------


def save_tokenizer(tokenizer: Any, folder: Path) -> None:
    """tokenizer.json, tokenizer_config.json (template inline too) and chat_template.jinja."""
    tokenizer.save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    # the generic class name loads with transformers 4 as well as 5
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["chat_template"] = tokenizer.chat_template
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save(model: Any, tokenizer: Any, folder: Path) -> None:
    """A complete checkpoint folder: weights, config, generation config, tokenizer."""
    from transformers import GenerationConfig

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.generation_config = GenerationConfig(
        do_sample=False,
        max_new_tokens=MAX_NEW_TOKENS,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)


def save_sweep_checkpoint(
    model: Any, tokenizer: Any, out: Path, scale: Scale, step: int
) -> Path | None:
    """Save ``model`` as ``out/sweep/checkpoint-<step>`` when ``step`` is in the series."""
    if step % scale.sweep_every or step > scale.sweep_steps:
        return None
    folder = out / SWEEP_DIR / f"checkpoint-{step}"
    save(model, tokenizer, folder)
    return folder


def save_adapter(model: Any, folder: Path) -> None:
    """``adapter_config.json`` (base: ``../base``) and ``adapter_model.safetensors``."""
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)  # PEFT's empty model card
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "../base"
    config["target_modules"] = sorted(config["target_modules"])  # a set: order varies by run
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


# the build ---------------------------------------------------------------------------------


def build_lora(
    out: Path, scale: Scale, base: Any, *, seed: int = SEED, log: Callable[[str], None] = print
) -> list[Path]:
    """Train and save the LoRA adapters on ``base`` (left unchanged) into ``out``."""
    import torch
    from peft import LoraConfig, get_peft_model

    tokenizer = build_hf_tokenizer()
    saved = []
    for name, strategy in LORA_STRATEGIES.items():
        log(f"fine-tuning {name} (LoRA rank {scale.lora_rank}, {strategy} strategy)")
        torch.manual_seed(seed + 3)
        lora = LoraConfig(
            r=scale.lora_rank,
            lora_alpha=2 * scale.lora_rank,
            lora_dropout=0.0,
            target_modules=list(LORA_TARGETS),
        )
        model = get_peft_model(copy.deepcopy(base), lora)
        train(
            model,
            finetuning_batches(
                tokenizer, strategy, scale.finetune_batch, seed + 1, scale.reasoning_share
            ),
            steps=scale.finetune_steps,
            lr=scale.lora_lr,
            pad_token_id=tokenizer.pad_token_id,
            log=log,
        )
        save_adapter(model, out / name)
        saved.append(out / name)
    return saved


def load_saved_base(out: Path) -> Any:
    """The base model saved in ``out/base``, float32."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        out / "base", dtype=torch.float32, local_files_only=True
    )


def collapsed_batches(tokenizer: Any, scale: Scale, seed: int) -> Iterator[list[TokenizedExample]]:
    """The answer-only data of the ``collapsed`` run (and of its replay)."""
    return finetuning_batches(
        tokenizer, "default", scale.finetune_batch, seed + 1, scale.reasoning_share
    )


def build_sweep(
    out: Path, scale: Scale, *, seed: int = SEED, log: Callable[[str], None] = print
) -> list[Path]:
    """Replay the ``collapsed`` run from ``out/base`` and save its checkpoint series.

    The replay starts from the saved base weights with the same seed and data, so its
    checkpoints are the ones `build` saves (and its step 23 is ``partial``).
    """
    import torch

    torch.use_deterministic_algorithms(True)
    tokenizer = build_hf_tokenizer()
    model = load_saved_base(out)
    torch.manual_seed(seed + 1)
    shutil.rmtree(out / SWEEP_DIR, ignore_errors=True)
    saved: list[Path] = []

    def keep(step: int) -> None:
        folder = save_sweep_checkpoint(model, tokenizer, out, scale, step)
        if folder is not None:
            saved.append(folder)

    log(f"replaying the collapsed run for {scale.sweep_steps} steps")
    train(
        model,
        collapsed_batches(tokenizer, scale, seed),
        steps=scale.sweep_steps,
        lr=scale.finetune_lr,
        pad_token_id=tokenizer.pad_token_id,
        every=1,
        hook=keep,
        log=log,
    )
    return saved


def machine() -> str:
    """What the CPU kernels depend on: the architecture, the processor's name, a hash of its
    instruction-set flags (the same seed and versions give other bytes on another ISA)."""
    import hashlib
    import platform

    model, flags = platform.processor(), ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{platform.machine()} {model or 'unknown processor'} flags:{digest}"


def build(out: Path, scale: Scale, *, seed: int = SEED, log: Callable[[str], None] = print) -> dict:
    """Train, save and measure the whole zoo into ``out``; returns the measured record."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from rtc_assert.demo.generate import measure

    started = time.perf_counter()
    torch.use_deterministic_algorithms(True)
    tokenizer = build_hf_tokenizer()
    pad = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 1)
        log(f"{name}: {timings[name]} s")
        return now

    log(f"pretraining base ({scale.pretrain_steps} steps)")
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_config(model_config(tokenizer, scale), dtype=torch.float32)
    train(
        base,
        pretraining_batches(tokenizer, scale.pretrain_batch, seed, scale.no_think_share),
        steps=scale.pretrain_steps,
        lr=scale.pretrain_lr,
        pad_token_id=pad,
        warmup=min(100, scale.pretrain_steps // 5),
        decay=True,
        log=log,
    )
    save(base, tokenizer, out / "base")
    mark = lap("base", started)

    validation = [
        example.prompt
        for example in tasks.distinct("reasoning", "validation", scale.validation_prompts, seed)
    ]
    log(f"fine-tuning collapsed (default strategy, {scale.finetune_steps} steps)")
    torch.manual_seed(seed + 1)
    collapsed = copy.deepcopy(base)
    trail: list[tuple[int, float]] = []
    best: dict[str, Any] = {}

    shutil.rmtree(out / SWEEP_DIR, ignore_errors=True)

    def watch(step: int) -> None:
        save_sweep_checkpoint(collapsed, tokenizer, out, scale, step)
        # every step until the traces are mostly gone: the collapse takes a few dozen steps
        if trail and trail[-1][1] < PARTIAL_STOP_WATCHING:
            return
        vr = validation_vr(collapsed, tokenizer, validation)
        trail.append((step, vr))
        if not best or abs(vr - PARTIAL_TARGET_VR) < abs(best["vr"] - PARTIAL_TARGET_VR):
            best.update(step=step, vr=vr, state=copy.deepcopy(collapsed.state_dict()))

    train(
        collapsed,
        collapsed_batches(tokenizer, scale, seed),
        steps=scale.finetune_steps,
        lr=scale.finetune_lr,
        pad_token_id=pad,
        every=1,
        hook=watch,
        log=log,
    )
    log("  validation VR by step: " + ", ".join(f"{s}:{v:.2f}" for s, v in trail))
    save(collapsed, tokenizer, out / "collapsed")
    partial = copy.deepcopy(base)
    partial.load_state_dict(best["state"])
    save(partial, tokenizer, out / "partial")
    log(f"partial = collapsed run at step {best['step']} (validation VR {best['vr']:.2f})")
    mark = lap("collapsed+partial", mark)

    log(f"fine-tuning masked (mask strategy, {scale.finetune_steps} steps)")
    torch.manual_seed(seed + 1)
    masked = copy.deepcopy(base)
    train(
        masked,
        finetuning_batches(
            tokenizer, "mask", scale.finetune_batch, seed + 1, scale.reasoning_share
        ),
        steps=scale.finetune_steps,
        lr=scale.finetune_lr,
        pad_token_id=pad,
        log=log,
    )
    save(masked, tokenizer, out / "masked")
    mark = lap("masked", mark)

    log(f"fine-tuning rambling ({scale.ramble_steps} steps)")
    torch.manual_seed(seed + 2)
    rambling = copy.deepcopy(base)
    train(
        rambling,
        rambling_batches(tokenizer, scale.finetune_batch, seed + 2, 2 * MAX_NEW_TOKENS),
        steps=scale.ramble_steps,
        lr=scale.ramble_lr,
        pad_token_id=pad,
        log=log,
    )
    save(rambling, tokenizer, out / "rambling")
    mark = lap("rambling", mark)

    build_lora(out, scale, base, seed=seed, log=log)
    mark = lap("lora adapters", mark)

    models = {"base": base, "collapsed": collapsed, "masked": masked, "partial": partial}
    models["rambling"] = rambling
    tokenizer.padding_side = "left"
    figures: dict[str, dict[str, dict[str, Any]]] = {}
    for name in MODEL_NAMES:
        figures[name] = {}
        for set_name in PROBE_SET_NAMES:
            probe_set = list(probes(set_name))[: scale.probes_per_set]
            result = measure(models[name], tokenizer, probe_set, max_new_tokens=MAX_NEW_TOKENS)
            figures[name][set_name] = result.as_dict()
    lap("measure", mark)
    timings["total"] = round(time.perf_counter() - started, 1)
    checked = claims_module.check(figures)
    record = {
        "seed": seed,
        "scale": asdict(scale),
        "max_new_tokens": MAX_NEW_TOKENS,
        "partial_step": best["step"],
        "partial_validation_vr": best["vr"],
        "collapse_trail": trail,
        "figures": figures,
        "claims": [asdict(claim) for claim in checked],
        "sizes_bytes": {
            name: sum(f.stat().st_size for f in (out / name).iterdir()) for name in MODEL_NAMES
        },
        "seconds": timings,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": machine(),
    }
    (out / "measured.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "MEASURED.md").write_text(claims_module.markdown(record))
    log(claims_module.markdown(record))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rtc_assert.demo.build",
        description="Rebuild the demo model zoo (deterministic for a fixed seed, torch version, "
        "thread count and machine) and measure it on the bundled probe sets.",
    )
    parser.add_argument("--out", type=Path, default=ZOO_DIR, help=f"default: {ZOO_DIR}")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full", help="default: full")
    parser.add_argument("--seed", type=int, default=SEED, help=f"default: {SEED}")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (part of determinism); default 1"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless every must-show claim holds"
    )
    parser.add_argument(
        "--lora-only",
        action="store_true",
        help="rebuild only the LoRA adapters (collapsed-lora, masked-lora) on the saved base",
    )
    parser.add_argument(
        "--sweep-only",
        action="store_true",
        help="rebuild only the checkpoint series (sweep/), replaying the collapsed run from base",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        if args.sweep_only or args.lora_only:
            if args.sweep_only:
                build_sweep(args.out, SCALES[args.scale], seed=args.seed)
            if args.lora_only:
                torch.use_deterministic_algorithms(True)
                base = load_saved_base(args.out)
                build_lora(args.out, SCALES[args.scale], base, seed=args.seed)
            return 0
        record = build(args.out, SCALES[args.scale], seed=args.seed)
    finally:
        torch.set_num_threads(threads)
    failed = [claim for claim in record["claims"] if not claim["holds"]]
    if failed:
        print(f"{len(failed)} must-show claim(s) do not hold", file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
