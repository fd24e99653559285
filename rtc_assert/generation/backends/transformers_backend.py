"""Generation with Hugging Face transformers: batched, left-padded, on CUDA or the CPU."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import (
    Generation,
    GenerationError,
    GenerationRequest,
    GenerationSettings,
)
from rtc_assert.generation.tokenizers import left_padded, load_error, load_tokenizer

logger = logging.getLogger(__name__)


def _with_adapter(base: Any, model: ModelRef, adapter: str, *, merge: bool) -> Any:
    """``base`` with ``model``'s PEFT adapter (the folder ``adapter``) on top, or merged into
    its weights."""
    try:
        from peft import PeftModel
    except ImportError as error:
        raise GenerationError(
            f"{model.spec!r} is a PEFT adapter: pip install 'rtc-assert[peft]' ({error})"
        ) from error
    try:
        adapted = PeftModel.from_pretrained(base, adapter)
    except (OSError, ValueError, RuntimeError) as error:
        raise GenerationError(
            f"cannot load the adapter {adapter} onto {model.source}: {error}"
        ) from error
    return adapted.merge_and_unload() if merge else adapted


SPREADING_DEVICE_MAPS = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})
"""``device_map`` values that spread a model over devices rather than name one."""


def _pick_device(device: str, device_map: str | None = None) -> str:
    """The device inputs go to: ``device``; for ``auto``, the one device ``device_map`` names,
    else CUDA when available, else the CPU."""
    import torch

    if device != "auto":
        return device
    if device_map is not None and device_map not in SPREADING_DEVICE_MAPS:
        return device_map
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


class TransformersBackend:
    """``AutoModelForCausalLM`` generation; greedy or seeded sampling.

    Args:
        model: the resolved model spec.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), or a torch dtype name.
        device_map: transformers' ``device_map``: one device (``cuda:0``, ``cpu``), or
            ``auto`` to spread a model larger than one GPU; the weights are then left where it
            puts them, and inputs go to the device of the first weights.
        trust_remote_code: run code shipped with the model (off by default).
        use_safetensors: refuse pickled ``.bin`` weights (on by default).
        merge_adapter: for a PEFT adapter, merge it into the base weights once at load
            (faster generation; statuses agree with the unmerged adapter, see the README).
    """

    name = "transformers"
    model: Any
    """The torch model (a PEFT model where an adapter is on top); None once closed."""

    def __init__(
        self,
        model: ModelRef,
        *,
        device: str = "auto",
        dtype: str = "auto",
        device_map: str | None = None,
        trust_remote_code: bool = False,
        use_safetensors: bool = True,
        merge_adapter: bool = False,
        tokenizer: Any = None,
    ) -> None:
        import transformers
        from safetensors import SafetensorError

        self.model_ref = model
        self.tokenizer = left_padded(
            tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        )
        self.device = _pick_device(device, device_map)
        try:
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                model.source,
                revision=model.revision,
                dtype=_pick_dtype(dtype, self.device),
                device_map=device_map,
                trust_remote_code=trust_remote_code,
                use_safetensors=use_safetensors,
            )
        except (OSError, ValueError, SafetensorError) as error:  # a truncated or damaged file
            raise load_error(model, "weights", error) from error
        if model.adapter is not None:
            self.model = _with_adapter(self.model, model, model.adapter, merge=merge_adapter)
        if device_map is None:
            self.model.to(self.device)
        else:
            self.device = str(self.model.device)  # where device_map put the first weights
        self._finish_setup()

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, *, name: str = "in-memory model"):
        """Wrap a model and tokenizer already in memory (e.g. one being trained)."""
        backend = cls.__new__(cls)
        backend.model_ref = ModelRef(spec=name, source=name)
        backend.tokenizer = left_padded(tokenizer)
        backend.model = model
        backend.device = str(model.device)
        backend._finish_setup()
        return backend

    def _finish_setup(self) -> None:
        import torch
        import transformers

        self.model.eval()
        self.eos_token_ids = self._eos_token_ids()
        self.version = f"transformers {transformers.__version__}, torch {torch.__version__}"

    def close(self) -> None:
        """Release the weights (and the GPU memory they held)."""
        self.model = None
        if self.device.startswith("cuda"):
            _empty_cuda_cache()

    def _eos_token_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        ids.discard(None)
        if not ids:
            raise GenerationError(
                f"{self.model_ref.spec!r} defines no EOS token: set eos_token in its tokenizer"
            )
        return frozenset(ids)

    def generate(
        self, requests: Sequence[GenerationRequest], settings: GenerationSettings
    ) -> list[Generation]:
        """Generate in batches of prompts of similar length; results in request order."""
        lengths = [
            len(self.tokenizer(r.prompt, add_special_tokens=False).input_ids) for r in requests
        ]
        order = sorted(range(len(requests)), key=lambda i: lengths[i])
        results: dict[int, Generation] = {}
        batch_size = settings.batch_size
        start = 0
        while start < len(order):
            batch = order[start : start + batch_size]
            try:
                generated = self._generate_batch([requests[i] for i in batch], settings, start)
            except Exception as error:
                if not _is_cuda_oom(error) or batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                logger.warning("CUDA out of memory: retrying with batch size %d", batch_size)
                _empty_cuda_cache()
                continue
            results.update(zip(batch, generated, strict=True))
            start += len(batch)
        return [results[i] for i in range(len(requests))]

    def _generate_batch(
        self, requests: list[GenerationRequest], settings: GenerationSettings, offset: int
    ) -> list[Generation]:
        import torch

        encoded = self.tokenizer(
            [r.prompt for r in requests],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(self.model.device)
        sampling = settings.temperature > 0
        if sampling:
            # Seeded per batch position: the same settings and requests give the same samples.
            torch.manual_seed(settings.seed + offset)
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=settings.max_new_tokens,
                do_sample=sampling,
                temperature=settings.temperature if sampling else None,
                top_p=settings.top_p if sampling else None,
                top_k=None,
                eos_token_id=sorted(self.eos_token_ids),
                pad_token_id=self.tokenizer.pad_token_id,
            )
        prompt_width = encoded.input_ids.shape[1]
        prompt_tokens = encoded.attention_mask.sum(dim=1).tolist()
        return [
            self._record(request, row[prompt_width:].tolist(), prompt_count, settings)
            for request, row, prompt_count in zip(requests, output, prompt_tokens, strict=True)
        ]

    def _record(
        self,
        request: GenerationRequest,
        new_tokens: list[int],
        prompt_tokens: int,
        settings: GenerationSettings,
    ) -> Generation:
        end = next((i for i, t in enumerate(new_tokens) if t in self.eos_token_ids), None)
        completion = new_tokens if end is None else new_tokens[:end]
        return Generation(
            probe_id=request.probe.id,
            sample=request.sample,
            prompt=request.prompt,
            text=self.tokenizer.decode(completion, skip_special_tokens=False),
            finish_reason="stop" if end is not None else "length",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(completion),
            prefilled=request.prefilled,
        )


def _is_cuda_oom(error: Exception) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError)


def _empty_cuda_cache() -> None:
    import torch

    torch.cuda.empty_cache()
