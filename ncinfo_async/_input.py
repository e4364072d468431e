"""Reading job IDs from standard input without blocking the event loop or trusting the bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, Final

import anyio

from ._ids import MAX_LINE_BYTES, LineParser, Malformed

__all__ = ["MalformedLog", "read_ids", "read_lines"]

#: Lines read per trip to the reading thread: amortises the thread hand-off.
_LINES_PER_READ: Final = 512


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

    def report(self) -> str:
        """The stderr text: a count and the first few lines' numbers and reasons."""
        if not self.count:
            return ""
        shown = "; ".join(f"line {m.line_number}: {m.reason}" for m in self.first)
        more = f" (first {len(self.first)})" if self.count > len(self.first) else ""
        return f"ncinfo: skipped {self.count} malformed input line(s){more}: {shown}\n"


def read_lines(stream: BinaryIO) -> list[bytes]:
    """Read up to ``_LINES_PER_READ`` lines; an over-long line comes back over-long, consumed."""
    lines: list[bytes] = []
    for _ in range(_LINES_PER_READ):
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            break
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            # Swallow the rest of the absurd line in bounded pieces; keep memory flat.
            while (rest := stream.readline(64 * 1024)) and not rest.endswith(b"\n"):
                pass
        lines.append(line)
    return lines


async def read_ids(
    stream: BinaryIO, malformed: MalformedLog, on_line: Callable[[], None] | None = None
) -> AsyncIterator[int]:
    """Yield job IDs from ``nc list`` / ``nc run`` style lines, recording malformed ones.

    Reading happens in a worker thread, abandoned if the run is cancelled (a terminal may
    never send end-of-file).
    """
    parser = LineParser()
    while lines := await anyio.to_thread.run_sync(read_lines, stream, abandon_on_cancel=True):
        for line in lines:
            if on_line is not None:
                on_line()
            parsed = parser.feed(line)
            if isinstance(parsed, Malformed):
                malformed.add(parsed)
            elif parsed is not None:
                yield parsed
