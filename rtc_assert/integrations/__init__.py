"""Integrations with training frameworks; each module imports its framework itself.

- `rtc_assert.integrations.transformers`: `ReasoningGateCallback`, a transformers
  ``TrainerCallback`` (also for TRL's ``SFTTrainer``, LLaMA-Factory and axolotl, which take
  transformers callbacks) that gates the reasoning traces while the model trains.
"""
