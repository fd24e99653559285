"""The demo zoo's character-level tokenizer and its Qwen3-style chat template.

Every printable ASCII character, newline and tab is one token; ``<think>`` and ``</think>``
are added (non-special) tokens, so decoding keeps them even with ``skip_special_tokens=True``,
as Qwen3's tokenizer does. ``<|im_end|>`` ends a turn and is the EOS token;
``<|endoftext|>`` pads. The chat template writes the Qwen3 layout::

    <|im_start|>user
    347+285<|im_end|>
    <|im_start|>assistant
    <think>
    7+5+0=12 ...
    </think>

    632<|im_end|>

An assistant message's reasoning comes from ``reasoning_content`` or from a
``<think>...</think>`` block at the start of ``content``. The last assistant turn always gets
a block (an empty one when it has no reasoning, as Qwen3's template does); and
``enable_thinking=False`` ends the generation prompt with an empty block.
"""

from __future__ import annotations

import string

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

PAD = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
UNK = "<|unk|>"

SPECIAL_TOKENS = (PAD, IM_START, IM_END, UNK)
"""Tokens dropped by ``skip_special_tokens=True``."""

CHARACTERS = tuple(string.printable[:-2])
"""One token each: printable ASCII with space, tab, newline and carriage return."""

CHAT_TEMPLATE = (
    "{%- set ns = namespace(last_user=-1) -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- for message in messages -%}"
    "{%- set content = message['content'] if message['content'] is string else '' -%}"
    "{%- if message['role'] in ['system', 'user'] -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- set reasoning = '' -%}"
    "{%- if message['reasoning_content'] is string -%}"
    "{%- set reasoning = message['reasoning_content'] -%}"
    "{%- elif '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1] -%}"
    "{%- set content = content.split('</think>')[-1] -%}"
    "{%- endif -%}"
    "{%- set reasoning = reasoning.strip('\\n') -%}"
    "{%- set content = content.lstrip('\\n') -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if loop.index0 > ns.last_user and (loop.last or reasoning) -%}"
    "{{- '<think>\\n' + reasoning + '\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{{- content + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
)


def build_tokenizer() -> Tokenizer:
    """The raw `tokenizers` tokenizer: ids 0-5 are the tags, then one id per character."""
    vocab: dict[str, int] = {}
    for token in (PAD, IM_START, IM_END, THINK_OPEN, THINK_CLOSE, UNK, *CHARACTERS):
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # `[\s\S]`, not `.`: a regex dot skips newlines, which would then merge into <|unk|>.
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS]
    )
    tokenizer.add_tokens(
        [AddedToken(token, special=False, normalized=False) for token in (THINK_OPEN, THINK_CLOSE)]
    )
    return tokenizer


def build_hf_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """The tokenizer wrapped for transformers, with the chat template and special tokens."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(),
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
