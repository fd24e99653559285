"""Stage 1, probes: what the gate asks.

- `probe`: `Probe`, `ProbeSet` and the JSONL/YAML/CSV probe files.
- `scorers`: the scorer registry (``numeric``, ``choice``, ``exact``, ``regex``, custom).
- `sources`: every way to name a probe set (a file, a data set, ``library:``, ``demo:``).
- `library`: the bundled probe sets.

Imports nothing from later stages.
"""

from rtc_assert.probes.probe import Message, Probe, ProbeSet, load_probe_set

__all__ = ["Message", "Probe", "ProbeSet", "load_probe_set"]
