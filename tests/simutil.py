"""Test helpers: a clock moved by hand, bounded polling of counters, a traced session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp


class FakeClock:
    """Epoch seconds that move only when a test says so (for token expiry on both sides)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``."""
        self.now += seconds


async def until(condition: Callable[[], bool], *, limit: float = 30.0, what: str = "") -> None:
    """Wait until ``condition()`` holds, checking every few milliseconds.

    ``limit`` only catches a hang (the test then fails); the wait ends as soon as the
    condition holds, so the test does not depend on how fast the machine is.
    """
    async with asyncio.timeout(limit):
        # Polling, not an Event: the condition is a counter of the simulator (or the state
        # of another process) that nothing here is told about when it changes.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert condition(), what


def tracing_session() -> tuple[aiohttp.ClientSession, list[str]]:
    """A session that records the method and path of every request sent through it."""
    sent: list[str] = []

    async def on_start(
        _session: aiohttp.ClientSession, _ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace]), sent
