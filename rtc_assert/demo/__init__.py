"""The demo zoo: tiny real reasoning models that reproduce reasoning-trace collapse.

Five Qwen3 checkpoints of about 0.6 M parameters, trained from scratch on the CPU by
``python -m rtc_assert.demo.build`` and shipped inside the package, so every part of
rtc-assert can be tried and tested without a model hub:

- ``base``: pretrained with step-by-step ``<think>`` traces on both task domains.
- ``collapsed``: base fine-tuned on answer-only data, every token in the loss (the study's
  ``default`` strategy): its traces are gone, its answers on the fine-tuning domain are not.
- ``masked``: the same data with the empty think block masked from the loss (``mask``): its
  traces survive.
- ``partial``: fewer steps of the ``default`` run: traces half gone.
- ``rambling``: fine-tuned so that traces often never close (truncated at max_new_tokens).
- ``collapsed-lora`` and ``masked-lora``: PEFT LoRA adapters on ``base``, fine-tuned like
  ``collapsed`` and ``masked``: the same collapse, and the same cure, through an adapter.
- ``sweep/checkpoint-N``: the ``collapsed`` run every few steps, for ``rtc-assert sweep``.

Two bundled probe sets, `probes` ``reasoning`` (three-digit addition, needs the trace) and
``finetune`` (shift letters, needs none); see `rtc_assert.demo.tasks`. Anywhere a model or a
probe set is named, ``demo:NAME`` means one of these.
"""

from __future__ import annotations

from pathlib import Path

from rtc_assert.errors import DemoNameError

MODEL_NAMES: tuple[str, ...] = ("base", "collapsed", "masked", "partial", "rambling")
ADAPTER_NAMES: tuple[str, ...] = ("collapsed-lora", "masked-lora")
"""PEFT LoRA adapters on ``base`` (folders with ``adapter_config.json``)."""
PROBE_SET_NAMES: tuple[str, ...] = ("reasoning", "finetune")
ZOO_DIR = Path(__file__).parent / "zoo"
THRESHOLDS_FILE = Path(__file__).parent / "thresholds.yaml"
"""The demo's gate (`rtc-assert demo`): the repository's thresholds.yaml, on the zoo."""
SPEC_PREFIX = "demo:"
SERIES_SPEC = "demo:sweep"
"""The zoo's checkpoint series of the collapsing run, for ``rtc-assert sweep``."""
MAX_NEW_TOKENS = 64
"""Generation budget for the zoo: every complete trace and answer fits (see MEASURED.md)."""

__all__ = [
    "ADAPTER_NAMES",
    "MAX_NEW_TOKENS",
    "MODEL_NAMES",
    "PROBE_SET_NAMES",
    "THRESHOLDS_FILE",
    "ZOO_DIR",
    "DemoNameError",
    "checkpoint",
    "is_demo_spec",
    "probes",
    "resolve_model_spec",
    "resolve_probe_spec",
]


def _known(kind: str, name: str, known: tuple[str, ...]) -> None:
    if name not in known:
        raise DemoNameError(
            f"unknown demo {kind} {name!r}; known: {', '.join(known)} "
            f"(write them as {SPEC_PREFIX}NAME, e.g. {SPEC_PREFIX}{known[0]})"
        )


def checkpoint(name: str) -> Path:
    """The folder of demo model or adapter ``name``, ready for ``from_pretrained`` (offline)."""
    _known("model", name, MODEL_NAMES + ADAPTER_NAMES)
    folder = ZOO_DIR / name
    marker = "adapter_config.json" if name in ADAPTER_NAMES else "config.json"
    if not (folder / marker).is_file():
        raise DemoNameError(
            f"demo model {name!r} is missing from {ZOO_DIR}; rebuild the zoo with "
            "`python -m rtc_assert.demo.build`"
        )
    return folder


def probes(name: str):  # -> rtc_assert.probes.probe.ProbeSet
    """The bundled probe set ``name`` (``reasoning`` or ``finetune``), fixed seed, 256 probes."""
    from rtc_assert.demo.tasks import PROBE_SET_VERSION, probe_examples
    from rtc_assert.probes.probe import Probe, ProbeSet

    _known("probe set", name, PROBE_SET_NAMES)
    scorer = "numeric" if name == "reasoning" else "exact"
    return ProbeSet(
        name=f"demo-{name}",
        version=PROBE_SET_VERSION,
        probes=tuple(
            Probe(
                id=f"{name}-{index:03d}",
                prompt=example.prompt,
                answer=example.answer,
                scorer=scorer,
                metadata={"domain": example.domain, "reference_reasoning": example.reasoning},
            )
            for index, example in enumerate(probe_examples(name))  # type: ignore[arg-type]
        ),
    )


def is_demo_spec(spec: str) -> bool:
    """Whether ``spec`` names something in the zoo (``demo:NAME``)."""
    return spec.startswith(SPEC_PREFIX)


def resolve_model_spec(spec: str) -> str:
    """``demo:NAME`` as its checkpoint folder; any other spec (hub id, path) unchanged."""
    if not is_demo_spec(spec):
        return spec
    return str(checkpoint(spec[len(SPEC_PREFIX) :]))


def resolve_probe_spec(spec: str):  # -> rtc_assert.probes.probe.ProbeSet
    """``demo:NAME`` as the bundled probe set; raises `DemoNameError` for anything else."""
    if not is_demo_spec(spec):
        raise DemoNameError(f"{spec!r} is not a demo probe set spec ({SPEC_PREFIX}NAME)")
    return probes(spec[len(SPEC_PREFIX) :])


def _register() -> None:
    """Make ``demo:NAME`` resolve wherever a model, a probe set or a series is named."""
    from rtc_assert.generation.checkpoints import register_series
    from rtc_assert.generation.models import register_models
    from rtc_assert.probes.sources import register_probe_sets

    register_models(SPEC_PREFIX, lambda spec: Path(resolve_model_spec(spec)))
    register_probe_sets(SPEC_PREFIX, resolve_probe_spec)
    register_series(SERIES_SPEC, ZOO_DIR / "sweep")


_register()
