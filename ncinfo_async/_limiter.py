"""The asyncio shell around ``_loadcontrol``: a gate every API request passes on its way out.

``RequestLimiter.acquire()`` waits for a slot under the current concurrency limit (AIMD,
unless adaptation is off) and then for the rate cap's booking, if there is one;
``release()`` gives the slot back with the request's outcome, which moves the limit.
Waiters are served first come, first served, and a slot freed by a release is handed to the
oldest waiter directly, so a newcomer cannot overtake it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Literal

from ._loadcontrol import AimdLimit, TokenBucket, rate_ceiling

__all__ = ["Outcome", "RequestLimiter"]

#: ``ok``: the server answered (any status but 429/503); ``overload``: 429, 503 or a refused
#: connection; ``other``: anything else (a timeout, a reset), which moves nothing.
Outcome = Literal["ok", "overload", "other"]


class RequestLimiter:
    """Bounds API requests in flight (adaptively) and, optionally, their start rate.

    Args:
        ceiling: the most requests in flight (``--concurrency``).
        adapt: apply AIMD under the ceiling; False keeps the limit at the ceiling.
        max_rate: at most this many requests started per second, or None for no cap; it
            also lowers the ceiling to ``rate_ceiling``'s (a stalled server's backlog).
    """

    def __init__(self, ceiling: int, *, adapt: bool = True, max_rate: float | None = None) -> None:
        self.aimd = AimdLimit(rate_ceiling(ceiling, max_rate))
        self._adapt = adapt
        self._bucket = TokenBucket(max_rate) if max_rate is not None else None
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pace_lock = asyncio.Lock()  # FIFO: rate-capped requests start in arrival order
        #: Requests holding a slot now.
        self.in_flight = 0
        #: Overload signals received (429, 503, refused connections).
        self.overloads = 0

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return self.aimd.limit

    def try_acquire(self) -> int | None:
        """Take a slot if one is free now and nobody waits; return its epoch, else None.

        Never waits, so it cannot be cancelled half-way: the fast path of a request asks it
        first and awaits ``acquire`` only when it says None.  With a rate cap it always says
        None, since every start must be paced.
        """
        if self._waiters or self.in_flight >= self.aimd.limit or self._bucket is not None:
            return None
        self.in_flight += 1
        return self.aimd.epoch

    async def acquire(self) -> int:
        """Wait for a slot (and the rate cap); return the epoch to pass to ``release``."""
        if self._waiters or self.in_flight >= self.aimd.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # release() counted the slot for us before waking us
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._give_back()  # handed a slot, but cancelled before using it
                elif waiter in self._waiters:  # a release may have dropped it already
                    self._waiters.remove(waiter)
                raise
        else:
            self.in_flight += 1
        if self._bucket is not None:
            try:
                await self._pace(self._bucket)
            except asyncio.CancelledError:
                self._give_back()
                raise
        return self.aimd.epoch

    async def _pace(self, bucket: TokenBucket) -> None:
        """Wait for the rate cap, one caller at a time, and record the start."""
        loop = asyncio.get_running_loop()
        async with self._pace_lock:
            delay = bucket.wait(loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            bucket.take(loop.time())

    def release(self, epoch: int, outcome: Outcome) -> None:
        """Give the slot back with what became of the request sent in ``epoch``."""
        if outcome == "overload":
            self.overloads += 1
            if self._adapt:
                self.aimd.on_overload(epoch)
        elif outcome == "ok" and self._adapt:
            self.aimd.on_success()
        self._give_back()

    def _give_back(self) -> None:
        self.in_flight -= 1
        while self._waiters and self.in_flight < self.aimd.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
