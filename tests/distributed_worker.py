"""One process of the two-process training run in test_training_callback_distributed.py.

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py OUT MODE

A real transformers ``Trainer`` (DDP over gloo, on the CPU) fine-tunes demo:base on the
collapsing answer-only data with a `ReasoningGateCallback` checking every 2 steps. MODE
``collapse`` trains until the gate stops it; ``raise`` makes the first check raise on the
main process. Each process writes ``OUT/rank-N.json``: the step it stopped at, how many
generations it ran, the checks' verdicts as it logged them and the error it raised, if any.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

CHECK_EVERY = 2
PROBES = 8


def main() -> int:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    rank = int(os.environ["RANK"])
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from rtc_assert import demo
    from rtc_assert.config import RtcConfig
    from rtc_assert.demo.build import SCALES, SEED, finetuning_records
    from rtc_assert.finetune import LabelPaddingCollator, sft_dataset
    from rtc_assert.generation.backends.transformers_backend import TransformersBackend
    from rtc_assert.integrations.transformers import ReasoningGateCallback

    torch.set_num_threads(1)
    generated: list[int] = []
    generate = TransformersBackend.generate

    def counted(self: TransformersBackend, requests: Any, settings: Any) -> Any:
        generated.append(len(requests))
        return generate(self, requests, settings)

    TransformersBackend.generate = counted  # type: ignore[method-assign]
    config = RtcConfig.model_validate(
        {
            "base": "demo:base",
            "backend": {"name": "transformers", "options": {"device": "cpu"}},
            "generation": {"max_new_tokens": demo.MAX_NEW_TOKENS},
            "probe_sets": {"finetune": {"source": "demo:finetune", "limit": PROBES}},
            "gates": [{"metric": "valid_rate", "min": 0.8}],
        }
    )
    callback = ReasoningGateCallback(config, every_steps=CHECK_EVERY)
    if mode == "raise" and rank == 0:

        def broken(*args: Any) -> Any:
            raise RuntimeError("injected failure in the check")

        callback._gate = broken  # type: ignore[method-assign]
    scale = SCALES["full"]
    steps, batch = 40, scale.finetune_batch // 2
    tokenizer = AutoTokenizer.from_pretrained(demo.checkpoint("base"))
    model = AutoModelForCausalLM.from_pretrained(demo.checkpoint("base"), dtype=torch.float32)
    records = itertools.islice(
        finetuning_records(SEED + 1, scale.reasoning_share), steps * scale.finetune_batch
    )
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(out),
            max_steps=steps,
            per_device_train_batch_size=batch,
            learning_rate=3e-4,
            lr_scheduler_type="constant",
            save_strategy="no",
            logging_steps=CHECK_EVERY,
            report_to="none",
            use_cpu=True,
            ddp_backend="gloo",
            disable_tqdm=True,
            seed=SEED,
        ),
        train_dataset=sft_dataset(records, tokenizer, "default"),
        data_collator=LabelPaddingCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    error = None
    try:
        trainer.train()
    except Exception as caught:  # reported in the result file, for the test to read
        error = f"{type(caught).__name__}: {caught}"
    result = {
        "rank": rank,
        "world_size": trainer.args.world_size,
        "global_step": trainer.state.global_step,
        "generations": sum(generated),
        "checked": [step.step for step in callback.steps],
        "verdicts": {
            entry["step"]: entry["rtc/gates_passed"]
            for entry in trainer.state.log_history
            if "rtc/gates_passed" in entry
        },
        "error": error,
    }
    (out / f"rank-{rank}.json").write_text(json.dumps(result))
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
