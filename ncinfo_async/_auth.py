"""Single-flight JWT management: one token request however many requests need a new token.

Tokens expire about 4 h after issue (seed document, "JWT Access Tokens").  The manager renews
a token shortly before its ``exp`` and, reactively, when the server answers 401.  A generation
counter, compared under one ``asyncio.Lock``, lets N requests that failed with the same token
cause exactly one token request: the first renews, the others see a newer generation and
reuse its token (the pattern of aiohttp's client-middleware cookbook, without its deadlock:
the token request never goes through this manager).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ._exceptions import AuthError
from ._protocol import Token

__all__ = ["TokenManager"]


class TokenManager:
    """Holds the current token and renews it at most once per generation.

    Args:
        fetch: performs ``POST /api/v3/token`` and returns the new token.
        margin: renew this many seconds before expiry (capped at a quarter of the token's
            lifetime, so a short-lived token is not renewed on every request).
        initial: a token to start with (from a cache), if any.
        clock: the time source, in epoch seconds.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Token]],
        *,
        margin: float,
        initial: Token | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._renew_at: float | None = None
        self._generation = 0
        self._failure: AuthError | None = None
        #: Token requests made by this manager.
        self.requests = 0
        if initial is not None:
            self._install(initial)

    @property
    def token(self) -> Token | None:
        """The current token, if one was obtained."""
        return self._token

    async def current(self) -> tuple[Token, int]:
        """Return a usable token and its generation, renewing first if it is about to expire."""
        token = self._token
        if token is not None and (self._renew_at is None or self._clock() < self._renew_at):
            return token, self._generation
        return await self.renew(self._generation)

    async def renew(self, stale_generation: int) -> tuple[Token, int]:
        """Replace the token of ``stale_generation``, unless another task already did.

        Raises:
            AuthError: the token request was refused; every later call raises it too, so a
                wrong password costs one request, not one per job.
        """
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            token = self._token
            if token is not None and self._generation != stale_generation:
                return token, self._generation
            self.requests += 1
            try:
                token = await self._fetch()
            except AuthError as exc:
                self._failure = exc
                raise
            self._install(token)
            return token, self._generation

    def _install(self, token: Token) -> None:
        self._token = token
        self._generation += 1
        if token.expires_at is None:
            self._renew_at = None
            return
        lifetime = token.expires_at - self._clock()
        # A token that already looks expired (clock skew) is used until the server says 401.
        self._renew_at = (
            None if lifetime <= 0 else token.expires_at - min(self._margin, lifetime / 4)
        )
