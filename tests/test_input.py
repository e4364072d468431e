"""Reading stdin: line splitting over a real pipe, bounded memory, streaming to the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import pytest

from ncinfo_async._ids import MAX_LINE_BYTES
from ncinfo_async._input import LineReader

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
