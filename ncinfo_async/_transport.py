"""The aiohttp shell: connection pool, TLS context and the one place aiohttp errors are mapped.

Everything protocol-shaped lives in ``_protocol``; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import ssl
from types import SimpleNamespace
from typing import Final

import aiohttp
from yarl import URL

from ._exceptions import (
    CertificateError,
    ConfigError,
    ConnectError,
    DisconnectedError,
    NcInfoError,
    ResponseFormatError,
    TimeoutError,
    TransportError,
)
from ._protocol import JsonValue
from ._settings import Settings
from ._version import __version__

__all__ = [
    "Answer",
    "load_ca_context",
    "open_session",
    "send",
    "ssl_for",
    "tls_setting",
    "translate",
]

_log = logging.getLogger("ncinfo_async")
#: With ``-v``, a connection attempt still pending after this many seconds is logged.
SLOW_CONNECT: Final = 1.0


def tls_setting(settings: Settings) -> bool | None:
    """What the connector's ``ssl`` argument is when no CA file must be loaded.

    True: verify against the default trust store with the context aiohttp built at import
    (``ssl=True``); False: plain http (no TLS at all) or ``insecure`` (aiohttp's unverified
    context, also built at import); None: a CA file was given, ``load_ca_context`` builds
    the one context of the run.  So a run never builds a context it does not use.
    """
    if not settings.is_https or settings.insecure:
        return False
    return True if settings.cafile is None else None


def load_ca_context(cafile: str) -> ssl.SSLContext:
    """A verifying context that trusts only the CA certificates in ``cafile``.

    Built once and handed to the connector: aiohttp keys pooled connections by the context
    object, so a context per request would defeat keep-alive (aiohttp notes §1).  Loading is
    blocking file I/O: call it from a thread.

    Raises:
        ConfigError: the CA file cannot be read.
    """
    try:
        # With a cafile, create_default_context loads that file only (no default paths).
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA certificates from {cafile}: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])  # as aiohttp's own contexts
    return context


async def ssl_for(settings: Settings) -> ssl.SSLContext | bool:
    """The connector's ``ssl`` argument for a run, loading a CA file off the event loop.

    Raises:
        ConfigError: the CA file cannot be read.
    """
    setting = tls_setting(settings)
    if setting is not None:
        return setting
    assert settings.cafile is not None
    import anyio.to_thread

    return await anyio.to_thread.run_sync(load_ca_context, settings.cafile)


def open_session(settings: Settings, tls: ssl.SSLContext | bool) -> aiohttp.ClientSession:
    """A session with one tuned connector for the whole run; ``tls`` from ``ssl_for``."""
    connector = aiohttp.TCPConnector(
        # One connection per in-flight request, plus one so a token request never waits
        # for a pool slot: waiting for the pool must not eat a request's timeout.
        limit=settings.concurrency + 1,
        force_close=not settings.keepalive,
        ssl=tls,
        ttl_dns_cache=300,
    )
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=None,  # would include waiting for a free pool slot (aiohttp notes §1)
        sock_connect=settings.connect_timeout,
        sock_read=settings.read_timeout,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": f"ncinfo-async/{__version__}", "Accept": "application/json"},
        auto_decompress=True,
        # Tracing costs a little per request: only when someone reads the log.
        trace_configs=[_slow_connect_trace()] if _log.isEnabledFor(logging.INFO) else None,
    )
    # aiohttp (>= 3.10) silently resends an idempotent request once when a pooled connection
    # turns out closed (aiohttp #7297, notes §1).  Our retry loop does that explicitly and
    # counts it, so the documented attempt count is the real one; aiohttp's own TestClient
    # turns it off the same way (#9141).
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


def _slow_connect_trace() -> aiohttp.TraceConfig:
    """Log a connection attempt that is still pending after ``SLOW_CONNECT`` seconds."""
    trace = aiohttp.TraceConfig()

    async def request(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        context.what = f"{params.method} {params.url}"

    async def started(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceConnectionCreateStartParams,
    ) -> None:
        context.slow = asyncio.get_running_loop().call_later(
            SLOW_CONNECT,
            _log.info,
            "still connecting for %s after %g s (--connect-timeout bounds it)",
            getattr(context, "what", "a request"),
            SLOW_CONNECT,
        )

    async def ended(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: object,
    ) -> None:
        handle = getattr(context, "slow", None)
        if handle is not None:
            handle.cancel()

    trace.on_request_start.append(request)
    trace.on_connection_create_start.append(started)
    trace.on_connection_create_end.append(ended)
    # A failed connection attempt ends in the request's exception.
    trace.on_request_exception.append(ended)
    return trace


class Answer:
    """A complete HTTP answer: status, body and the ``Retry-After`` header.

    A plain slotted class rather than a frozen dataclass: one is made per request, and the
    frozen ``__init__`` (``object.__setattr__`` per field) costs several times more.
    """

    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Answer(status={self.status}, body=<{len(self.body)} bytes>)"


def translate(exc: BaseException, url: str, job_id: int | None) -> NcInfoError:
    """The ncinfo error for an aiohttp or socket error: the one place they are converted."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return CertificateError(
            f"TLS certificate of {url.split('/api/')[0]} not trusted: {exc.certificate_error}; "
            "pass --cacert with the server's CA, or --insecure for a self-signed server",
            url=url,
            job_id=job_id,
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        error = ConnectError(
            f"TLS handshake with {exc.host}:{exc.port} failed: {exc.os_error}; "
            "does the server speak https on that port?",
            url=url,
            job_id=job_id,
        )
        error.retryable = False  # a protocol mismatch does not heal by retrying
        return error
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(
            f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}", url=url, job_id=job_id
        )
    if isinstance(exc, aiohttp.ServerTimeoutError | builtins.TimeoutError):
        return TimeoutError(
            f"timed out waiting for the server ({str(exc) or 'no answer'})", url=url, job_id=job_id
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return DisconnectedError(f"the answer was cut short: {exc}", url=url, job_id=job_id)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | OSError):
        return DisconnectedError(
            f"the server closed the connection: {str(exc) or type(exc).__name__}",
            url=url,
            job_id=job_id,
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp raises this for bytes that are not HTTP at all.
        return ResponseFormatError(
            f"the server's answer is not valid HTTP: {exc.message}", url=url, job_id=job_id
        )
    return TransportError(f"request failed: {exc}", url=url, job_id=job_id)


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    target: URL | None = None,
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    json: JsonValue = None,
    max_body: int,
    job_id: int | None = None,
) -> Answer:
    """Send one request and read its whole body, refusing bodies over ``max_body`` bytes.

    ``target`` is ``url`` as a ready ``yarl.URL`` (saves aiohttp parsing the string);
    ``url`` is what errors name.

    Raises:
        TransportError: (and subclasses) no complete answer.
        ResponseFormatError: the body is too large or the bytes are not HTTP.
    """
    try:
        async with session.request(
            method,
            url if target is None else target,
            headers=headers,
            data=data,
            json=json,
            allow_redirects=False,
        ) as response:
            # The usual answer, with a Content-Length, is read here (no coroutine more per
            # request); one without is read in chunks, each counted against ``max_body``.
            length = response.content_length
            if length is None:
                body = await _read_chunks(response, url, job_id, max_body)
            elif length > max_body:
                raise ResponseFormatError(
                    f"answer of {length} bytes exceeds the {max_body}-byte limit",
                    url=url,
                    job_id=job_id,
                )
            else:
                body = await response.read()
            return Answer(response.status, body, response.headers.get("Retry-After"))
    except NcInfoError:
        raise
    except (aiohttp.ClientError, OSError, builtins.TimeoutError) as exc:
        raise translate(exc, url, job_id) from exc


async def _read_chunks(
    response: aiohttp.ClientResponse, url: str, job_id: int | None, max_body: int
) -> bytes:
    """The whole body of an answer without a Content-Length, refusing over ``max_body``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_body:
            raise ResponseFormatError(
                f"answer exceeds the {max_body}-byte limit", url=url, job_id=job_id
            )
        parts.append(chunk)
    return b"".join(parts)
