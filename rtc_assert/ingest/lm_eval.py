"""lm-evaluation-harness ``--log_samples`` files: ``samples_TASK_DATE.jsonl``.

One line per document: ``doc_id``, ``doc``, ``target``, ``arguments`` (the prompt as sent
at ``arguments.gen_args_0.arg_0``) and ``resps`` (a list per request of raw strings, one per
repeat). No finish reason is stored. Written against lm-eval 0.4.x (0.4.13).

A document is paired by ``doc["id"]`` when the task's documents carry the probe id, else by
``doc_id``, the document's position in the probe set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtc_assert.ingest.records import (
    FileDigest,
    FileRecord,
    GenerationsFileError,
    field,
    json_lines,
)


def _results_files(path: Path) -> list[Path]:
    """The ``results_*.json`` that lm-eval wrote beside a samples file (same run folder)."""
    return sorted(path.parent.glob("results_*.json"))


def think_end_token(path: Path) -> str | None:
    """The ``think_end_token`` model argument of the run that wrote ``path``, if any.

    With it set, lm-eval keeps only the text after the token: the reasoning was cut away
    before the samples were logged.
    """
    for results in _results_files(path):
        try:
            config = json.loads(results.read_text(encoding="utf-8")).get("config", {})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        model_args: Any = config.get("model_args") if isinstance(config, dict) else None
        if isinstance(model_args, dict) and model_args.get("think_end_token"):
            return str(model_args["think_end_token"])
        if isinstance(model_args, str):
            for item in model_args.split(","):
                key, _, value = item.partition("=")
                if key.strip() == "think_end_token" and value.strip():
                    return value.strip()
    return None


def read_lm_eval(path: Path, digest: FileDigest | None = None) -> Iterator[FileRecord]:
    """The records of a samples file, one document at a time (``digest``: fed the file's
    bytes, see `text_lines`).

    Raises:
        GenerationsFileError: the run set ``think_end_token`` (the reasoning is gone), or a
            line lacks the fields a ``generate_until`` task logs.
    """
    token = think_end_token(path)
    if token is not None:
        raise GenerationsFileError(
            str(path),
            f"lm-eval ran with think_end_token={token!a}: it logged only the text after "
            "that token, so the reasoning is gone and every trace would read as missing (a "
            "collapse that did not happen). Rerun lm-eval without think_end_token and let "
            "rtc-assert split the reasoning from the answer",
        )
    for where, line in json_lines(path, digest):
        doc_id = field(line, "doc_id", int, where)
        resps = field(line, "resps", list, where)
        args = field(line, "arguments", dict, where)
        prompt = args.get("gen_args_0", {}).get("arg_0", "") if args else ""
        if not isinstance(prompt, str):
            raise GenerationsFileError(
                where,
                "field arguments.gen_args_0.arg_0 is not a prompt; log a generate_until "
                "task (a loglikelihood task has no completions to classify)",
            )
        doc = line.get("doc")
        target = line.get("target")
        probe_id = doc.get("id") if isinstance(doc, dict) else None
        texts = [text for item in resps for text in (item if isinstance(item, list) else [item])]
        if not texts or not all(isinstance(text, str) for text in texts):
            raise GenerationsFileError(
                where, "field resps must hold the generated strings of a generate_until task"
            )
        for sample, text in enumerate(texts):
            yield FileRecord(
                where=where,
                text=text,
                finish_reason=None,
                probe_id=probe_id if isinstance(probe_id, str) else None,
                doc_id=doc_id,
                sample=sample,
                prompt=prompt,
                reference=target if isinstance(target, str) and probe_id is None else None,
            )
