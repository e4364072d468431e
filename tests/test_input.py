"""Reading stdin: line splitting over a real pipe, bounded memory, streaming to the CLI."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import threading
from typing import Any

import pytest

from ncinfo_async._ids import MAX_LINE_BYTES
from ncinfo_async._input import InputIds, LineReader, MalformedLog

from .cliutil import cli_env, start_ncinfo


def read_all(chunks: list[bytes]) -> list[bytes]:
    """Feed the chunks through a pipe from another thread; collect what LineReader returns."""
    read_fd, write_fd = os.pipe()

    def writer() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as pipe:
            for chunk in chunks:
                pipe.write(chunk)

    thread = threading.Thread(target=writer)
    thread.start()
    reader = LineReader(read_fd)
    lines: list[bytes] = []
    try:
        while batch := reader.read():
            lines.extend(batch)
    finally:
        thread.join()
        os.close(read_fd)
    return lines


def test_lines_split_across_reads_and_a_last_line_without_newline() -> None:
    """Lines cut between writes are joined; the last line needs no newline."""
    assert read_all([b"1\n2", b"3\n\n4", b"5\r\n6"]) == [b"1", b"23", b"", b"45\r", b"6"]


def test_an_over_long_line_is_cut_and_the_rest_skipped() -> None:
    """A huge line comes back as MAX_LINE_BYTES + 1 bytes, once; the next lines are intact."""
    huge = [b"7" * 100_000, b"7" * 100_000 + b"\n8\n", b"9"]
    lines = read_all(huge)
    assert [len(line) for line in lines] == [MAX_LINE_BYTES + 1, 1, 1]
    assert lines[1:] == [b"8", b"9"]


def test_an_unterminated_huge_last_line_is_reported_once() -> None:
    """Input that ends inside an over-long line still yields exactly one marker for it."""
    lines = read_all([b"1\n", b"x" * 200_000])
    assert lines == [b"1", b"x" * (MAX_LINE_BYTES + 1)]


@pytest.mark.asyncio
async def test_ids_from_a_slow_producer_are_fetched_as_they_arrive(sim: Any) -> None:
    """A job is printed while its producer is still running, before stdin closes."""
    proc = await start_ncinfo("--format", "ndjson", env=cli_env(sim.url), stdin=True)
    assert proc.stdin is not None
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        proc.stdin.write(b"ID STATUS\n000000005 Running\n")
        await proc.stdin.drain()
        first = json.loads(await proc.stdout.readline())  # stdin is still open here
        proc.stdin.write(b"6\n")
        proc.stdin.close()
        rest, _ = await proc.communicate()
    assert first["id"] == 5
    assert [json.loads(line)["id"] for line in rest.splitlines()] == [6]
    assert proc.returncode == 0


def _nonblocking(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


@pytest.mark.asyncio
async def test_stop_reading_yields_what_was_read_and_restores_the_pipe() -> None:
    """On an open pipe, stop_reading ends the input after the IDs already read; flag put back."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"1\n2\n3\n")
        source = InputIds(read_fd, MalformedLog())
        ids = aiter(source)
        assert await anext(ids) == 1
        assert _nonblocking(read_fd)
        source.stop_reading()
        assert [job_id async for job_id in ids] == [2, 3]
        assert source.left_unread
        assert not _nonblocking(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_stop_reading_ends_a_wait_on_a_silent_pipe() -> None:
    """A reader waiting on a pipe with nothing to read ends at once when stopped."""
    read_fd, write_fd = os.pipe()
    try:
        source = InputIds(read_fd, MalformedLog())
        collected: list[int] = []
        got_one = asyncio.Event()

        async def collect() -> None:
            async for job_id in source:
                collected.append(job_id)
                got_one.set()

        async with asyncio.timeout(10), asyncio.TaskGroup() as group:
            group.create_task(collect())
            os.write(write_fd, b"7\n")
            await got_one.wait()  # the reader now waits on the silent pipe
            source.stop_reading()
        assert collected == [7]
        assert source.left_unread
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_regular_file_and_end_of_input(tmp_path: Any) -> None:
    """A regular file (which epoll refuses) is read plainly to its end; nothing is left unread."""
    path = tmp_path / "ids.txt"
    path.write_bytes(b"ID STATUS\n5\n6 Done\nbad\n")
    malformed = MalformedLog()
    fd = os.open(path, os.O_RDONLY)
    try:
        source = InputIds(fd, malformed)
        assert [job_id async for job_id in source] == [5, 6]
        assert not source.left_unread
        assert malformed.count == 1
    finally:
        os.close(fd)
