"""Reading job IDs from standard input without blocking the event loop or trusting the bytes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Final

import anyio

from ._ids import MAX_LINE_BYTES, LineParser, Malformed

__all__ = ["LineReader", "MalformedLog", "parse_lines", "read_ids"]

#: Bytes asked of the file descriptor per read: thousands of ID lines at once when the input
#: is plentiful, while a slow producer's lines are passed on as soon as they arrive.
_CHUNK: Final = 64 * 1024


class MalformedLog:
    """Keeps the count of malformed lines and the first few, for one stderr report."""

    def __init__(self, keep: int = 5) -> None:
        self.count = 0
        self.first: list[Malformed] = []
        self._keep = keep

    def add(self, record: Malformed) -> None:
        """Record one malformed line."""
        self.count += 1
        if len(self.first) < self._keep:
            self.first.append(record)

    def describe(self) -> str:
        """A count and the first few lines' numbers and reasons ("" when there are none)."""
        if not self.count:
            return ""
        shown = "; ".join(f"line {m.line_number}: {m.reason}" for m in self.first)
        more = f" (first {len(self.first)})" if self.count > len(self.first) else ""
        return f"{self.count} malformed input line(s){more}: {shown}"


def parse_lines(lines: list[bytes], parser: LineParser, malformed: MalformedLog) -> list[int]:
    """The job IDs in ``lines``; malformed lines go to ``malformed``, the rest are skipped."""
    ids: list[int] = []
    for line in lines:
        parsed = parser.feed(line)
        if isinstance(parsed, Malformed):
            malformed.add(parsed)
        elif parsed is not None:
            ids.append(parsed)
    return ids


class LineReader:
    """Splits a file descriptor's bytes into lines, holding at most one partial line.

    A line over ``MAX_LINE_BYTES`` is cut to ``MAX_LINE_BYTES + 1`` bytes (so the parser
    reports it as too long) and the rest of it is skipped, keeping memory bounded whatever
    the input.  ``read`` blocks only until some bytes are available, not for a full buffer,
    so IDs from a slow producer (``nc list`` still running) are fetched as they come.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._partial = b""
        self._skipping = False

    def read(self) -> list[bytes]:
        """The lines that are complete now (at least one); an empty list at end of input."""
        while chunk := os.read(self._fd, _CHUNK):
            *parts, self._partial = (self._partial + chunk).split(b"\n")
            if parts and self._skipping:
                self._skipping = False
                parts.pop(0)  # the end of an over-long line
            if len(self._partial) > MAX_LINE_BYTES:
                if not self._skipping:
                    parts.append(self._partial[: MAX_LINE_BYTES + 1])
                self._partial, self._skipping = b"", True
            if parts:
                return parts
        last = [] if self._skipping or not self._partial else [self._partial]
        self._partial, self._skipping = b"", False
        return last


async def read_ids(fd: int, malformed: MalformedLog) -> AsyncIterator[int]:
    """Yield job IDs from ``nc list`` / ``nc run`` style lines, recording malformed ones.

    Reading happens in a worker thread, abandoned if the run is cancelled (a terminal may
    never send end-of-file).
    """
    parser = LineParser()
    reader = LineReader(fd)
    while lines := await anyio.to_thread.run_sync(reader.read, abandon_on_cancel=True):
        for job_id in parse_lines(lines, parser, malformed):
            yield job_id
