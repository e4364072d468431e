"""Reading job IDs from stdin without a thread, without blocking, without trusting the bytes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator
from typing import Final, Literal

import anyio
import anyio.lowlevel

from ._ids import MAX_LINE_BYTES, LineParser, Malformed

__all__ = [
    "InputIds",
    "LineReader",
    "MalformedLog",
    "parse_lines",
    "read_ids",
    "restore_blocking",
]

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
            if parts := self._feed(chunk):
                return parts
        return self._end()

    def read_ready(self) -> list[bytes] | None:
        """Like ``read`` on a non-blocking descriptor; None when no complete line is ready yet."""
        while True:
            try:
                chunk = os.read(self._fd, _CHUNK)
            except BlockingIOError:
                return None
            if not chunk:
                return self._end()
            if parts := self._feed(chunk):
                return parts

    def _feed(self, chunk: bytes) -> list[bytes]:
        *parts, self._partial = (self._partial + chunk).split(b"\n")
        if parts and self._skipping:
            self._skipping = False
            parts.pop(0)  # the end of an over-long line
        if len(self._partial) > MAX_LINE_BYTES:
            if not self._skipping:
                parts.append(self._partial[: MAX_LINE_BYTES + 1])
            self._partial, self._skipping = b"", True
        return parts

    def _end(self) -> list[bytes]:
        last = [] if self._skipping or not self._partial else [self._partial]
        self._partial, self._skipping = b"", False
        return last


#: Descriptors this module made non-blocking, with the flags to put back.
_borrowed_flags: dict[int, int] = {}


def _make_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not flags & os.O_NONBLOCK:
        _borrowed_flags.setdefault(fd, flags)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


def restore_blocking() -> None:
    """Put back the flags of every descriptor made non-blocking here (safe to call twice).

    The flag belongs to the open file description, which the writer of a pipe or the
    shell of a terminal may share: it must not outlive the run.
    """
    while _borrowed_flags:
        fd, flags = _borrowed_flags.popitem()
        with contextlib.suppress(OSError):  # already closed
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def _input_kind(fd: int) -> Literal["pipe", "terminal", "file"]:
    """How to wait for ``fd``: epoll watches pipes, sockets and terminals, never files.

    Regular files and devices such as /dev/null are refused by epoll (EPERM), but a read
    of them never waits for long, so they are read plainly.
    """
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "pipe"
    return "terminal" if os.isatty(fd) else "file"


def _open_terminal(fd: int) -> int | None:
    """A descriptor of its own on the terminal behind ``fd``, non-blocking; None if refused.

    A terminal's file description is usually shared by stdin, stdout and stderr: making
    it non-blocking would let our own writes fail with EAGAIN, so it is opened anew.
    """
    try:
        return os.open(os.ttyname(fd), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None


class InputIds:
    """Job IDs from ``nc list`` / ``nc run`` style lines on ``fd``, malformed ones recorded.

    No worker thread: a pipe is made non-blocking (its flags are put back by
    ``restore_blocking``; uvloop would set the flag anyway) and a terminal is read through
    a non-blocking descriptor of its own, both waited on through the event loop, so
    cancelling the run, or ``stop_reading``, ends a wait for input that may never come.

    Args:
        fd: the descriptor to read (stdin).
        malformed: where malformed lines are recorded.
    """

    def __init__(self, fd: int, malformed: MalformedLog) -> None:
        self._fd = fd
        self._malformed = malformed
        self._stopped = False
        self._waiting: anyio.CancelScope | None = None
        #: Whether input was left unread by ``stop_reading`` (its IDs get no result).
        self.left_unread = False

    def stop_reading(self) -> None:
        """End the input now: the IDs already read are still yielded, nothing more is read."""
        self._stopped = True
        if self._waiting is not None:
            self._waiting.cancel()

    def __aiter__(self) -> AsyncIterator[int]:
        return self._ids()

    async def _ids(self) -> AsyncIterator[int]:
        async for chunk in self.chunks():
            for job_id in chunk:
                yield job_id

    async def chunks(self) -> AsyncIterator[list[int]]:
        """The IDs a read at a time (each list non-empty): one hop per read, not per ID."""
        kind = _input_kind(self._fd)
        private = _open_terminal(self._fd) if kind == "terminal" else None
        fd = self._fd if private is None else private
        if kind != "file" and private is None:
            _make_nonblocking(fd)
        parser = LineParser()
        reader = LineReader(fd)
        try:
            while not self._stopped:
                if kind == "file":
                    lines: list[bytes] | None = reader.read()
                    await anyio.lowlevel.checkpoint()
                elif (lines := reader.read_ready()) is None:
                    with anyio.CancelScope() as self._waiting:
                        await anyio.wait_readable(fd)
                    self._waiting = None
                    continue
                if not lines:
                    return
                if ids := parse_lines(lines, parser, self._malformed):
                    yield ids
            self.left_unread = True
        finally:
            restore_blocking()
            if private is not None:
                os.close(private)


def read_ids(fd: int, malformed: MalformedLog) -> InputIds:
    """The job IDs of ``fd`` (see ``InputIds``)."""
    return InputIds(fd, malformed)
