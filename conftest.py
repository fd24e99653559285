"""Repository-wide test setup: offline hub, and the shared fixtures folder beside the clone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Nothing may download weights or data sets: a mistake fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One torch (OpenMP) thread here and in every subprocess the tests start (pytester runs, the
# CLI): the demo's tiny matrices gain nothing from a second, and with the other core busy
# (pytest-xdist, a second run) multi-threaded generation spins and slows down several times.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The CLI's generation cache lives under $XDG_CACHE_HOME: keep the tests' out of the home folder.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="rtc-assert-tests-")

CHROMIUM = Path("/usr/bin/chromium")
"""The system chromium the browser tests drive (never `playwright install`)."""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


SHARED_DIR = Path(
    os.environ.get("RTC_SHARED_DIR", Path(__file__).resolve().parent.parent / "shared")
)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared fixtures (../shared beside the clone, or $RTC_SHARED_DIR)."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared fixtures folder {SHARED_DIR} is absent (set RTC_SHARED_DIR)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def paper_probes_dir(shared_dir: Path) -> Path:
    """../shared/paper-probes: the study's gsm8k and chemistry probe files."""
    folder = shared_dir / "paper-probes"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the study's probe files are not available here")
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless system chromium with a fresh profile and no network, driven by Playwright."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (.ci/run does)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is absent: pip install -e '.[dev]'"
    )
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            offline=True,
        )
        yield context
        context.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The repository's own thresholds.yaml gates (the demo zoo, every probe) are slow."""
    for item in items:
        if item.path.name == "thresholds.yaml":
            item.add_marker(pytest.mark.slow)
