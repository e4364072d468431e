"""The async client: one session, single-flight auth, bounded retries, per-job results."""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import random
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias, TypeGuard, TypeVar

import anyio
from yarl import URL

from ._auth import TokenManager
from ._exceptions import (
    ApiError,
    AuthError,
    ConfigError,
    ConnectError,
    HTTPStatusError,
    NcInfoError,
    ResponseFormatError,
    ServerUnreachable,
    TimeoutError,
    TransportError,
)
from ._fanout import Chunks, FanOut, JobResult, _sole_error
from ._limiter import Outcome, RequestLimiter
from ._protocol import (
    MAX_ID_COST,
    RETRY_STATUSES,
    TOKEN_PATH,
    Breaker,
    JobFields,
    JsonValue,
    Token,
    backoff_delay,
    batch_select,
    breaker_threshold,
    http_status_error,
    id_cost,
    job_id_of,
    job_path,
    parse_job,
    parse_query,
    parse_retry_after,
    parse_token_response,
    query_path,
    token_form,
)
from ._settings import Settings
from ._transport import Answer, open_session, send, ssl_for

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Client", "ClientStats", "PasswordProvider"]

#: Returns the password when a token is needed; called at most once per client.
PasswordProvider = Callable[[], str]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: The answers that say "too much load": they halve the requests in flight (``_limiter``).
_OVERLOAD_STATUSES = frozenset({429, 503})
_log = logging.getLogger("ncinfo_async")
_T = TypeVar("_T")
#: The errors ``_with_retries`` may try again after (when their ``retryable`` says so).
_Retryable: TypeAlias = TransportError | HTTPStatusError | ResponseFormatError
#: Seconds ``aclose`` waits for the connections to report closed (they are aborted at once).
_CLOSE_WAIT = 2.0


class _JobClock:
    """The job budget of one task's jobs, kept with one timer per task instead of per job.

    ``asyncio.timeout`` around each job arms and cancels a loop timer for every job, about
    4 % of a keep-alive job's CPU.  A worker runs its jobs one after another, so one timer
    per task is enough: armed at the first job's deadline, it re-arms for the deadline of the
    job running when it fires, or cancels the task if that job is over budget.  The
    cancellation is told from others as ``asyncio.timeout`` does (``Task.uncancel``).
    """

    __slots__ = ("_budget", "_cancelling", "_expired", "_handle", "_loop", "_started", "_task")

    def __init__(self, task: asyncio.Task[object], budget: float) -> None:
        # Weak: an armed timer holds the clock, and must not keep a finished task alive.
        self._task = weakref.ref(task)
        self._loop = task.get_loop()
        self._budget = budget
        self._handle: asyncio.TimerHandle | None = None
        self._started: float | None = None
        self._cancelling = 0
        self._expired = False

    def start(self) -> None:
        """A job starts now: it must end within the budget."""
        now = self._loop.time()
        self._started = now
        task = self._task()
        self._cancelling = task.cancelling() if task is not None else 0
        if self._handle is None and self._budget != math.inf:
            self._handle = self._loop.call_at(now + self._budget, self._check)

    def stop(self) -> bool:
        """The job ended; True if the clock cancelled it (the CancelledError is the clock's)."""
        self._started = None
        if not self._expired:
            return False
        self._expired = False
        task = self._task()
        return task is not None and task.uncancel() <= self._cancelling

    def close(self) -> None:
        """Disarm the timer (the client is closing)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        started = self._started
        if started is None or self._expired:
            return  # idle: the next job arms it again
        due = started + self._budget
        if self._loop.time() >= due:
            task = self._task()
            if task is not None:
                self._expired = True
                task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._check)


class Request:
    """One API request as the retry loop resends it.

    A plain slotted class: one is made per job, and a frozen dataclass's ``__init__`` costs
    several times more.  ``target`` is the URL as aiohttp gets it, pre-encoded, when the
    caller built one; ``url`` is always the string that errors and the log name.
    """

    __slots__ = ("job_id", "json", "method", "target", "url")

    def __init__(
        self,
        method: str,
        url: str,
        json: JsonValue,
        job_id: int | None,
        target: URL | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.json = json
        self.job_id = job_id
        self.target = target


@dataclass(slots=True)
class ClientStats:
    """Counters of what a client really sent, for summaries and tests.

    Attributes:
        requests: HTTP requests sent to the API (token requests excluded).
        retries: requests that were attempts after the first for the same call.
        reauthentications: requests resent after a 401 with a newer token.
        token_requests: ``POST /api/v3/token`` requests.
        statuses: answers received, by HTTP status.
    """

    requests: int = 0
    retries: int = 0
    reauthentications: int = 0
    token_requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Client:
    """An Accelerator REST v3 client for many concurrent job queries.

    Use it as an async context manager.  It owns one ``aiohttp.ClientSession`` unless one is
    given (then it closes only what it opened).

    Args:
        settings: the run's settings.
        password: supplies the password the first time a token is needed, if
            ``settings.password`` is None (for example a terminal prompt).
        token: a still-valid token to start with (from a cache).
        session: an existing session to use instead of opening one.
        notice: receives one-line notices meant for the user (never secrets).
        clock: the epoch-seconds time source for token expiry (a test can move it on).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        password: PasswordProvider | None = None,
        token: Token | None = None,
        session: aiohttp.ClientSession | None = None,
        notice: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        #: Why batched queries were given up for this client's lifetime (the server refused
        #: one, or answered one in a way that cannot be trusted); then every job goes alone.
        self.batch_refused: str | None = None
        #: Every API request passes this gate: adaptive concurrency and the rate cap.
        self.limiter = RequestLimiter(
            settings.concurrency, adapt=settings.adapt, max_rate=settings.max_rate
        )
        self._notice = notice
        self.stats = ClientStats()
        self._password_provider = password
        self._password = settings.password
        self._session = session
        self._owns_session = session is None
        self._random = random.Random()
        self._auth = TokenManager(
            self._request_token, margin=settings.refresh_margin, initial=token, clock=clock
        )
        if token is not None:
            _log_cached(token, "cached")
        #: The error that stopped the run, once one has (see ``halted``).
        self._halted: NcInfoError | None = None
        self._breaker = Breaker(breaker_threshold(settings.concurrency))
        #: The base URL as yarl parsed it once, for job URLs built without re-parsing.
        self._base_url = URL(settings.url)
        self._auth_headers: tuple[Token, dict[str, str]] | None = None
        self._fan_outs: weakref.WeakSet[FanOut] = weakref.WeakSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: A plain dict, emptied by each task's done callback: a WeakKeyDictionary lookup
        #: builds a weak reference per job.
        self._clocks: dict[asyncio.Task[object], _JobClock] = {}

    async def __aenter__(self) -> Client:
        if self._session is None:
            self._session = open_session(self.settings, await ssl_for(self.settings))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client opened it, its connections included.

        Returns once every pooled connection has been closed (aiohttp >= 3.12.11 aborts TLS
        connections on close and awaits each one's ``connection_lost``), so no fixed sleep is
        needed before the loop ends (the old "Graceful shutdown" advice, aiohttp #1925).  The
        wait is bounded: a transport that never reports back cannot hold the exit.
        """
        for clock in list(self._clocks.values()):
            clock.close()
        self._clocks.clear()
        if self._session is not None and self._owns_session:
            session, self._session = self._session, None
            with anyio.move_on_after(_CLOSE_WAIT, shield=True):
                await session.close()

    @property
    def token(self) -> Token | None:
        """The token in use, if one was obtained (for caching between runs)."""
        return self._auth.token

    def set_token(self, token: Token) -> None:
        """Use this token from now on (a 401 still renews it with the password)."""
        # The same manager, so requests held behind a probe of the previous token are
        # released to the new one instead of waiting on a manager nobody settles.
        self._auth.use(token)
        _log_cached(token, "given")

    @property
    def halted(self) -> NcInfoError | None:
        """The error that stopped the whole run, if one did.

        An untrusted certificate (or a TLS handshake that cannot succeed) stops the run at
        once; so do ``breaker_threshold(concurrency)`` attempts in a row that all timed out or
        failed to connect (``ServerUnreachable``).  Every fan-out of this client is then
        stopped, each job it left unanswered gets a copy of this error (with ``run_level``
        set), and every later request fails with it at once, without touching the network.
        """
        return self._halted

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session in use; only valid inside ``async with``."""
        if self._session is None:
            raise ConfigError("the client is not open: use 'async with Client(...)'")
        return self._session

    # --- Authentication ----------------------------------------------------------------------

    async def authenticate(self) -> Token:
        """Make sure a token is held, requesting one if needed; raises ``AuthError`` if refused."""
        token, _ = await self._auth.current(send=False)
        return token

    async def _request_token(self) -> Token:
        """``POST /api/v3/token`` with form data (REST ref §2.1); retried like any request."""
        if self._password is None:
            if self._password_provider is None:
                raise AuthError(
                    "no password: Settings.password is unset and no password provider was given"
                )
            self._password = await anyio.to_thread.run_sync(self._password_provider)
        url = self.settings.url + TOKEN_PATH
        form = token_form(self.settings.user, self._password)

        async def post() -> Token:
            self.stats.token_requests += 1
            # The user name is no secret; the password never reaches a log.
            _log.info("POST %s (token for user %s)", url, self.settings.user)
            answer = await self._transmit("POST", url, data=form)
            _log.info("POST %s -> %d", url, answer.status)
            if answer.status in RETRY_STATUSES:
                raise http_status_error(
                    answer.status,
                    answer.body,
                    url=url,
                    retry_after=parse_retry_after(answer.retry_after),
                )
            try:
                return parse_token_response(answer.status, answer.body, now=self._clock(), url=url)
            except AuthError as exc:
                if answer.status >= 300:
                    raise  # refused (401/403 with a reason): final at once
                # A 200 that holds no token (a proxy's page, a cut body) is a bad answer,
                # retried like any other; only a refusal is final.
                garbage = ResponseFormatError(exc.message, url=url, status=answer.status)
                garbage.retryable = True
                raise garbage from None

        try:
            return await self._with_retries(post, f"POST {url}")
        except ResponseFormatError as exc:
            if not exc.retryable:
                raise
            raise AuthError(exc.message, url=url, status=exc.status) from None

    # --- Requests ----------------------------------------------------------------------------

    async def get(self, path: str, *, job_id: int | None = None) -> Answer:
        """``GET`` an API path (with its query string) under the client's auth and retries."""
        return await self.request("GET", path, job_id=job_id)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: JsonValue = None,
        job_id: int | None = None,
    ) -> Answer:
        """Send one API request with the token, one re-authentication on 401 and retries.

        Idempotent methods (GET, HEAD, PUT, DELETE) are retried on transport errors, 429
        and 5xx; POST and PATCH are sent once, since the server may have acted on them.
        Returns the final answer whatever its status, except retryable statuses that
        exhausted their attempts, which raise ``HTTPStatusError``.
        """
        return await self._request(Request(method.upper(), self.settings.url + path, json, job_id))

    async def _request(self, request: Request) -> Answer:
        """``request``'s work: a short first attempt when nothing needs waiting for.

        With a confirmed token that is not due for renewal and a free slot in the limiter,
        the first attempt is sent from here, without the retry and re-authentication layers
        (one coroutine per job instead of six: see benchmarks/README.md, *Profiles*).  Only
        a failure, a 401 or a retryable status hands over to ``_with_retries`` and
        ``_authorized``, from where the attempt stands: the attempt already made counts as
        the first of ``settings.attempts``, and its 401 as the first send with its token.
        """
        ready = self._auth.ready()
        if (
            ready is None
            or self._halted is not None
            or (epoch := self.limiter.try_acquire()) is None
        ):
            return await self._full(request)  # something to wait for: the full path from the start
        token, generation = ready
        started = time.monotonic()
        self.stats.requests += 1
        outcome: Outcome = "other"
        failed: _Retryable | None = None
        try:
            answer = await send(
                self.session,
                request.method,
                request.url,
                target=request.target,
                headers=self._headers_for(token),
                json=request.json,
                max_body=self.settings.max_body,
                job_id=request.job_id,
            )
            outcome = "overload" if answer.status in _OVERLOAD_STATUSES else "ok"
        except NcInfoError as exc:
            if _refused(exc):
                outcome = "overload"
            error = self._no_answer(exc, request.job_id)
            if error is not exc:
                raise error from exc
            if request.method not in _IDEMPOTENT or not _retryable(exc):
                raise
            failed = exc
        finally:
            # Before any hand-over: the full path takes a slot of its own for each send.
            self.limiter.release(epoch, outcome)
        if failed is None:
            self._breaker.answered()
            self._answered(request, token, answer)
            if answer.status == 401:
                return await self._full(request, resume=(token, generation, answer))
            if answer.status not in RETRY_STATUSES:
                return answer
            failed = _status_error(request, answer)
            if request.method not in _IDEMPOTENT:
                raise failed
        return await self._full(request, failed=failed, started=started)

    async def _full(
        self,
        request: Request,
        *,
        resume: tuple[Token, int, Answer] | None = None,
        failed: _Retryable | None = None,
        started: float | None = None,
    ) -> Answer:
        """The full path: ``_authorized`` under ``_with_retries`` for idempotent methods.

        ``resume`` continues a first attempt that got a 401 (its token, generation and
        answer); ``failed`` is a first attempt's retryable failure, retried from attempt 2.
        """
        if request.method not in _IDEMPOTENT:
            return await self._authorized(request, resume)

        async def attempt() -> Answer:
            nonlocal resume
            resumed, resume = resume, None
            return await self._authorized(request, resumed)

        return await self._with_retries(
            attempt, f"{request.method} {request.url}", failed=failed, started=started
        )

    def _headers_for(self, token: Token) -> dict[str, str]:
        """The request headers for ``token``: one dict per token, not one per request."""
        held = self._auth_headers
        if held is None or held[0] is not token:
            held = self._auth_headers = (token, {"Authorization": token.header})
        return held[1]

    async def _authorized(
        self, request: Request, resume: tuple[Token, int, Answer] | None = None
    ) -> Answer:
        """Send with the current token; after a 401, resend with a newer one.

        A 401 means the token is expired or revoked.  The request is resent whenever a token
        newer than the one it carried exists (single flight: one token request however many
        requests met the same token), up to ``settings.attempts`` sends, so any number of
        revocations during a run are survived.  The 401 is final only when those sends are
        used up (the token is still renewed, for the requests that follow); a refused token
        request raises ``AuthError``.  ``resume`` is a first send already made (see
        ``_request``): its token, generation and 401 answer.
        """
        auth = self._auth
        if resume is None:
            token, generation = await auth.current()
        else:
            token, generation, answer = resume
        try:
            if resume is None:
                answer, token, generation = await self._send(request, token, generation)
            sends = 1
            while answer.status == 401:
                if not auth.confirmed and generation == auth.generation:
                    _log.info("the cached token was refused (401); requesting a new one")
                token, generation = await auth.renew(generation)
                if sends >= self.settings.attempts:
                    break
                self.stats.reauthentications += 1
                sends += 1
                answer, token, generation = await self._send(request, token, generation)
        finally:
            # Whatever happened, an unconfirmed token stops holding other requests back.
            auth.settle(generation)
        if answer.status in RETRY_STATUSES:
            raise _status_error(request, answer)
        return answer

    async def _send(
        self, request: Request, token: Token, generation: int
    ) -> tuple[Answer, Token, int]:
        """One send through the limiter; returns the answer and the token it carried.

        The wait for a slot can be long (``--max-rate``, an overloaded server): a token
        renewed meanwhile is taken at the moment of sending, or every request that waited
        would carry the revoked one into a 401 of its own.
        """
        epoch = await self.limiter.acquire()
        newest = self._auth.ready()
        if newest is not None and newest[1] > generation:
            token, generation = newest
        outcome: Outcome = "other"
        try:
            self.stats.requests += 1
            answer = await self._transmit(
                request.method,
                request.url,
                target=request.target,
                headers=self._headers_for(token),
                json=request.json,
                job_id=request.job_id,
            )
            outcome = "overload" if answer.status in _OVERLOAD_STATUSES else "ok"
        except NcInfoError as exc:
            if _refused(exc):
                outcome = "overload"
            raise
        finally:
            self.limiter.release(epoch, outcome)
        self._answered(request, token, answer)
        return answer, token, generation

    def _answered(self, request: Request, token: Token, answer: Answer) -> None:
        """Count an answer by status, and log it with ``-v``."""
        statuses = self.stats.statuses
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if _log.isEnabledFor(logging.INFO):
            # Never the Authorization value: only its scheme, and the token's length.
            _log.info(
                "%s %s -> %d (%d bytes)",
                request.method,
                request.url,
                answer.status,
                len(answer.body),
            )
            _log.debug(
                "  Authorization: %s:<redacted %d chars>", token.token_type, len(token.access_token)
            )

    async def _transmit(
        self,
        method: str,
        url: str,
        *,
        target: URL | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json: JsonValue = None,
        job_id: int | None = None,
    ) -> Answer:
        """One attempt on the wire, watched by the run-level breaker."""
        if self._halted is not None:
            raise self._halted_for(job_id)
        try:
            answer = await send(
                self.session,
                method,
                url,
                target=target,
                headers=headers,
                data=data,
                json=json,
                max_body=self.settings.max_body,
                job_id=job_id,
            )
        except NcInfoError as exc:
            error = self._no_answer(exc, job_id)
            if error is exc:
                raise
            raise error from exc
        self._breaker.answered()
        return answer

    def _no_answer(self, exc: NcInfoError, job_id: int | None) -> NcInfoError:
        """What an attempt that got no answer raises: ``exc``, or the error that halts the run.

        Connect failures and timeouts feed the run-level breaker; an untrusted certificate
        or a TLS mismatch halts at once, since every request would meet it.
        """
        if isinstance(exc, ConnectError):
            if not exc.retryable:
                return self._halt(exc, job_id)
            if self._breaker.failed(timed_out=False):
                return self._halt(self._unreachable(exc), job_id)
        elif isinstance(exc, TimeoutError) and self._breaker.failed(timed_out=True):
            return self._halt(self._unreachable(exc), job_id)
        return exc

    def _unreachable(self, last: NcInfoError) -> ServerUnreachable:
        return ServerUnreachable(
            f"the server at {self.settings.url} is not answering: "
            f"{self._breaker.describe()}; last error: {last.message}",
            url=self.settings.url,
        )

    def _halt(self, error: NcInfoError, job_id: int | None) -> NcInfoError:
        """Stop the run on ``error`` (the first one wins); return this job's copy of it."""
        if self._halted is None:
            error.run_level = True
            self._halted = error
            _log.info("stopping the run: %s", error.message)
            for fan_out in list(self._fan_outs):
                fan_out.stop(error.message, error=self._halted_for)
        return self._halted_for(job_id)

    def _halted_for(self, job_id: int | None) -> NcInfoError:
        """A copy of the run-stopping error for one job."""
        assert self._halted is not None
        error = copy.copy(self._halted)
        error.job_id = job_id
        return error

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[_T]],
        what: str,
        *,
        failed: _Retryable | None = None,
        started: float | None = None,
    ) -> _T:
        """Run ``attempt`` until it answers, retrying transport errors and 429/5xx.

        Capped exponential backoff with full jitter; a ``Retry-After`` replaces the backoff;
        no more than ``settings.attempts`` tries and no wait past the job budget.  ``what``
        names the request in the log.  ``failed``: a first attempt already made failed so
        (retryably), at ``started`` (``time.monotonic()``); the next attempt is the second.
        """
        settings = self.settings
        if started is None:
            started = time.monotonic()
        retry = 0
        while True:
            if failed is None:
                try:
                    return await attempt()
                except (TransportError, HTTPStatusError, ResponseFormatError) as exc:
                    if not exc.retryable:
                        raise
                    failed = exc
            error, failed = failed, None
            retry += 1
            wait = error.retry_after
            if wait is None:
                wait = backoff_delay(
                    retry,
                    base=settings.backoff_base,
                    cap=settings.backoff_cap,
                    draw=self._random.random(),
                )
            spent = time.monotonic() - started
            if retry >= settings.attempts or spent + wait > settings.job_budget:
                raise error
            _log.info(
                "retry %d/%d of %s in %.2f s: %s",
                retry + 1,
                settings.attempts,
                what,
                wait,
                error.message,
            )
            self.stats.retries += 1
            await anyio.sleep(wait)

    async def fetch_job(self, job_id: int) -> JobResult:
        """All fields of one job, or the reason it could not be had, as a value.

        The job, retries and waits included, gets at most ``settings.job_budget`` seconds.

        Raises:
            AuthError: the credentials were refused; the run cannot go on.
        """
        path = job_path(job_id)
        url = self.settings.url + path
        clock = self._job_clock()
        clock.start()
        try:
            # Handed to aiohttp as a URL already encoded: a job path needs no quoting, and
            # yarl would otherwise split and quote every URL string again.
            target = self._base_url.with_path(path, encoded=True)
            answer = await self._request(Request("GET", url, None, job_id, target))
            fields: JobFields = parse_job(answer.status, answer.body, job_id=job_id, url=url)
        except AuthError:
            raise
        except NcInfoError as exc:
            return JobResult(job_id, error=exc)
        except asyncio.CancelledError:
            if not clock.stop():
                raise  # a cancellation from outside, not the budget
            return JobResult(
                job_id,
                error=TimeoutError(
                    f"no answer within the {self.settings.job_budget:g} s job budget",
                    job_id=job_id,
                    url=url,
                ),
            )
        finally:
            clock.stop()
        return JobResult(job_id, fields=fields)

    def _job_clock(self) -> _JobClock:
        """The budget clock of the current task (one per worker, reused for all its jobs)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # With the loop given, current_task skips get_running_loop's getpid() system call.
        task = asyncio.current_task(loop)
        assert task is not None
        clock = self._clocks.get(task)
        if clock is None:
            clock = self._clocks[task] = _JobClock(task, self.settings.job_budget)
            task.add_done_callback(self._forget_clock)
        return clock

    def _forget_clock(self, task: asyncio.Task[object]) -> None:
        clock = self._clocks.pop(task, None)
        if clock is not None:
            clock.close()

    def stream_jobs(
        self, job_ids: Iterable[int] | AsyncIterable[int] | Chunks
    ) -> AbstractAsyncContextManager[AsyncIterator[JobResult]]:
        """Fetch many jobs concurrently, yielding exactly one result per distinct ID.

        Usage::

            async with client.stream_jobs(ids) as results:
                async for result in results:
                    ...

        IDs are read lazily and at most ``settings.concurrency`` requests are in flight, so
        memory stays bounded however many IDs arrive.  Results come in input order (within
        ``settings.reorder_window``) or in completion order, per ``settings.order``.
        """
        return self.fan_out(job_ids).run()

    def fan_out(
        self,
        job_ids: Iterable[int] | AsyncIterable[int] | Chunks,
        *,
        batch: bool | None = False,
        select: Sequence[str] = ("*",),
        deadline: float | None = None,
        deadline_label: float | None = None,
    ) -> FanOut:
        """The fan-out behind ``stream_jobs``, for callers that need to ``stop()`` it.

        Args:
            job_ids: the IDs to fetch (``Chunks`` when they arrive a list at a time).
            batch: True fetches many jobs per request through ``/api/v3/query`` (see
                ``fetch_batch``), even a lone ID; None (the CLI's default) batches whatever
                IDs are waiting together and sends a lone ID to ``/api/v3/jobs/{id}``;
                False sends one ``/api/v3/jobs/{id}`` request per job.
            select: in batch mode, the fields to ask for (``*`` for all).
            deadline: seconds for this fan-out (default ``settings.deadline``); the IDs
                not answered by then get ``DeadlineExceeded``.
            deadline_label: the deadline their message names, when ``deadline`` is what is
                left of a longer one (the run's ``--deadline``, after the login).
        """
        settings = self.settings
        if deadline is None or deadline == math.inf:
            deadline = settings.deadline
        fields = batch_select(select)

        async def fetch(ids: list[int]) -> list[JobResult]:
            if self.batch_refused is None and (len(ids) > 1 or batch):
                return await self.fetch_batch(ids, fields)
            return await self._fetch_each(ids)

        # Leave room for one more ID past the budget: a batch stops growing at the budget.
        budget, cost = 1, None  # --no-batch: one ID per fetch
        if batch is not False:
            budget = settings.url_budget - len(query_path(fields, [])) - MAX_ID_COST
            cost = id_cost
            if budget < MAX_ID_COST:
                raise ConfigError(f"a URL budget of {settings.url_budget} bytes is too small")
        fan_out = FanOut(
            fetch,
            job_ids,
            workers=settings.concurrency,
            order=settings.order,
            window=settings.reorder_window,
            deadline=deadline,
            deadline_label=deadline_label,
            batch_budget=budget,
            batch_cost=cost,
            # Once batches are given up, workers take one ID at a time again.
            batching=lambda: self.batch_refused is None,
            fetch_one=self.fetch_job if batch is False else None,
        )
        # A run-level stop (see ``halted``) answers the fan-out's unanswered IDs at once.
        if self._halted is not None:
            fan_out.stop(self._halted.message, error=self._halted_for)
        self._fan_outs.add(fan_out)
        return fan_out

    async def _fetch_each(self, job_ids: Sequence[int]) -> list[JobResult]:
        """One ``/api/v3/jobs/{id}`` request per job, in order.

        A chunk can hold a thousand IDs: a few workers share them rather than a task per
        ID, since a task each cost a bulk run against a misreading server half again its
        time in CPU; the limiter bounds the requests in flight.
        """
        if len(job_ids) == 1:
            return [await self.fetch_job(job_ids[0])]
        results: list[JobResult] = [JobResult(job_id) for job_id in job_ids]
        todo = iter(range(len(job_ids)))

        async def work() -> None:
            for index in todo:  # shared: each index is taken by one worker
                results[index] = await self.fetch_job(job_ids[index])

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.settings.concurrency, len(job_ids))):
                    group.create_task(work())
        except BaseExceptionGroup as errors:
            raise _sole_error(errors) from None  # an AuthError, as from fetch_job itself
        return results

    def _give_up_batches(self, reason: str) -> None:
        """Fetch one job per request from now on; decided and announced once per client.

        Many batches may be in flight when the first one shows that batches cannot be
        used; each of them then falls back, but only the first decides and says so.
        """
        if self.batch_refused is not None:
            return
        self.batch_refused = reason
        if self._notice is not None:
            self._notice(f"{reason}; fetching one job per request instead")

    async def fetch_batch(self, job_ids: list[int], select: Sequence[str]) -> list[JobResult]:
        """Fetch several jobs with one ``/api/v3/query?...&where=idint==a,b,c`` request.

        REST ref §1.4.1: the comma-list selection rule is documented for field values, and
        its use for ``idint`` is inferred, so every answer is verified:

        - a server that refuses the query (a 4xx or a non-empty ``errormsg``) switches this
          client to one request per job;
        - an ID missing from the rows is confirmed with its own ``GET /api/v3/jobs/{id}``,
          whose answer is the ID's result; if that finds the job, the server's reading of
          the list cannot be trusted, and the client switches to one request per job;
        - rows for IDs that were not asked for are never attributed to anyone, and also
          switch the client to one request per job.

        Each switch is decided and announced once.

        Raises:
            AuthError: the credentials were refused.
        """
        if self.batch_refused is not None:
            return await self._fetch_each(job_ids)
        path = query_path(select, job_ids)
        url = self.settings.url + path
        try:
            answer = await self.get(path)
            rows = parse_query(answer.status, answer.body, url=url)
        except (ApiError, ResponseFormatError, HTTPStatusError) as exc:
            # A 5xx that outlived its retries is trouble, not a refusal of the query form.
            if isinstance(exc, HTTPStatusError) and exc.status not in range(400, 500):
                return [JobResult(job_id, error=exc) for job_id in job_ids]
            self._give_up_batches(f"the server refused a batched query ({exc})")
            return await self._fetch_each(job_ids)
        except AuthError:
            raise
        except NcInfoError as exc:
            return [JobResult(job_id, error=exc) for job_id in job_ids]
        asked = set(job_ids)
        found: dict[int, JobFields] = {}
        strays = 0
        for row in rows:
            row_id = job_id_of(row)
            if row_id in asked:
                found[row_id] = row
            else:
                strays += 1
        if strays:
            self._give_up_batches(
                f"a batched query returned {strays} row(s) for jobs not asked for, so the "
                "server does not read 'idint==a,b,c' as a list"
            )
        missing = [job_id for job_id in job_ids if job_id not in found]
        confirmed = {result.job_id: result for result in await self._fetch_each(missing)}
        if any(result.ok for result in confirmed.values()):
            self._give_up_batches(
                f"{sum(result.ok for result in confirmed.values())} job(s) missing from a "
                "batched query's answer exist, so the server does not read 'idint==a,b,c' "
                "as a list"
            )
        return [
            JobResult(job_id, fields=found[job_id]) if job_id in found else confirmed[job_id]
            for job_id in job_ids
        ]


def _log_cached(token: Token, origin: str) -> None:
    """Log that a token from a cache (or the caller) is used; never the token itself."""
    if _log.isEnabledFor(logging.INFO):
        left = "unknown" if token.expires_at is None else f"{token.expires_at - time.time():.0f} s"
        _log.info(
            "using a %s token (expires in %s); one request at a time until the server accepts it",
            origin,
            left,
        )


def _refused(error: BaseException) -> bool:
    """Whether an error comes from a refused connection: a server out of listen backlog or
    restarting, an overload signal like 503 (a timeout or a DNS failure is not).  The
    refusal may sit a few causes down (a breaker's error wraps the connect error)."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        if isinstance(getattr(seen, "os_error", None), ConnectionRefusedError):
            return True
        seen = seen.__cause__
    return False


def _retryable(error: NcInfoError) -> TypeGuard[_Retryable]:
    """Whether ``_with_retries`` would try again after ``error``."""
    return isinstance(error, _Retryable) and bool(error.retryable)


def _status_error(request: Request, answer: Answer) -> HTTPStatusError:
    """The error for an answer with a retryable status (429, 5xx)."""
    return http_status_error(
        answer.status,
        answer.body,
        url=request.url,
        job_id=request.job_id,
        retry_after=parse_retry_after(answer.retry_after),
    )
