"""The ``rtc-assert`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from rtc_assert import __version__
from rtc_assert.cli import gate as cli_gate
from rtc_assert.config import folder_path, positive_int
from rtc_assert.decide.plan import plan_drop_gate
from rtc_assert.decide.spec import EarlyStoppingConfig
from rtc_assert.errors import RtcAssertError, redact
from rtc_assert.generation.requests import messages_prompt
from rtc_assert.metrics import METRICS, RATE_METRICS
from rtc_assert.probes import library as probe_library
from rtc_assert.probes.probe import ProbeSet
from rtc_assert.probes.sources import is_named_source, load_source
from rtc_assert.record import read_record
from rtc_assert.reports.html import REPORT_FILE, write_html_report
from rtc_assert.reports.safe_text import one_line, printable, printable_json
from rtc_assert.scoring import score
from rtc_assert.traces.classify import TraceFormat, classify
from rtc_assert.traces.markups import MARKUP_NAMES, markup_named


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RtcAssertError(
            f"{path}: byte {error.start} is not UTF-8; save the file as UTF-8 text"
        ) from None
    except OSError as error:
        raise RtcAssertError(f"{path}: cannot read it ({error.strerror})") from None


def _classify_command(args: argparse.Namespace) -> int:
    text = _read_text(args.file) if args.file else sys.stdin.read()
    pair = TraceFormat(args.open_tag, args.close_tag) if args.open_tag else None
    fmt = markup_named(args.markup, pair) if args.markup else pair
    trace = classify(
        text,
        finish_reason=args.finish_reason,
        prefilled=args.prefilled,
        fmt=fmt,
        min_reasoning_chars=args.min_reasoning_chars,
    )
    record = {
        "status": trace.status.value,
        "detail": trace.detail,
        "reasoning": trace.reasoning,
        "answer": trace.answer,
    }
    print(printable_json(json.dumps(record, ensure_ascii=False, indent=2)))
    return 0


def _counts(values: Iterable[str]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(Counter(values).items()))


def _describe_set(probe_set: ProbeSet) -> str:
    return one_line(
        f"{probe_set.name} version {probe_set.version}: {len(probe_set)} probes "
        f"({_counts(probe.scorer for probe in probe_set)})"
    )


def _probes_list_command(args: argparse.Namespace) -> int:
    del args
    for name, family in probe_library.FAMILIES.items():
        probe_set = probe_library.load(name)
        difficulties = _counts(probe.metadata["difficulty"] for probe in probe_set)
        print(f"{probe_library.SPEC_PREFIX}{name}: {_describe_set(probe_set)}; {difficulties}")
        print(f"    {family.description}")
    return 0


def _probes_show_command(args: argparse.Namespace) -> int:
    spec = args.name
    if spec in probe_library.FAMILIES:
        spec = probe_library.SPEC_PREFIX + spec
    elif not is_named_source(spec) and not Path(spec).exists():
        raise probe_library.LibraryNameError(
            f"{spec!r} is neither a library set ({', '.join(probe_library.FAMILIES)}) nor an "
            "existing file or folder"
        )
    probe_set = load_source(spec, scorer=args.scorer)
    print(f"{one_line(spec)}: {_describe_set(probe_set)}")
    if probe_library.is_library_spec(spec):
        family_name = spec.removeprefix(probe_library.SPEC_PREFIX).partition(":")[0]
        print(probe_library.FAMILIES[family_name].description)
    for probe in probe_set.head(min(args.count, len(probe_set))):
        tags = [str(probe.metadata[key]) for key in ("difficulty", "kind") if key in probe.metadata]
        text = probe.prompt if probe.prompt is not None else json.dumps(probe.chat_messages())
        print("\n" + one_line(probe.id + (f" [{', '.join(tags)}]" if tags else "")))
        print(textwrap.indent(printable(text), "  | ", predicate=lambda line: True))
        print(f"  answer ({probe.scorer}): {one_line(probe.answer)}")
    return 0


GIANT_PROMPT_CHARS = 100_000
"""A prompt this long outgrows most models' context: ``probes check`` warns about it."""


def _warn_giant_prompts(path: str, probe_set: ProbeSet) -> None:
    giant = [
        probe
        for probe in probe_set
        if len(probe.prompt or messages_prompt(probe)) >= GIANT_PROMPT_CHARS
    ]
    if giant:
        size = len(giant[0].prompt or messages_prompt(giant[0]))
        others = f" (and {len(giant) - 1} more)" if len(giant) > 1 else ""
        print(
            f"{path}: warning: probe {one_line(giant[0].id)!r}{others} has a prompt of "
            f"{size:,} characters, longer than most models' context; eval refuses a prompt "
            "that does not fit the model's"
        )


def _probes_check_command(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.paths:
        probe_set = load_source(path, scorer=args.scorer)
        _warn_giant_prompts(path, probe_set)
        # A regex reference is a pattern, not an answer: it cannot be scored against itself.
        unscorable = [
            probe.id
            for probe in probe_set
            if probe.scorer != "regex" and not score(probe, probe.answer)
        ]
        print(f"{one_line(path)}: {_describe_set(probe_set)}")
        if unscorable:
            failures += 1
            shown = one_line(", ".join(unscorable[:5])) + (" ..." if len(unscorable) > 5 else "")
            print(
                f"{path}: {len(unscorable)} reference answers do not score as correct by their "
                f"own scorer: {shown}"
            )
    return 1 if failures else 0


def _rate(text: str) -> float:
    """argparse type of plan's rates: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a rate between 0 and 1, such as 0.8")
    return value


def _plan_command(args: argparse.Namespace) -> int:
    lower_is_better = METRICS[args.metric].lower_is_better
    plan = plan_drop_gate(
        args.base_rate,
        args.drop,
        lower_is_better=lower_is_better,
        confidence=args.confidence,
        power=args.power,
        gates=args.gates,
        chunk_size=args.chunk_size,
    )
    change = "rise" if lower_is_better else "drop"
    print(
        f"{plan.probes} probes: a '{args.metric}' gate with max_drop {args.drop:g} "
        f"(policy confident, {args.confidence:g} confidence, early stopping in looks of "
        f"{args.chunk_size}, Holm over {args.gates} gate(s)) catches a true {change} of "
        f"{2 * args.drop:g} from a base rate of {args.base_rate:g} with {args.power:g} power: "
        f"{plan.power:.3f} in {plan.trials} seeded simulated runs (the normal approximation "
        f"alone says {plan.analytic})"
    )
    return 0


def _report_command(args: argparse.Namespace) -> int:
    output = args.output or args.record.parent / REPORT_FILE
    path = write_html_report(read_record(args.record), output)
    print(f"HTML report: {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtc-assert",
        description="Gate fine-tuned reasoning models on the health of their reasoning traces.",
    )
    parser.add_argument("--version", action="version", version=f"rtc-assert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    classify_parser = commands.add_parser(
        "classify", help="classify one completion (from a file or standard input)"
    )
    classify_parser.add_argument("file", nargs="?", type=Path)
    classify_parser.add_argument("--finish-reason", choices=["stop", "length"])
    classify_parser.add_argument(
        "--prefilled", action="store_true", help="the prompt ended with the opening tag"
    )
    classify_parser.add_argument("--open-tag", help="custom opening tag (default: <think> etc.)")
    classify_parser.add_argument("--close-tag", help="custom closing tag, with --open-tag")
    classify_parser.add_argument(
        "--markup",
        choices=MARKUP_NAMES,
        help="reasoning markup family (default: tags)",
    )
    classify_parser.add_argument("--min-reasoning-chars", type=positive_int, default=1)
    classify_parser.set_defaults(run=_classify_command)

    probes_parser = commands.add_parser("probes", help="probe files and the probe library")
    probes_commands = probes_parser.add_subparsers(dest="probes_command", required=True)
    check_parser = probes_commands.add_parser(
        "check", help="validate probe files and score each reference answer against itself"
    )
    check_parser.add_argument("paths", nargs="+")
    check_parser.add_argument("--scorer", help="scorer of probes that name none")
    check_parser.set_defaults(run=_probes_check_command)
    list_parser = probes_commands.add_parser("list", help="the bundled probe library")
    list_parser.set_defaults(run=_probes_list_command)
    show_parser = probes_commands.add_parser(
        "show", help="size, scorers and first examples of a library set or any probe source"
    )
    show_parser.add_argument(
        "name", help="a library set (arithmetic, ...) or a source: library:, demo:, hf:, a file"
    )
    show_parser.add_argument("--count", type=int, default=3, help="examples to show (default 3)")
    show_parser.add_argument("--scorer", help="scorer of probes that name none")
    show_parser.set_defaults(run=_probes_show_command)

    eval_parser = commands.add_parser("eval", help="metrics of one model on probe sets")
    eval_parser.add_argument(
        "--model", help="folder, hub id or demo:NAME (with --generations: its chat template)"
    )
    cli_gate.add_model_arguments(eval_parser)
    cli_gate.add_generations_arguments(eval_parser, ["generations"])
    eval_parser.set_defaults(run=cli_gate.eval_command)

    compare_parser = commands.add_parser(
        "compare", help="the gate without pytest: exit 1 when a gate fails"
    )
    compare_parser.add_argument("--base", help="base model (default: from --config)")
    compare_parser.add_argument("--candidate", help="candidate model (default: from --config)")
    cli_gate.add_model_arguments(compare_parser)
    cli_gate.add_generations_arguments(
        compare_parser, ["candidate-generations", "base-generations"]
    )
    compare_parser.set_defaults(run=cli_gate.compare_command)

    sweep_parser = commands.add_parser(
        "sweep",
        help="gate every checkpoint of a training run: the first that fails, the last that passes",
    )
    sweep_parser.add_argument("--base", help="base model (default: from --config)")
    sweep_parser.add_argument(
        "--checkpoints",
        required=True,
        metavar="DIR_OR_GLOB",
        help="a folder of checkpoint-N folders, a glob matching them, or demo:sweep",
    )
    cli_gate.add_run_arguments(sweep_parser)
    cli_gate.add_generations_arguments(sweep_parser, ["base-generations"])
    sweep_parser.add_argument(
        "--report",
        type=folder_path,
        default=Path("rtc-sweep"),
        metavar="DIR",
        help="write sweep.json and sweep.svg here (default: rtc-sweep)",
    )
    sweep_parser.set_defaults(run=cli_gate.sweep_command)

    plan_parser = commands.add_parser(
        "plan", help="how many probes a max_drop gate needs to catch a real drop"
    )
    plan_parser.add_argument(
        "--metric",
        default="valid_rate",
        choices=[m for m in RATE_METRICS if m != "reasoning_conditioned_accuracy"],
    )
    plan_parser.add_argument("--base-rate", type=_rate, required=True)
    plan_parser.add_argument("--drop", type=_rate, required=True, help="the gate's max_drop")
    plan_parser.add_argument("--confidence", type=_rate, default=0.95)
    plan_parser.add_argument("--power", type=_rate, default=0.8)
    plan_parser.add_argument(
        "--gates",
        type=positive_int,
        default=1,
        help="gates in the build, which Holm's correction shares alpha among (default 1)",
    )
    plan_parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=EarlyStoppingConfig().chunk_size,
        help="probes per look of early stopping (default: as decision.early_stopping)",
    )
    plan_parser.set_defaults(run=_plan_command)

    demo_parser = commands.add_parser(
        "demo", help="the gate on the demo zoo: a collapse caught, a safe fine-tune passed"
    )
    demo_parser.add_argument(
        "--limit", type=positive_int, help="use only the first N probes of each set"
    )
    cli_gate.add_report_argument(demo_parser, "into DIR/collapsed and DIR/masked")
    cli_gate.add_cache_arguments(demo_parser)
    demo_parser.set_defaults(run=cli_gate.demo_command)

    report_parser = commands.add_parser(
        "report", help="the HTML report of a run record (rtc-run.json), one self-contained file"
    )
    report_parser.add_argument("record", type=Path, metavar="RUN.json")
    report_parser.add_argument(
        "-o", "--output", type=Path, help="the page to write (default: report.html beside RUN.json)"
    )
    report_parser.set_defaults(run=_report_command)

    cache_parser = commands.add_parser("cache", help="the generation cache: info or clear")
    cache_parser.add_argument("action", choices=["info", "clear"])
    cli_gate.add_cache_arguments(cache_parser, switch=False)
    cache_parser.set_defaults(run=cli_gate.cache_command)
    return parser


def _message(error: Exception) -> str:
    """The error's message; pydantic's as field: reason pairs, without its banner and links."""
    if not isinstance(error, ValidationError):
        return str(error)
    return f"{error.title}: " + "; ".join(
        f"{'.'.join(map(str, item['loc'])) or 'value'}: {item['msg']}" for item in error.errors()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "classify" and bool(args.open_tag) != bool(args.close_tag):
        parser.error("--open-tag and --close-tag go together")
    try:
        return args.run(args)
    except (RtcAssertError, ValueError) as error:
        print(f"rtc-assert: error: {printable(redact(_message(error)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if getattr(args, "no_cache", False):
            print("rtc-assert: interrupted (nothing was cached: --no-cache)", file=sys.stderr)
        else:
            print(
                "rtc-assert: interrupted; the generations finished so far are in the cache: "
                "run the same command again to resume",
                file=sys.stderr,
            )
        return 130
