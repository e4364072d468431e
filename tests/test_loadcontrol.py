"""Tier 1: the load-control arithmetic (AIMD limit, token bucket) and its asyncio gate."""

from __future__ import annotations

import asyncio

import pytest

from ncinfo_async._limiter import RequestLimiter
from ncinfo_async._loadcontrol import AimdLimit, TokenBucket, rate_ceiling


def test_aimd_starts_at_the_ceiling() -> None:
    """With no overload seen, the limit is --concurrency itself."""
    assert AimdLimit(32).limit == 32


def test_aimd_halves_on_overload_down_to_one() -> None:
    """Each overload signal in the current epoch halves the limit (rounded up), never below 1."""
    aimd = AimdLimit(64)
    seen = []
    for _ in range(9):
        assert aimd.on_overload(aimd.epoch)
        seen.append(aimd.limit)
    assert seen == [32, 16, 8, 4, 2, 1, 1, 1, 1]
    assert aimd.decreases == 9
    odd = AimdLimit(5)
    odd.on_overload(0)
    assert odd.limit == 3


def test_aimd_ignores_overload_from_requests_sent_before_the_last_decrease() -> None:
    """56 refused requests sent under one limit halve it once, not 56 times."""
    aimd = AimdLimit(64)
    epoch = aimd.epoch
    halved = [aimd.on_overload(epoch) for _ in range(56)]
    assert halved.count(True) == 1
    assert aimd.limit == 32
    assert aimd.on_overload(aimd.epoch)  # a request sent under the new limit counts again
    assert aimd.limit == 16


def test_aimd_grows_by_one_per_window_of_successes() -> None:
    """After a decrease to 4, four successes make 5, five more make 6; never past the ceiling."""
    aimd = AimdLimit(6)
    aimd.on_overload(0)  # 6 -> 3
    assert aimd.limit == 3
    trace = []
    for _ in range(3 + 4 + 5 + 6 + 10):
        aimd.on_success()
        trace.append(aimd.limit)
    assert trace[2] == 4  # the third success completes the window of 3
    assert trace[3 + 4 - 1] == 5
    assert trace[3 + 4 + 5 - 1] == 6
    assert max(trace) == 6  # the ceiling holds
    assert [trace.count(limit) for limit in (3, 4, 5)] == [2, 4, 5]


def test_aimd_a_decrease_restarts_the_success_window() -> None:
    """Successes counted before a decrease do not carry over into the smaller window."""
    aimd = AimdLimit(16)
    aimd.on_overload(0)  # 8
    for _ in range(7):
        aimd.on_success()
    aimd.on_overload(aimd.epoch)  # 4, window restarts
    for _ in range(3):
        aimd.on_success()
    assert aimd.limit == 4
    aimd.on_success()
    assert aimd.limit == 5


def test_aimd_refuses_a_ceiling_below_one() -> None:
    """A ceiling of 0 would block every request forever."""
    with pytest.raises(ValueError, match="at least 1"):
        AimdLimit(0)


def test_token_bucket_spaces_starts_by_the_interval() -> None:
    """At 200/s without slack, a start at 10.0 s makes the next wait until 10.005 s."""
    bucket = TokenBucket(200, slack=0)
    assert bucket.wait(10.0) == 0
    bucket.take(10.0)
    assert bucket.wait(10.0) == pytest.approx(0.005)
    assert bucket.wait(10.004) == pytest.approx(0.001)
    assert bucket.wait(10.005) == 0


def test_token_bucket_holds_no_credit_for_idle_time() -> None:
    """After a quiet spell one start goes at once, and the next waits again (no slack)."""
    bucket = TokenBucket(10, slack=0)
    bucket.take(0.0)
    assert bucket.wait(100.0) == 0
    bucket.take(100.0)
    assert bucket.wait(100.0) == pytest.approx(0.1)


def test_token_bucket_slack_keeps_the_cadence_of_slightly_late_starts() -> None:
    """Starts 2 ms late at 100/s keep the 10 ms cadence; 50 ms late, the schedule moves on."""
    bucket = TokenBucket(100, slack=0.01)
    bucket.take(0.0)
    bucket.take(0.012)  # its turn was 0.010
    assert bucket.wait(0.012) == pytest.approx(0.008)  # next turn 0.020, not 0.022
    late = TokenBucket(100, slack=0.01)
    late.take(0.0)
    late.take(0.060)  # woke 50 ms late (a stalled loop): no catching up beyond the slack
    assert late.wait(0.060) == pytest.approx(0.01)


@pytest.mark.parametrize("slack", [0.0, 0.01])
@pytest.mark.parametrize("rate", [1.0, 7.5, 200.0, 1000.0])
def test_token_bucket_never_allows_more_than_its_bound_in_a_second(
    rate: float, slack: float
) -> None:
    """Callers that wait as told: any one-second window holds at most rate*(1+slack)+1 starts."""
    bucket = TokenBucket(rate, slack=slack)
    starts = []
    now = 0.0
    for step in range(int(rate * 3) + 5):
        now += (step % 7) * 0.3 / rate  # callers arrive unevenly, often in clumps
        now += bucket.wait(now) + (step % 3) * 0.1 / rate  # and some wake up late
        bucket.take(now)
        starts.append(now)
    most = max(sum(1 for s in starts[i:] if s < first + 1.0) for i, first in enumerate(starts))
    assert most <= rate * (1 + slack) + 1
    assert most >= rate * 0.5  # and the cap is not a throttle far below the rate


def test_token_bucket_refuses_a_rate_that_is_not_positive() -> None:
    """--max-rate 0 would never start a request."""
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


@pytest.mark.asyncio
async def test_gate_holds_requests_beyond_the_limit_until_a_release() -> None:
    """With a ceiling of 2 a third request waits, and starts when one of the two ends."""
    gate = RequestLimiter(2)
    first = await gate.acquire()
    await gate.acquire()
    third = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert not third.done()
    assert gate.in_flight == 2
    gate.release(first, "ok")
    await third
    assert gate.in_flight == 2


@pytest.mark.asyncio
async def test_gate_overload_shrinks_what_is_let_through() -> None:
    """After 503s halve a limit of 4 to 2, waiters get in only while fewer than 2 are in flight."""
    gate = RequestLimiter(4)
    epochs = [await gate.acquire() for _ in range(4)]
    waiting = [asyncio.ensure_future(gate.acquire()) for _ in range(4)]
    await asyncio.sleep(0)
    gate.release(epochs[0], "overload")
    gate.release(epochs[1], "overload")  # sent under the same limit: no second halving
    assert gate.limit == 2
    await asyncio.sleep(0)
    assert sum(task.done() for task in waiting) == 0  # still 2 in flight
    gate.release(epochs[2], "other")
    await asyncio.sleep(0)
    assert sum(task.done() for task in waiting) == 1
    gate.release(epochs[3], "other")
    await asyncio.sleep(0)
    assert sum(task.done() for task in waiting) == 2
    assert gate.in_flight == 2
    assert gate.overloads == 2
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


@pytest.mark.asyncio
async def test_gate_without_adaptation_keeps_the_ceiling() -> None:
    """--no-adapt: overload signals are counted but the limit stays at --concurrency."""
    gate = RequestLimiter(4, adapt=False)
    epoch = await gate.acquire()
    gate.release(epoch, "overload")
    assert gate.limit == 4
    assert gate.overloads == 1


@pytest.mark.asyncio
async def test_gate_a_cancelled_waiter_gives_its_slot_on() -> None:
    """A waiter cancelled after being handed a slot passes it to the next waiter."""
    gate = RequestLimiter(1)
    epoch = await gate.acquire()
    second = asyncio.ensure_future(gate.acquire())
    third = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    gate.release(epoch, "ok")  # hands the slot to `second`...
    second.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(second, return_exceptions=True)
    async with asyncio.timeout(5):  # a lost slot would leave `third` waiting forever
        await third
    assert gate.in_flight == 1


@pytest.mark.asyncio
async def test_gate_waiters_cancelled_before_a_release_leave_it_consistent() -> None:
    """Waiters cancelled while a release runs past them: no error, the slot count is right."""
    gate = RequestLimiter(1)
    epoch = await gate.acquire()
    waiting = [asyncio.ensure_future(gate.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    for task in waiting[:2]:
        task.cancel()
    gate.release(epoch, "ok")  # drops the two cancelled waiters, hands the slot to the third
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [isinstance(r, asyncio.CancelledError) for r in results] == [True, True, False]
    assert gate.in_flight == 1


@pytest.mark.parametrize(
    ("concurrency", "rate", "expected"),
    [(32, None, 32), (64, 200.0, 10), (64, 1000.0, 50), (8, 1000.0, 8), (64, 5.0, 1), (64, 0.5, 1)],
)
def test_rate_ceiling_is_a_twentieth_of_a_second_of_starts(
    concurrency: int, rate: float | None, expected: int
) -> None:
    """--max-rate N caps requests in flight at ceil(N/20), within 1..--concurrency."""
    assert rate_ceiling(concurrency, rate) == expected


def test_gate_under_a_rate_cap_starts_at_the_rate_ceiling() -> None:
    """A rate cap of 200/s lowers a ceiling of 64 to 10 in flight, adaptive or not."""
    assert RequestLimiter(64, max_rate=200).limit == 10
    assert RequestLimiter(64, adapt=False, max_rate=200).limit == 10
    assert RequestLimiter(64).limit == 64


def test_gate_try_acquire_takes_a_free_slot_and_never_overtakes() -> None:
    """try_acquire takes a slot only when one is free and nobody waits; never with a rate cap."""
    gate = RequestLimiter(2, adapt=False)
    assert gate.try_acquire() == gate.aimd.epoch
    assert gate.try_acquire() is not None
    assert gate.in_flight == 2
    assert gate.try_acquire() is None  # full
    assert gate.in_flight == 2
    gate.release(0, "ok")
    assert gate.try_acquire() is not None
    assert RequestLimiter(2, max_rate=100.0).try_acquire() is None  # every start is paced


@pytest.mark.asyncio
async def test_gate_try_acquire_leaves_a_freed_slot_to_a_waiter() -> None:
    """A slot freed while someone waits goes to the waiter, not to try_acquire."""
    gate = RequestLimiter(1, adapt=False)
    epoch = await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release(epoch, "ok")  # handed to the waiter
    assert gate.try_acquire() is None
    await waiter
    assert gate.in_flight == 1
