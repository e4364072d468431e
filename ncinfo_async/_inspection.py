"""One run of ``ncinfo``: authenticate, fetch (or wait), render, settle the exit status."""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

import anyio

# Imported here, before the event loop starts, so that importing aiohttp does not stall it;
# `ncinfo --help` never imports this module.
from ._client import Client
from ._escape import escape_text
from ._exceptions import AuthError, ConnectError, DeadlineExceeded, InterruptedRunError, NcInfoError
from ._exitcodes import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    exit_status,
)
from ._fanout import Chunks
from ._input import InputIds, MalformedLog, restore_blocking
from ._password import password_prompt, prompt_from_tty
from ._protocol import JobResult, Token
from ._render import Renderer, Summary
from ._settings import Settings
from ._statuses import closest
from ._stderr import JobErrorLog, write_through

if TYPE_CHECKING:
    from ._fanout import FanOut
    from ._wait import WaitStatus

__all__ = ["Console", "Inspection", "Plan"]

_SIGNAL_EXIT = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}


@dataclass(slots=True)
class Console:
    """Where the CLI writes: results to ``out``, errors and notices to ``err``."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    #: The progress bar on ``err`` while one shows: every write then goes through it.
    bar: _Progress | None = None

    def write_err(self, text: str) -> None:
        """Write on stderr, through the progress bar if one shows (never glued onto it)."""
        write_through(self.err, self.bar, text)

    def error(self, message: str) -> None:
        """An error that decides the exit status; printed even with ``-q``.

        Messages may carry the server's text: terminal controls in it are escaped.
        """
        self.write_err(f"ncinfo: error: {escape_text(message)}\n")

    def notice(self, message: str) -> None:
        """A warning or notice (controls escaped, as for ``error``); silenced by ``-q``."""
        if not self.quiet:
            self.write_err(f"ncinfo: {escape_text(message)}\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What the user asked the run to do, beyond the client settings.

    Attributes:
        summary: print counts per status at the end.
        total: how many IDs there are, when known up front (for the progress bar).
        progress: force the progress bar on or off; None means "when stderr is a terminal".
        batch: True forces batched ``/api/v3/query`` requests, False one request per job,
            None batches many IDs and sends a lone one alone (see ``Client.fan_out``).
        wait: poll until every job is finished.
        terminal: the NC statuses that count as finished.
        poll_interval: seconds between polling rounds.
        wait_timeout: give up waiting after this many seconds.
        fail_on: NC statuses that make the run exit with ``EXIT_FAIL_ON``.
        select: the fields batched queries ask for (``*`` for all).
        fields: the ``--fields`` names as the user spelled them (``*`` excluded), each
            named at the end if no answer carried it.
        strict: a ``fields`` name no answer carried is an error (exit 2).
        all_errors: print every per-job error on stderr, not only the first ones.
        where: a selection rule choosing the jobs instead of IDs (``--where``; run by
            ``RuleInspection``).
        page_size: jobs per ``/api/v3/query`` page with ``where``.
    """

    summary: bool = False
    total: int | None = None
    progress: bool | None = None
    batch: bool | None = None
    wait: bool = False
    terminal: Collection[str] = ()
    poll_interval: float = 10.0
    wait_timeout: float | None = None
    fail_on: Collection[str] = ()
    select: Sequence[str] = ("*",)
    fields: Sequence[str] = ()
    strict: bool = False
    all_errors: bool = False
    where: str | None = None
    page_size: int = 1000


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
        #: Jobs answered with the error that stopped the run (reported once, with this count).
        self.run_level_failures = 0
        self.fail_on_hits = 0
        self._fail_on = {name.lower() for name in plan.fail_on}
        self.unfinished = 0
        self.job_errors = JobErrorLog(console.write_err, show_all=plan.all_errors)
        #: Asked-for fields no answer has carried yet (upper case to the user's spelling).
        self._missing_fields = {name.upper(): name for name in plan.fields if name != "*"}
        self._sent_fields: set[str] = set()
        #: A job that was found, to learn every field name from (see ``_check_fields``).
        self._sample_job: int | None = None
        self.unknown_fields = False
        #: The input, when it can be told to stop reading (stdin).
        self._input: InputIds | None = None

    async def main(self, ids: InputIds | AsyncIterable[list[int]]) -> int:
        """The whole run; SIGINT/SIGTERM stop it cleanly at any stage, login included.

        ``ids`` is stdin's reader, or the IDs in lists (each list non-empty).
        """
        self._started = anyio.current_time()
        if isinstance(ids, InputIds):
            self._input, ids = ids, ids.chunks()
        try:
            async with (
                Client(
                    self.settings,
                    password=functools.partial(
                        prompt_from_tty, password_prompt(self.settings.user, self.settings.url)
                    ),
                    token=self.token,
                    notice=self.console.notice,
                ) as client,
                anyio.create_task_group() as group,
            ):
                group.start_soon(self._watch_signals)
                group.start_soon(self._end_input_at_deadline)
                status = await self._guarded(client, aiter(ids))
                group.cancel_scope.cancel()
        except NcInfoError as exc:  # closing the session failed
            self.console.error(str(exc))
            status = EXIT_USAGE
        if self.malformed.count:
            self.console.notice(f"skipped {self.malformed.describe()}")
        if self._input is not None and self._input.left_unread and self.signal_exit is None:
            self.console.notice(
                f"stopped reading stdin at the {self.settings.deadline:g} s deadline "
                "(--deadline): IDs not read by then got no result"
            )
        return self.signal_exit if self.signal_exit is not None else status

    async def _guarded(self, client: Client, ids: AsyncIterator[list[int]]) -> int:
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

    async def _login(self, client: Client) -> bool:
        """Authenticate before fanning out: a wrong password or an unreachable server is one
        clear error, not one per job.  The deadline and signals apply here too: False when
        either ended it (the deadline is reported; a signal's own exit status wins)."""
        with anyio.CancelScope() as login:
            self._stop = lambda _reason: login.cancel()
            with anyio.move_on_after(self._remaining()) as timer:
                await client.authenticate()
        if timer.cancelled_caught and self.signal_exit is None:
            self.console.error(
                f"no token from {self.settings.url} within the "
                f"{self.settings.deadline:g} s deadline (--deadline)"
            )
        return not (login.cancelled_caught or timer.cancelled_caught)

    async def _inspect(self, client: Client, chunks: AsyncIterator[list[int]]) -> int:
        first = None
        # Input may stay open with nothing on it: signals and the deadline end this wait too.
        with anyio.CancelScope() as reading:
            self._stop = lambda _reason: reading.cancel()
            with anyio.move_on_after(self._remaining()):
                first = await anext(chunks, None)
        if first is None:
            if self.signal_exit is None:
                self.console.error(self._no_ids_message())
            return EXIT_USAGE
        if not await self._login(client):
            # No token: each ID read so far is still owed its result.
            if self._input is not None:
                self._input.stop_reading()  # the IDs already read still come out, at once
            unsent = [*first, *[job_id async for chunk in chunks for job_id in chunk]]
            self.console.out.write(self.renderer.start())
            self._report_unsent(unsent)
            self.summary.malformed = self.malformed.count
            self._finish()
            return EXIT_USAGE  # after a signal, the signal's own status wins
        source = _chain(first, chunks)
        bar = self._progress_bar()
        try:
            self.console.out.write(self.renderer.start())
            if self.plan.wait:
                job_ids = await self._read_all(source)
                if self.signal_exit is None:
                    await self._wait(client, job_ids, bar)
                else:
                    self._report_unsent(job_ids)
            else:
                # What the login left of the deadline; messages name the deadline given.
                fan = client.fan_out(
                    Chunks(source),
                    batch=self.plan.batch,
                    select=self.plan.select,
                    deadline=self._remaining(),
                    deadline_label=self.settings.deadline,
                )
                await self._stream(fan, bar)
            self.summary.malformed = self.malformed.count
            self._finish()
        finally:
            if bar is not None:
                bar.close()
                self.console.bar = None
        if client.halted is not None:
            # Stopped by an error every request would meet: said once, not once per job.
            unanswered = f"; {self.run_level_failures} job(s) not inspected"
            self.console.error(f"{client.halted}{unanswered if self.run_level_failures else ''}")
            return EXIT_USAGE
        await self._check_fields(client)
        return self._status()

    def _no_ids_message(self) -> str:
        if self.settings.deadline is not None and self._remaining() == 0:
            return f"no job ID read within the {self.settings.deadline:g} s deadline (--deadline)"
        return "no job IDs given (arguments or stdin)"

    def _report_unsent(self, job_ids: list[int]) -> None:
        """Give each distinct ID read but never sent an interrupted or deadline result."""
        make_error: Callable[[int], NcInfoError]
        if self.signal_exit is not None:
            reason = f"not inspected: interrupted by {_signal_name(self.signal_exit)}"
            make_error = lambda job_id: InterruptedRunError(reason, job_id=job_id)  # noqa: E731
        else:
            reason = f"not inspected: no token within the {self.settings.deadline:g} s deadline"
            make_error = lambda job_id: DeadlineExceeded(reason, job_id=job_id)  # noqa: E731
        distinct = list(dict.fromkeys(job_ids))
        self.summary.duplicates += len(job_ids) - len(distinct)
        for job_id in distinct:
            self._emit(JobResult(job_id, error=make_error(job_id)))

    async def _read_all(self, chunks: AsyncIterable[list[int]]) -> list[int]:
        """Every ID of the input (for ``--wait``); a first signal ends the reading."""
        job_ids: list[int] = []
        with anyio.CancelScope() as reading:
            self._stop = lambda _reason: reading.cancel()
            async for chunk in chunks:
                job_ids.extend(chunk)
        return job_ids

    async def _end_input_at_deadline(self) -> None:
        """At the run's deadline, stop reading stdin even if it is still open."""
        if self._input is None or self.settings.deadline is None:
            return
        await anyio.sleep(self._remaining())
        self._input.stop_reading()

    async def _stream(self, fan: FanOut, bar: _Progress | None) -> None:
        """Render results as they arrive; a first signal stops the fan-out cleanly."""
        self._stop = fan.stop
        async with fan.run_batches() as batches:
            async for batch in batches:
                self._emit_all(batch)
                if bar is not None:
                    bar.update(len(batch))
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
            # A wait lasts: show the bar (and its status) at once, not after the usual delay.
            bar.delay = 0.0
            bar.reset(total=len(distinct))

        def progress(finished: int, total: int) -> None:
            if bar is not None:
                bar.n = finished
                bar.refresh()

        def report(status: WaitStatus) -> None:
            # On a terminal the bar shows the counts; elsewhere (a CI log) one line each time.
            if bar is not None:
                bar.set_postfix_str(status.describe(), refresh=True)
            else:
                self.console.notice(f"waiting: {status.describe()}")

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
                report=report,
            )
            self.unfinished = len(outcome.unfinished)
        for job_id in distinct:
            if job_id in latest:
                self._emit(latest[job_id])
        if self.unfinished:
            self.console.notice(
                f"{self.unfinished} job(s) still unfinished after {outcome.elapsed:.1f} s "
                f"(--wait-timeout {self.plan.wait_timeout:g}); the oldest is "
                f"{min(outcome.unfinished)}"
            )

    def _emit(self, result: JobResult) -> None:
        self._emit_all((result,))

    def _emit_all(self, batch: Sequence[JobResult]) -> None:
        """Render and count a batch of results; note each one's error, status and fields."""
        self.summary.add_all(batch)
        self.console.out.write(self.renderer.results(batch))
        # Most runs have no --fail-on and no --fields to check: only errors need a look then.
        look_at_all = bool(self._fail_on or self._missing_fields)
        for result in batch:
            if look_at_all or result.error is not None:
                self._note(result)

    def _note(self, result: JobResult) -> None:
        """What one result means beyond its output: a --fail-on hit, fields seen, an error."""
        error = result.error
        if error is None:
            fields = result.fields or {}
            if self._fail_on:  # most runs have no --fail-on: no per-job lookup then
                status = str(fields.get("STATUSNC", "")).lower()
                if status in self._fail_on:
                    self.fail_on_hits += 1
            if self._missing_fields:
                # A batched query echoes any selected name as a column of empty values, so
                # only a value shows that the server knows the field (see _check_fields).
                self._sample_job = result.job_id
                self._sent_fields.update(fields)
                for name in [n for n in self._missing_fields if fields.get(n) not in ("", None)]:
                    del self._missing_fields[name]
            return
        if isinstance(error, ConnectError):
            self.connect_failures += 1
        if error.run_level:
            self.run_level_failures += 1
            return  # the run-level error is reported once, at the end
        if not self.console.quiet:
            # The message may quote the server's text.
            self.job_errors.add(result.job_id, error.kind, escape_text(error.message))

    async def _check_fields(self, client: Client) -> None:
        """Name each ``--fields`` name no answer carried, with the closest one the server sent.

        A name that only ever came back empty may still be a real field that no job had a
        value for: one ``GET /api/v3/jobs/<id>`` of a found job, which returns every field,
        settles it.  Nothing is said when no job was found, or after a signal.
        """
        if not self._missing_fields or self._sample_job is None or self.signal_exit is not None:
            return
        with anyio.move_on_after(self._remaining()):
            try:
                full = await client.fetch_job(self._sample_job)
            except NcInfoError:
                full = None
            if full is not None and full.fields is not None:
                self._sent_fields = set(full.fields)
                for name in [n for n in self._missing_fields if n in full.fields]:
                    del self._missing_fields[name]
        if not self._missing_fields:
            return
        names = []
        known = self._sent_fields - set(self._missing_fields)
        for spelled in self._missing_fields.values():
            guess = closest(spelled, known)
            names.append(f"{spelled!r}" + (f" (closest sent: {guess})" if guess else ""))
        text = f"--fields: no answer carried {', '.join(names)}"
        if self.plan.strict:
            self.unknown_fields = True
            self.console.error(text)
        else:
            self.console.notice(text + "; shown empty")

    def _finish(self) -> None:
        self.job_errors.finish()
        tail = self.renderer.finish(self.summary if self.plan.summary else None)
        self.console.out.write(tail)
        self.console.out.flush()
        if self.plan.summary and not tail and not self.console.quiet:
            self.console.write_err(self.summary.lines())

    def _status(self) -> int:
        unreachable = 0 < self.summary.requested == self.connect_failures
        if unreachable:
            self.console.error(f"could not reach {self.settings.url}")
        run_error = unreachable or bool(self.unknown_fields)
        if self.fail_on_hits and not run_error:
            self.console.notice(f"{self.fail_on_hits} job(s) in a --fail-on status")
        return exit_status(
            run_error=run_error,
            fail_on=self.fail_on_hits > 0,
            unfinished=self.unfinished > 0,
            missing=self.summary.found < self.summary.requested,
        )

    def _progress_bar(self) -> _Progress | None:
        # -q silences the bar by default; an explicit --progress still wins.
        if self.plan.progress is not None:
            show = self.plan.progress
        else:
            show = self.console.err.isatty() and not self.console.quiet
        if not show:
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
        self.console.bar = bar
        return bar

    async def _watch_signals(self) -> None:
        """First SIGINT/SIGTERM: stop what runs now and flush; a second one: exit at once."""
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
                    # The user insists: no more flushing or closing, which could be what hangs.
                    restore_blocking()
                    os._exit(_SIGNAL_EXIT.get(signal.Signals(signum), EXIT_SIGINT))


def _signal_name(status: int) -> str:
    return next(sig.name for sig, code in _SIGNAL_EXIT.items() if code == status)


async def _chain(first: list[int], rest: AsyncIterator[list[int]]) -> AsyncIterator[list[int]]:
    yield first
    async for chunk in rest:
        yield chunk


class _Progress(Protocol):
    """The part of tqdm's progress bar used here."""

    n: float
    delay: float

    def update(self, n: float = 1) -> bool | None: ...

    def reset(self, total: float | None = None) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def external_write_mode(
        self, file: TextIO | None = None, nolock: bool = False
    ) -> AbstractContextManager[None]: ...
