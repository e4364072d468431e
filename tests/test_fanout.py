"""Tier 1: the fan-out's exactly-once, ordering, memory and deadline guarantees.

The fetch function here is a plain coroutine with controlled delays, which exercises the
scheduling logic alone; the HTTP path is tested against the simulator elsewhere.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from ncinfo_async._exceptions import DeadlineExceeded, InterruptedRunError
from ncinfo_async._fanout import _READ_AHEAD, SMALL_SEEN, Chunks, FanOut, JobResult


def fetcher(delays: dict[int, float] | None = None, *, seed: int = 1):  # type: ignore[no-untyped-def]
    """A fetch that answers every ID after a delay, recording concurrency."""
    rng = random.Random(seed)
    state = {"active": 0, "peak": 0, "calls": 0}

    async def fetch(batch: list[int]) -> list[JobResult]:
        state["calls"] += 1
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        try:
            delay = (delays or {}).get(batch[0], rng.random() * 0.002)
            await asyncio.sleep(delay)
            return [JobResult(job_id, fields={"IDINT": job_id}) for job_id in batch]
        finally:
            state["active"] -= 1

    return fetch, state


async def collect(fan: FanOut) -> list[JobResult]:
    async with fan.run() as results:
        return [result async for result in results]


@pytest.mark.asyncio
@pytest.mark.parametrize("order", ["input", "completion"])
async def test_exactly_one_result_per_distinct_id(order: str) -> None:
    """Duplicates are fetched once; every distinct ID gets one result; input order is kept."""
    fetch, state = fetcher()
    ids = [5, 3, 5, 1, 3, 9, 2, 2, 7] * 3
    fan = FanOut(fetch, ids, workers=4, order=order)  # type: ignore[arg-type]
    results = await collect(fan)
    got = [result.job_id for result in results]
    assert sorted(got) == [1, 2, 3, 5, 7, 9]
    if order == "input":
        assert got == [5, 3, 1, 9, 2, 7]
    assert state["calls"] == 6
    assert fan.duplicates == len(ids) - 6
    assert state["peak"] <= 4


@pytest.mark.asyncio
async def test_async_iterable_input_and_worker_bound() -> None:
    """An async source works, and no more than `workers` fetches ever run at once."""
    fetch, state = fetcher()

    async def source() -> AsyncIterator[int]:
        for job_id in range(1, 2001):
            yield job_id

    results = await collect(FanOut(fetch, source(), workers=16, order="completion"))
    assert len(results) == 2000
    assert state["peak"] == 16


@pytest.mark.asyncio
async def test_input_order_window_is_bounded() -> None:
    """A slow first job holds later results back by at most the reorder window."""
    started_while_stalled: list[int] = []
    first_done = asyncio.Event()

    async def fetch(batch: list[int]) -> list[JobResult]:
        if not first_done.is_set():
            started_while_stalled.append(batch[0])
        await asyncio.sleep(0.2 if batch[0] == 1 else 0)
        if batch[0] == 1:
            first_done.set()
        return [JobResult(batch[0], fields={})]

    results = await collect(FanOut(fetch, range(1, 1001), workers=8, order="input", window=50))
    assert [r.job_id for r in results] == list(range(1, 1001))
    # While job 1 stalled, fetches ran at most `window` IDs ahead of it, not 1000.
    assert max(started_while_stalled) == 50


@pytest.mark.asyncio
async def test_batches_take_what_is_waiting() -> None:
    """With a batch size, a worker takes several queued IDs in one fetch."""
    fetch, state = fetcher()
    results = await collect(FanOut(fetch, range(1, 1001), workers=2, batch_budget=100))
    assert [r.job_id for r in results] == list(range(1, 1001))
    assert state["calls"] < 100


@pytest.mark.asyncio
async def test_deadline_reports_every_unanswered_id_once() -> None:
    """At the deadline, in-flight, queued and unread IDs each get one DeadlineExceeded."""

    async def never(batch: list[int]) -> list[JobResult]:
        if batch[0] <= 3:
            return [JobResult(batch[0], fields={})]
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    ids = [*range(1, 3001), 1, 2, 3000]
    async with asyncio.timeout(30):
        results = await collect(FanOut(never, ids, workers=32, deadline=0.3))
    assert sorted(r.job_id for r in results) == list(range(1, 3001))
    late = [r for r in results if not r.ok]
    assert len(late) == 2997
    assert all(isinstance(r.error, DeadlineExceeded) for r in late)


@pytest.mark.asyncio
async def test_stop_interrupts_without_reading_further() -> None:
    """stop() gives pending IDs an InterruptedRunError and reads no more input."""
    read: list[int] = []

    def source() -> object:
        for job_id in range(1, 10**9):
            read.append(job_id)
            yield job_id

    async def slow(batch: list[int]) -> list[JobResult]:
        await asyncio.sleep(0.001 if batch[0] < 50 else 3600)
        return [JobResult(batch[0], fields={})]

    fan = FanOut(slow, source(), workers=8)  # type: ignore[arg-type]
    results: list[JobResult] = []
    async with asyncio.timeout(30), fan.run() as stream:
        async for result in stream:
            results.append(result)
            if len(results) == 49:
                fan.stop("test")
    ids = [r.job_id for r in results]
    # A prefix of the input, each ID once: the 49 answered, then those the 8 workers held.
    assert ids == list(range(1, len(ids) + 1))
    assert 49 < len(ids) <= 49 + 8
    assert all(r.ok for r in results[:49])
    assert all(isinstance(r.error, InterruptedRunError) for r in results[49:])
    # Reading stopped: at most the read-ahead queue beyond what the workers took.
    assert len(read) <= len(ids) + _READ_AHEAD + 1
    assert len(read) < 2000  # bounded read-ahead, not the whole input


@pytest.mark.asyncio
async def test_errors_from_fetch_propagate_unwrapped() -> None:
    """A fatal error in a worker surfaces as itself, not as an ExceptionGroup."""

    async def boom(batch: list[int]) -> list[JobResult]:
        raise PermissionError("fatal")

    with pytest.raises(PermissionError, match="fatal"):
        await collect(FanOut(boom, range(10), workers=3))


@pytest.mark.asyncio
async def test_leaving_early_cancels_the_workers() -> None:
    """Breaking out of the results stops the workers and leaves no task behind."""
    fetch, _ = fetcher()
    before = len(asyncio.all_tasks())
    async with FanOut(fetch, range(1, 10**6), workers=8).run() as results:
        async for result in results:
            if result.job_id == 10:
                break
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before


@pytest.mark.asyncio
async def test_stop_ends_a_deadline_drain_of_endless_input() -> None:
    """After the deadline, a stop ends the drain of an input that never ends, each ID once."""
    more = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        job_id = 0
        while True:
            job_id += 1
            if job_id > 50:
                await more.wait()  # an open pipe with nothing more to say
            yield job_id

    async def slow(batch: list[int]) -> list[JobResult]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fan = FanOut(slow, endless(), workers=4, deadline=0.2)
    results: list[JobResult] = []
    async with asyncio.timeout(30), fan.run() as stream:
        async for result in stream:
            results.append(result)
            if len(results) == 50:
                fan.stop("test")
    assert [r.job_id for r in results] == list(range(1, 51))
    assert all(isinstance(r.error, DeadlineExceeded) for r in results)


@pytest.mark.asyncio
async def test_a_run_level_stop_answers_every_id_of_the_input() -> None:
    """stop(error=...) gives pending IDs and the rest of the input that error, each once."""
    from ncinfo_async._exceptions import ServerUnreachable

    async def hang(batch: list[int]) -> list[JobResult]:
        if batch[0] == 3:
            fan.stop("down", error=lambda job_id: ServerUnreachable("down", job_id=job_id))
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fan = FanOut(hang, range(1, 5001), workers=8)
    async with asyncio.timeout(30), fan.run() as stream:
        results = [result async for result in stream]
    assert [r.job_id for r in results] == list(range(1, 5001))
    assert all(isinstance(r.error, ServerUnreachable) for r in results)
    assert all(r.error is not None and r.error.job_id == r.job_id for r in results)


@pytest.mark.asyncio
async def test_a_plain_stop_ends_a_run_level_drain_of_endless_input() -> None:
    """After a run-level stop, a signal's stop() ends the drain of input that never ends."""
    from ncinfo_async._exceptions import ServerUnreachable

    more = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        job_id = 0
        while True:
            job_id += 1
            if job_id > 50:
                await more.wait()  # an open pipe with nothing more to say
            yield job_id

    async def hang(batch: list[int]) -> list[JobResult]:
        fan.stop("down", error=lambda job_id: ServerUnreachable("down", job_id=job_id))
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fan = FanOut(hang, endless(), workers=4)
    results: list[JobResult] = []
    async with asyncio.timeout(30), fan.run() as stream:
        async for result in stream:
            results.append(result)
            if len(results) == 50:
                fan.stop("signal")
    assert [r.job_id for r in results] == list(range(1, 51))


@pytest.mark.asyncio
async def test_duplicates_found_across_the_switch_to_a_bitmap() -> None:
    """Past SMALL_SEEN distinct IDs the seen-set becomes a bitmap and still knows old IDs."""
    fetch, state = fetcher({})
    first = list(range(1, SMALL_SEEN + 51))
    ids = [*first, 7, SMALL_SEEN - 1, SMALL_SEEN + 10, *range(SMALL_SEEN + 51, SMALL_SEEN + 61)]
    fan = FanOut(fetch, ids, workers=8, order="input")
    results = await collect(fan)
    assert [r.job_id for r in results] == [*first, *range(SMALL_SEEN + 51, SMALL_SEEN + 61)]
    assert fan.duplicates == 3
    assert state["calls"] == SMALL_SEEN + 60
    assert type(fan._seen).__name__ == "BitMap64"


@pytest.mark.asyncio
async def test_batches_shrink_to_one_id_once_batching_is_given_up() -> None:
    """When `batching()` turns False mid-run, every later batch holds a single ID."""
    sizes: list[int] = []
    batching = True

    async def fetch(batch: list[int]) -> list[JobResult]:
        nonlocal batching
        sizes.append(len(batch))
        batching = False  # the first answer showed that batches cannot be trusted
        return [JobResult(job_id, fields={"IDINT": job_id}) for job_id in batch]

    fan = FanOut(fetch, range(1, 101), workers=1, batch_budget=10, batching=lambda: batching)
    results = await collect(fan)
    assert [result.job_id for result in results] == list(range(1, 101))
    assert sizes == [10] + [1] * 90


@pytest.mark.asyncio
async def test_chunks_are_batched_across_their_edges_in_input_order() -> None:
    """Chunked input (stdin's reads) batches across chunk edges, duplicates once, in order."""
    sizes: list[int] = []

    async def fetch(batch: list[int]) -> list[JobResult]:
        sizes.append(len(batch))
        await asyncio.sleep(0)
        return [JobResult(job_id, fields={"IDINT": job_id}) for job_id in batch]

    async def reads() -> AsyncIterator[list[int]]:
        for start in range(1, 1001, 7):  # reads of 7 IDs, each repeating the one before
            yield [max(1, start - 1), *range(start, min(start + 7, 1001))]

    fan = FanOut(fetch, Chunks(reads()), workers=3, batch_budget=50)
    async with asyncio.timeout(30), fan.run_batches() as batches:
        got = [batch async for batch in batches]
    assert [r.job_id for batch in got for r in batch] == list(range(1, 1001))
    assert fan.duplicates == 143  # one repeat per read
    assert max(sizes) <= 50
    assert sum(sizes) == 1000
    assert any(size > 7 for size in sizes)  # batches grew past one read's 7 new IDs
    assert sorted(map(len, got)) == sorted(sizes)  # each batch's results travel together


@pytest.mark.asyncio
async def test_endless_chunked_input_is_read_a_bounded_way_ahead() -> None:
    """Chunks are read ahead by at most the queue's two, plus the one being taken."""
    reads = 0

    async def endless() -> AsyncIterator[list[int]]:
        nonlocal reads
        start = 1
        while True:
            reads += 1
            yield list(range(start, start + 1000))
            start += 1000

    async def slow(batch: list[int]) -> list[JobResult]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fan = FanOut(slow, Chunks(endless()), workers=4)
    async with asyncio.timeout(30), fan.run() as stream:
        await asyncio.sleep(0.05)
        fan.stop("test")
        results = [result async for result in stream]
    assert [r.job_id for r in results] == [1, 2, 3, 4]  # the IDs the workers held
    assert reads <= 4


@pytest.mark.asyncio
async def test_a_deadline_answers_the_rest_of_the_chunk_at_hand() -> None:
    """IDs read in a chunk but not yet taken get DeadlineExceeded at the deadline, each once."""

    async def reads() -> AsyncIterator[list[int]]:
        yield list(range(1, 5001))

    async def never(batch: list[int]) -> list[JobResult]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async with asyncio.timeout(30):
        results = await collect(FanOut(never, Chunks(reads()), workers=2, deadline=0.1))
    assert [r.job_id for r in results] == list(range(1, 5001))
    assert all(isinstance(r.error, DeadlineExceeded) for r in results)


@pytest.mark.asyncio
async def test_a_fetch_answering_the_wrong_count_is_an_error() -> None:
    """A fetch that drops a result fails the run loudly instead of misattributing results."""

    async def short(batch: list[int]) -> list[JobResult]:
        return [JobResult(job_id, fields={}) for job_id in batch[1:]]

    with pytest.raises(ValueError, match="answered 9 results for 10 IDs"):
        await collect(FanOut(short, range(1, 11), workers=1, batch_budget=10))
