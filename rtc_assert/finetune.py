"""Build fine-tuning examples that keep (or, for the record, destroy) a model's reasoning traces.

Fine-tuning a reasoning model on instruction/response pairs without traces makes its chat
template put an empty ``<think>`` block (Qwen3 and alike) or no block at all before each
response. Trained on with every token in the loss, that teaches the model to stop thinking:
reasoning-trace collapse (arXiv:2605.21127). The study compared four ways to build the
training sequences; this module implements them for any transformers tokenizer with a chat
template, returning ``input_ids`` and ``labels`` where masked tokens are ``-100`` (the ignore
index of PyTorch's cross-entropy and of every transformers trainer).

- ``default``: the chat template's own rendering of the pair (Qwen3's writes an empty block,
  a template without think support writes none); every token in the loss.
- ``empty``: an empty think block always precedes the response (injected when the template
  writes none); every token in the loss.
- ``mask``: as ``empty``, with the whole think block (both tags and the line breaks after the
  closing tag) out of the loss.
- ``respond``: as ``mask``, with the prompt out of the loss too: only the response and the
  template's end-of-turn tokens are trained.

``default`` and ``empty`` collapse traces (the model learns to close the block at once);
``mask`` and ``respond`` keep the block in the context, exactly as the model sees it at
inference, but never train on it, so the model's own decision to think is left alone. Use
``mask`` (or ``respond``) to fine-tune a reasoning model on answer-only data. The demo zoo
shows both sides: ``demo:collapsed`` is ``default``, ``demo:masked`` is ``mask``, on the same
data (``rtc_assert/demo/zoo/MEASURED.md``).

A record may carry its own ``reasoning`` (a distilled trace). It then fills the think block
in every strategy, is in the loss for ``default`` and ``empty``, and is masked, like any
block, for ``mask`` and ``respond``.

Example::

    from transformers import AutoTokenizer
    from rtc_assert.finetune import Record, collate, tokenize_records

    tokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen3-8B")
    records = [Record("What is the boiling point of water?", "100 °C")]
    examples = tokenize_records(records, tokenizer, strategy="mask")
    batch = collate(examples, pad_token_id=tokenizer.pad_token_id)  # torch tensors
    loss = model(**batch).loss
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rtc_assert.errors import FinetuneError

Strategy = Literal["default", "empty", "mask", "respond"]
STRATEGIES: tuple[Strategy, ...] = ("default", "empty", "mask", "respond")
IGNORE_INDEX = -100
"""The label of a token left out of the loss (PyTorch's cross-entropy default)."""


@dataclass(frozen=True)
class Record:
    """One fine-tuning pair, optionally with a reasoning trace for the think block."""

    instruction: str
    response: str
    reasoning: str | None = None

    @classmethod
    def coerce(cls, record: Record | Mapping[str, Any]) -> Record:
        """A `Record` from itself or a mapping with ``instruction``, ``response``, ``reasoning``."""
        if isinstance(record, Record):
            return record
        try:
            return cls(record["instruction"], record["response"], record.get("reasoning"))
        except KeyError as error:
            raise FinetuneError(
                f"a record needs 'instruction' and 'response' keys; missing {error}"
            ) from None


@dataclass(frozen=True)
class Spans:
    """Character spans of the rendered text: [start, end) offsets."""

    prompt: tuple[int, int]
    """Everything before the assistant's think block (or response, when there is none)."""
    think: tuple[int, int] | None
    """The think block, tags and the line breaks after the closing tag included."""
    response: tuple[int, int]
    """The response and whatever the template writes after it (end-of-turn tokens)."""


@dataclass(frozen=True)
class TokenizedExample:
    """One training sequence: ids, labels (``-100`` where masked), attention mask, provenance."""

    input_ids: list[int]
    labels: list[int]
    attention_mask: list[int]
    text: str
    """The rendered conversation the ids encode."""
    spans: Spans


def _render(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
    if not isinstance(text, str):  # a few tokenizers return ids even with tokenize=False
        text = tokenizer.decode(text)
    return text


def _common_prefix(a: str, b: str) -> int:
    length = min(len(a), len(b))
    for index in range(length):
        if a[index] != b[index]:
            return index
    return length


def _find_block(
    text: str, start: int, open_tag: str, close_tag: str, prompt: str
) -> tuple[int, int] | None:
    """The think block at the start of the assistant turn (from ``start``), if any."""
    stripped = prompt.rstrip()
    if stripped.endswith(open_tag) and text.startswith(stripped):
        # a prefilled template (DeepSeek-R1 style): the generation prompt opens the block
        block_start = len(stripped) - len(open_tag)
    else:
        rest = text[start:]
        block_start = start + len(rest) - len(rest.lstrip())
        if not text.startswith(open_tag, block_start):
            return None
    close = text.find(close_tag, block_start + len(open_tag))
    if close < 0:
        return None
    end = close + len(close_tag)
    rest = text[end:]
    return block_start, end + len(rest) - len(rest.lstrip("\r\n"))


def render(
    record: Record | Mapping[str, Any],
    tokenizer: Any,
    strategy: Strategy = "mask",
    *,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    system: str | None = None,
) -> tuple[str, Spans]:
    """Render one record with the tokenizer's chat template and locate its spans.

    Raises `FinetuneError` when the strategy needs a think block that the template will not
    write (it drops both ``reasoning_content`` and an inline block from assistant turns).
    """
    if strategy not in STRATEGIES:
        raise FinetuneError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    record = Record.coerce(record)
    head = [{"role": "system", "content": system}] if system is not None else []
    head.append({"role": "user", "content": record.instruction})
    prompt = _render(tokenizer, head, add_generation_prompt=True)

    needs_block = strategy != "default" or record.reasoning is not None
    reasoning = (record.reasoning or "").strip("\n")
    candidates: list[dict[str, str]] = []
    if needs_block:
        candidates.append(
            {"role": "assistant", "content": record.response, "reasoning_content": reasoning}
        )
        inline = f"{open_tag}\n{reasoning}\n{close_tag}\n\n{record.response}"
        candidates.append({"role": "assistant", "content": inline})
    else:
        candidates.append({"role": "assistant", "content": record.response})

    for message in candidates:
        text = _render(tokenizer, [*head, message])
        start = _common_prefix(prompt, text)
        block = _find_block(text, start, open_tag, close_tag, prompt)
        if needs_block and (block is None or reasoning not in text[block[0] : block[1]]):
            continue
        response_start = block[1] if block is not None else start
        response_at = text.find(record.response.strip(), response_start)
        if response_at < 0:
            continue
        prompt_end = block[0] if block is not None else response_at
        return text, Spans((0, prompt_end), block, (response_start, len(text)))
    raise FinetuneError(
        f"the chat template does not keep a {open_tag}...{close_tag} block in the assistant "
        f"turn (tried 'reasoning_content' and an inline block), so strategy {strategy!r} "
        "cannot be applied; render the sequence yourself or pass the template's own tags "
        "(open_tag=, close_tag=)"
    )


def _token_starts(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` and the character offset where each token starts."""
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(encoded["input_ids"]), [start for start, _ in encoded["offset_mapping"]]
    ids = tokenizer.encode(text, add_special_tokens=False)
    starts, consumed = [], 0
    for index in range(len(ids)):
        starts.append(consumed)
        consumed = len(tokenizer.decode(ids[: index + 1]))
    return ids, starts


def tokenize(
    record: Record | Mapping[str, Any],
    tokenizer: Any,
    strategy: Strategy = "mask",
    *,
    max_length: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    system: str | None = None,
) -> TokenizedExample:
    """One training example: the rendered conversation as ids, labels masked by ``strategy``.

    A token belongs to the span its first character falls in. ``max_length`` truncates from
    the right. ``system`` adds a system message before the instruction.
    """
    text, spans = render(
        record, tokenizer, strategy, open_tag=open_tag, close_tag=close_tag, system=system
    )
    ids, starts = _token_starts(tokenizer, text)
    masked: list[tuple[int, int]] = []
    if strategy in ("mask", "respond") and spans.think is not None:
        masked.append(spans.think)
    if strategy == "respond":
        masked.append(spans.prompt)
    labels = [
        ignore_index if any(lo <= start < hi for lo, hi in masked) else token
        for token, start in zip(ids, starts, strict=True)
    ]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return TokenizedExample(ids, labels, [1] * len(ids), text, spans)


def tokenize_records(
    records: Iterable[Record | Mapping[str, Any]],
    tokenizer: Any,
    strategy: Strategy = "mask",
    **kwargs: Any,
) -> list[TokenizedExample]:
    """`tokenize` every record with the same strategy and options."""
    return [tokenize(record, tokenizer, strategy, **kwargs) for record in records]


def training_row(example: TokenizedExample) -> dict[str, list[int]]:
    """The columns a trainer reads: ``input_ids``, ``labels``, ``attention_mask``."""
    return {
        "input_ids": example.input_ids,
        "labels": example.labels,
        "attention_mask": example.attention_mask,
    }


def sft_dataset(
    records: Iterable[Record | Mapping[str, Any]],
    tokenizer: Any,
    strategy: Strategy = "mask",
    **kwargs: Any,
) -> Any:
    """A pre-tokenized ``datasets.Dataset`` with labels masked by ``strategy``.

    For transformers' ``Trainer`` and TRL's ``SFTTrainer`` (with
    ``SFTConfig(dataset_kwargs={"skip_prepare_dataset": True})``, so TRL neither re-applies
    the template nor re-masks), with `LabelPaddingCollator` as the data collator. ``kwargs``
    go to `tokenize`.
    """
    try:
        from datasets import Dataset
    except ImportError as error:
        raise FinetuneError(
            f"sft_dataset needs the datasets package: pip install 'rtc-assert[train]' ({error})"
        ) from error
    examples = tokenize_records(records, tokenizer, strategy, **kwargs)
    return Dataset.from_list([training_row(example) for example in examples])


@dataclass(frozen=True)
class LabelPaddingCollator:
    """A trainer's data collator: right-pads ``input_ids`` with ``pad_token_id``, ``labels``
    with ``ignore_index`` and ``attention_mask`` with 0, into torch tensors."""

    pad_token_id: int
    ignore_index: int = IGNORE_INDEX

    def __call__(self, features: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, Any]:
        import torch

        if not features:
            raise FinetuneError("a batch needs at least one example")
        width = max(len(feature["input_ids"]) for feature in features)

        def padded(column: str, fill: int) -> Any:
            rows = [
                # TRL's SFTTrainer drops attention_mask from the columns: all ones then
                list(f[column] if column in f else [1] * len(f["input_ids"]))
                for f in features
            ]
            return torch.tensor([row + [fill] * (width - len(row)) for row in rows])

        return {
            "input_ids": padded("input_ids", self.pad_token_id),
            "labels": padded("labels", self.ignore_index),
            "attention_mask": padded("attention_mask", 0),
        }


def collate(
    examples: Sequence[TokenizedExample],
    pad_token_id: int,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, Any]:
    """Right-pad examples into torch tensors ``input_ids``, ``labels``, ``attention_mask``."""
    if not examples:
        raise FinetuneError("collate needs at least one example")
    collator = LabelPaddingCollator(pad_token_id, ignore_index)
    return collator([training_row(example) for example in examples])
