"""Regenerate the frozen probe library files: ``python -m rtc_assert.probes.library.build``.

``--check`` writes nothing and exits 1 when a file differs from what its generator makes.
"""

from __future__ import annotations

import argparse
import json
import sys

from rtc_assert.probes.library import FAMILIES, data_file
from rtc_assert.probes.library.family import Family, generate


def render(family: Family) -> str:
    """The family's JSONL file contents: one probe per line, keys sorted, UTF-8 text."""
    return "".join(
        json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n" for record in generate(family)
    )


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) every family's file; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name, family in FAMILIES.items():
        text, path = render(family), data_file(name)
        if args.check:
            if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
                stale.append(str(path))
            continue
        path.write_bytes(text.encode("utf-8"))
        print(f"{path}: {name} version {family.version}, {text.count(chr(10))} probes")
    if stale:
        print(f"out of date (run python -m rtc_assert.probes.library.build): {', '.join(stale)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
