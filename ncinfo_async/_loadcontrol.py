"""Load control arithmetic, pure: an AIMD concurrency limit and a token bucket for a rate cap.

No I/O, no clock of its own: the asyncio shell (``_limiter.py``) passes the time in, so each
rule is unit-tested with plain numbers.

**AIMD** (additive increase, multiplicative decrease) is TCP's congestion-avoidance rule
(RFC 5681: halve the window on loss, grow it by one segment per round trip) and the
``AIMDLimit`` of Netflix's concurrency-limits library, applied to requests in flight:

- every overload signal (429, 503, a refused connection) halves the limit, down to 1;
- signals from requests sent *before* the last decrease do not halve it again: they were
  sent under the old, larger limit, and the decrease already answers them (TCP likewise
  reduces its window once per window of losses, not once per lost segment);
- each full window of successful answers (as many as the current limit) adds one, up to
  the ceiling (``--concurrency``), which is also where the limit starts: a server that is
  not overloaded sees no difference (TCP's slow start is left out: it would make the few
  requests of a batched run wait for each other).

A shared vovserver also schedules every user's jobs (REST ref §7), so an overloaded server
sees one bulk run back off to what it can serve instead of holding ``--concurrency``
requests in flight, each retrying on its own backoff.

The **token bucket** caps how many requests start per second.  Its burst is small: a
bucket as deep as its rate (``aiolimiter.AsyncLimiter(N, 1)``) lets N requests through at
once and N more within the same second, so a sliding one-second window could see 2N; here
requests start one interval (``1 / rate``) apart, with 10 ms of slack for late wake-ups, and
no one-second window holds more than ``rate * 1.01 + 1`` of them.

A rate cap also caps the requests **in flight**, at a twentieth of a second's worth
(``rate_ceiling``): the bucket spaces the starts as the client sees them, but a server that
stalls (for CPU, for a collection pass) reads the requests that queued up meanwhile all at
once when it resumes, and each of them lands in its one-second window.  Holding at most
``rate / 20`` in flight bounds that backlog, so the server never sees more than about
``rate * 1.06 + 1`` requests begin in a second, and the rate is still reached while answers
take under 50 ms.
"""

from __future__ import annotations

import math

__all__ = ["BACKLOG_S", "AimdLimit", "TokenBucket", "rate_ceiling"]

#: Under a rate cap, the requests in flight are at most this many seconds' worth of starts.
BACKLOG_S = 0.05


def rate_ceiling(concurrency: int, max_rate: float | None) -> int:
    """The most requests in flight: ``concurrency``, and under a rate cap at most
    ``BACKLOG_S`` seconds' worth of starts (at least 1)."""
    if max_rate is None:
        return concurrency
    return max(1, min(concurrency, math.ceil(max_rate * BACKLOG_S)))


class AimdLimit:
    """A concurrency limit under additive increase, multiplicative decrease.

    Args:
        ceiling: the most requests in flight ever allowed (and the starting limit).

    Attributes:
        limit: requests allowed in flight now, between 1 and ``ceiling``.
        epoch: how many decreases happened; a request remembers the epoch it was sent in.
        decreases: decreases made (for stats and tests).
    """

    __slots__ = ("_successes", "ceiling", "decreases", "epoch", "limit")

    def __init__(self, ceiling: int) -> None:
        if ceiling < 1:
            raise ValueError(f"the ceiling must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.limit = ceiling
        self.epoch = 0
        self.decreases = 0
        self._successes = 0

    def on_success(self) -> None:
        """A successful answer: one more full window of them raises the limit by one."""
        if self.limit >= self.ceiling:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self.limit += 1
            self._successes = 0

    def on_overload(self, epoch: int) -> bool:
        """An overload signal from a request sent in ``epoch``; returns whether it halved."""
        if epoch != self.epoch:
            return False  # sent under a larger limit, which a decrease already answered
        self.limit = (self.limit + 1) // 2  # halved, rounded up: 1 stays 1
        self.epoch += 1
        self.decreases += 1
        self._successes = 0
        return True


class TokenBucket:
    """At most ``rate`` starts per second (see the module docstring).

    A caller asks ``wait(now)`` how long until the next start is allowed, sleeps that
    long, and records its start with ``take(now)`` once it is really under way, so starts
    keep their spacing even when the caller wakes up late (booking times in advance would
    let every sleeper that a stalled event loop woke late start together).  A start taken
    up to ``slack`` seconds after its turn keeps the schedule's cadence instead of pushing
    every later start back: sleeps overshoot by a millisecond or two, which at 200/s would
    otherwise cost a quarter of the rate.  So any one-second window holds at most
    ``rate * (1 + slack) + 1`` starts (203 at 200/s).

    Args:
        rate: starts per second, positive.
        slack: how late a start may be and still count as on time, in seconds.
    """

    __slots__ = ("_next", "interval", "slack")

    def __init__(self, rate: float, *, slack: float = 0.01) -> None:
        if not rate > 0:
            raise ValueError(f"the rate must be positive, got {rate}")
        self.interval = 1.0 / rate
        self.slack = slack
        self._next = float("-inf")

    def wait(self, now: float) -> float:
        """Seconds until the next start is allowed (0 when it may go now)."""
        return max(0.0, self._next - now)

    def take(self, now: float) -> None:
        """Record a start at ``now``; the next may come one interval after this one's turn
        (or after ``now``, when this start came more than ``slack`` after its turn)."""
        turn = self._next if now - self.slack <= self._next else now
        self._next = turn + self.interval
