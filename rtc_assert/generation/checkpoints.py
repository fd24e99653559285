"""Checkpoint series: the folders a training run saved, ordered by their step number.

A series is given as a folder that holds checkpoint folders (``checkpoint-200``, ``step_400``,
...), as a glob that matches them, or as ``demo:sweep`` (the demo zoo's series). A
checkpoint folder is a transformers model (``config.json``) or a PEFT adapter
(``adapter_config.json``); its step is the last number in its name.
"""

from __future__ import annotations

import glob
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from rtc_assert.errors import CheckpointSeriesError

MODEL_FILES = ("config.json", "adapter_config.json")
NAMED_SERIES: dict[str, Path] = {}
"""A series' name -> its folder; `register_series` adds one (the demo zoo's ``demo:sweep``)."""
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def register_series(name: str, folder: Path) -> None:
    """Let ``name`` stand for the checkpoint series in ``folder``."""
    NAMED_SERIES[name] = folder


@dataclass(frozen=True)
class Checkpoint:
    """One saved checkpoint of a training run."""

    step: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def is_model_folder(path: Path) -> bool:
    """Whether ``path`` is a transformers checkpoint or a PEFT adapter folder."""
    return path.is_dir() and any((path / name).is_file() for name in MODEL_FILES)


def step_number(folder: Path) -> int | None:
    """The last number in a folder's name (``checkpoint-200`` -> 200), or None."""
    found = _LAST_NUMBER.search(folder.name)
    return int(found.group(1)) if found else None


def _candidates(spec: str) -> list[Path]:
    if spec in NAMED_SERIES:
        spec = str(NAMED_SERIES[spec])
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if is_model_folder(folder):
            raise CheckpointSeriesError(
                f"{folder} is itself a model folder: give the folder that holds the "
                "checkpoints (checkpoint-200, checkpoint-400, ...) or a glob that matches them"
            )
        found = [path for path in sorted(folder.iterdir()) if is_model_folder(path)]
        if not found:
            raise CheckpointSeriesError(
                f"{folder} holds no checkpoints: no subfolder has {' or '.join(MODEL_FILES)}"
            )
        return found
    matches = [Path(match) for match in sorted(glob.glob(str(folder)))]
    if not matches:
        raise CheckpointSeriesError(
            f"{spec}: no such folder, and no folder matches it as a glob "
            "(give the folder that holds checkpoint-N folders, or e.g. 'runs/out/checkpoint-*')"
        )
    not_models = [str(path) for path in matches if not is_model_folder(path)]
    if not_models:
        raise CheckpointSeriesError(
            f"{spec} matches {len(not_models)} path(s) that are not model folders (no "
            f"{' or '.join(MODEL_FILES)}): {', '.join(not_models[:5])}; narrow the glob"
        )
    return matches


def find_checkpoints(spec: str) -> list[Checkpoint]:
    """The checkpoints of a folder or glob, in step order.

    Raises:
        CheckpointSeriesError: no checkpoints, a checkpoint without a step number in its
            name, or two checkpoints with the same step.
    """
    folders = _candidates(spec)
    unnumbered = [str(path) for path in folders if step_number(path) is None]
    if unnumbered:
        raise CheckpointSeriesError(
            f"checkpoint folder(s) without a step number in their name: {', '.join(unnumbered)}; "
            "a sweep orders checkpoints by it (name them checkpoint-N or step_N, or leave "
            "them out of the glob)"
        )
    checkpoints = sorted(
        (Checkpoint(step_number(path), path) for path in folders),  # type: ignore[arg-type]
        key=lambda checkpoint: checkpoint.step,
    )
    for first, second in itertools.pairwise(checkpoints):
        if first.step == second.step:
            raise CheckpointSeriesError(
                f"{first.path} and {second.path} have the same step number {first.step}: "
                "give one series at a time"
            )
    return checkpoints
