"""The async client: one session, single-flight auth, bounded retries, per-job results."""

from __future__ import annotations

import builtins
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from ._auth import TokenManager
from ._exceptions import (
    AuthError,
    ConfigError,
    HTTPStatusError,
    NcInfoError,
    TimeoutError,
    TransportError,
)
from ._fanout import FanOut, JobResult
from ._protocol import (
    RETRY_STATUSES,
    TOKEN_PATH,
    JobFields,
    Token,
    backoff_delay,
    http_status_error,
    job_path,
    parse_job,
    parse_retry_after,
    parse_token_response,
    token_form,
)
from ._settings import Settings
from ._transport import Answer, open_session, send

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Client", "ClientStats", "PasswordProvider"]

#: Returns the password when a token is needed; called at most once per client.
PasswordProvider = Callable[[], str]


@dataclass(slots=True)
class ClientStats:
    """Counters of what a client really sent, for summaries and tests.

    Attributes:
        requests: HTTP requests sent to the API (token requests excluded).
        retries: requests that were attempts after the first for the same call.
        reauthentications: requests resent after a 401 with a renewed token.
        token_requests: ``POST /api/v3/token`` requests.
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
    """

    def __init__(
        self,
        settings: Settings,
        *,
        password: PasswordProvider | None = None,
        token: Token | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._password_provider = password
        self._password = settings.password
        self._session = session
        self._owns_session = session is None
        self._random = random.Random()
        self._auth = TokenManager(
            self._request_token, margin=settings.refresh_margin, initial=token
        )

    async def __aenter__(self) -> Client:
        if self._session is None:
            self._session = open_session(self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client opened it."""
        if self._session is not None and self._owns_session:
            session, self._session = self._session, None
            await session.close()
            if self.settings.is_https:
                # Let the SSL transports finish closing before the loop goes away
                # (aiohttp docs, "Graceful shutdown"), or they warn about being unclosed.
                await anyio.sleep(0.25)

    @property
    def token(self) -> Token | None:
        """The token in use, if one was obtained (for caching between runs)."""
        return self._auth.token

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session in use; only valid inside ``async with``."""
        if self._session is None:
            raise ConfigError("the client is not open: use 'async with Client(...)'")
        return self._session

    # --- Authentication ----------------------------------------------------------------------

    async def authenticate(self) -> Token:
        """Make sure a token is held, requesting one if needed; raises ``AuthError`` if refused."""
        token, _ = await self._auth.current()
        return token

    async def _request_token(self) -> Token:
        """``POST /api/v3/token`` with form data (REST ref §2.1); retried like any request."""
        if self._password is None:
            if self._password_provider is None:
                raise AuthError(
                    "no password: use --password-file, NC_PASSWORD or a terminal prompt"
                )
            self._password = await anyio.to_thread.run_sync(self._password_provider)
        url = self.settings.url + TOKEN_PATH
        form = token_form(self.settings.user, self._password)

        async def post() -> Answer:
            self.stats.token_requests += 1
            answer = await send(
                self.session, "POST", url, data=form, max_body=self.settings.max_body
            )
            if answer.status in RETRY_STATUSES:
                raise http_status_error(
                    answer.status,
                    answer.body,
                    url=url,
                    retry_after=parse_retry_after(answer.retry_after),
                )
            return answer

        answer = await self._with_retries(post)
        return parse_token_response(answer.status, answer.body, now=time.time(), url=url)

    # --- Requests ----------------------------------------------------------------------------

    async def get(self, path: str, *, job_id: int | None = None) -> Answer:
        """``GET`` an API path with the token, retries and one re-authentication on 401.

        Returns the final answer whatever its status, except retryable statuses that
        exhausted their attempts, which raise ``HTTPStatusError``.
        """
        url = self.settings.url + path
        return await self._with_retries(lambda: self._authorized("GET", url, job_id))

    async def _authorized(self, method: str, url: str, job_id: int | None) -> Answer:
        token, generation = await self._auth.current()
        answer = await self._send(method, url, token, job_id)
        if answer.status == 401:
            # Expired or revoked: renew once (single flight across all tasks) and resend once.
            token, _ = await self._auth.renew(generation)
            self.stats.reauthentications += 1
            answer = await self._send(method, url, token, job_id)
        if answer.status in RETRY_STATUSES:
            raise http_status_error(
                answer.status,
                answer.body,
                url=url,
                job_id=job_id,
                retry_after=parse_retry_after(answer.retry_after),
            )
        return answer

    async def _send(self, method: str, url: str, token: Token, job_id: int | None) -> Answer:
        self.stats.requests += 1
        answer = await send(
            self.session,
            method,
            url,
            headers={"Authorization": token.header},
            max_body=self.settings.max_body,
            job_id=job_id,
        )
        self.stats.statuses[answer.status] = self.stats.statuses.get(answer.status, 0) + 1
        return answer

    async def _with_retries(self, attempt: Callable[[], Awaitable[Answer]]) -> Answer:
        """Run ``attempt`` until it answers, retrying transport errors and 429/5xx.

        Capped exponential backoff with full jitter; a ``Retry-After`` replaces the backoff;
        no more than ``settings.attempts`` tries and no wait past the job budget.
        """
        settings = self.settings
        started = time.monotonic()
        retry = 0
        while True:
            try:
                return await attempt()
            except (TransportError, HTTPStatusError) as exc:
                if not exc.retryable:
                    raise
                retry += 1
                wait = exc.retry_after
                if wait is None:
                    wait = backoff_delay(
                        retry,
                        base=settings.backoff_base,
                        cap=settings.backoff_cap,
                        draw=self._random.random(),
                    )
                spent = time.monotonic() - started
                if retry >= settings.attempts or spent + wait > settings.job_budget:
                    raise
            self.stats.retries += 1
            await anyio.sleep(wait)

    async def fetch_job(self, job_id: int) -> JobResult:
        """All fields of one job, or the reason it could not be had, as a value.

        Raises:
            AuthError: the credentials were refused; the run cannot go on.
        """
        path = job_path(job_id)
        url = self.settings.url + path
        try:
            with anyio.fail_after(self.settings.job_budget):
                answer = await self.get(path, job_id=job_id)
            fields: JobFields = parse_job(answer.status, answer.body, job_id=job_id, url=url)
        except AuthError:
            raise
        except NcInfoError as exc:
            return JobResult(job_id, error=exc)
        except builtins.TimeoutError:
            return JobResult(
                job_id,
                error=TimeoutError(
                    f"no answer within the {self.settings.job_budget:g} s job budget",
                    job_id=job_id,
                    url=url,
                ),
            )
        return JobResult(job_id, fields=fields)

    def stream_jobs(
        self, job_ids: Iterable[int] | AsyncIterable[int]
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

    def fan_out(self, job_ids: Iterable[int] | AsyncIterable[int]) -> FanOut:
        """The fan-out behind ``stream_jobs``, for callers that need to ``stop()`` it."""
        settings = self.settings

        async def fetch(batch: list[int]) -> list[JobResult]:
            return [await self.fetch_job(batch[0])]

        return FanOut(
            fetch,
            job_ids,
            workers=settings.concurrency,
            order=settings.order,
            window=settings.reorder_window,
            deadline=settings.deadline,
        )
