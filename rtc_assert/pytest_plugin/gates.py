"""The state behind the pytest hooks: sessions per thresholds file, reports at the end."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rtc_assert.config import Overrides, RtcConfig, load_config
from rtc_assert.decide.gates import GateResult
from rtc_assert.errors import RtcAssertError
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.generation.fingerprint import merged_fingerprints
from rtc_assert.record import (
    SessionRecord,
    merge_records,
    read_record,
    session_record,
    write_record,
)
from rtc_assert.reports.files import write_reports
from rtc_assert.reports.markdown import append_step_summary
from rtc_assert.reports.tables import verdict_word
from rtc_assert.reports.terminal import DEFAULT_WIDTH, print_summary
from rtc_assert.runs import Run
from rtc_assert.session import RtcSession


@dataclass
class GatePlugin:
    """Sessions by thresholds file, errors met, and the reports written at the end."""

    default_config: Path
    overrides: Overrides
    report_dir: Path | None = None
    cache_dir: Path | None = None
    """Generation cache folder; None generates everything."""
    worker_id: str | None = None
    """The pytest-xdist worker this process is, if any."""
    exchange_dir: Path | None = None
    """Where xdist workers leave their records for the controller."""
    configs: dict[Path, RtcConfig] = field(default_factory=dict)
    sessions: dict[tuple[Path, str | None], RtcSession] = field(default_factory=dict)
    """By thresholds file and candidate."""
    errors: list[str] = field(default_factory=list)
    collection_errors: int = 0
    """Files pytest failed to collect (a broken thresholds.yaml): pytest then stops the run."""
    deselected: set[str] = field(default_factory=set)
    """Ids of gates left out by ``-k``/``-m``: decided with the others where they are decided
    together, but not reported."""
    final_record: SessionRecord | None = None

    @classmethod
    def from_pytest(cls, config: Any) -> GatePlugin:
        option = config.getoption
        explicit = option("--rtc-config")
        default = Path(explicit) if explicit else config.rootpath / config.getini("rtc_config")
        report = option("--rtc-report")
        worker_input = getattr(config, "workerinput", None) or {}
        cache_dir = None
        if not option("--rtc-no-cache"):
            explicit_cache = option("--rtc-cache-dir")
            if explicit_cache:
                cache_dir = Path(explicit_cache)
            elif getattr(config, "cache", None) is not None:
                cache_dir = config.cache.mkdir("rtc-assert")
        exchange = worker_input.get("rtc_exchange")
        return cls(
            default_config=default.resolve(),
            overrides=Overrides(
                candidate=option("--rtc-candidate"),
                base=option("--rtc-base"),
                backend=option("--rtc-backend"),
                limit=option("--rtc-limit"),
                candidate_option="--rtc-candidate",
                base_option="--rtc-base",
            ),
            report_dir=Path(report) if report else None,
            cache_dir=cache_dir,
            worker_id=worker_input.get("workerid"),
            exchange_dir=Path(exchange) if exchange else None,
        )

    def exchange_for_workers(self) -> str:
        """On the xdist controller: the folder workers write their records into."""
        if self.exchange_dir is None:
            self.exchange_dir = Path(tempfile.mkdtemp(prefix="rtc-assert-xdist-"))
        return str(self.exchange_dir)

    def is_thresholds_file(self, path: Path) -> bool:
        """Whether pytest should collect ``path`` as gates."""
        if path.suffix not in {".yaml", ".yml"}:
            return False
        return path.resolve() == self.default_config or path.name == self.default_config.name

    def config_for(self, path: Path | None) -> RtcConfig:
        """A thresholds file (default: the configured one), loaded once, overrides applied."""
        path = (path or self.default_config).resolve()
        if path not in self.configs:
            if not path.is_file():
                raise RtcAssertError(
                    f"no thresholds file at {path}: create one (see the README) or pass "
                    "--rtc-config PATH"
                )
            self.configs[path] = self.overrides.apply(load_config(path))
        return self.configs[path]

    def sessions_for(self, path: Path | None) -> list[RtcSession]:
        """One session per candidate the thresholds file names, created once."""
        path = (path or self.default_config).resolve()
        sessions = []
        for config in self.config_for(path).per_candidate():
            key = (path, config.candidate)
            if key not in self.sessions:
                cache = GenerationCache(self.cache_dir) if self.cache_dir is not None else None
                self.sessions[key] = RtcSession(config=config, config_dir=path.parent, cache=cache)
            sessions.append(self.sessions[key])
        return sessions

    def session_for(self, path: Path | None, candidate: str | None = None) -> RtcSession:
        """The session of one candidate of a thresholds file (default: its first)."""
        sessions = self.sessions_for(path)
        return next((s for s in sessions if s.config.candidate == candidate), sessions[0])

    def note_error(self, error: Exception) -> None:
        """Remember why a gate could not be decided, for the run record (an error that is no
        `RtcAssertError` is an internal one, named by its type), once however many gates
        met it."""
        known = isinstance(error, RtcAssertError)
        message = str(error) if known else f"internal error {type(error).__name__}: {error}"
        if message not in self.errors:
            self.errors.append(message)

    @staticmethod
    def junit_properties(result: GateResult) -> dict[str, str]:
        """The gate's numbers as JUnit XML properties."""
        properties = {"rtc_verdict": verdict_word(result).lower(), "rtc_rule": result.reason}
        for model in ("candidate", "base"):
            rate = getattr(result, model)
            if rate is not None:
                properties[f"rtc_{model}"] = f"{rate.value:.6f}"
        if result.drop is not None:
            properties["rtc_drop"] = f"{result.drop.value:.6f}"
        return properties

    def record(self) -> SessionRecord | None:
        """The run record of everything generated and decided, or None if nothing was."""
        sessions = [s for s in self.sessions.values() if s.runs or s.results]
        if not sessions and not self.errors:
            return None
        first = next(iter(self.configs.values()), None)
        # Candidates of one file share the base: keep each model's run on a set once.
        runs: dict[tuple[str, str, str], Run] = {}
        for run in (run for s in sessions for run in s.runs):
            key = (run.model, run.probe_set.name, run.probe_set.version)
            if key not in runs or len(run.outcomes) > len(runs[key].outcomes):
                runs[key] = run
        return session_record(
            config=first.model_dump(mode="json") if first else {},
            runs=list(runs.values()),
            gates=[
                result
                for s in sessions
                for result in s.results
                if result.gate.id not in self.deselected
            ],
            timings={k: v for s in sessions for k, v in s.timings.items()},
            models=merged_fingerprints(*(s.fingerprints for s in sessions)),
            error="; ".join(self.errors) or None,
        )

    def print_summary(
        self, file: TextIO, *, width: int = DEFAULT_WIDTH, color: bool = False
    ) -> bool:
        """Print the summary tables ``width`` columns wide, coloured or not; False when there
        is nothing to show."""
        record = self.final_record or self.record()
        if record is None or self.worker_id is not None:
            return False
        print_summary(record, file, width=width, color=color)
        return True

    def finish(self) -> None:
        """Write the run record, summary.md and report.html, and the GitHub step summary.

        An xdist worker only leaves its record for the controller, which merges them.
        """
        record = self.record()
        for session in self.sessions.values():
            session.close()
        if self.worker_id is not None:
            if record is not None and self.exchange_dir is not None:
                write_record(record, self.exchange_dir / self.worker_id)
            return
        if self.exchange_dir is not None:
            records = [read_record(p) for p in sorted(self.exchange_dir.glob("*/rtc-run.json"))]
            records += [record] if record is not None else []
            shutil.rmtree(self.exchange_dir, ignore_errors=True)
            record = merge_records(records) if records else None
        if record is None:
            return
        self.final_record = record
        if self.report_dir is not None:
            write_reports(record, self.report_dir)
        append_step_summary(record)
