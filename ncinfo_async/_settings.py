"""Settings of a run: a frozen value built from flags, then the environment, then defaults."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from ._exceptions import ConfigError
from ._protocol import normalize_base_url

#: In-flight requests (and pooled connections). 32 hides up to a few milliseconds of network
#: latency at the ~5k requests/s one Python process can issue, while keeping a single-process
#: vovserver, which also schedules jobs (REST ref §7), far below its client limits.
DEFAULT_CONCURRENCY: Final = 32
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_READ_TIMEOUT: Final = 30.0
#: Tries per request.  At a 15% failure rate (10% 503s, 5% drops) a job fails all 8 tries
#: with probability 0.15**8 = 2.6e-7; with full jitter the 7 waits add up to ~5 s at most.
DEFAULT_ATTEMPTS: Final = 8
DEFAULT_BACKOFF_BASE: Final = 0.1
DEFAULT_BACKOFF_CAP: Final = 5.0
DEFAULT_JOB_BUDGET: Final = 120.0
#: A job row is about 1 KiB; a batch of a few hundred rows stays far below this.
DEFAULT_MAX_BODY: Final = 8 * 1024 * 1024
DEFAULT_REORDER_WINDOW: Final = 4096
#: Longest batched query path: nginx's default request-line buffer is 8 KiB
#: (large_client_header_buffers), so 8,000 bytes leaves room for "GET " and " HTTP/1.1".
DEFAULT_URL_BUDGET: Final = 8000
#: Refresh this long before the JWT's exp, so no request carries a token that dies in flight.
DEFAULT_REFRESH_MARGIN: Final = 60.0

Order = Literal["input", "completion"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a ``Client`` needs to know, immutable once built.

    Attributes:
        url: the server's base URL, normalised to ``scheme://host:port``.
        user: the user name sent to ``POST /api/v3/token``.
        password: the password; excluded from ``repr``.  May be None when a cached token
            is used or when the caller supplies a password provider to the client.
        cafile: a PEM bundle to verify the server against instead of the system store.
        insecure: skip certificate verification (a self-signed server); off by default.
        concurrency: requests in flight at once, and the connection pool size.
        keepalive: reuse connections; False opens a new connection per request.
        connect_timeout: seconds for the TCP connect and TLS handshake of one attempt.
        read_timeout: seconds of silence tolerated while reading one answer.
        attempts: tries per request, first included, for retryable failures.
        backoff_base: seconds of the first retry's backoff window.
        backoff_cap: the longest backoff window in seconds.
        job_budget: seconds one job may take across all its attempts and waits.
        deadline: seconds for the whole run; unfinished jobs then time out.
        max_body: the largest answer body accepted, in bytes.
        order: ``input`` (results in input order) or ``completion``.
        reorder_window: how many results may wait for an earlier one in input order.
        refresh_margin: seconds before the JWT's expiry at which it is renewed.
        url_budget: the longest batched query path, in bytes.
        adapt: adapt the requests in flight to the server's overload signals (AIMD, with
            ``concurrency`` as the ceiling); False keeps ``concurrency`` fixed.
        max_rate: at most this many API requests started per second; None for no cap.
    """

    url: str
    user: str
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    insecure: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    keepalive: bool = True
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    job_budget: float = DEFAULT_JOB_BUDGET
    deadline: float | None = None
    max_body: int = DEFAULT_MAX_BODY
    order: Order = "input"
    reorder_window: int = DEFAULT_REORDER_WINDOW
    refresh_margin: float = DEFAULT_REFRESH_MARGIN
    url_budget: int = DEFAULT_URL_BUDGET
    adapt: bool = True
    max_rate: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalize_base_url(self.url))
        if not self.user:
            raise ConfigError("no user name: pass --user or set NC_USER")
        if self.insecure and self.cafile:
            raise ConfigError("--insecure and --cacert contradict each other; pick one")
        _positive("concurrency", self.concurrency)
        _positive("attempts", self.attempts)
        _positive("reorder window", self.reorder_window)
        _positive("max body", self.max_body)
        for name in ("connect_timeout", "read_timeout", "job_budget", "backoff_cap"):
            _positive(name.replace("_", " "), getattr(self, name))
        if self.deadline is not None:
            _positive("deadline", self.deadline)
        if self.max_rate is not None:
            _positive("max rate", self.max_rate)
        if self.backoff_base < 0:
            raise ConfigError("backoff base must not be negative")

    @property
    def is_https(self) -> bool:
        """Whether requests go over TLS."""
        return self.url.startswith("https://")

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> Settings:
        """Build settings from flags (``overrides``, None meaning unset) over the environment.

        Reads ``NC_URL``, ``NC_USER`` (else ``USER``), ``NC_PASSWORD`` and ``NC_CACERT``.
        Takes the environment as a mapping so callers and tests never touch ``os.environ``.

        Raises:
            ConfigError: no URL, no user, or an invalid value.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        url = given.pop("url", None) or environ.get("NC_URL")
        if not url:
            raise ConfigError(
                "no server URL: set NC_URL (as printed by 'nc cmd vovbrowser') or pass --url"
            )
        user = given.pop("user", None) or environ.get("NC_USER") or environ.get("USER")
        if not user:
            raise ConfigError("no user name: pass --user or set NC_USER or USER")
        given.setdefault("password", environ.get("NC_PASSWORD") or None)
        if "cafile" not in given and environ.get("NC_CACERT"):
            given["cafile"] = environ["NC_CACERT"]
        return cls(url=str(url), user=str(user), **given)  # type: ignore[arg-type]


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
