"""The command line, ``rtc-assert``: `main` (the commands) and `gate` (eval, compare, demo,
sweep)."""

from rtc_assert.cli.main import main

__all__ = ["main"]
