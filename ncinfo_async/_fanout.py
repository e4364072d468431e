"""Bounded fan-out: a fixed pool of workers, exactly one result per distinct job ID.

No task is created per ID: ``workers`` tasks take IDs from a small queue of chunks (lists
of IDs: one read of stdin, a slice of a list) fed by one reader, so memory stays flat for
millions of IDs, and the queue is passed once per chunk, not once per ID.  A worker takes
its batch from the chunks synchronously, so a batch holds consecutive input positions and
travels as one item: one result item per batch, one reorder step per batch.  Every batch a
worker takes is recorded as pending before any ``await``, and is removed only once its
results are queued; when the run's deadline passes or the run is stopped, each pending ID
gets an error result, so none is lost and none is reported twice.  ``asyncio.Queue`` is
used rather than anyio's memory streams because its ``get`` and ``put`` are
cancellation-safe: an item is never half-delivered by a cancellation.
"""

from __future__ import annotations

import asyncio
import builtins
import sys
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from contextlib import asynccontextmanager, suppress
from itertools import islice
from typing import Final, Literal, Protocol

from ._exceptions import DeadlineExceeded, InterruptedRunError, NcInfoError
from ._protocol import JobResult

__all__ = ["Chunks", "FanOut", "JobResult"]

#: IDs read ahead of the workers; small, so reading never runs far ahead of fetching.
_READ_AHEAD: Final = 256
#: Chunks of a plain iterable: a quarter of the read-ahead (one per-job chunk), so the
#: queue's two chunks, the one being taken and the one being cut stay within it.
_LIST_CHUNK: Final = _READ_AHEAD // 4
#: Chunks waiting in the queue.
_QUEUED_CHUNKS: Final = 2
#: Distinct IDs kept in a plain set; past this many they move to a compressed bitmap
#: (pyroaring, imported only then), which holds millions of IDs in a few KiB.
SMALL_SEEN: Final = 4096


class _IdSet(Protocol):
    """The part of ``set[int]`` and ``pyroaring.BitMap64`` used to detect duplicates."""

    def __contains__(self, value: int, /) -> bool: ...

    def add(self, value: int, /) -> None: ...

    def __iter__(self) -> Iterator[int]: ...


class Chunks:
    """Job IDs that arrive a list at a time: each read of stdin, or all the arguments.

    A ``FanOut`` given ``Chunks`` queues each list as it comes instead of each ID.
    """

    __slots__ = ("source",)

    def __init__(self, source: AsyncIterable[list[int]]) -> None:
        self.source = source


Fetch = Callable[[list[int]], Awaitable[list[JobResult]]]
#: A batch's results, with the input position of its first ID.
_Done = tuple[int, list[JobResult]]


class FanOut:
    """Runs ``fetch`` over job IDs with a fixed number of workers.

    Args:
        fetch: turns a batch of IDs into one result per ID, in the same order.
        job_ids: the IDs: a plain or async iterable, or ``Chunks``; duplicates are
            fetched once.
        workers: concurrent fetches.
        order: ``input`` or ``completion`` order of results.
        window: in input order, how far results may run ahead of the oldest pending one.
        deadline: seconds after which unanswered IDs get a ``DeadlineExceeded`` result.
        deadline_label: the deadline named in those results' message (default ``deadline``).
        batch_budget: how much one fetch may take, in units of ``batch_cost``; a batch stops
            growing once it reaches the budget, so it may exceed it by one ID's cost.
        batch_cost: the cost of one ID in a batch (default 1, so the budget is a count);
            the batched query mode charges the ID's length in its URL.
        batching: asked before each batch grows past one ID; once it says False, every
            batch is a single ID (a client that gave up batched queries mid-run).
        fetch_one: with a ``batch_budget`` of 1, turns one ID into its result, used instead
            of ``fetch`` (no list each way, no batch to gather: the per-job hot path).
    """

    def __init__(
        self,
        fetch: Fetch,
        job_ids: Iterable[int] | AsyncIterable[int] | Chunks,
        *,
        workers: int,
        order: Literal["input", "completion"] = "input",
        window: int = 4096,
        deadline: float | None = None,
        deadline_label: float | None = None,
        batch_budget: int = 1,
        batch_cost: Callable[[int], int] | None = None,
        batching: Callable[[], bool] | None = None,
        fetch_one: Callable[[int], Awaitable[JobResult]] | None = None,
    ) -> None:
        self._fetch = fetch
        self._fetch_one = fetch_one if batch_budget == 1 else None
        self._ids = job_ids
        self._workers = workers
        self._in_order = order == "input"
        # A batch must fit in the window, or its worker would wait for itself.
        self._window = max(window, batch_budget)
        self._deadline = deadline
        self._deadline_label = deadline if deadline_label is None else deadline_label
        self._batch_budget = batch_budget
        self._batch_cost = batch_cost
        self._batching = batching or (lambda: True)
        self._seen: _IdSet = set()
        self._next_seq = 0
        self._emitted = 0
        self._window_waiters: list[asyncio.Future[None]] = []
        #: The batches taken and not yet answered, by the input position of their first ID.
        self._pending: dict[int, list[int]] = {}
        #: IDs of the chunk being taken, shared by the workers (consumed from the left).
        self._taking: deque[int] = deque()
        self._input_ended = False
        self._stop_error: Callable[[int], NcInfoError] | None = None
        #: After a run-level stop, the rest of the input is still read, each ID answered.
        self._drain_after_stop = False
        self._input_closed = False
        self._timeout: asyncio.Timeout | None = None
        self._reader: asyncio.Task[None] | None = None
        self._results_queue: asyncio.Queue[_Done | None] | None = None
        self._ids_queue: asyncio.Queue[list[int] | None] | None = None
        #: Distinct IDs taken from the input so far.
        self.distinct = 0
        #: Repeated IDs that were skipped.
        self.duplicates = 0

    def stop(
        self, reason: str = "interrupted", *, error: Callable[[int], NcInfoError] | None = None
    ) -> None:
        """Stop now: pending IDs get an ``InterruptedRunError``; the input is not read further.

        With ``error`` (a run-level failure, such as a server that stopped answering), every
        pending ID gets ``error(job_id)`` instead, and the rest of the input is still read to
        its end, each of its IDs answered the same way at once; a later plain ``stop()`` (a
        signal) ends that reading.
        """
        if self._stop_error is not None:
            if error is None and self._drain_after_stop:
                self._drain_after_stop = False
                self._close_input()
            return
        self._stop_error = error or (
            lambda job_id: InterruptedRunError(f"not inspected: {reason}", job_id=job_id)
        )
        self._drain_after_stop = error is not None
        if not self._drain_after_stop:
            self._close_input()
        if self._timeout is not None and not self._timeout.expired():
            with suppress(RuntimeError):  # the workers already finished
                self._timeout.reschedule(asyncio.get_running_loop().time())

    def _close_input(self) -> None:
        """Read no more input, and wake a drain waiting for it."""
        self._input_closed = True
        if self._reader is not None:
            self._reader.cancel()
            if self._ids_queue is not None and not self._ids_queue.full():
                # Wake a drain waiting for input that the cancelled reader will never send
                # (a full queue means the drain is not waiting; it checks the flag first).
                self._ids_queue.put_nowait(None)

    @property
    def caught_up(self) -> bool:
        """Whether no further result is ready right now (a consumer's moment to flush output)."""
        return self._results_queue is None or self._results_queue.empty()

    @asynccontextmanager
    async def run(self) -> AsyncIterator[AsyncIterator[JobResult]]:
        """Start the workers; yield the stream of results; stop everything on exit."""
        async with self.run_batches() as batches:
            yield _each(batches)

    @asynccontextmanager
    async def run_batches(self) -> AsyncIterator[AsyncIterator[list[JobResult]]]:
        """Like ``run``, but yield the results a batch at a time (in the order of ``run``)."""
        # Chunks of single IDs (an async iterable of IDs) need room for two full batches,
        # so batches are not cut short by the queue.
        size = _QUEUED_CHUNKS
        if not isinstance(self._ids, Chunks | Iterable):
            size = max(_READ_AHEAD, 2 * self._batch_budget)
        ids: asyncio.Queue[list[int] | None] = asyncio.Queue(size)
        results: asyncio.Queue[_Done | None] = asyncio.Queue(self._workers)
        self._results_queue, self._ids_queue = results, ids
        stream = self._results(results)
        try:
            async with asyncio.TaskGroup() as group:
                self._reader = group.create_task(self._read(ids))
                producer = group.create_task(self._work_all(ids, results))
                try:
                    yield stream
                finally:
                    await stream.aclose()
                    self._reader.cancel()
                    producer.cancel()
        except BaseExceptionGroup as group_error:
            raise _sole_error(group_error) from None

    async def _read(self, ids: asyncio.Queue[list[int] | None]) -> None:
        """Copy the input into the bounded queue, a chunk at a time, then mark its end."""
        source = self._ids
        if isinstance(source, Chunks):
            async for chunk in source.source:
                if chunk:
                    await ids.put(chunk)
        elif isinstance(source, AsyncIterable):
            # put_nowait while there is room: ``Queue.put`` would not suspend then either.
            async for job_id in source:
                if ids.full():
                    await ids.put([job_id])
                else:
                    ids.put_nowait([job_id])
        else:
            size = max(_LIST_CHUNK, self._batch_budget)
            iterator = iter(source)
            while chunk := list(islice(iterator, size)):
                await ids.put(chunk)
        await ids.put(None)

    def _take(self, batch: list[int], spent: int, budget: int) -> int:
        """Move new distinct IDs from the chunk at hand into ``batch`` until ``budget`` is
        spent (or the chunk is); return what is spent.  Never awaits."""
        taking, seen, cost = self._taking, self._seen, self._batch_cost
        while taking and spent < budget:
            job_id = taking.popleft()
            if job_id in seen:
                self.duplicates += 1
                continue
            seen.add(job_id)
            batch.append(job_id)
            spent += 1 if cost is None else cost(job_id)
        return spent

    def _register(self, batch: list[int]) -> int:
        """Record a batch just taken as pending; return the input position of its first ID."""
        seq = self._next_seq
        self._pending[seq] = batch
        self._next_seq += len(batch)
        self.distinct += len(batch)
        if self.distinct >= SMALL_SEEN and isinstance(self._seen, set):
            from pyroaring import BitMap64

            self._seen = BitMap64(self._seen)
        return seq

    async def _work_all(
        self, ids: asyncio.Queue[list[int] | None], results: asyncio.Queue[_Done | None]
    ) -> None:
        """Run the workers until the input ends, settle what is left, then mark the end."""
        try:
            async with asyncio.timeout(self._deadline) as self._timeout:
                if self._stop_error is not None:
                    raise builtins.TimeoutError
                async with asyncio.TaskGroup() as group:
                    work = self._work if self._fetch_one is None else self._work_one
                    for _ in range(self._workers):
                        group.create_task(work(ids, results))
        except builtins.TimeoutError:
            make_error = self._stop_error or self._deadline_error
            for seq, job_ids in sorted(self._pending.items()):
                await results.put((seq, [JobResult(i, error=make_error(i)) for i in job_ids]))
            self._pending.clear()
            if self._stop_error is None or self._drain_after_stop:
                # Deadline or run-level stop: the rest of the input is still owed one result
                # per ID (until the end of input, or a stop, which wakes this loop): the
                # chunk at hand first, then what the reader sends.
                while True:
                    late: list[int] = []
                    self._take(late, 0, sys.maxsize)
                    if late:
                        seq = self._register(late)
                        del self._pending[seq]
                        await results.put((seq, [JobResult(i, error=make_error(i)) for i in late]))
                    if self._input_ended or self._input_closed:
                        break
                    chunk = await ids.get()
                    if chunk is None:
                        break
                    self._taking.extend(chunk)
        await results.put(None)

    def _deadline_error(self, job_id: int) -> NcInfoError:
        return DeadlineExceeded(
            f"not answered within the {self._deadline_label:g} s deadline", job_id=job_id
        )

    async def _work(
        self, ids: asyncio.Queue[list[int] | None], results: asyncio.Queue[_Done | None]
    ) -> None:
        """One worker: take a batch of IDs, fetch, queue the batch's results."""
        while taken := await self._next_batch(ids):
            seq, batch = taken
            if self._in_order:
                await self._wait_for_window(seq + len(batch) - 1)
            answers = await self._fetch(batch)
            if len(answers) != len(batch):
                raise ValueError(f"fetch answered {len(answers)} results for {len(batch)} IDs")
            await results.put((seq, answers))
            del self._pending[seq]

    async def _work_one(
        self, ids: asyncio.Queue[list[int] | None], results: asyncio.Queue[_Done | None]
    ) -> None:
        """One worker taking one ID at a time: ``_work`` with ``fetch_one`` (no list to
        fetch, no count to check: the per-job hot path).

        ``put_nowait`` when the queue has room: ``Queue.put`` would not suspend then either,
        so this only saves a coroutine per job.
        """
        fetch_one = self._fetch_one
        assert fetch_one is not None
        while taken := await self._next_batch(ids):
            seq, batch = taken
            if self._in_order and seq >= self._emitted + self._window:
                await self._wait_for_window(seq)
            done = (seq, [await fetch_one(batch[0])])
            if results.full():
                await results.put(done)
            else:
                results.put_nowait(done)
            del self._pending[seq]

    async def _next_batch(
        self, ids: asyncio.Queue[list[int] | None]
    ) -> tuple[int, list[int]] | None:
        """Wait for at least one new distinct ID; add more that are already waiting.

        A batch grows until its cost reaches the budget, taking the next queued chunk when
        one is waiting.  Returns the batch with the input position of its first ID, or None
        once the input has ended.
        """
        budget = self._batch_budget if self._batching() else 1
        batch: list[int] = []
        spent = 0
        while True:
            spent = self._take(batch, spent, budget)
            if batch and (
                spent >= budget or (not self._taking and (self._input_ended or ids.empty()))
            ):
                return self._register(batch), batch
            if not batch and self._input_ended and not self._taking:
                return None
            # Only an empty batch waits: IDs taken are registered before any await.
            chunk = ids.get_nowait() if batch else await ids.get()
            if chunk is None:
                self._input_ended = True
                ids.put_nowait(None)  # leave the end mark for the other workers
            else:
                self._taking.extend(chunk)

    async def _wait_for_window(self, seq: int) -> None:
        """In input order, keep results from running more than ``window`` ahead."""
        while seq >= self._emitted + self._window:
            waiter = asyncio.get_running_loop().create_future()
            self._window_waiters.append(waiter)
            await waiter

    async def _results(
        self, results: asyncio.Queue[_Done | None]
    ) -> AsyncGenerator[list[JobResult]]:
        """Yield batches of results, restoring input order through a bounded buffer if asked."""
        waiting: dict[int, list[JobResult]] = {}
        while (
            item := await results.get() if results.empty() else results.get_nowait()
        ) is not None:
            if not self._in_order:
                yield item[1]
                continue
            waiting[item[0]] = item[1]
            while self._emitted in waiting:
                ready = waiting.pop(self._emitted)
                self._emitted += len(ready)
                if self._window_waiters:
                    for waiter in self._window_waiters:
                        if not waiter.done():
                            waiter.set_result(None)
                    self._window_waiters.clear()
                yield ready


async def _each(batches: AsyncIterator[list[JobResult]]) -> AsyncGenerator[JobResult]:
    """The results of a stream of batches, one at a time."""
    async for batch in batches:
        for result in batch:
            yield result


def _sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error of a task group (the others are the cancellations it caused)."""
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        elif not isinstance(error, asyncio.CancelledError):
            leaves.append(error)

    collect(group)
    return leaves[0] if leaves else group
