"""Text from models, probe files and users, made safe to show: control characters visible.

Model outputs, prompts, probe ids and probe-set names can hold terminal escape sequences
(clear screen, window title), carriage returns that overwrite a line, bells, and bidirectional
overrides that reorder what a reader sees. Every renderer passes such text through `printable`
(or `one_line` for a table cell), which shows each of those characters as an escape such as
``\\x1b``: nothing is interpreted, nothing is hidden.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
"""C0 and C1 controls, DEL, and the invisible direction marks, overrides and separators."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, keep: str = "\n\t") -> str:
    """``text`` with every control character but those in ``keep`` shown as an escape."""
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)


def printable_json(text: str) -> str:
    """JSON text with the control characters JSON leaves raw (C1, DEL, direction marks) as
    ``\\uXXXX`` escapes: the same JSON, safe to print."""
    # JSON escapes C0 controls in strings itself; its raw newlines are the indentation's.
    return _CONTROL.sub(
        lambda m: m.group() if m.group() == "\n" else f"\\u{ord(m.group()):04x}", text
    )


def one_line(text: str) -> str:
    """``text`` on one line: newlines and tabs escaped too (for table cells and titles)."""
    return printable(text, keep="")
