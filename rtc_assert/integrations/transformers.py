"""Gate the reasoning traces while a model trains: a transformers ``TrainerCallback``.

Every ``every_steps`` optimizer steps (and/or on each save, and before each evaluation), the
callback generates on the configured probe sets with the model being trained (in memory, in
eval mode, unwrapped from DDP/accelerate/PEFT wrappers, restored to train mode after),
classifies and scores the traces, and decides the thresholds.yaml gates against the base's
runs (generated once when training begins, or read from the files of ``generations.base``)
with the machinery of `rtc_assert.sweep`. It logs
``rtc/*`` metrics through the trainer's logging, adds ``eval_rtc_*`` metrics to evaluations
(for ``metric_for_best_model`` and ``EarlyStoppingCallback``), writes the sweep record and
chart (`rtc_assert.reports.sweep`) after every check, and can stop training at the first
failing check.

Written against transformers 5.24 (``TrainerCallback``, ``CallbackHandler``,
``Trainer.log``); TRL's ``SFTTrainer``, LLaMA-Factory's ``run_exp(callbacks=...)`` and
axolotl plugins take the same callbacks.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import torch
from transformers import (
    DefaultFlowCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.modeling_utils import unwrap_model
from transformers.trainer_callback import CallbackHandler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from rtc_assert.config import RtcConfig, load_config
from rtc_assert.errors import CallbackError
from rtc_assert.generation.backends.transformers_backend import TransformersBackend
from rtc_assert.generation.cache import GenerationCache
from rtc_assert.generation.requests import GenerationRequest, build_requests
from rtc_assert.reports.sweep import SERIES, base_lines, unknown_lines, verdict_lines, write_sweep
from rtc_assert.runs import Run, measured_run
from rtc_assert.session import RtcSession
from rtc_assert.sweep import (
    Gating,
    StepRecord,
    SweepRecord,
    base_runs,
    check_sweep,
    step_record,
    sweep_record,
)
from rtc_assert.traces.detection import TraceSetup, detect_template

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = tuple(metric for metric, _, _ in SERIES)
"""The metrics logged at each check, as ``rtc/NAME`` (``rtc/SET/NAME`` for several sets)."""
REPORT_DIR = "rtc-gate"
"""Where the record goes by default, inside the trainer's ``output_dir``."""
T = TypeVar("T")
TRAINING_GATING = Gating(
    candidates="the training gate's candidate is the model being trained, generated at each "
    "check on every probe set",
    gate="the training gate",
    name_base="set 'base:' in thresholds.yaml to the model training starts from (its folder "
    "or hub id)",
)
"""How the refusals of `rtc_assert.sweep.check_sweep` put it for the callback."""


def trained_module(model: Any) -> Any:
    """The transformers model inside DDP/FSDP/accelerate containers and a PEFT wrapper (whose
    adapter layers stay active in the model it returns)."""
    module = unwrap_model(model)
    get_base_model = getattr(module, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else module


def log_names(record: StepRecord) -> dict[str, float]:
    """A check's metrics as ``rtc/...`` log entries; undefined ones (Rpass@1 without a valid
    trace) and unknown ones (the status rates of a run with hidden reasoning) are left out,
    never logged as 0."""
    single = len(record.metrics) == 1
    logs: dict[str, float] = {}
    for name, metrics in record.metrics.items():
        prefix = "rtc/" if single else f"rtc/{name}/"
        for metric in METRICS:
            rate = metrics.known_rate(metric)
            if rate is not None:
                logs[prefix + metric] = rate.value
    logs["rtc/gates_passed"] = float(record.passed)
    return logs


def eval_names(logs: dict[str, float]) -> dict[str, float]:
    """``rtc/valid_rate`` as ``eval_rtc_valid_rate``: the names evaluation metrics take."""
    return {"eval_" + name.replace("/", "_"): value for name, value in logs.items()}


class ReasoningGateCallback(TrainerCallback):
    """Generate, classify and gate the model's reasoning traces while it trains.

    Args:
        config: a thresholds.yaml path or an `RtcConfig`: probe sets, generation settings,
            gates, decision policy, and the base: ``base`` (generated when training begins)
            and/or the files of its generations (``generations.base``, read instead of
            generating it, as a sweep reads them). Its ``candidate`` is ignored (the
            candidate is the model being trained); ``generations.candidate`` is refused,
            since its files would never be read.
        every_steps: check every N optimizer steps; None checks only on saves.
        on_save: also check at each save (``checkpoint-N`` is named in the record).
        stop_on_failure: stop training at the first check that fails a gate.
        max_probes: the most generations one check may take (probes times samples, all
            probe sets together); a larger configuration is refused before training.
        report_dir: where ``sweep.json`` and ``sweep.svg`` go; default
            ``OUTPUT_DIR/rtc-gate``.
        tokenizer: the tokenizer with the chat template; default the trainer's
            ``processing_class``.
        cache_dir: a generation cache for the base's runs (reused across training runs).
        config_dir: where relative probe and generations files are read from; default the
            config file's folder (or the working folder).

    Raises:
        ConfigError: thresholds.yaml cannot be read, gives ``generations.candidate``, or has
            a ``max_drop`` gate against a base that is not configured (no ``base:``, and no
            file of its generations on that gate's probe set): `rtc_assert.sweep.check_sweep`,
            as a sweep refuses the file.
        CallbackError: nothing would trigger a check, the probes exceed ``max_probes``, or
            ``tokenizer`` has no chat template.
    """

    def __init__(
        self,
        config: RtcConfig | str | Path,
        *,
        every_steps: int | None = 25,
        on_save: bool = False,
        stop_on_failure: bool = True,
        max_probes: int = 128,
        report_dir: str | Path | None = None,
        tokenizer: Any = None,
        cache_dir: str | Path | None = None,
        config_dir: str | Path | None = None,
    ) -> None:
        if isinstance(config, RtcConfig):
            source, folder = "the configuration", Path(config_dir or Path.cwd())
        else:
            source, folder = str(config), Path(config_dir or Path(config).parent)
            config = load_config(config)
        if every_steps is not None and every_steps < 1:
            raise CallbackError(f"every_steps={every_steps}: give a step count of 1 or more")
        if every_steps is None and not on_save:
            raise CallbackError(
                "every_steps=None and on_save=False: nothing would trigger a check; set "
                "every_steps=N (works with save_strategy='no') or on_save=True"
            )
        check_sweep(config, gating=TRAINING_GATING)
        self.config = config
        self.every_steps = every_steps
        self.on_save_checks = on_save
        self.stop_on_failure = stop_on_failure
        self.report_dir = Path(report_dir) if report_dir is not None else None
        self.tokenizer = tokenizer
        self.session = RtcSession(
            config=config,
            config_dir=folder,
            cache=GenerationCache(Path(cache_dir)) if cache_dir is not None else None,
        )
        self._check_budget(source, max_probes)
        if tokenizer is not None:
            self._require_chat_template(tokenizer)
        self.base_seconds = 0.0
        """Time spent on the base's runs when training began (load and generation, or reading
        its files)."""
        self.check_seconds = 0.0
        """Time spent in checks (generation, scoring, gates, record) on this process."""
        self.steps: list[StepRecord] = []
        """The checks so far, on the main process."""
        self._base: dict[str, Run] = {}
        self._requests: dict[str, list[GenerationRequest]] = {}
        self._trace: TraceSetup | None = None
        self._checked: set[int] = set()
        self._latest: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._stopped = False

    def _check_budget(self, source: str, max_probes: int) -> None:
        samples = self.config.generation.samples
        sizes = {name: len(self.session.probe_set(name)) for name in self.config.probe_sets}
        total = sum(sizes.values()) * samples
        if total > max_probes:
            listed = ", ".join(f"{name}: {size}" for name, size in sizes.items())
            raise CallbackError(
                f"{source}: one check would generate {total} times ({listed} probes, "
                f"{samples} sample(s) each), more than max_probes={max_probes}: set "
                "'limit: N' (or 'sample: N') under probe_sets in the config, or raise "
                "max_probes"
            )

    @staticmethod
    def _require_chat_template(tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise CallbackError(
                f"the tokenizer ({type(tokenizer).__name__}) has no chat template, so the "
                "probes cannot be rendered as the model sees them: set tokenizer.chat_template "
                "(or pass ReasoningGateCallback(tokenizer=...) one that has it)"
            )

    def attach(self, trainer: Any) -> Any:
        """Put the callback in ``trainer`` ahead of its reporting callbacks; returns the
        trainer. Not needed with ``Trainer(callbacks=[...])`` or ``trainer.add_callback``:
        the callback moves itself there when training begins."""
        self._go_ahead(trainer.callback_handler)
        return trainer

    def _go_ahead(self, handler: CallbackHandler) -> None:
        """Right after ``DefaultFlowCallback`` (which sets the step's controls) in
        ``handler``, ahead of the reporting callbacks (TensorBoard, W&B, ...) that
        transformers puts before the user's: so they log the ``rtc/*`` values `on_log`
        merges in. The list is rebound, not changed in place: an event being dispatched
        goes on over the old one."""
        others = [callback for callback in handler.callbacks if callback is not self]
        at = 1 if others and isinstance(others[0], DefaultFlowCallback) else 0
        handler.callbacks = [*others[:at], self, *others[at:]]

    def _go_ahead_of_caller(self, frame: FrameType | None, args: TrainingArguments) -> None:
        """`_go_ahead` in the handler dispatching the current event: the ``self`` of
        ``CallbackHandler.call_event``, the caller's frame (transformers gives a callback no
        handle on its handler). Without one, warn where reporting callbacks are on."""
        handler = frame.f_locals.get("self") if frame is not None else None
        if isinstance(handler, CallbackHandler) and self in handler.callbacks:
            self._go_ahead(handler)
        elif args.report_to:
            logger.warning(
                "rtc-assert: the reasoning gate could not move ahead of the reporting "
                "callbacks (report_to=%s): they will not log the rtc/* metrics; call "
                "gate.attach(trainer) before training",
                args.report_to,
            )

    @property
    def record(self) -> SweepRecord:
        """Every check so far, its verdicts, the first failing and the last passing step."""
        return sweep_record(self.session, self._base, self.steps)

    # events ---------------------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._go_ahead_of_caller(sys._getframe(1), args)
        processing_class = kwargs.get("processing_class")
        tokenizer = self.tokenizer or getattr(processing_class, "tokenizer", processing_class)
        if tokenizer is None:
            raise CallbackError(
                "the trainer has no processing_class: pass Trainer(processing_class=tokenizer) "
                "or ReasoningGateCallback(tokenizer=...)"
            )
        self._require_chat_template(tokenizer)
        self.tokenizer = tokenizer
        if self.report_dir is None:
            self.report_dir = Path(args.output_dir or ".") / REPORT_DIR
        started = time.perf_counter()
        self._base = self._on_main(args, state, self._prepare) or {}
        self.base_seconds += time.perf_counter() - started

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.every_steps and state.global_step % self.every_steps == 0:
            self._check(args, state, control, kwargs["model"])

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        folder = str(Path(args.output_dir or ".") / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if state.global_step not in self._checked:
            if self.on_save_checks:
                self._check(args, state, control, kwargs["model"], folder)
        elif self.steps and self.steps[-1].step == state.global_step:
            # checked at this step's end, just before the trainer saved it: name the folder
            self.steps[-1] = self.steps[-1].model_copy(update={"checkpoint": folder})
            self._write()

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step not in self._checked:
            self._check(args, state, control, kwargs["model"])
        metrics = kwargs.get("metrics")
        if metrics is not None:
            metrics.update(eval_names(self._latest))

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        logs = kwargs.get("logs")
        if not self._pending or logs is None:
            return
        logs.update(self._pending)
        if state.log_history:  # Trainer.log appended its copy of ``logs`` just before
            state.log_history[-1].update(self._pending)
        self._pending = {}

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._pending:  # a check after the last log (at a save or an evaluation)
            state.log_history.append({**self._pending, "step": state.global_step})
            self._pending = {}
        if state.is_world_process_zero and self.steps:
            record = self.record
            for line in [*base_lines(record), *unknown_lines(record), *verdict_lines(record)]:
                logger.info("rtc-assert: %s", line)

    # the check ------------------------------------------------------------------------------

    def _check(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any,
        checkpoint: str | None = None,
    ) -> None:
        """Gate the model at this step on the main process; every process gets the verdict
        and sets the same controls, so collective calls stay in step."""
        step = state.global_step
        started = time.perf_counter()
        outcome = self._on_main(args, state, lambda: self._gate(model, step, checkpoint))
        self.check_seconds += time.perf_counter() - started
        assert outcome is not None
        logs, passed = outcome
        self._checked.add(step)
        self._latest = logs
        self._pending = {**self._pending, **logs}
        control.should_log = True
        if not passed and self.stop_on_failure and not self._stopped:
            self._stopped = True
            control.should_training_stop = True
            if state.is_world_process_zero:
                logger.warning("rtc-assert: gates fail at step %d: stopping training", step)

    def _prepare(self) -> dict[str, Run]:
        """The base's runs (generated, or read from its files), and the probes' requests and
        markup for every check (rendered and detected once per training run)."""
        self._trace = self.config.trace_format.setup(detect_template(self.tokenizer))
        self._requests = {
            name: build_requests(
                self.tokenizer,
                self.session.probe_set(name).probes,
                self.config.generation,
                model="the model in training",
                switch=self._trace.detected.switch,
            )
            for name in self.config.probe_sets
        }
        return base_runs(self.session)

    def _gate(self, model: Any, step: int, checkpoint: str | None) -> tuple[dict[str, float], bool]:
        assert self._trace is not None
        module = trained_module(model)
        was_training = module.training
        tokenizer = self.tokenizer
        padding = tokenizer.padding_side, tokenizer.pad_token  # the backend pads on the left
        spec, settings = f"step-{step}", self.config.generation
        try:
            backend = TransformersBackend.from_loaded(module, tokenizer, name=spec)
            # every probe set in one batched call: batches full across sets, sorted by length
            requests = [request for part in self._requests.values() for request in part]
            generations = iter(backend.generate(requests, settings))
        finally:
            module.train(was_training)
            if (tokenizer.padding_side, tokenizer.pad_token) != padding:
                tokenizer.padding_side, tokenizer.pad_token = padding
        runs = {
            name: measured_run(
                backend,
                self.session.probe_set(name),
                list(itertools.islice(generations, len(part))),
                settings,
                model=spec,
                trace=self._trace,
                confidence=self.config.decision.confidence,
            )
            for name, part in self._requests.items()
        }
        record = step_record(self.config, step, checkpoint or spec, runs, self._base)
        self.steps.append(record)
        self._write()
        return log_names(record), record.passed

    def _write(self) -> None:
        assert self.report_dir is not None
        write_sweep(self.record, self.report_dir)

    def _on_main(
        self, args: TrainingArguments, state: TrainerState, work: Callable[[], T]
    ) -> T | None:
        """``work()`` on the main process, its result broadcast to the others.

        When it raises, the main process re-raises and every other process raises a
        `CallbackError` at the same point: none is left waiting in a collective call.
        """
        result: T | None = None
        failure: str | None = None
        error: Exception | None = None
        if state.is_world_process_zero:
            try:
                result = work()
            except Exception as caught:
                error, failure = caught, f"{type(caught).__name__}: {caught}"
        if args.world_size > 1 and torch.distributed.is_initialized():
            shared: list[Any] = [(result, failure)]
            torch.distributed.broadcast_object_list(shared, src=0)
            result, failure = shared[0]
        if error is not None:
            raise error
        if failure is not None:
            raise CallbackError(f"the reasoning gate check failed on the main process: {failure}")
        return result
