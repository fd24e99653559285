"""One gate session: loads each model once, generates each (model, probe set) once.

The pytest plugin, the fixtures and the CLI all work through a session, so however many
gates and tests ask for a run, it is generated a single time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtc_assert.config import ConfigError, GenerationsFileConfig, RtcConfig
from rtc_assert.decide.early_stopping import decide_sequentially, shuffled
from rtc_assert.decide.gates import GateInputs, GateResult, decide_gates, evaluate_gate
from rtc_assert.decide.spec import GateSpec
from rtc_assert.generation.backends import (
    backend_identity,
    load_backend,
    load_backend_tokenizer,
)
from rtc_assert.generation.cache import CachedBackend, GenerationCache
from rtc_assert.generation.fingerprint import (
    FileFingerprint,
    Fingerprint,
    check_adapter_base,
    files_read,
    model_fingerprint,
    with_files,
)
from rtc_assert.generation.models import context_length, resolve_model
from rtc_assert.generation.requests import Backend
from rtc_assert.generation.tokenizers import load_tokenizer
from rtc_assert.ingest import FileDigest, file_template, generations_run
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.probes.sources import load_source
from rtc_assert.runs import Run, merge_runs, run_model
from rtc_assert.traces.detection import TraceSetup, detect_template

logger = logging.getLogger(__name__)


@dataclass
class RtcSession:
    """Models, probe sets, runs and gate results of one configuration."""

    config: RtcConfig
    config_dir: Path = field(default_factory=Path.cwd)
    cache: GenerationCache | None = None
    """Where generations are reused from and stored; None generates everything."""
    timings: dict[str, float] = field(default_factory=dict)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    """By spec: the model loaded (`model_fingerprint`), and the files of generations read
    (``generations``: path, format and SHA-256 by probe set)."""
    _backends: dict[str, Backend] = field(default_factory=dict, repr=False)
    _contexts: dict[str, int | None] = field(default_factory=dict, repr=False)
    _trace_setups: dict[str, TraceSetup] = field(default_factory=dict, repr=False)
    _probe_sets: dict[str, ProbeSet] = field(default_factory=dict, repr=False)
    _whole_probe_sets: dict[str, ProbeSet] = field(default_factory=dict, repr=False)
    """Before ``limit``/``sample``: what a generations file was written on."""
    _runs: dict[tuple[str, str], Run] = field(default_factory=dict, repr=False)
    _prefixes: dict[tuple[str, str, int], Run] = field(default_factory=dict, repr=False)
    _results: dict[str, GateResult] = field(default_factory=dict, repr=False)

    def model_spec(self, model: str) -> str:
        """A role (``candidate``/``base``) as its configured spec; any other spec unchanged."""
        if model in ("candidate", "base"):
            spec = getattr(self.config, model)
            if not spec and model in self.config.generations:
                return f"generations:{model}"
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
        if spec in ("generations:candidate", "generations:base") and spec not in self._backends:
            role = spec.removeprefix("generations:")
            raise ConfigError(
                f"the {role} has no model to generate with: thresholds.yaml gives its "
                f"generations as files (generations.{role}) and names no '{role}:', so only "
                f"the probe sets listed there can be gated; name the model ('{role}:' or "
                f"--rtc-{role}) to generate the others"
            )
        if spec not in self._backends:
            started = time.perf_counter()
            model_ref = resolve_model(spec)
            if self.config.base and spec != self.config.base:
                check_adapter_base(model_ref, resolve_model(self.config.base))
            loaded = model_fingerprint(model_ref, self.cache)
            # A model that also has files (on other probe sets) keeps naming them.
            files = files_read(self.fingerprints.get(spec, {}))
            self.fingerprints[spec] = with_files({**loaded}, files)
            name, options = self.config.backend.name, self.config.backend.options
            if self.cache is None:
                self._backends[spec] = load_backend(name, model_ref, options)
            else:
                tokenizer = load_backend_tokenizer(name, model_ref, options)
                self._backends[spec] = CachedBackend(
                    name=name,
                    identity=backend_identity(name, options),
                    tokenizer=tokenizer,
                    # The engine, started on the first miss, reuses the tokenizer.
                    start_engine=lambda: load_backend(
                        name, model_ref, options, tokenizer=tokenizer
                    ),
                    cache=self.cache,
                    model=loaded,
                )
            self._contexts[spec] = context_length(model_ref, self._backends[spec].tokenizer)
            self.timings[f"load {spec}"] = time.perf_counter() - started
        return self._backends[spec]

    def add_backend(self, spec: str, backend: Backend) -> None:
        """Generate ``spec`` with a backend started elsewhere (a model in memory, being
        trained): no load, no fingerprint, no cache."""
        self.release(spec)
        self._backends[spec] = backend

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
                # As a plain str mapping: load_source checks the field names itself.
                fields={field: column for field, column in entry.fields.items()},
                split=entry.split,
                answer_pattern=entry.answer_pattern,
            )
            self._whole_probe_sets[name] = probe_set
            if entry.sample:
                probe_set = probe_set.sample(entry.sample, entry.seed)
            self._probe_sets[name] = probe_set.head(entry.limit) if entry.limit else probe_set
        return self._probe_sets[name]

    def run(self, probe_set: str | ProbeSet, model: str = "candidate") -> Run:
        """The run of ``model`` (a role or a spec) on a probe set (a name or a `ProbeSet`)."""
        probes = self.probe_set(probe_set) if isinstance(probe_set, str) else probe_set
        return self._generate(self.model_spec(model), probes, probes.probes)

    def generated(self, probe_set: str, model: str = "candidate") -> Run:
        """What ``model`` has generated on a probe set so far (all of it unless early
        stopping ended the run), generating the whole set only if nothing is there yet."""
        probes = self.probe_set(probe_set)
        spec = self.model_spec(model)
        return self._runs.get(self._run_key(spec, probes)) or self.run(probes, spec)

    def _run_key(self, spec: str, probes: ProbeSet) -> tuple[str, str]:
        # Keyed by content: two ad-hoc sets that share a name and version never mix. A run
        # read from a file is keyed by the file too: two probe sets of the same probes, each
        # with its own file, are two runs (a model's generations on the same probes are one).
        found = self._generations_file(spec, probes)
        file = "" if found is None else f"\0{self.config_dir / found[1].file}"
        return spec, hashlib.sha256((probes.model_dump_json() + file).encode()).hexdigest()

    def _generate(self, spec: str, probes: ProbeSet, wanted: Sequence[Probe]) -> Run:
        """The run of ``spec`` on ``probes`` so far, extended to cover ``wanted``."""
        key = self._run_key(spec, probes)
        if key not in self._runs and (found := self._generations_file(spec, probes)):
            self._runs[key] = self._file_run(spec, probes, *found)
        have = self._runs.get(key)
        covered = () if have is None else have.probe_set.probes
        covered_ids = {probe.id for probe in covered}
        missing = tuple(probe for probe in wanted if probe.id not in covered_ids)
        if not missing:
            return have  # type: ignore[return-value]
        backend = self.backend(spec)
        started = time.perf_counter()
        logger.info("generating %s on %s (%d probes)", spec, probes.name, len(missing))
        part = run_model(
            backend,
            probes.model_copy(update={"probes": missing}),
            self.config.generation,
            model=spec,
            trace=self._trace_setup(spec, backend),
            confidence=self.config.decision.confidence,
            context=self._contexts.get(spec),
        )
        label = f"generate {spec} on {probes.name}"
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - started
        complete = len(covered) + len(missing) == len(probes)
        # A complete run lists its probes in the set's order, however it was generated.
        order = probes if complete else probes.model_copy(update={"probes": covered + missing})
        if have is not None or part.probe_set.probes != order.probes:
            parts = [part] if have is None else [have, part]
            part = merge_runs(parts, order, self.config.decision.confidence)
        self._runs[key] = replace(part, probes_available=None if complete else len(probes))
        return self._runs[key]

    def _generations_file(
        self, spec: str, probes: ProbeSet
    ) -> tuple[str, GenerationsFileConfig, ProbeSet] | None:
        """The configured file of ``spec``'s generations on ``probes``, if any: the probe
        set's name in thresholds.yaml, the file, and the whole probe set (before
        ``limit``/``sample``) the file was written on."""
        name = next((n for n, p in self._probe_sets.items() if p is probes), None)
        for role, files in self.config.generations.items():
            if name in files and self.model_spec(role) == spec:
                return name, files[name], self._whole_probe_sets[name]
        return None

    def _file_run(
        self,
        spec: str,
        probes: ProbeSet,
        name: str,
        source: GenerationsFileConfig,
        whole: ProbeSet,
    ) -> Run:
        """The run on ``probes`` (probe set ``name``) read from a generations file written on
        ``whole``; the model, when named, gives the markup. The file, its format and its
        SHA-256 (taken as it is read) join ``spec``'s fingerprint, by probe set."""
        started = time.perf_counter()
        path = self.config_dir / source.file
        tokenizer = None
        if not spec.startswith("generations:"):
            options = self.config.backend.options
            trust = options.get("trust_remote_code", False)
            tokenizer = load_tokenizer(resolve_model(spec), trust_remote_code=trust)
            detected = detect_template(tokenizer)
        else:
            detected = file_template(self.config.trace_format.configured_markup(), str(path))
        digest = FileDigest()
        run = generations_run(
            path,
            whole,
            gated=probes,
            model=spec,
            fmt=source.format,
            tokenizer=tokenizer,
            trace=self.config.trace_format.setup(detected),
            settings=self.config.generation,
            confidence=self.config.decision.confidence,
            digest=digest,
        )
        read: FileFingerprint = {
            "file": str(path),
            "format": run.backend.removeprefix("file:"),
            "sha256": digest.finish(path),
        }
        self.fingerprints[spec] = with_files(self.fingerprints.get(spec, {}), {name: read})
        self.timings[f"read {spec} on {probes.name}"] = time.perf_counter() - started
        return run

    def _trace_setup(self, spec: str, backend: Backend) -> TraceSetup:
        """The markup to classify ``spec``'s output with: detected once, then overridden."""
        if spec not in self._trace_setups:
            detected = detect_template(backend.tokenizer)
            self._trace_setups[spec] = self.config.trace_format.setup(detected)
        return self._trace_setups[spec]

    def _prefix(self, name: str, model: str, count: int) -> Run:
        """``model``'s run on the first ``count`` probes of the set's shuffled order.

        Memoised: every gate on the set asks for the same prefix at each look, and a
        prefix never changes once generated.
        """
        key = (name, self.model_spec(model), count)
        if key not in self._prefixes:
            probes = self.probe_set(name)
            wanted = shuffled(probes, self.config.decision.seed).probes[:count]
            run = self._generate(key[1], probes, wanted)
            if len(run.probe_set) != count:
                prefix = probes.model_copy(update={"probes": wanted})
                run = merge_runs([run], prefix, self.config.decision.confidence)
            self._prefixes[key] = run
        return self._prefixes[key]

    def compare(self, probe_set: str | ProbeSet) -> tuple[Run, Run]:
        """The candidate's and the base's runs on one probe set."""
        return self.run(probe_set, "candidate"), self.run(probe_set, "base")

    def _needs_base(self, spec: GateSpec) -> bool:
        has_base = bool(self.config.base) or "base" in self.config.generations
        return spec.kind == "max_drop" and has_base

    def gate(self, spec: GateSpec) -> GateResult:
        """Decide one configured gate (generating what it needs).

        With early stopping or Holm's correction the gates are decided together, so the
        first call decides them all.
        """
        decision = self.config.decision
        together = decision.sequential or decision.corrects_across_gates
        if together and not any(s.id in self._results for s in self.config.gate_specs()):
            self._decide_together()
        if spec.id not in self._results:  # decided alone, or not one of the file's gates
            candidate = self.run(spec.probe_set, "candidate")
            base = self.run(spec.probe_set, "base") if self._needs_base(spec) else None
            self._results[spec.id] = evaluate_gate(spec, candidate, base, decision)
        return self._results[spec.id]

    def _decide_together(self) -> None:
        specs = self.config.gate_specs()
        decision = self.config.decision
        if decision.sequential:

            def runs_at(spec: GateSpec, count: int) -> tuple[Run, Run | None]:
                candidate = self._prefix(spec.probe_set, "candidate", count)
                if not self._needs_base(spec):
                    return candidate, None
                return candidate, self._prefix(spec.probe_set, "base", count)

            sizes = {spec.probe_set: len(self.probe_set(spec.probe_set)) for spec in specs}
            results = decide_sequentially(specs, sizes, runs_at, decision)
        else:
            inputs: list[GateInputs] = [
                (
                    spec,
                    self.run(spec.probe_set, "candidate"),
                    self.run(spec.probe_set, "base") if self._needs_base(spec) else None,
                )
                for spec in specs
            ]
            results = decide_gates(inputs, decision)
        self._results.update({result.gate.id: result for result in results})

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

    def release(self, model: str) -> None:
        """Stop one model's backend (a sweep moving on to its next checkpoint); runs stay."""
        backend = self._backends.pop(self.model_spec(model), None)
        if backend is not None:
            backend.close()

    def close(self) -> None:
        """Stop the backends that hold processes or connections (vLLM, servers)."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
