"""The gate without pytest: ``rtc-assert eval``, ``compare``, ``sweep`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from rtc_assert import demo
from rtc_assert.config import (
    ConfigError,
    Overrides,
    Role,
    RtcConfig,
    check_model_over_files,
    folder_path,
    load_config,
    positive_int,
    validate_config,
)
from rtc_assert.errors import redact
from rtc_assert.generation.backends import BACKEND_NAMES
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.generation.checkpoints import find_checkpoints
from rtc_assert.probes.sources import is_named_source
from rtc_assert.record import INTERRUPTED, SessionRecord, session_record
from rtc_assert.reports.files import write_reports
from rtc_assert.reports.markdown import append_step_summary
from rtc_assert.reports.safe_text import one_line, printable
from rtc_assert.reports.sweep import (
    CHART_FILE,
    TABLE_HEADER,
    base_lines,
    table_rows,
    unknown_lines,
    verdict_lines,
    write_sweep,
)
from rtc_assert.reports.terminal import print_summary, summary_console, terminal_width
from rtc_assert.session import RtcSession
from rtc_assert.sweep import SWEEP_INTERRUPTED, Sweep, check_sweep

DEFAULT_GATES: list[dict[str, Any]] = [
    {"metric": "valid_rate", "max_drop": 0.10},
    {"metric": "truncated_rate", "max_drop": 0.10},
    {"metric": "reasoning_conditioned_accuracy", "max_drop": 0.10},
    {"metric": "answer_accuracy", "max_drop": 0.10},
]
"""Gates of ``compare`` when no thresholds file is given."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by eval and compare."""
    add_run_arguments(parser)
    add_report_argument(parser)


def add_report_argument(parser: argparse.ArgumentParser, where: str = "here") -> None:
    """--report DIR: the run record and the reports."""
    parser.add_argument(
        "--report",
        type=folder_path,
        metavar="DIR",
        help=f"write the reports {where}: rtc-run.json, summary.md, report.html",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Probe sets, config, backend, generation and cache options of eval, compare and sweep."""
    parser.add_argument(
        "--probes",
        action="append",
        metavar="SET",
        help="probe set: library:NAME, demo:NAME, hf:OWNER/NAME:SPLIT or a file (repeatable)",
    )
    parser.add_argument("--scorer", help="scorer of probes that name none")
    parser.add_argument("--config", type=Path, help="thresholds.yaml to start from")
    parser.add_argument("--backend", choices=BACKEND_NAMES)
    parser.add_argument("--max-new-tokens", type=positive_int)
    parser.add_argument(
        "--limit", type=positive_int, help="use only the first N probes of each set"
    )
    add_cache_arguments(parser)


def add_generations_arguments(parser: argparse.ArgumentParser, options: list[str]) -> None:
    """Files of existing generations to read instead of generating, and their markup."""
    for option in options:
        parser.add_argument(
            f"--{option}",
            type=Path,
            metavar="FILE",
            help="read these generations (lm-eval samples, an Inspect .eval or JSON log, OpenAI "
            "batch output or plain JSONL) on the one probe set instead of generating",
        )
    parser.add_argument(
        "--generations-format", choices=["plain", "lm-eval", "inspect", "openai-batch"]
    )
    parser.add_argument("--markup", choices=["tags", "harmony", "think_response", "final_marker"])
    parser.add_argument("--open-tag", help="reasoning opening tag of raw completions")
    parser.add_argument("--close-tag", help="reasoning closing tag, with --open-tag")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rtc-assert``, else ``~/.cache/rtc-assert``."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "rtc-assert"


def add_cache_arguments(parser: argparse.ArgumentParser, *, switch: bool = True) -> None:
    """--cache-dir, and --no-cache where generation happens."""
    parser.add_argument(
        "--cache-dir",
        type=folder_path,
        default=default_cache_dir(),
        help="generation cache folder",
    )
    if switch:
        parser.add_argument("--no-cache", action="store_true", help="read and write no cache")


def _cache(args: argparse.Namespace) -> GenerationCache | None:
    return None if getattr(args, "no_cache", False) else GenerationCache(args.cache_dir)


def _config(
    args: argparse.Namespace,
    *,
    models: dict[Role, tuple[str, str | None]],
    gates: list,
    check: Callable[[RtcConfig, RtcConfig | None], None] | None = None,
) -> RtcConfig:
    """The configuration of a command: ``--config`` (or ``gates``) with the options over it;
    ``models`` gives each role's option and the model spec it named, if any. ``check`` is
    called with it and the ``--config`` it was built from (None without), whose lines its
    errors can name (the configuration built here knows none)."""
    files = _generations_files(args)
    loaded = None
    if args.config is not None:
        loaded = load_config(args.config)
        for role, (option, spec) in models.items():
            # A role whose files the command line gives is read from those: spec names them.
            if spec and role not in files:
                check_model_over_files(loaded, role, spec, option)
        base = loaded.model_dump()
    else:
        base = {"probe_sets": {}, "gates": gates}
    if args.probes:
        base["probe_sets"] = {
            Path(spec).stem if not is_named_source(spec) else spec.split(":", 1)[1]: {
                "source": spec if is_named_source(spec) else str(Path(spec).resolve()),
                "scorer": args.scorer,
            }
            for spec in args.probes
        }
    if not base["probe_sets"]:
        raise ConfigError(
            "no probe sets to run: give --probes SET (repeatable) or --config thresholds.yaml"
        )
    if args.max_new_tokens is not None:
        base.setdefault("generation", {})["max_new_tokens"] = args.max_new_tokens
    base.update({role: spec for role, (_, spec) in models.items() if spec})
    _generations_options(args, files, base)
    config = validate_config(base, "the command-line options")
    config = Overrides(backend=args.backend, limit=args.limit).apply(config)
    if check is not None:
        check(config, loaded)
    return config


def _generations_files(args: argparse.Namespace) -> dict[Role, Path]:
    """--generations, --candidate-generations and --base-generations, by role."""
    roles: tuple[tuple[Role, str], ...] = (
        ("candidate", "generations"),
        ("candidate", "candidate_generations"),
        ("base", "base_generations"),
    )
    return {
        role: getattr(args, option)
        for role, option in roles
        if getattr(args, option, None) is not None
    }


def _generations_options(
    args: argparse.Namespace, files: dict[Role, Path], base: dict[str, Any]
) -> None:
    """The generations files of the command line (``files``) and the markup options."""
    if files:
        if len(base["probe_sets"]) != 1:
            raise ConfigError(
                "a generations file is of one probe set: give exactly one --probes "
                f"(configured: {', '.join(base['probe_sets']) or 'none'})"
            )
        (name,) = base["probe_sets"]
        base.setdefault("generations", {})
        for role, path in files.items():
            entry = {"file": str(path.resolve()), "format": args.generations_format}
            base["generations"][role] = {name: entry}
    for option in ("markup", "open_tag", "close_tag"):
        if getattr(args, option, None):
            base.setdefault("trace_format", {})[option] = getattr(args, option)


def _finish(session: RtcSession, config_dump: dict, args: argparse.Namespace) -> SessionRecord:
    record = session_record(
        config_dump, session.runs, session.results, session.timings, session.fingerprints
    )
    # The terminal's width (120 columns where stdout is no terminal); colour on a terminal.
    print_summary(record, sys.stdout, width=terminal_width(), color=None)
    if args.report is not None:
        path = write_reports(record, args.report)
        print(f"run record: {path}")
    append_step_summary(record)
    return record


@contextmanager
def _partial_record(
    session: RtcSession, config_dump: dict, args: argparse.Namespace
) -> Iterator[None]:
    """On Ctrl-C or an error midway, write the run record of what was computed (its
    ``error`` says why it stopped) into ``--report``, then let the interruption go on."""
    try:
        yield
    except (KeyboardInterrupt, Exception) as error:
        if args.report is not None:
            reason = INTERRUPTED if isinstance(error, KeyboardInterrupt) else redact(str(error))
            record = session_record(
                config_dump,
                session.runs,
                session.results,
                session.timings,
                session.fingerprints,
                error=reason,
            )
            print(f"partial run record: {write_reports(record, args.report)}")
        raise


def _config_dir(args: argparse.Namespace) -> Path:
    return args.config.resolve().parent if args.config is not None else Path.cwd()


def eval_command(args: argparse.Namespace) -> int:
    """Metrics of one model on the probe sets (or of a file of its generations); no gates."""
    if args.model is None and args.generations is None:
        raise ConfigError("give --model, or --generations FILE (with --model for its template)")
    config = _config(args, models={"candidate": ("--model", args.model)}, gates=DEFAULT_GATES)
    session = RtcSession(config=config, config_dir=_config_dir(args), cache=_cache(args))
    with _partial_record(session, config.model_dump(mode="json"), args):
        for name in config.probe_sets:
            session.run(name, "candidate")
    _finish(session, config.model_dump(mode="json"), args)
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """The gate without pytest: exit status 1 when a gate fails."""
    models: dict[Role, tuple[str, str | None]] = {
        "candidate": ("--candidate", args.candidate),
        "base": ("--base", args.base),
    }
    config = _config(args, models=models, gates=DEFAULT_GATES)
    session = RtcSession(config=config, config_dir=_config_dir(args), cache=_cache(args))
    with _partial_record(session, config.model_dump(mode="json"), args):
        results = session.decide_all()
    _finish(session, config.model_dump(mode="json"), args)
    return 0 if all(result.passed for result in results) else 1


def sweep_command(args: argparse.Namespace) -> int:
    """Gate each checkpoint of a series against the base (generated, or read from the files
    of ``generations.base``); exit status 1 when any fails."""
    checkpoints = find_checkpoints(args.checkpoints)
    models: dict[Role, tuple[str, str | None]] = {"base": ("--base", args.base)}
    config = _config(args, models=models, gates=DEFAULT_GATES, check=check_sweep)
    session = RtcSession(config=config, config_dir=_config_dir(args), cache=_cache(args))
    sweep = Sweep(session)
    try:
        record = sweep.run(checkpoints)
    except (KeyboardInterrupt, Exception) as error:
        # The checkpoints gated before Ctrl-C or an error midway are kept: a partial record.
        reason = SWEEP_INTERRUPTED if isinstance(error, KeyboardInterrupt) else redact(str(error))
        path = write_sweep(sweep.record(reason), args.report)
        print(f"partial sweep record: {path}; chart: {path.parent / CHART_FILE}")
        raise
    finally:
        session.close()
    console = summary_console(sys.stdout, width=terminal_width(), color=None)
    for probe_set in record.probe_sets:
        table = Table(*TABLE_HEADER, title=Text(one_line(probe_set)), title_justify="left")
        for row in table_rows(record, probe_set):
            table.add_row(*(Text(one_line(cell)) for cell in row))  # names are not markup
        console.print(table)
    lines = [*base_lines(record), *unknown_lines(record), *verdict_lines(record)]
    print(printable("\n".join(lines)))
    path = write_sweep(record, args.report)
    print(f"sweep record: {path}; chart: {path.parent / CHART_FILE}")
    return 0 if record.first_failing is None else 1


def demo_command(args: argparse.Namespace) -> int:
    """The gate on the demo zoo: base vs collapsed and base vs masked."""
    config_path = demo.THRESHOLDS_FILE
    outcomes = {}
    for candidate in ("collapsed", "masked"):
        print(f"\n== demo:{candidate} against demo:base ({config_path.name})\n")
        config = load_config(config_path).model_copy(update={"candidate": f"demo:{candidate}"})
        config = Overrides(limit=args.limit).apply(config)
        session = RtcSession(config=config, config_dir=config_path.parent, cache=_cache(args))
        # Each candidate's reports in a folder of its own: DIR/collapsed, DIR/masked.
        report = None if args.report is None else args.report / candidate
        own_args = argparse.Namespace(**{**vars(args), "report": report})
        with _partial_record(session, config.model_dump(mode="json"), own_args):
            results = session.decide_all()
        _finish(session, config.model_dump(mode="json"), own_args)
        outcomes[candidate] = all(result.passed for result in results)
    print(
        "\nThe collapsed model keeps its answers on the fine-tuning domain but lost its "
        f"reasoning: gate {'PASSED (unexpected)' if outcomes['collapsed'] else 'FAILED'}. "
        f"The masked fine-tune kept it: gate {'PASSED' if outcomes['masked'] else 'FAILED'}."
    )
    return 0 if not outcomes["collapsed"] and outcomes["masked"] else 1


def cache_command(args: argparse.Namespace) -> int:
    """``cache info``: where, how many, how big; ``cache clear``: empty it."""
    cache = GenerationCache(args.cache_dir)
    if args.action == "clear":
        print(f"{cache.path}: removed {cache.clear()} generations")
    else:
        count, size = cache.stats()
        print(f"{cache.path}: {count} generations, {size / 1e6:.1f} MB")
    return 0
