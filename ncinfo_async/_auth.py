"""Single-flight JWT management: one token request however many requests need a new token.

Tokens expire about 4 h after issue (seed document, "JWT Access Tokens").  The manager renews
a token shortly before its ``exp`` and, reactively, when the server answers 401.  Each token
has a generation number.  A request that got a 401 asks for a token newer than the one it
carried: if one exists it gets it at once; otherwise the first such request is elected to
renew, and every other one awaits that renewal's shared event, so all of them are released
together when it completes (no lock handed on one task at a time), and N requests that met
the same revoked token cause exactly one token request, revocation after revocation.  The
token request itself never goes through this manager, so it cannot wait on itself.

A token the server has not yet accepted (one from a cache) admits one request at a time
until the server answers that request: a cached token that was revoked costs one 401, not
one per worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ._exceptions import AuthError, NcInfoError
from ._protocol import Token

__all__ = ["TokenManager"]


class _Renewal:
    """One token request in progress; its waiters are all released by ``done``."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.error: NcInfoError | None = None


class TokenManager:
    """Holds the current token and renews it at most once per generation.

    Args:
        fetch: performs ``POST /api/v3/token`` and returns the new token.
        margin: renew this many seconds before expiry (capped at a quarter of the token's
            lifetime, so a short-lived token is not renewed on every request).
        initial: a token to start with (from a cache), if any; it is not trusted until the
            server has answered one request made with it.
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
        self._token: Token | None = None
        #: ``(token, generation)`` of the current token, built once per token for ``ready``.
        self._held: tuple[Token, int] | None = None
        self._renew_at: float | None = None
        self._generation = 0
        self._failure: AuthError | None = None
        self._renewal: _Renewal | None = None
        #: Whether the server has answered a request made with the current token.
        self.confirmed = True
        #: Set while the one request allowed with an unconfirmed token is in flight.
        self._probe: asyncio.Event | None = None
        #: Token requests made by this manager.
        self.requests = 0
        if initial is not None:
            self._install(initial, confirmed=False)

    @property
    def token(self) -> Token | None:
        """The current token, if one was obtained."""
        return self._token

    @property
    def generation(self) -> int:
        """The current token's generation (0 before the first token)."""
        return self._generation

    def ready(self) -> tuple[Token, int] | None:
        """The token and its generation if a request may be sent with it right now, else None.

        Right now means without awaiting anything: a token is held, the server has accepted
        it, it is not due for renewal and no refusal is recorded.  Otherwise ``current``
        decides (and may wait); the per-job fast path asks this first.
        """
        held = self._held
        if held is None or not self.confirmed:
            return None
        renew_at = self._renew_at
        if renew_at is not None and self._clock() >= renew_at:
            return None
        return held

    def use(self, token: Token) -> None:
        """Use ``token`` from now on, unconfirmed, as if it came from a cache.

        The token request that failed before (a refused password) is forgotten, so the next
        401 may renew again.  Requests held behind the previous token's probe are released
        and see the new token: one of them becomes its probe.  A renewal already in flight
        still installs its token when it completes (it is newer).
        """
        self._failure = None
        self._install(token, confirmed=False)

    async def current(self, *, send: bool = True) -> tuple[Token, int]:
        """Return a usable token and its generation, renewing first if it is about to expire.

        While the token is unconfirmed, only one caller at a time that will ``send`` a request
        with it gets it; the others wait until that caller's request is settled (see
        ``settle``) or the token is replaced.  ``send=False`` only makes sure a token is held.
        """
        while True:
            if self._failure is not None:
                raise self._failure
            token = self._token
            if token is None or (self._renew_at is not None and self._clock() >= self._renew_at):
                await self.renew(self._generation)
                continue
            if self.confirmed or not send:
                return token, self._generation
            if self._probe is None:
                self._probe = asyncio.Event()
                return token, self._generation
            await self._probe.wait()

    def settle(self, generation: int) -> None:
        """A request made with ``generation``'s token is over without a 401.

        The server answered it (so it accepts the token) or did not answer at all (so the
        token is still unknown, and holding every request back for it would only slow a run
        against a silent server): either way the token no longer admits one request at a time.
        """
        if generation == self._generation and not self.confirmed:
            self.confirmed = True
            self._release_probe()

    async def renew(self, stale_generation: int) -> tuple[Token, int]:
        """A token newer than ``stale_generation``'s: the current one, or a new one.

        Raises:
            AuthError: the token request was refused; every later call raises it too, so a
                wrong password costs one request, not one per job.
            NcInfoError: the token request failed otherwise (its waiters share the error).
        """
        while True:
            if self._failure is not None:
                raise self._failure
            token = self._token
            if token is not None and self._generation != stale_generation:
                return token, self._generation
            renewal = self._renewal
            if renewal is not None:
                await renewal.done.wait()
                if renewal.error is not None:
                    raise renewal.error
                continue  # renewed, or its renewer was cancelled: look again
            renewal = self._renewal = _Renewal()
            try:
                self.requests += 1
                token = await self._fetch()
                self._install(token, confirmed=True)
                return token, self._generation
            except AuthError as exc:
                self._failure = renewal.error = exc
                self._held = None  # ``ready`` says no from now on: ``current`` raises this
                self._release_probe()
                raise
            except NcInfoError as exc:
                renewal.error = exc
                raise
            finally:
                self._renewal = None
                renewal.done.set()

    def _install(self, token: Token, *, confirmed: bool) -> None:
        self._token = token
        self._generation += 1
        self._held = (token, self._generation)
        self.confirmed = confirmed
        self._release_probe()
        if token.expires_at is None:
            self._renew_at = None
            return
        lifetime = token.expires_at - self._clock()
        # A token that already looks expired (clock skew) is used until the server says 401.
        self._renew_at = (
            None if lifetime <= 0 else token.expires_at - min(self._margin, lifetime / 4)
        )

    def _release_probe(self) -> None:
        if self._probe is not None:
            self._probe.set()
            self._probe = None
