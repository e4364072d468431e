"""``VOVRestV3Async``: Altair's ``vov_rest_v3.VOVRestV3`` API, async, on the ncinfo client.

For code written against the vendor module (REST ref §3): the same four methods with the
same names and arguments, awaited, and backed by the same ``Client`` as ``ncinfo`` (one
keep-alive connection pool, one token request however many requests need a new token,
retries of idempotent requests).  Differences from the vendor module, on purpose:

- HTTPS certificates are verified unless ``insecure=True`` is passed (the vendor module
  accepts self-signed servers silently, REST ref §6; here that is an explicit choice).
- A non-2xx answer raises ``HTTPStatusError`` instead of returning the error text.
- Argument defaults are ``None``, not shared mutable ``{}``.

The method and argument names are the vendor's camelCase ones, so ported code only needs
``await`` added.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode, urlsplit

import anyio

from ._client import _CLOSE_WAIT, Client
from ._exceptions import ConfigError
from ._protocol import (
    API_PREFIX,
    JsonValue,
    Token,
    http_status_error,
    jwt_expiry,
    normalize_base_url,
)
from ._settings import DEFAULT_CONCURRENCY, Settings
from ._transport import open_session, ssl_for

if TYPE_CHECKING:
    import aiohttp

__all__ = ["VOVRestV3Async"]

#: The methods ``submitRequest`` documents (REST ref §3).
METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
#: ``token_type`` assumed for a bare JWT given to ``setJWT`` before any token was issued.
_DEFAULT_TOKEN_TYPE: Final = "Bearer"


class VOVRestV3Async:
    """An async twin of ``vov_rest_v3.VOVRestV3``.

    Usage::

        async with VOVRestV3Async() as vrest:
            await vrest.authorize(os.environ["NC_URL"], getpass.getpass("Password:"))
            text = await vrest.submitRequest("GET", url + "/api/v3/project/1/project")

    Requests may run concurrently (``asyncio.gather``) on one object.

    Args:
        cafile: a PEM bundle to verify an HTTPS server against.
        insecure: accept any HTTPS certificate (self-signed servers only).
        concurrency: requests in flight at once, and the connection pool size.
        session: an ``aiohttp.ClientSession`` to use; it is then not closed by ``close()``.
        environ: where ``$USER`` is read from (default ``os.environ``).
    """

    def __init__(
        self,
        *,
        cafile: str | None = None,
        insecure: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        session: aiohttp.ClientSession | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._cafile = cafile
        self._insecure = insecure
        self._concurrency = concurrency
        self._given_session = session
        self._session: aiohttp.ClientSession | None = session
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._client: Client | None = None
        self._settings: Settings | None = None
        #: A token set before ``authorize``, used by the first ``submitRequest`` to a full URL.
        self._pending: Token | None = None

    async def __aenter__(self) -> VOVRestV3Async:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool, unless it was given to the constructor."""
        self._client, self._settings = None, None
        session, self._session = self._session, self._given_session
        if session is not None and session is not self._given_session:
            # As Client.aclose: returns once the connections are closed, bounded.
            with anyio.move_on_after(_CLOSE_WAIT, shield=True):
                await session.close()

    # --- The vendor API -------------------------------------------------------------------------

    async def authorize(self, url: str, password: str, username: str = "") -> None:
        """Get a token from the server at ``url`` for ``username`` (default ``$USER``).

        ``url`` is what ``nc cmd vovbrowser`` prints; a path such as ``/project`` is dropped
        (REST ref §6).  The password is kept to get a new token when the server answers 401.
        Calling it again, for the same or another server, replaces the previous login (which
        is dropped even if the new one fails).

        Raises:
            ConfigError: the URL is invalid, or there is no user name.
            AuthError: the server refused the credentials.
            TransportError: the server could not be reached.
        """
        user = username or self._environ.get("USER", "")
        if not user:
            raise ConfigError("no user name: pass username= or set USER")
        settings = Settings(
            url=url,
            user=user,
            password=password,
            cafile=self._cafile,
            insecure=self._insecure,
            concurrency=self._concurrency,
        )
        await self._open(settings, token=None)
        assert self._client is not None
        try:
            await self._client.authenticate()
        except BaseException:
            await self.close()
            raise

    async def submitRequest(
        self,
        method: str,
        url: str,
        queryParams: Mapping[str, object] | None = None,
        jsonData: JsonValue = None,
    ) -> str:
        """Send one request and return the answer's text.

        Args:
            method: GET, POST, PUT, DELETE or PATCH.
            url: a full URL on the authorized server (``http://host:port/api/v3/...``, as
                the vendor module takes), or just the path (``/api/v3/...``).  A prefix
                before ``/api/`` (NC_URL's ``/project``) is dropped, like the base URL's.
            queryParams: added to the query string, percent-encoded (a space as ``%20``,
                as REST ref §1.4 writes it); sequences give repeated parameters.
            jsonData: a JSON body, for POST, PUT and PATCH.

        Raises:
            ConfigError: not authorized, an unknown method, a URL on another server, or
                ``jsonData`` given to GET or DELETE.
            HTTPStatusError: the server answered a non-2xx status; its ``error`` text is in
                the message.
            AuthError: the token expired and a new one was refused.
            TransportError: no answer, after retries for idempotent methods.
        """
        verb = method.upper()
        if verb not in METHODS:
            raise ConfigError(
                f"unsupported method {method!r}: use one of {', '.join(sorted(METHODS))}"
            )
        if verb in ("GET", "DELETE"):
            # "A GET or DELETE request has no body" (REST ref §1.1); the vendor's default
            # jsonData={} is therefore sent as no body at all.
            if jsonData:
                raise ConfigError(
                    f"a {verb} request has no body: pass jsonData only to POST, PUT or PATCH"
                )
            jsonData = None
        path = await self._path_on_server(url)
        if queryParams:
            encoded = urlencode(queryParams, doseq=True, quote_via=quote)
            path += ("&" if "?" in path else "?") + encoded
        client = self._client
        assert client is not None
        answer = await client.request(verb, path, json=jsonData)
        if not 200 <= answer.status < 300:
            raise http_status_error(answer.status, answer.body, url=client.settings.url + path)
        return answer.body.decode("utf-8", "replace")

    def getJWT(self) -> str:
        """The current token as the ``Authorization`` value, ``<token_type>:<access_token>``.

        This is what the seed's ``getToken.getJWT()`` returns (REST ref §2.2), so it can be
        sent as the header by direct ``requests``/``aiohttp`` code, and ``setJWT`` takes it
        back unchanged.  If the client renewed the token, the new one is returned.

        Raises:
            ConfigError: no token yet (neither ``authorize`` nor ``setJWT`` was called).
        """
        token = self._client.token if self._client is not None else self._pending
        if token is None:
            raise ConfigError("no JWT yet: call authorize() or setJWT() first")
        return token.header

    def setJWT(self, token: str) -> None:
        """Use ``token`` for the next requests (from ``getJWT``, a cache, another process).

        Accepts the ``<token_type>:<access_token>`` form ``getJWT`` returns, ``Bearer <jwt>``,
        or a bare JWT (then the current ``token_type``, else ``Bearer``, is assumed).  If the
        server refuses it (401) after ``authorize``, a new token is requested with the stored
        password.  Before ``authorize``, the first ``submitRequest`` must use a full URL,
        which names the server.

        Raises:
            ConfigError: ``token`` is empty.
        """
        new = self._parse_jwt(token)
        if self._client is None or self._settings is None or self._session is None:
            self._pending = new
            return
        # Same client and pooled connections; only the token manager (single flight,
        # renewal with the stored password) starts afresh from this token.
        self._client.set_token(new)

    # --- Helpers ------------------------------------------------------------------------------

    def _parse_jwt(self, text: str) -> Token:
        value = text.strip()
        current = self._client.token if self._client is not None else self._pending
        token_type = current.token_type if current is not None else _DEFAULT_TOKEN_TYPE
        # A JWT is base64url and dots, never a colon or a space: either one separates the
        # token type (REST ref §2.2 documents the colon form).
        for separator in (":", " "):
            head, found, tail = value.partition(separator)
            if found and head and tail.strip():
                token_type, value = head, tail.strip()
                break
        if not value:
            raise ConfigError("setJWT() needs a non-empty token")
        return Token(token_type=token_type, access_token=value, expires_at=jwt_expiry(value))

    async def _open(self, settings: Settings, *, token: Token | None) -> None:
        """Install a client for ``settings``, reusing the pool if the server is the same."""
        same_server = self._settings is not None and (
            self._settings.url == settings.url
            and self._settings.cafile == settings.cafile
            and self._settings.insecure == settings.insecure
        )
        if not same_server and self._session is not self._given_session:
            await self.close()
        if self._session is None:
            self._session = open_session(settings, await ssl_for(settings))
        self._settings = settings
        self._client = Client(settings, token=token, session=self._session)

    async def _path_on_server(self, url: str) -> str:
        """The path (and query) of ``url``, after checking it names the authorized server."""
        text = url.strip()
        if text.startswith("/"):
            if self._client is None:
                raise ConfigError(
                    f"cannot send {text!r}: call authorize() first, or give a full URL"
                )
            path = text
        else:
            base = normalize_base_url(text)
            if self._client is None:
                if self._pending is None:
                    raise ConfigError("not authorized: call authorize() or setJWT() first")
                # setJWT before authorize: the URL names the server; no password is known,
                # so a 401 ends in AuthError rather than a new token.
                user = self._environ.get("USER", "") or "unknown"
                await self._open(
                    Settings(
                        url=base,
                        user=user,
                        cafile=self._cafile,
                        insecure=self._insecure,
                        concurrency=self._concurrency,
                    ),
                    token=self._pending,
                )
                self._pending = None
            assert self._settings is not None
            if base != self._settings.url:
                raise ConfigError(
                    f"{base} is not the authorized server {self._settings.url}; "
                    "authorize() against it first"
                )
            parts = urlsplit(text)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # REST lives at the root of the web port (REST ref §6): NC_URL's '/project' prefix
        # is dropped here as normalize_base_url drops it from the base URL.
        start = path.find(API_PREFIX + "/")
        return path[start:] if start > 0 else path
