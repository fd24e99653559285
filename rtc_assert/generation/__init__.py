"""Stage 2, generation: a model answers the probes.

- `requests`: generation settings, the rendered prompt, the `Generation` record, the
  `Backend` protocol.
- `models`: model specs (folders, hub ids, ``demo:``, PEFT adapters); `checkpoints`:
  checkpoint series; `tokenizers`: loading a model's tokenizer.
- `fingerprint`: what identifies a model's weights; `cache`: the SQLite generation cache.
- `backends`: transformers, vLLM and OpenAI-compatible servers.
"""
