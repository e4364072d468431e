"""Waiting for jobs to finish: poll only unfinished jobs until all are done or time is up."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio

from ._exceptions import NotFoundError
from ._protocol import JobResult

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TERMINAL",
    "HEARTBEAT",
    "WaitOutcome",
    "WaitStatus",
    "is_finished",
    "next_poll_in",
    "poll_rounds",
    "wait_for_jobs",
    "wait_status",
]

#: NC statuses a job does not leave (REST ref §4.3: "Idle > Queued > Running > Done", "... >
#: Running > Failed"; a withdrawn job is not rescheduled).
DEFAULT_TERMINAL: Final = ("Done", "Failed", "Withdrawn")
#: vovserver caches select results for about 10 s (REST ref §7), so polling faster only
#: reloads the server without seeing news sooner.
DEFAULT_POLL_INTERVAL: Final = 10.0


def is_finished(result: JobResult, terminal: Collection[str]) -> bool:
    """Whether polling this job again is pointless: it is terminal, or the server does not know it.

    So is a job answered with the error that stopped the whole run (``run_level``).  Other
    errors (timeouts, 5xx after retries) are worth another poll.
    """
    if result.error is not None:
        return result.error.run_level or isinstance(result.error, NotFoundError)
    status = str((result.fields or {}).get("STATUSNC", ""))
    return status.lower() in {name.lower() for name in terminal}


#: The longest a wait stays silent: a CI log shows a status line at least this often.
HEARTBEAT: Final = 60.0
#: A poll that starts this close to the timeout is the poll at the timeout (a sleep may end
#: a little early by the event loop's clock resolution).
_SLACK: Final = 0.05


def next_poll_in(
    *, now: float, poll_started: float, give_up: float | None, interval: float
) -> float | None:
    """Seconds to sleep before the next poll, or None when the poll just made was the last.

    Without a timeout, always ``interval``.  With one, the sleep is cut short so that a last
    poll happens at the timeout itself, never a poll interval early; the poll that started at
    the timeout (or a poll that ended after it) is the last.
    """
    if give_up is None:
        return interval
    if poll_started >= give_up - _SLACK or now >= give_up:
        return None
    return min(interval, give_up - now)


@dataclass(frozen=True, slots=True)
class WaitStatus:
    """Where a wait stands: counts by state of the jobs waited for.

    Attributes:
        total: distinct jobs waited for.
        finished: jobs finished (see ``is_finished``).
        running: unfinished jobs whose last answer said Running.
        queued: unfinished jobs whose last answer said Queued.
        other: every other unfinished job (Idle, Suspended..., an error, no answer yet).
        oldest: the smallest unfinished job ID (Accelerator numbers jobs as they are
            submitted, so it is the oldest), or None when all are finished.
        elapsed: seconds since the wait began.
        polls: polling rounds completed.
    """

    total: int
    finished: int
    running: int
    queued: int
    other: int
    oldest: int | None
    elapsed: float
    polls: int

    def describe(self) -> str:
        """One line for a CI log, e.g. ``3/10 finished, 2 running, 4 queued, 1 other; ...``."""
        text = (
            f"{self.finished}/{self.total} finished, {self.running} running, "
            f"{self.queued} queued, {self.other} other"
        )
        if self.oldest is not None:
            text += f"; oldest unfinished {self.oldest}"
        return text + f"; {self.elapsed:.1f} s elapsed, {self.polls} poll(s)"


def wait_status(
    job_ids: Sequence[int],
    latest: Mapping[int, JobResult],
    terminal: Collection[str],
    *,
    elapsed: float,
    polls: int,
) -> WaitStatus:
    """Count the jobs by their last known state (pure)."""
    finished = running = queued = other = 0
    oldest: int | None = None
    for job_id in job_ids:
        result = latest.get(job_id)
        if result is not None and is_finished(result, terminal):
            finished += 1
            continue
        oldest = job_id if oldest is None else min(oldest, job_id)
        status = "" if result is None else str((result.fields or {}).get("STATUSNC", ""))
        if status == "Running":
            running += 1
        elif status == "Queued":
            queued += 1
        else:
            other += 1
    return WaitStatus(len(job_ids), finished, running, queued, other, oldest, elapsed, polls)


@dataclass(frozen=True, slots=True)
class WaitOutcome:
    """What waiting produced.

    Attributes:
        results: the last result of every distinct ID, in input order.
        unfinished: IDs still not finished when the wait timed out.
        polls: polling rounds made.
        elapsed: seconds the wait really took.
    """

    results: list[JobResult]
    unfinished: list[int]
    polls: int
    elapsed: float = 0.0


async def wait_for_jobs(
    client: Client,
    job_ids: Sequence[int],
    *,
    terminal: Collection[str] = DEFAULT_TERMINAL,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    give_up_after: float | None = None,
    batch: bool | None = False,
    select: Sequence[str] = ("*",),
    progress: Callable[[int, int], None] | None = None,
    latest: dict[int, JobResult] | None = None,
    report: Callable[[WaitStatus], None] | None = None,
    heartbeat: float = HEARTBEAT,
) -> WaitOutcome:
    """Poll until every job is finished (see ``is_finished``) or ``give_up_after`` seconds.

    Each round fetches only the jobs not yet finished, through the client's usual
    concurrency, retries and authentication (batched as ``Client.fan_out`` does).  With
    ``give_up_after``, a last round happens at that time (see ``next_poll_in``).
    ``progress`` receives (finished, total) after each round.  ``report`` receives a
    ``WaitStatus`` after each round, and also whenever ``heartbeat`` seconds passed without
    one (a long round or a long poll interval), so a log is never silent for long.
    ``latest``, if given, is filled with each job's last result as it arrives, so a caller
    that cancels the wait still has them.
    """
    latest = {} if latest is None else latest
    distinct = list(dict.fromkeys(job_ids))
    pending = distinct
    if not distinct:
        return WaitOutcome(results=[], unfinished=[], polls=0)

    async def poll() -> list[int]:
        nonlocal pending
        async with client.fan_out(pending, batch=batch, select=select).run() as results:
            async for result in results:
                latest[result.job_id] = result
        pending = [job_id for job_id in pending if not is_finished(latest[job_id], terminal)]
        return pending

    pending, polls, elapsed = await poll_rounds(
        poll,
        lambda: distinct,
        latest,
        terminal=terminal,
        poll_interval=poll_interval,
        give_up_after=give_up_after,
        progress=progress,
        report=report,
        heartbeat=heartbeat,
    )
    ordered = [latest[job_id] for job_id in distinct if job_id in latest]
    return WaitOutcome(results=ordered, unfinished=pending, polls=polls, elapsed=elapsed)


async def poll_rounds(
    poll: Callable[[], Awaitable[list[int]]],
    watched: Callable[[], Sequence[int]],
    latest: Mapping[int, JobResult],
    *,
    terminal: Collection[str],
    poll_interval: float,
    give_up_after: float | None,
    progress: Callable[[int, int], None] | None,
    report: Callable[[WaitStatus], None] | None,
    heartbeat: float,
) -> tuple[list[int], int, float]:
    """Run ``poll`` rounds until one leaves nothing unfinished or ``give_up_after`` passes.

    The loop both waits share: ``poll`` runs one round and returns the IDs still
    unfinished; ``watched`` names every ID the wait covers so far (for ``progress`` and
    ``report``).  A last round happens at the give-up time (see ``next_poll_in``), and a
    ``report`` goes out after each round and whenever ``heartbeat`` seconds passed without
    one.  Returns the unfinished IDs, the rounds made and the seconds spent.
    """
    started = time.monotonic()
    give_up = None if give_up_after is None else started + give_up_after
    polls = 0
    last_report = started
    pending: list[int] = []

    def send_report() -> None:
        nonlocal last_report
        last_report = time.monotonic()
        if report is not None:
            status = wait_status(
                watched(), latest, terminal, elapsed=last_report - started, polls=polls
            )
            report(status)

    async def keep_reporting() -> None:
        while True:
            await anyio.sleep(max(0.0, last_report + heartbeat - time.monotonic()))
            if time.monotonic() - last_report >= heartbeat:
                send_report()

    async with anyio.create_task_group() as group:
        if report is not None:
            group.start_soon(keep_reporting)
        while True:
            polls += 1
            poll_started = time.monotonic()
            pending = await poll()
            if progress is not None:
                total = len(watched())
                progress(total - len(pending), total)
            send_report()
            if not pending:
                break
            pause = next_poll_in(
                now=time.monotonic(),
                poll_started=poll_started,
                give_up=give_up,
                interval=poll_interval,
            )
            if pause is None:
                break
            await anyio.sleep(pause)
        group.cancel_scope.cancel()
    return pending, polls, time.monotonic() - started
