"""One gate session: loads each model once, generates each (model, probe set) once.

The pytest plugin, the fixtures and the CLI all work through a session, so however many
gates and tests ask for a run, it is generated a single time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtc_assert.backends import backend_identity, load_backend
from rtc_assert.backends.transformers_backend import load_tokenizer
from rtc_assert.cache import CachedBackend, GenerationCache
from rtc_assert.config import ConfigError, GateSpec, RtcConfig
from rtc_assert.fingerprint import model_fingerprint
from rtc_assert.gates import GateResult, evaluate_gate
from rtc_assert.generation import Backend
from rtc_assert.models import resolve_model
from rtc_assert.probe_sources import load_source
from rtc_assert.probes import ProbeSet
from rtc_assert.runs import Run, run_model

logger = logging.getLogger(__name__)


@dataclass
class RtcSession:
    """Models, probe sets, runs and gate results of one configuration."""

    config: RtcConfig
    config_dir: Path = field(default_factory=Path.cwd)
    cache: GenerationCache | None = None
    """Where generations are reused from and stored; None generates everything."""
    timings: dict[str, float] = field(default_factory=dict)
    fingerprints: dict[str, dict[str, str]] = field(default_factory=dict)
    _backends: dict[str, Backend] = field(default_factory=dict, repr=False)
    _probe_sets: dict[str, ProbeSet] = field(default_factory=dict, repr=False)
    _runs: dict[tuple[str, str], Run] = field(default_factory=dict, repr=False)
    _results: dict[str, GateResult] = field(default_factory=dict, repr=False)

    def model_spec(self, model: str) -> str:
        """A role (``candidate``/``base``) as its configured spec; any other spec unchanged."""
        if model in ("candidate", "base"):
            spec = getattr(self.config, model)
            if not spec:
                option = f"--rtc-{model}"
                raise ConfigError(
                    f"no {model} model: set '{model}:' in thresholds.yaml or pass {option}"
                )
            return spec
        return model

    def backend(self, model: str) -> Backend:
        """The backend for a model (role or spec), started on first use."""
        spec = self.model_spec(model)
        if spec not in self._backends:
            started = time.perf_counter()
            model_ref = resolve_model(spec)
            self.fingerprints[spec] = model_fingerprint(model_ref)
            name, options = self.config.backend.name, self.config.backend.options
            if self.cache is None:
                self._backends[spec] = load_backend(name, model_ref, options)
            else:
                self._backends[spec] = CachedBackend(
                    name=name,
                    identity=backend_identity(name, options),
                    tokenizer=load_tokenizer(
                        model_ref, trust_remote_code=options.get("trust_remote_code", False)
                    ),
                    start_engine=lambda: load_backend(name, model_ref, options),
                    cache=self.cache,
                    model=self.fingerprints[spec],
                )
            self.timings[f"load {spec}"] = time.perf_counter() - started
        return self._backends[spec]

    def probe_set(self, name: str) -> ProbeSet:
        """A configured probe set by name, loaded once, cut to its ``limit``."""
        if name not in self._probe_sets:
            if name not in self.config.probe_sets:
                raise ConfigError(
                    f"unknown probe set {name!r}; configured: {', '.join(self.config.probe_sets)}"
                )
            entry = self.config.probe_sets[name]
            probe_set = load_source(
                entry.source,
                base_dir=self.config_dir,
                scorer=entry.scorer,
                fields=entry.fields,
                split=entry.split,
                answer_pattern=entry.answer_pattern,
            )
            if entry.sample:
                probe_set = probe_set.sample(entry.sample, entry.seed)
            self._probe_sets[name] = probe_set.head(entry.limit) if entry.limit else probe_set
        return self._probe_sets[name]

    def run(self, probe_set: str | ProbeSet, model: str = "candidate") -> Run:
        """The run of ``model`` (a role or a spec) on a probe set (a name or a `ProbeSet`)."""
        probes = self.probe_set(probe_set) if isinstance(probe_set, str) else probe_set
        spec = self.model_spec(model)
        # Keyed by content: two ad-hoc sets that share a name and version never mix.
        key = (spec, hashlib.sha256(probes.model_dump_json().encode()).hexdigest())
        if key not in self._runs:
            backend = self.backend(spec)
            started = time.perf_counter()
            logger.info("generating %s on %s (%d probes)", spec, probes.name, len(probes))
            self._runs[key] = run_model(
                backend,
                probes,
                self.config.generation,
                model=spec,
                fmt=self.config.trace_format.trace_format(),
                min_reasoning_chars=self.config.trace_format.min_reasoning_chars,
                confidence=self.config.decision.confidence,
            )
            self.timings[f"generate {spec} on {probes.name}"] = time.perf_counter() - started
        return self._runs[key]

    def compare(self, probe_set: str | ProbeSet) -> tuple[Run, Run]:
        """The candidate's and the base's runs on one probe set."""
        return self.run(probe_set, "candidate"), self.run(probe_set, "base")

    def gate(self, spec: GateSpec) -> GateResult:
        """Decide one configured gate (generating what it needs)."""
        if spec.id not in self._results:
            candidate = self.run(spec.probe_set, "candidate")
            needs_base = spec.kind == "max_drop" and self.config.base
            base = self.run(spec.probe_set, "base") if needs_base else None
            self._results[spec.id] = evaluate_gate(spec, candidate, base, self.config.decision)
        return self._results[spec.id]

    def decide_all(self) -> list[GateResult]:
        """Decide every configured gate, in the order thresholds.yaml implies."""
        return [self.gate(spec) for spec in self.config.gate_specs()]

    @property
    def runs(self) -> list[Run]:
        """Every run generated so far."""
        return list(self._runs.values())

    @property
    def results(self) -> list[GateResult]:
        """Every gate decided so far."""
        return list(self._results.values())

    def close(self) -> None:
        """Stop the backends that hold processes or connections (vLLM, servers)."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
