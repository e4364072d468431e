#!/usr/bin/env python3
"""Copy the saved results (``results/<name>.md``) into ``benchmarks/README.md``.

Each scenario's section of the README holds its latest tables between two markers,
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; this script replaces what lies
between them with ``results/NAME.md`` as the benchmark wrote it, so the README shows exactly
what a run printed, with its command and versions line.  Sections whose file is missing are
left as they are.

Example:
    .venv/bin/python benchmarks/update_readme.py
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

_SECTION = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results:\2 -->)", re.DOTALL)


def update(readme: Path, results: Path) -> list[str]:
    """Rewrite the README's result sections in place; return the names updated."""
    text = readme.read_text(encoding="utf-8")
    updated: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        source = results / f"{name}.md"
        if not source.exists():
            return match.group(0)
        updated.append(name)
        body = source.read_text(encoding="utf-8").strip()
        # The saved report starts with its own heading; the README section has one already.
        body = re.sub(r"\A### .*\n+", "", body)
        return f"{match.group(1)}{body}\n{match.group(4)}"

    readme.write_text(_SECTION.sub(replace, text), encoding="utf-8")
    return updated


def main(argv: Sequence[str] | None = None) -> int:
    """Update the README; return 0."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readme", type=Path, default=h.BENCH_DIR / "README.md")
    parser.add_argument("--results", type=Path, default=h.RESULTS_DIR)
    args = parser.parse_args(argv)
    names = update(args.readme, args.results)
    print(f"updated: {', '.join(names) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
