"""Loading a model's tokenizer: every backend renders prompts (and counts tokens) with it."""

from __future__ import annotations

from typing import Any

from rtc_assert.generation.models import ModelRef
from rtc_assert.generation.requests import GenerationError


def load_tokenizer(model: ModelRef, *, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, set up for left-padded batches."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model.source, revision=model.revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise load_error(model, "tokenizer", error) from error
    if len(tokenizer) <= len(tokenizer.all_special_tokens):
        # transformers builds an empty tokenizer from a folder that has only config.json.
        raise load_error(
            model,
            "tokenizer",
            ValueError(
                "it has no vocabulary: the tokenizer files (tokenizer.json, or vocab.json and "
                "merges.txt, or tokenizer.model, with tokenizer_config.json) are missing; "
                "save them beside the weights with tokenizer.save_pretrained(folder)"
            ),
        )
    return left_padded(tokenizer)


def left_padded(tokenizer: Any) -> Any:
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_error(model: ModelRef, what: str, error: Exception) -> GenerationError:
    where = (
        f"the folder {model.source}"
        if model.is_local
        else f"hub id {model.source!r} (not a local folder; with HF_HUB_OFFLINE=1 or no "
        "network it must already be in the local Hugging Face cache: download it once, or "
        "give a local folder)"
    )
    return GenerationError(f"cannot load the {what} of {model.spec!r} from {where}: {error}")
