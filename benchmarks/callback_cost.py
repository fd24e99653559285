"""ReasoningGateCallback's cost as a share of training time, on the demo fine-tuning run.

    python benchmarks/callback_cost.py [--steps 100] [--every 25] [--probes 32]

A real transformers ``Trainer`` fine-tunes demo:base on the demo's answer-only data with the
``mask`` strategy (batch 32, lr 1e-4, as `rtc_assert.demo.build`), so no gate fails and the
run goes to the end, with a check every ``--every`` steps on both demo probe sets cut to
``--probes`` each (greedy, max_new_tokens 64). Prints the training time, the time in checks
and in the base's runs (once, when training begins), and the checks' share. One torch thread;
these machines are noisy: compare figures of one run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile

from rtc_assert import demo
from rtc_assert.config import RtcConfig
from rtc_assert.demo.build import SCALES, SEED, finetuning_records
from rtc_assert.finetune import LabelPaddingCollator, sft_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--probes", type=int, default=32, help="per probe set")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from rtc_assert.integrations.transformers import ReasoningGateCallback

    torch.set_num_threads(1)
    scale = SCALES["full"]
    config = RtcConfig.model_validate(
        {
            "base": "demo:base",
            "backend": {"name": "transformers", "options": {"device": "cpu"}},
            "generation": {"max_new_tokens": demo.MAX_NEW_TOKENS, "batch_size": 64},
            "probe_sets": {
                name: {"source": f"demo:{name}", "limit": args.probes}
                for name in demo.PROBE_SET_NAMES
            },
            "gates": [
                {"metric": "valid_rate", "min": 0.8},
                {"metric": "valid_rate", "max_drop": 0.15},
            ],
        }
    )
    callback = ReasoningGateCallback(config, every_steps=args.every)
    tokenizer = AutoTokenizer.from_pretrained(demo.checkpoint("base"))
    model = AutoModelForCausalLM.from_pretrained(demo.checkpoint("base"), dtype=torch.float32)
    records = itertools.islice(
        finetuning_records(SEED + 1, scale.reasoning_share), args.steps * scale.finetune_batch
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=out,
                max_steps=args.steps,
                per_device_train_batch_size=scale.finetune_batch,
                learning_rate=scale.finetune_lr,
                lr_scheduler_type="constant",
                weight_decay=0.01,
                adam_beta2=0.98,
                save_strategy="no",
                logging_steps=args.every,
                report_to="none",
                use_cpu=True,
                disable_tqdm=True,
                seed=SEED,
            ),
            train_dataset=sft_dataset(records, tokenizer, "mask"),
            data_collator=LabelPaddingCollator(tokenizer.pad_token_id),
            processing_class=tokenizer,
            callbacks=[callback],
        )
        runtime = trainer.train().metrics["train_runtime"]
    checks = len(callback.steps)
    generations = checks * args.probes * len(demo.PROBE_SET_NAMES)
    training = runtime - callback.check_seconds - callback.base_seconds
    print(f"steps {args.steps}, a check every {args.every} ({checks} checks, {generations} gens)")
    print(
        f"train_runtime {runtime:.2f} s: training {training:.2f} s, checks "
        f"{callback.check_seconds:.2f} s, base runs {callback.base_seconds:.2f} s"
    )
    print(f"checks / training time: {callback.check_seconds / training:.3f}")
    print(
        f"checks + base / training time: "
        f"{(callback.check_seconds + callback.base_seconds) / training:.3f}"
    )
    print(f"all checks passed: {callback.record.first_failing is None}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
