"""What the CLI writes on stderr: through the progress bar while one shows, per-job errors capped.

tqdm draws its bar on one line with ``\\r``; a line written straight to the same stream lands
glued onto the bar.  ``write_through`` clears the bar, writes, and redraws it.  A run over
18,000 unknown IDs would print 18,000 lines: ``JobErrorLog`` prints the first few, then one
line counting the rest by kind (``-v`` prints them all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final, Protocol, TextIO

__all__ = ["DEFAULT_SHOWN", "JobErrorLog", "StderrStream", "on_screen", "write_through"]

#: Per-job error lines printed before the rest are only counted.
DEFAULT_SHOWN: Final = 20


class _Bar(Protocol):
    """The part of tqdm used here: its external write mode (clear, write, redraw)."""

    def external_write_mode(
        self, file: TextIO | None = None, nolock: bool = False
    ) -> AbstractContextManager[None]: ...


def on_screen(bar: object) -> bool:
    """Whether a tqdm bar has been drawn: tqdm's own test, since a ``delay`` holds it back.

    (A bar still within its delay must not be drawn early by a write going through it.)
    """
    try:
        return bool(bar.last_print_t >= bar.start_t + bar.delay)  # type: ignore[attr-defined]
    except AttributeError:
        return True


def write_through(stream: TextIO, bar: _Bar | None, text: str) -> None:
    """Write ``text`` on ``stream`` and flush; a bar on screen is cleared first, redrawn after."""
    if bar is None or not on_screen(bar):
        stream.write(text)
        stream.flush()
        return
    with bar.external_write_mode(file=stream):
        stream.write(text)
        stream.flush()


class StderrStream:
    """A file-like object for ``logging`` that writes through ``write`` (so through the bar)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def write(self, text: str) -> int:
        """Write ``text``; returns its length, as a text file does."""
        self._write(text)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: each write is flushed."""


class JobErrorLog:
    """Per-job error lines: the first ``shown``, then one line counting the rest by kind.

    Args:
        write: writes a line (including its newline) on stderr.
        shown: how many lines to print before only counting.
        show_all: print every line (``-v``).
    """

    def __init__(
        self, write: Callable[[str], None], *, shown: int = DEFAULT_SHOWN, show_all: bool = False
    ) -> None:
        self._write = write
        self._shown = shown
        self._show_all = show_all
        self.printed = 0
        self.hidden: Counter[str] = Counter()

    def add(self, job_id: int, kind: str, message: str) -> None:
        """Print the error of one job, or count it once the first ``shown`` are out."""
        if self._show_all or self.printed < self._shown:
            self.printed += 1
            self._write(f"ncinfo: job {job_id}: {message}\n")
        else:
            self.hidden[kind] += 1

    def rest(self) -> str:
        """The line for the errors not printed ("" when all were printed)."""
        count = sum(self.hidden.values())
        if not count:
            return ""
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in self.hidden.most_common())
        return (
            f"ncinfo: and {count:,} more job errors: {kinds}; "
            "-v lists them all, --format ndjson carries each\n"
        )

    def finish(self) -> None:
        """Print the line counting the errors not printed, if any."""
        if line := self.rest():
            self._write(line)
