"""The pytest plugin (entry point ``pytest11``): hooks only, delegating to `GatePlugin`.

``pytest thresholds.yaml`` collects one test item per (probe set, metric, kind) gate; the
``rtc`` and ``rtc_config`` fixtures give custom tests the same session, so every model loads
once and every (model, probe set) is generated once.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import rtc_assert
from rtc_assert.config import RtcConfig, folder_path, positive_int
from rtc_assert.decide.explain import explain_failure
from rtc_assert.decide.spec import GateSpec
from rtc_assert.errors import RtcAssertError, redact
from rtc_assert.generation.backends import BACKEND_NAMES
from rtc_assert.pytest_plugin.gates import GatePlugin
from rtc_assert.record import INTERRUPTED
from rtc_assert.reports.safe_text import one_line, printable
from rtc_assert.reports.tables import NOT_SETTLED
from rtc_assert.session import RtcSession

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

PLUGIN_KEY = pytest.StashKey[GatePlugin]()

__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_finish",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_deselected",
    "pytest_report_header",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "rtc",
    "rtc_config",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtc-assert", "reasoning-trace release gates (rtc-assert)")
    group.addoption(
        "--rtc-config",
        help="thresholds file for the gates and the rtc fixture "
        "(default: the rtc_config ini value, thresholds.yaml)",
    )
    group.addoption("--rtc-candidate", help="model spec of the candidate, overriding the file")
    group.addoption("--rtc-base", help="model spec of the base model, overriding the file")
    group.addoption(
        "--rtc-backend",
        choices=BACKEND_NAMES,
        help="generation backend, overriding the file",
    )
    group.addoption(
        "--rtc-limit",
        type=positive_int,
        help="use only the first N probes of each set (quick runs)",
    )
    group.addoption(
        "--rtc-report",
        type=folder_path,
        metavar="DIR",
        help="write the JSON run record (rtc-run.json), summary.md and report.html into DIR",
    )
    group.addoption(
        "--rtc-cache-dir",
        type=folder_path,
        metavar="DIR",
        help="generation cache folder (default: rtc-assert in pytest's cache folder)",
    )
    group.addoption(
        "--rtc-no-cache", action="store_true", help="generate everything; read and write no cache"
    )
    parser.addini("rtc_config", "thresholds file of rtc-assert", default="thresholds.yaml")


def pytest_configure(config: pytest.Config) -> None:
    explicit = config.getoption("--rtc-config")
    if explicit and not Path(explicit).is_file():
        raise pytest.UsageError(
            f"--rtc-config {explicit}: no such file; check the name (.yaml or .yml?) "
            "or leave the option out to use the rtc_config ini value"
        )
    config.stash[PLUGIN_KEY] = GatePlugin.from_pytest(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: tell each worker where to leave its run record."""
    node.workerinput["rtc_exchange"] = node.config.stash[PLUGIN_KEY].exchange_for_workers()


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Gates that ``-k`` or ``-m`` left out stay out of the summary and the record."""
    for item in items:
        if isinstance(item, GateItem):
            item.config.stash[PLUGIN_KEY].deselected.add(item.spec.id)


def pytest_report_header() -> str:
    return f"rtc-assert {rtc_assert.__version__}"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if parent.config.stash[PLUGIN_KEY].is_thresholds_file(file_path):
        return ThresholdsFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[PLUGIN_KEY].collection_errors = session.testsfailed


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Drawn as wide as pytest's own lines, in colour when pytest's output is (--color).
    writer = terminalreporter.config.get_terminal_writer()
    text = io.StringIO()
    plugin = terminalreporter.config.stash[PLUGIN_KEY]
    if plugin.print_summary(text, width=writer.fullwidth, color=writer.hasmarkup):
        terminalreporter.write_sep("=", "rtc-assert summary")
        terminalreporter.write(text.getvalue())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    plugin = session.config.stash[PLUGIN_KEY]
    # pytest also ends a run whose collection failed as "interrupted": no Ctrl-C there.
    stopped_by_collection = (
        plugin.collection_errors and not session.config.option.continue_on_collection_errors
    )
    if exitstatus == pytest.ExitCode.INTERRUPTED and not stopped_by_collection:
        plugin.errors.append(INTERRUPTED)
    plugin.finish()


def _first_session(pytestconfig: pytest.Config) -> RtcSession:
    """The configured thresholds file's first session; where the file or the options over it
    are refused, the tests that ask fail with the reason alone, no traceback."""
    try:
        return pytestconfig.stash[PLUGIN_KEY].session_for(None)
    except RtcAssertError as error:
        reason = printable(redact(str(error)))
    pytest.fail(reason, pytrace=False)  # outside the except: pytest shows no chained error


@pytest.fixture(scope="session")
def rtc_config(pytestconfig: pytest.Config) -> RtcConfig:
    """The validated thresholds.yaml, with command-line overrides applied."""
    return _first_session(pytestconfig).config


@pytest.fixture(scope="session")
def rtc(pytestconfig: pytest.Config) -> RtcSession:
    """The gate session: ``rtc.run(probe_set, model="candidate")``, ``rtc.compare(probe_set)``.

    Where thresholds.yaml names several ``candidates``, this is the first one's session;
    ``rtc.run(probe_set, "OTHER-SPEC")`` generates any other model.
    """
    return _first_session(pytestconfig)


class GateFailed(Exception):
    """A gate's verdict was FAIL; the message explains it."""


class ThresholdsFile(pytest.File):
    """A thresholds.yaml: one item per gate."""

    def collect(self):
        for session in self.config.stash[PLUGIN_KEY].sessions_for(self.path):
            for spec in session.config.gate_specs():
                yield GateItem.from_parent(self, name=one_line(spec.id), spec=spec)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: TracebackStyle | None = None,
    ) -> str | TerminalRepr:
        """``style`` is there to match ``Node.repr_failure``; a collector's report ignores it."""
        if isinstance(excinfo.value, RtcAssertError):
            return printable(redact(str(excinfo.value)))
        return super().repr_failure(excinfo)


class GateItem(pytest.Item):
    """One gate: passes or fails on its own, explaining a failure in a few lines."""

    def __init__(self, *, spec: GateSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        plugin = self.config.stash[PLUGIN_KEY]
        session = plugin.session_for(self.path, self.spec.candidate)
        try:
            result = session.gate(self.spec)
        except Exception as error:  # an error of the run, not a gate failure: in the record
            plugin.note_error(error)
            raise
        for key, value in plugin.junit_properties(result).items():
            self.user_properties.append((key, value))
        if not result.settled:
            # Neither a pass nor a failure: another gate failed and stopped the run first.
            pytest.skip(printable(redact(f"{self.spec.id}: {NOT_SETTLED}: {result.reason}")))
        if not result.passed:
            # The probes the gate was decided on: early stopping's runs are not extended.
            candidate = session.generated(self.spec.probe_set, "candidate")
            base = session.generated(self.spec.probe_set, "base") if result.base else None
            raise GateFailed(explain_failure(result, candidate, base))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: TracebackStyle | None = None,
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, GateFailed | RtcAssertError):
            return printable(redact(str(excinfo.value)))
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"gate {self.spec.id}"
