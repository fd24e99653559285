"""Gate on generations that already exist: files that other tools wrote, read as runs.

Readers, one per format, stream `FileRecord`s; `pair` matches them with the probes;
`scored_generations` classifies and scores them in chunks (constant memory); `generations_run`
builds the `Run` that gates and reports use as if rtc-assert had generated it.

The markup is never guessed. Records that hold reasoning apart (a server's split, Inspect's
reasoning parts) carry it as a `ServerSplit` and are classified by the same rules as a live
chat response (`rtc_assert.traces.server_split`). Raw completions, and splits with no
reasoning field (whose content alone may hold the tags), need ``trace_format`` (``markup`` is
the markup as configured) or a tokenizer whose chat template shows it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from rtc_assert.generation.requests import Generation, GenerationSettings, render_prompt
from rtc_assert.ingest.inspect_log import is_inspect_json, read_inspect
from rtc_assert.ingest.lm_eval import read_lm_eval
from rtc_assert.ingest.openai_batch import read_openai_batch
from rtc_assert.ingest.plain import read_plain
from rtc_assert.ingest.records import (
    FileDigest,
    FileRecord,
    GenerationsFileError,
    pair,
    parse_json_line,
    text_lines,
)
from rtc_assert.metrics import compute_metrics
from rtc_assert.probes.probe import Probe, ProbeSet
from rtc_assert.runs import Run, score_generations
from rtc_assert.scoring import ScoredTrace
from rtc_assert.traces.classify import STANDARD_TAGS, Markup
from rtc_assert.traces.detection import (
    DetectedTemplate,
    ThinkingSwitch,
    TraceSetup,
    detect_template,
)

GenerationsFormat = Literal["plain", "lm-eval", "inspect", "openai-batch"]


class Reader(Protocol):
    """A format's reader: the file's records, streamed, its bytes fed to ``digest``."""

    def __call__(self, path: Path, digest: FileDigest | None = None) -> Iterator[FileRecord]: ...


READERS: dict[str, Reader] = {
    "plain": read_plain,
    "lm-eval": read_lm_eval,
    "inspect": read_inspect,
    "openai-batch": read_openai_batch,
}
CHUNK = 1024
"""Generations classified and scored together (one batched tokenizer call)."""

__all__ = [
    "READERS",
    "FileDigest",
    "FileRecord",
    "GenerationsFileError",
    "GenerationsFormat",
    "detect_format",
    "file_template",
    "generations_run",
    "read_generations",
    "scored_generations",
]


def detect_format(path: Path) -> GenerationsFormat:
    """The format of a generations file, from its container, its first bytes or first line.

    Only the start of the file is read: a zip archive or a document that begins as an
    Inspect JSON log is Inspect's; anything else is JSONL, told by its first line's fields.
    """
    if zipfile.is_zipfile(_existing(path)) or is_inspect_json(path):
        return "inspect"
    for number, line in text_lines(path):
        if line.strip() in ("{", "["):
            raise GenerationsFileError(
                f"{path}:{number}",
                "one JSON document over several lines, not JSONL, and not an Inspect log (a "
                'JSON log begins {"version": N, "status": ..., "eval": {...}); the JSONL '
                "formats hold one JSON object a line",
            )
        first = parse_json_line(line, f"{path}:{number}")
        if "custom_id" in first and "response" in first:
            return "openai-batch"
        if "doc_id" in first and "resps" in first:
            return "lm-eval"
        if "probe_id" in first:
            return "plain"
        raise GenerationsFileError(
            f"{path}:{number}",
            "not a generations file rtc-assert reads: expected lm-eval samples (doc_id, resps), "
            "OpenAI batch output (custom_id, response) or the plain format (probe_id, "
            f"completion); fields here: {sorted(first)[:8]!a}",
        )
    raise GenerationsFileError(str(path), "holds no generations (0 records)")


def read_generations(
    path: Path, fmt: GenerationsFormat | None = None, digest: FileDigest | None = None
) -> Iterator[FileRecord]:
    """Every record of a generations file, streamed; the format detected unless given.

    ``digest``: fed the bytes the reader reads (see `FileDigest`).
    """
    return READERS[fmt or detect_format(path)](_existing(path), digest)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise GenerationsFileError(str(path), "no such file; give the file the tool wrote")
    return path


def _marked(record: FileRecord, markup: Markup | None, source: str) -> FileRecord:
    """``record``, checked to be classifiable: its reasoning is split out, or a markup is named."""
    split = record.split
    # A reasoning field, or reasoning returned without its text (hidden): the server's count
    # of it, or a redacted part.
    split_out = split is not None and (
        split.reasoning is not None or split.hidden or bool(record.reasoning_tokens)
    )
    if markup is None and not split_out:
        what = "a raw completion" if split is None else "no reasoning field beside the content"
        raise GenerationsFileError(
            record.where,
            f"{what}, and nothing says how its reasoning is marked: set trace_format "
            "(markup, or open_tag and close_tag), or name the model whose chat template shows "
            f"it (--model, or candidate:/base: in thresholds.yaml) for {source}",
        )
    return record


def scored_generations(
    records: Iterable[FileRecord],
    probe_set: ProbeSet,
    *,
    source: str,
    markup: Markup | None,
    prefilled: bool | None = None,
    min_reasoning_chars: int = 1,
    tokenizer: Any = None,
    prompt_of: Callable[[Probe], str] | None = None,
    gated: ProbeSet | None = None,
) -> Iterator[tuple[Generation, ScoredTrace]]:
    """Pair, classify and score records in chunks of `CHUNK`, without holding the file.

    ``prompt_of`` gives a probe's prompt when the file stores none (the model's chat
    template), so a prefilled or thinking-off prompt is still read from its tail.
    ``gated``: only these probes of ``probe_set`` (see `pair`).
    """
    chunk: list[Generation] = []

    def flush() -> Iterator[tuple[Generation, ScoredTrace]]:
        if not chunk:
            return
        scored = score_generations(
            probe_set,
            chunk,
            fmt=markup,
            prefilled=prefilled,
            min_reasoning_chars=min_reasoning_chars,
            tokenizer=tokenizer,
        )
        yield from zip(chunk, scored, strict=True)
        chunk.clear()

    marked = (_marked(record, markup, source) for record in records)
    for generation in pair(marked, probe_set, source, prompt_of, gated):
        chunk.append(generation)
        if len(chunk) == CHUNK:
            yield from flush()
    yield from flush()


def file_template(markup: Markup | None, source: str) -> DetectedTemplate:
    """What stands for a chat template when no model is named: the file's own split."""
    evidence = (
        f"no model named for {source}: raw completions classified with trace_format's markup"
        if markup is not None
        else f"no model named for {source}: only its reasoning/answer split marks reasoning"
    )
    return DetectedTemplate(
        markup=markup or STANDARD_TAGS,
        prefilled=False,
        closes_block=False,
        switch=ThinkingSwitch("none"),
        recognised=True,
        evidence=evidence,
    )


def generations_run(
    path: str | Path,
    probe_set: ProbeSet,
    *,
    model: str,
    fmt: GenerationsFormat | None = None,
    markup: Markup | None = None,
    tokenizer: Any = None,
    trace: TraceSetup | None = None,
    settings: GenerationSettings | None = None,
    confidence: float = 0.95,
    gated: ProbeSet | None = None,
    digest: FileDigest | None = None,
) -> Run:
    """The `Run` of ``model`` on ``probe_set`` (or its ``gated`` part) read from a file.

    Args:
        path: the file another tool wrote (lm-eval samples, an Inspect ``.eval`` or JSON
            log, OpenAI batch output, or the plain JSONL of ``generations.schema.json``).
        model: the name the run is reported under.
        fmt: the file's format; detected by default.
        markup: how raw completions mark reasoning (``trace_format``); with ``tokenizer``
            and no markup, the one its chat template shows.
        tokenizer: the model's tokenizer: the markup, prompts the file lacks, token counts.
        trace: the full markup setup (thresholds.yaml's ``trace_format`` applied); replaces
            ``markup``.
        settings: how the file was generated, for the record (``enable_thinking`` renders
            prompts the file lacks).
        gated: the part of ``probe_set`` to gate (a ``limit:`` or ``sample:`` of it): the
            file may hold the other probes too, which are checked and left out (a note says
            how many records).
        digest: takes the file's SHA-256 as it is read (`FileDigest.finish` gives it, the
            file hashed again only where the reader could not: an ``.eval`` archive).

    Raises:
        GenerationsFileError: naming the file and line of the first problem.
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    settings = settings or GenerationSettings()
    source = str(path)
    if trace is None:
        detected = detect_template(tokenizer) if tokenizer is not None else None
        trace = TraceSetup(
            detected or file_template(markup, source),
            markup or (detected.markup if detected else STANDARD_TAGS),
            overridden=("markup",) if markup is not None and detected else (),
        )
    # Raw completions need a markup someone named: trace_format's, or the chat template's.
    named = tokenizer is not None or markup is not None
    named = named or bool({"markup", "open_tag", "close_tag"} & set(trace.overridden))
    raw_markup = trace.markup if named else None
    prompt_of = None
    if tokenizer is not None:
        switch = trace.detected.switch

        def prompt_of(probe: Probe) -> str:
            return render_prompt(tokenizer, probe, settings, model=model, switch=switch)

    generations: list[Generation] = []
    outcomes: list[ScoredTrace] = []
    records = 0

    def counted() -> Iterator[FileRecord]:
        nonlocal records
        for record in read_generations(path, fmt, digest):
            records += 1
            yield record

    for generation, outcome in scored_generations(
        counted(),
        probe_set,
        source=source,
        markup=raw_markup,
        prefilled=trace.prefilled,
        min_reasoning_chars=trace.min_reasoning_chars,
        tokenizer=tokenizer,
        prompt_of=prompt_of,
        gated=gated,
    ):
        generations.append(generation)
        outcomes.append(outcome)
    notes = _notes(path, generations, outcomes)
    if records > len(generations):
        notes += (
            f"{path.name}: {records - len(generations)} of its {records} records are of "
            f"probes outside the {len((gated or probe_set).probes)} gated (the probe set's "
            "limit or sample) and were left out",
        )
    return Run(
        model=model,
        backend=f"file:{fmt}",
        probe_set=gated or probe_set,
        settings=settings,
        generations=tuple(generations),
        outcomes=tuple(outcomes),
        metrics=compute_metrics(outcomes, confidence),
        trace=trace,
        notes=notes,
    )


def _notes(
    path: Path, generations: list[Generation], outcomes: list[ScoredTrace]
) -> tuple[str, ...]:
    notes = []
    unknown = sum(generation.finish_reason is None for generation in generations)
    if unknown:
        open_blocks = sum(o.trace.detail.startswith("unknown") for o in outcomes)
        notes.append(
            f"{path.name} gives no finish reason for {unknown} of {len(generations)} "
            f"generations: a trace cut at the token limit cannot be told from a model that "
            f"stopped inside its block ({open_blocks} truncated with detail 'unknown')"
        )
    return tuple(notes)
