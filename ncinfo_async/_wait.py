"""Waiting for jobs to finish: poll only unfinished jobs until all are done or time is up."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
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
    "WaitOutcome",
    "is_finished",
    "wait_for_jobs",
]

#: NC statuses a job does not leave (REST ref §4.3: "Idle > Queued > Running > Done", "... >
#: Running > Failed"; a withdrawn job is not rescheduled).
DEFAULT_TERMINAL: Final = ("Done", "Failed", "Withdrawn")
#: vovserver caches select results for about 10 s (REST ref §7), so polling faster only
#: reloads the server without seeing news sooner.
DEFAULT_POLL_INTERVAL: Final = 10.0


def is_finished(result: JobResult, terminal: Collection[str]) -> bool:
    """Whether polling this job again is pointless: it is terminal, or the server does not know it.

    Other errors (timeouts, 5xx after retries) are worth another poll.
    """
    if result.error is not None:
        return isinstance(result.error, NotFoundError)
    status = str((result.fields or {}).get("STATUSNC", ""))
    return status.lower() in {name.lower() for name in terminal}


@dataclass(frozen=True, slots=True)
class WaitOutcome:
    """What waiting produced.

    Attributes:
        results: the last result of every distinct ID, in input order.
        unfinished: IDs still not finished when the wait timed out.
        polls: polling rounds made.
    """

    results: list[JobResult]
    unfinished: list[int]
    polls: int


async def wait_for_jobs(
    client: Client,
    job_ids: Sequence[int],
    *,
    terminal: Collection[str] = DEFAULT_TERMINAL,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    give_up_after: float | None = None,
    batch: bool = False,
    select: Sequence[str] = ("*",),
    progress: Callable[[int, int], None] | None = None,
    latest: dict[int, JobResult] | None = None,
) -> WaitOutcome:
    """Poll until every job is finished (see ``is_finished``) or ``give_up_after`` seconds.

    Each round fetches only the jobs not yet finished, through the client's usual
    concurrency, retries and authentication (batched if asked).  ``progress`` receives
    (finished, total) after each round.  ``latest``, if given, is filled with each job's
    last result as it arrives, so a caller that cancels the wait still has them.
    """
    latest = {} if latest is None else latest
    pending = list(dict.fromkeys(job_ids))
    total = len(pending)
    give_up = None if give_up_after is None else time.monotonic() + give_up_after
    polls = 0
    while pending:
        polls += 1
        async with client.fan_out(pending, batch=batch, select=select).run() as results:
            async for result in results:
                latest[result.job_id] = result
        pending = [job_id for job_id in pending if not is_finished(latest[job_id], terminal)]
        if progress is not None:
            progress(total - len(pending), total)
        if not pending or (give_up is not None and time.monotonic() + poll_interval > give_up):
            break
        await anyio.sleep(poll_interval)
    ordered = [latest[job_id] for job_id in dict.fromkeys(job_ids) if job_id in latest]
    return WaitOutcome(results=ordered, unfinished=pending, polls=polls)
