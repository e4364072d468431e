"""One run of ``ncinfo``: authenticate, fetch (or wait), render, settle the exit status."""

from __future__ import annotations

import math
import signal
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

import anyio

# Imported here, before the event loop starts, so that importing aiohttp does not stall it;
# `ncinfo --help` never imports this module.
from ._client import Client
from ._exceptions import AuthError, ConnectError, NcInfoError
from ._exitcodes import (
    EXIT_FAIL_ON,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    EXIT_WAIT_TIMEOUT,
)
from ._input import MalformedLog
from ._password import prompt_from_tty
from ._protocol import JobResult, Token
from ._render import Renderer, Summary
from ._settings import Settings

if TYPE_CHECKING:
    from ._fanout import FanOut

__all__ = ["Console", "Inspection", "Plan"]

_SIGNAL_EXIT = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}


@dataclass(slots=True)
class Console:
    """Where the CLI writes: results to ``out``, errors and notices to ``err``."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False

    def error(self, message: str) -> None:
        """An error that decides the exit status; printed even with ``-q``."""
        self.err.write(f"ncinfo: error: {message}\n")
        self.err.flush()

    def notice(self, message: str) -> None:
        """A warning or notice; silenced by ``-q``."""
        if not self.quiet:
            self.err.write(f"ncinfo: {message}\n")
            self.err.flush()


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What the user asked the run to do, beyond the client settings.

    Attributes:
        summary: print counts per status at the end.
        total: how many IDs there are, when known up front (for the progress bar).
        progress: force the progress bar on or off; None means "when stderr is a terminal".
        batch: fetch through batched ``/api/v3/query`` requests.
        wait: poll until every job is finished.
        terminal: the NC statuses that count as finished.
        poll_interval: seconds between polling rounds.
        wait_timeout: give up waiting after this many seconds.
        fail_on: NC statuses that make the run exit with ``EXIT_FAIL_ON``.
        select: the fields batched queries ask for (``*`` for all).
    """

    summary: bool = False
    total: int | None = None
    progress: bool | None = None
    batch: bool = False
    wait: bool = False
    terminal: Collection[str] = ()
    poll_interval: float = 10.0
    wait_timeout: float | None = None
    fail_on: Collection[str] = ()
    select: Sequence[str] = ("*",)


class Inspection:
    """One CLI run.  ``main`` returns the exit status; it never raises ``NcInfoError``.

    Args:
        settings: the client settings.
        renderer: the output format.
        console: where text goes.
        plan: the options of the run.
        malformed: the log of malformed input lines (printed at the end).
        token: a cached token to start from.
        on_token: receives the token in use at the end (to cache it).
        on_token_refused: called when the run ends in an authentication error after
            starting from ``token`` (to drop it from the cache).
    """

    def __init__(
        self,
        settings: Settings,
        renderer: Renderer,
        console: Console,
        plan: Plan,
        *,
        malformed: MalformedLog | None = None,
        token: Token | None = None,
        on_token: Callable[[Token], None] | None = None,
        on_token_refused: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.renderer = renderer
        self.console = console
        self.plan = plan
        self.summary = Summary()
        self.malformed = malformed or MalformedLog()
        self.token = token
        self.on_token = on_token
        self.on_token_refused = on_token_refused
        self.signal_exit: int | None = None
        self._started = 0.0
        #: What a first signal stops: the login, the fan-out or the wait, as the run goes on.
        self._stop: Callable[[str], None] = lambda _reason: None
        self.connect_failures = 0
        self.fail_on_hits = 0
        self._fail_on = {name.lower() for name in plan.fail_on}
        self.unfinished = 0

    async def main(self, ids: AsyncIterable[int]) -> int:
        """The whole run; SIGINT/SIGTERM stop it cleanly at any stage, login included."""
        self._started = anyio.current_time()
        try:
            async with (
                Client(
                    self.settings,
                    password=prompt_from_tty,
                    token=self.token,
                    notice=self.console.notice,
                ) as client,
                anyio.create_task_group() as group,
            ):
                group.start_soon(self._watch_signals, group.cancel_scope)
                status = await self._guarded(client, ids)
                group.cancel_scope.cancel()
        except NcInfoError as exc:  # closing the session failed
            self.console.error(str(exc))
            status = EXIT_USAGE
        if self.malformed.count:
            self.console.notice(f"skipped {self.malformed.describe()}")
        return self.signal_exit if self.signal_exit is not None else status

    async def _guarded(self, client: Client, ids: AsyncIterable[int]) -> int:
        """Run the inspection; a run-level error becomes one message and exit status 2."""
        try:
            return await self._inspect(client, ids)
        except AuthError as exc:
            if self.token is not None and self.on_token_refused is not None:
                self.on_token_refused()  # the cached token led nowhere: do not try it again
            self.console.error(str(exc))
        except NcInfoError as exc:
            self.console.error(str(exc))
        finally:
            if client.token is not None and self.on_token is not None:
                self.on_token(client.token)
        return EXIT_USAGE

    def _remaining(self) -> float:
        """Seconds left before the run's deadline (infinite without one)."""
        if self.settings.deadline is None:
            return math.inf
        return max(0.0, self.settings.deadline - (anyio.current_time() - self._started))

    async def _inspect(self, client: Client, ids: AsyncIterable[int]) -> int:
        iterator = aiter(ids)
        first = await anext(iterator, None)
        if first is None:
            self.console.error("no job IDs given (arguments or stdin)")
            return EXIT_USAGE
        # Authenticate before fanning out: a wrong password or an unreachable server is one
        # clear error, not one per job.  The deadline and signals apply here too.
        with anyio.CancelScope() as login:
            self._stop = lambda _reason: login.cancel()
            with anyio.move_on_after(self._remaining()):
                await client.authenticate()
        if login.cancelled_caught:
            return EXIT_USAGE  # a signal: its own exit status wins
        source = _chain(first, iterator)
        bar = self._progress_bar()
        try:
            self.console.out.write(self.renderer.start())
            if self.plan.wait:
                await self._wait(client, [job_id async for job_id in source], bar)
            else:
                # If the login used up the deadline, every ID is reported as timed out.
                fan = client.fan_out(
                    source,
                    batch=self.plan.batch,
                    select=self.plan.select,
                    deadline=self._remaining(),
                )
                await self._stream(fan, bar)
            self.summary.malformed = self.malformed.count
            self._finish()
        finally:
            if bar is not None:
                bar.close()
        return self._status()

    async def _stream(self, fan: FanOut, bar: _Progress | None) -> None:
        """Render results as they arrive; a first signal stops the fan-out cleanly."""
        self._stop = fan.stop
        async with fan.run() as results:
            async for result in results:
                self._emit(result)
                if bar is not None:
                    bar.update()
                if fan.caught_up:
                    # Nothing else is ready: show what we have (a pipe's reader, `tail -f`,
                    # a slow producer) instead of holding it in the output buffer.
                    self.console.out.flush()
        self.summary.duplicates = fan.duplicates

    async def _wait(self, client: Client, job_ids: list[int], bar: _Progress | None) -> None:
        """Poll until every job is finished, then render each job's last state in input order."""
        from ._wait import wait_for_jobs

        latest: dict[int, JobResult] = {}
        distinct = list(dict.fromkeys(job_ids))
        self.summary.duplicates = len(job_ids) - len(distinct)
        if bar is not None:
            bar.reset(total=len(distinct))

        def progress(finished: int, total: int) -> None:
            if bar is not None:
                bar.n = finished
                bar.refresh()

        with anyio.CancelScope() as scope:
            self._stop = lambda _reason: scope.cancel()
            outcome = await wait_for_jobs(
                client,
                distinct,
                terminal=self.plan.terminal,
                poll_interval=self.plan.poll_interval,
                give_up_after=self.plan.wait_timeout,
                batch=self.plan.batch,
                select=self.plan.select,
                progress=progress,
                latest=latest,
            )
            self.unfinished = len(outcome.unfinished)
        for job_id in distinct:
            if job_id in latest:
                self._emit(latest[job_id])
        if self.unfinished:
            self.console.notice(
                f"{self.unfinished} job(s) still unfinished after "
                f"{self.plan.wait_timeout:g} s (--wait-timeout)"
            )

    def _emit(self, result: JobResult) -> None:
        self.summary.add(result)
        self.console.out.write(self.renderer.result(result))
        error = result.error
        if error is None:
            status = str((result.fields or {}).get("STATUSNC", "")).lower()
            if status in self._fail_on:
                self.fail_on_hits += 1
            return
        if isinstance(error, ConnectError):
            self.connect_failures += 1
        if not self.console.quiet:
            self.console.err.write(f"ncinfo: job {result.job_id}: {error.message}\n")

    def _finish(self) -> None:
        tail = self.renderer.finish(self.summary if self.plan.summary else None)
        self.console.out.write(tail)
        self.console.out.flush()
        if self.plan.summary and not tail and not self.console.quiet:
            self.console.err.write(self.summary.lines())

    def _status(self) -> int:
        if self.summary.requested and self.connect_failures == self.summary.requested:
            self.console.error(f"could not reach {self.settings.url}")
            return EXIT_USAGE
        if self.fail_on_hits:
            self.console.notice(f"{self.fail_on_hits} job(s) in a --fail-on status")
            return EXIT_FAIL_ON
        if self.unfinished:
            return EXIT_WAIT_TIMEOUT
        return EXIT_FAILED if self.summary.found < self.summary.requested else EXIT_OK

    def _progress_bar(self) -> _Progress | None:
        show = self.plan.progress if self.plan.progress is not None else self.console.err.isatty()
        if not show or self.console.quiet:
            return None
        from tqdm import tqdm

        # delay: only runs longer than a second get a bar at all.
        bar: _Progress = tqdm(
            total=self.plan.total,
            file=self.console.err,
            unit="job",
            delay=1.0,
            dynamic_ncols=True,
            leave=False,
        )
        return bar

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        """First SIGINT/SIGTERM: stop what runs now and flush; a second one: stop at once."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.signal_exit is None:
                    name = signal.Signals(signum).name
                    self.signal_exit = _SIGNAL_EXIT.get(signal.Signals(signum), EXIT_SIGINT)
                    self._stop(f"interrupted by {name}")
                    self.console.notice(
                        f"{name}: stopping; unanswered jobs are reported as interrupted"
                    )
                else:
                    scope.cancel()


async def _chain(first: int, rest: AsyncIterator[int]) -> AsyncIterator[int]:
    yield first
    async for job_id in rest:
        yield job_id


class _Progress(Protocol):
    """The part of tqdm's progress bar used here."""

    n: float

    def update(self, n: float = 1) -> bool | None: ...

    def reset(self, total: float | None = None) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...
