"""Where a probe set comes from: one source spec, resolved to a `ProbeSet`.

- ``library:NAME[:DIFFICULTY]``: a bundled set (`rtc_assert.probes.library`).
- ``demo:NAME``: a demo zoo set (`rtc_assert.demo`).
- ``hf:OWNER/NAME[:CONFIG]:SPLIT``: a data set, through the ``datasets`` library (the hub, or
  its local cache when ``HF_HUB_OFFLINE=1``).
- a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.
- a ``.parquet`` or ``.csv`` file, or a ``.jsonl``/``.yaml`` probe file.

Data-set rows become probes through a field mapping (probe field -> column; default: columns
named ``prompt`` or ``messages``, ``answer``, ``id``, ``scorer``). A set's version is a hash of
its probes, so a changed data set is never mixed up with the old one.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rtc_assert.errors import ProbeFileError, ProbeSourceError, RtcAssertError
from rtc_assert.probes import library as probe_library
from rtc_assert.probes.probe import ProbeSet, build_probes, load_probe_set

HF_PREFIX = "hf:"
NAMED_PROBE_SETS: dict[str, Callable[[str], ProbeSet]] = {
    probe_library.SPEC_PREFIX: probe_library.resolve_probe_spec
}
"""``PREFIX`` -> resolver of ``PREFIX...`` specs; `register_probe_sets` adds one (the demo
zoo registers ``demo:``)."""
HF_SPEC = re.compile(r"(?P<name>[^:/\s]+/[^:/\s]+)(?::(?P<config>[^:\s]+))?:(?P<split>[^:\s]+)")
PROBE_FIELDS = ("id", "prompt", "messages", "answer", "scorer")
TABLE_SUFFIXES = (".parquet", ".csv")
LOCAL_COPY_HINT = (
    "to use a local copy, run where the hub is reachable "
    "`datasets.load_dataset(NAME, CONFIG, split=SPLIT).save_to_disk(DIR)` (or `.to_parquet(FILE)`) "
    "and set the probe set's source to DIR (or FILE)"
)


def register_probe_sets(prefix: str, resolve: Callable[[str], ProbeSet]) -> None:
    """Resolve probe-set specs that start with ``prefix`` (e.g. ``demo:``) with ``resolve``."""
    NAMED_PROBE_SETS[prefix] = resolve


def _named_resolver(source: str) -> Callable[[str], ProbeSet] | None:
    return next((r for prefix, r in NAMED_PROBE_SETS.items() if source.startswith(prefix)), None)


def is_named_source(source: str) -> bool:
    """Whether ``source`` names something rather than a path (library:, demo:, hf:)."""
    return _named_resolver(source) is not None or source.startswith(HF_PREFIX)


def is_data_set_source(source: str, base_dir: Path = Path()) -> bool:
    """Whether ``source`` is a data set (hf:, a save_to_disk folder, Parquet or CSV)."""
    if is_named_source(source):
        return source.startswith(HF_PREFIX)
    path = base_dir / source
    return path.suffix.lower() in TABLE_SUFFIXES or path.is_dir()


def load_source(
    source: str,
    *,
    base_dir: Path = Path(),
    scorer: str | None = None,
    fields: Mapping[str, str] | None = None,
    split: str | None = None,
    answer_pattern: str | None = None,
) -> ProbeSet:
    """The probe set that ``source`` names; paths are relative to ``base_dir``.

    Args:
        source: a spec or a path (see the module docstring).
        base_dir: the folder relative paths start from (thresholds.yaml's folder).
        scorer: the scorer of probes that name none.
        fields: data sets only: probe field (id, prompt, messages, answer, scorer) -> column.
        split: save_to_disk folders holding several splits only: the split to use.
        answer_pattern: data sets only: a regular expression that finds the reference in the
            answer column (its first group, else the whole match), e.g. ``####\\s*(.+)`` for
            GSM8K's "reasoning #### 72".

    Raises:
        ProbeSourceError, ProbeFileError: naming the source, the row or line, and what to do.
    """
    data_set = is_data_set_source(source, base_dir)
    if (fields or answer_pattern) and not data_set:
        raise ProbeSourceError(
            f"{source}: 'fields' and 'answer_pattern' read data-set columns; they apply to "
            "hf:, save_to_disk folders, .parquet and .csv sources only"
        )
    if split is not None and not (base_dir / source).is_dir():
        raise ProbeSourceError(
            f"{source}: 'split' applies to save_to_disk folders only "
            f"(an hf: source names its split: {HF_PREFIX}OWNER/NAME[:CONFIG]:SPLIT)"
        )
    resolve = _named_resolver(source)
    if resolve is not None:
        return resolve(source)
    if not data_set:
        return load_probe_set(base_dir / source, scorer=scorer)
    if source.startswith(HF_PREFIX):
        name, rows = source, _hub_rows(source)
    else:
        path = base_dir / source
        name = path.stem if path.suffix else path.name
        rows = _folder_rows(path, split) if path.is_dir() else _table_rows(path)
    pattern = _compile(source, answer_pattern)
    return _probe_set(source, name, rows, dict(fields or {}), scorer, pattern)


def _compile(source: str, answer_pattern: str | None) -> re.Pattern[str] | None:
    if answer_pattern is None:
        return None
    try:
        return re.compile(answer_pattern)
    except re.error as error:
        raise ProbeSourceError(
            f"{source}: answer_pattern {answer_pattern!r} is not a regular expression: {error}"
        ) from None


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ProbeSourceError(
            "data-set sources need the `datasets` library: pip install 'rtc-assert[datasets]'"
        ) from None
    return datasets


def _hub_rows(source: str) -> list[tuple[int, dict[str, Any]]]:
    match = HF_SPEC.fullmatch(source[len(HF_PREFIX) :])
    if match is None:
        raise ProbeSourceError(
            f"{source!r} is not a hub data set spec: write {HF_PREFIX}OWNER/NAME:SPLIT or "
            f"{HF_PREFIX}OWNER/NAME:CONFIG:SPLIT, e.g. {HF_PREFIX}openai/gsm8k:main:test"
        )
    name, config, split = match.group("name", "config", "split")
    datasets = _datasets()
    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except ConnectionError as error:
        raise ProbeSourceError(
            f"{source}: the Hugging Face hub is unreachable ({error}) and the data set is not "
            f"in the local cache; {LOCAL_COPY_HINT}"
        ) from None
    except (FileNotFoundError, ValueError) as error:
        raise ProbeSourceError(
            f"{source}: cannot load {name!r} (config {config!r}, split {split!r}): {error}"
        ) from None
    return _numbered(dataset.to_list())


def _folder_rows(path: Path, split: str | None) -> list[tuple[int, dict[str, Any]]]:
    datasets = _datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as error:
        raise ProbeSourceError(
            f"{path}: not a folder written by save_to_disk ({error}); a probe set folder is a "
            "saved Dataset or DatasetDict"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise ProbeSourceError(
                f"{path}: the folder holds the splits {', '.join(loaded)}; choose one with "
                f"'split:' (got {split!r})"
            )
        loaded = loaded[split]
    elif split is not None:
        raise ProbeSourceError(f"{path}: the folder holds one split; remove 'split: {split}'")
    return _numbered(loaded.to_list())


def _table_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise ProbeFileError(path, None, "no such file")
    if path.suffix.lower() == ".csv":
        return _csv_rows(path)
    try:
        import pyarrow.parquet
    except ImportError:
        raise ProbeSourceError(
            f"{path}: Parquet files need pyarrow: pip install 'rtc-assert[datasets]'"
        ) from None
    try:
        table = pyarrow.parquet.read_table(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise ProbeFileError(path, None, f"cannot read the Parquet file: {error}") from None
    return _numbered(table.to_pylist())


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """CSV rows with the file line each starts on (the header is line 1); a row with more or
    fewer fields than the header is refused at its line."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            rows, line = [], 2
            for values in reader:
                if values and len(values) != len(header):
                    raise ProbeFileError(
                        path,
                        line,
                        f"{len(values)} fields where the header has {len(header)}: quote a "
                        "field that holds a comma, and give every column",
                    )
                if values:
                    rows.append((line, dict(zip(header, values, strict=True))))
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ProbeFileError(path, None, f"cannot read the CSV file: {error}") from None
    return rows


def _numbered(rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Rows with their 0-based row numbers, as ``datasets`` indexes them."""
    return list(enumerate(rows))


def _probe_set(
    source: str,
    name: str,
    rows: list[tuple[int, dict[str, Any]]],
    fields: dict[str, str],
    scorer: str | None,
    answer_pattern: re.Pattern[str] | None,
) -> ProbeSet:
    if not rows:
        raise ProbeSourceError(f"{source}: the data set has no rows")
    columns = list(rows[0][1])
    _check_mapping(source, fields, columns)
    csv_file = source.lower().endswith(".csv")
    error = (
        (lambda line, reason: ProbeFileError(source, line, reason))
        if csv_file
        else (lambda row, reason: ProbeSourceError(f"{source}: row {row}: {reason}"))
    )
    records = _records(rows, fields, answer_pattern, error)
    probes = build_probes(records, scorer, error, unit="line" if csv_file else "row")
    digest = hashlib.sha256(
        "".join(probe.model_dump_json() for probe in probes).encode("utf-8")
    ).hexdigest()[:12]
    return ProbeSet(name=name, version=f"sha256:{digest}", probes=probes)


def _check_mapping(source: str, fields: dict[str, str], columns: list[str]) -> None:
    unknown = sorted(set(fields) - set(PROBE_FIELDS))
    if unknown:
        raise ProbeSourceError(
            f"{source}: 'fields' maps probe fields {', '.join(PROBE_FIELDS)} to columns; "
            f"{', '.join(unknown)} is not one of them"
        )
    missing = sorted(column for column in fields.values() if column not in columns)
    if missing:
        raise ProbeSourceError(
            f"{source}: no column {', '.join(map(repr, missing))}; the columns are "
            f"{', '.join(columns)}"
        )
    mapped = {field: fields.get(field, field) for field in PROBE_FIELDS}
    if mapped["prompt"] not in columns and mapped["messages"] not in columns:
        raise ProbeSourceError(
            f"{source}: no 'prompt' or 'messages' column; map one with "
            f"fields: {{prompt: COLUMN}}; the columns are {', '.join(columns)}"
        )
    if mapped["answer"] not in columns:
        raise ProbeSourceError(
            f"{source}: no 'answer' column; map one with fields: {{answer: COLUMN}}; "
            f"the columns are {', '.join(columns)}"
        )


def _records(
    rows: Iterable[tuple[int, dict[str, Any]]],
    fields: dict[str, str],
    answer_pattern: re.Pattern[str] | None,
    error: Callable[[int, str], RtcAssertError],
) -> Iterable[tuple[int, dict[str, Any]]]:
    """Each row as a probe record: the mapped columns under the probe's field names."""
    for position, row in rows:
        record = {}
        for field in PROBE_FIELDS:
            value = row.get(fields.get(field, field))
            if value is None or (value == "" and field in ("id", "scorer")):
                continue
            record[field] = str(value) if field == "id" else value
        if answer_pattern is not None and "answer" in record:
            found = answer_pattern.search(str(record["answer"]))
            if found is None:
                raise error(
                    position,
                    f"answer_pattern {answer_pattern.pattern!r} does not match the answer "
                    f"{str(record['answer'])[-80:]!r}",
                )
            record["answer"] = found.group(1) if answer_pattern.groups else found.group(0)
        yield position, record
