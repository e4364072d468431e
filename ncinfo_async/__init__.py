"""Concurrent job inspector for Altair Accelerator (NetworkComputer) over REST API v3.

from ncinfo_async import Client, Settings

async with Client(Settings(url=..., user=..., password=...)) as client:
    async with client.stream_jobs(job_ids) as results:
        async for result in results:
            print(result.job_id, result.fields if result.ok else result.error)
"""

from __future__ import annotations

from ._exceptions import (
    ApiError,
    AuthError,
    CertificateError,
    ConfigError,
    ConnectError,
    DeadlineExceeded,
    DisconnectedError,
    HTTPStatusError,
    InputError,
    InterruptedRunError,
    NcInfoError,
    NotFoundError,
    ResponseFormatError,
    ServerUnreachable,
    TimeoutError,
    TransportError,
)
from ._version import __version__

# Not `typing.TYPE_CHECKING`: importing typing would double this package's import time.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from ._client import Client, ClientStats
    from ._facade import VOVRestV3Async
    from ._fanout import Chunks
    from ._protocol import JobResult, Token
    from ._settings import Settings
    from ._wait import WaitOutcome, wait_for_jobs

# Names beyond the exceptions (standard library only) load on first use: the `ncinfo` command
# imports this package before anything else, so it stays cheap (a Ctrl-C lands in
# `_entry.guarded`, not in an import here), and the modules that import aiohttp, which costs
# more than everything else together, are never loaded for `ncinfo --help`.
_LAZY = {
    "Chunks": "_fanout",
    "Client": "_client",
    "ClientStats": "_client",
    "VOVRestV3Async": "_facade",
    "WaitOutcome": "_wait",
    "wait_for_jobs": "_wait",
    "JobResult": "_protocol",
    "Token": "_protocol",
    "Settings": "_settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ncinfo_async' has no attribute {name!r}")


__all__ = [
    "ApiError",
    "AuthError",
    "CertificateError",
    "Chunks",
    "Client",
    "ClientStats",
    "ConfigError",
    "ConnectError",
    "DeadlineExceeded",
    "DisconnectedError",
    "HTTPStatusError",
    "InputError",
    "InterruptedRunError",
    "JobResult",
    "NcInfoError",
    "NotFoundError",
    "ResponseFormatError",
    "ServerUnreachable",
    "Settings",
    "TimeoutError",
    "Token",
    "TransportError",
    "VOVRestV3Async",
    "WaitOutcome",
    "__version__",
    "wait_for_jobs",
]
