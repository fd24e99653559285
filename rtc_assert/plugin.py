"""The pytest plugin's entry point (``pytest11``: ``rtc_assert = rtc_assert.plugin``).

The hooks live in `rtc_assert.pytest_plugin.hooks`; this module keeps the import path that
``-p rtc_assert.plugin`` and ``-p no:rtc_assert`` name.
"""

from rtc_assert.pytest_plugin.hooks import *  # noqa: F403
