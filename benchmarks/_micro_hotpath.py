#!/usr/bin/env python3
"""In-process timings of two per-job costs, each against its former version, interleaved.

- ``parse_table`` on 2,000 different job answers (the nginx bodies of ``bench_ceiling.py``)
  with the header memo, and with it emptied before each answer (the former cost: every
  column checked again);
- a job-budget scope per job: ``asyncio.timeout`` (the former way) against ``_JobClock``
  (one lazy timer per task), each around an ``await`` that yields once, on uvloop.

CPU time (``time.process_time``), min and median of interleaved repeats: on a shared machine
the minimum is the figure least disturbed by other processes.

Usage: .venv/bin/python benchmarks/_micro_hotpath.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

import _harness as h
import uvloop

from ncinfo_async import _protocol as protocol
from ncinfo_async._client import _JobClock

BODIES = [h.render_job_json(idint) for idint in range(1, 2001)]
JOBS = 20000


def parse(memo: bool) -> float:
    """µs of CPU per parse_table call over BODIES."""
    start = time.process_time()
    for body in BODIES:
        if not memo:
            protocol._last_header.columns = None
        protocol.parse_table(body, url="u")
    return (time.process_time() - start) / len(BODIES) * 1e6


async def _yield() -> None:
    await asyncio.sleep(0)


async def _bare() -> None:
    for _ in range(JOBS):
        await _yield()


async def _timeout() -> None:
    for _ in range(JOBS):
        async with asyncio.timeout(120):
            await _yield()


async def _clock() -> None:
    task = asyncio.current_task()
    assert task is not None
    clock = _JobClock(task, 120)
    for _ in range(JOBS):
        clock.start()
        try:
            await _yield()
        finally:
            clock.stop()
    clock.close()


def per_job(run: Callable[[], object]) -> float:
    """µs of CPU per job of one uvloop run of ``run``."""
    start = time.process_time()
    uvloop.run(run())  # type: ignore[arg-type]
    return (time.process_time() - start) / JOBS * 1e6


def show(name: str, values: list[float]) -> None:
    print(f"{name:36s} min {min(values):6.2f}  median {statistics.median(values):6.2f} µs/job")


def main() -> None:
    """Print the timings."""
    memo: list[float] = []
    checked: list[float] = []
    for _ in range(40):
        memo.append(parse(True))
        checked.append(parse(False))
    show("parse_table, header memo", memo)
    show("parse_table, every column checked", checked)
    bare: list[float] = []
    timeout: list[float] = []
    clock: list[float] = []
    for _ in range(9):
        bare.append(per_job(_bare))
        timeout.append(per_job(_timeout))
        clock.append(per_job(_clock))
    show("await only", bare)
    show("asyncio.timeout per job", timeout)
    show("_JobClock per job", clock)


if __name__ == "__main__":
    main()
