"""Token issue and check: `POST /api/v3/token` and the `Authorization` header.

Documented flow (reference, sections 2.1-2.2): the client POSTs form fields
`username` and `password`, gets `{"token_type", "access_token"}` and sends
`Authorization: <token_type>:<access_token>` (colon, no space) on every request.
The simulator signs HS256 JWTs with a random per-process secret; rotating the secret
is how `revoke()` (and a restart) invalidates every issued token.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["TOKEN_TYPE", "TokenStore"]

#: The `token_type` the simulator issues; the real literal is [UNKNOWN] (section 2.2).
TOKEN_TYPE = "Bearer"
_PRUNE_ABOVE = 10_000


class TokenStore:
    """Issues JWTs and checks `Authorization` headers, caching verified tokens.

    Checking a token is a dict lookup once it is known: benchmarks push thousands of
    requests per second through the simulator, and re-verifying the HS256 signature
    each time would dominate the cost of a request.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        ttl: float,
        accept_bearer: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Accept the `users` (name -> password) and issue tokens living `ttl` seconds.

        `clock` (epoch seconds) stamps and expires tokens; tests replace the attribute to
        move time on without waiting.
        """
        self.clock = clock
        self._users = users
        self.ttl = ttl
        self.accept_bearer = accept_bearer
        self._secret = secrets.token_bytes(32)
        # token -> expiry (epoch seconds), the JWT's `exp` claim.
        self._known: dict[str, float] = {}

    def authenticate(self, username: str, password: str) -> bool:
        """Return True when `username` exists and `password` is theirs."""
        expected = self._users.get(username)
        if expected is None:
            return False
        return hmac.compare_digest(expected.encode(), password.encode())

    def issue(self, username: str) -> dict[str, Any]:
        """Return the token response body for an authenticated `username`."""
        now = self.clock()
        # `exp` is exactly when the server starts refusing the token: a client that
        # renews ahead of `exp` never meets a 401. It is a non-integer NumericDate
        # (RFC 7519 section 2 allows one) so sub-second test TTLs stay exact.
        expiry = round(now + self.ttl, 3)
        claims = {
            "sub": username,
            "iat": int(now),
            "exp": expiry,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        if len(self._known) > _PRUNE_ABOVE:
            self._prune(now)
        self._known[token] = expiry
        return {
            "token_type": TOKEN_TYPE,
            "access_token": token,
            # Whole seconds, rounded down so it never promises more than `exp`.
            "expires_in": int(self.ttl),
        }

    def revoke(self) -> None:
        """Invalidate every token issued so far, as a server restart would."""
        self._secret = secrets.token_bytes(32)
        self._known.clear()

    def check(self, header: str | None) -> str | None:
        """Return None if the `Authorization` header is valid, else why it is not."""
        if not header:
            return "missing Authorization header"
        token = self._token_of(header)
        if token is None:
            return "malformed Authorization header; expected '<token_type>:<access_token>'"
        expiry = self._known.get(token)
        if expiry is None:
            expiry = self._verify(token)
            if expiry is None:
                return "invalid or revoked token"
            self._known[token] = expiry
        if self.clock() >= expiry:
            self._known.pop(token, None)
            return "token expired"
        return None

    def _token_of(self, header: str) -> str | None:
        # The documented form is `Bearer:<jwt>`; the RFC 6750 form `Bearer <jwt>` is
        # accepted behind a switch because whether vovserver does is [UNKNOWN].
        if self.accept_bearer and header[:7].lower() == "bearer ":
            token = header[7:].strip()
            return token or None
        kind, sep, token = header.partition(":")
        if not sep or kind.strip().lower() != TOKEN_TYPE.lower() or not token.strip():
            return None
        return token.strip()

    def _verify(self, token: str) -> float | None:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        if claims["sub"] not in self._users:
            return None
        return float(claims["exp"])

    def _prune(self, now: float) -> None:
        self._known = {token: exp for token, exp in self._known.items() if exp > now}
