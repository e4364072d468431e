"""Settings of the simulated vovserver: what it serves and which faults it injects.

Both classes are frozen and keyword-only; a running simulator swaps its whole
`FaultConfig` for a new one (`FaultConfig.updated`) instead of mutating it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ERROR_STATUSES", "FaultConfig", "SimConfig"]

#: Statuses `FaultConfig.error_status` may take: what a loaded or proxied server sends.
ERROR_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

UnknownJob = Literal["404", "empty"]
IdLists = Literal["all", "first", "ignore"]


def _check_rate(name: str, value: object) -> None:
    # `object`: values also arrive from JSON (`POST /sim/faults`), typed or not.
    if not (isinstance(value, int | float) and not isinstance(value, bool)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def _check_non_negative(name: str, value: object) -> None:
    if not (isinstance(value, int | float) and not isinstance(value, bool)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultConfig:
    """Faults injected into `/api/v3` responses, each decided by a seeded RNG.

    Attributes:
        error_rate: Fraction of requests answered with `error_status` and
            `{"error": ...}` instead of the real response.
        error_status: HTTP status of injected errors: 429, 500, 502, 503 or 504.
        retry_after: Whole seconds sent as `Retry-After` with injected errors,
            or None to send no such header.
        drop_rate: Fraction of requests whose connection is aborted with no
            response at all (the client sees a reset or a server disconnect).
        close_after_response: Send `Connection: close` and close the
            connection after every response, which defeats keep-alive.
        slow_rate: Fraction of requests delayed by `slow_ms` more.
        slow_ms: Extra delay of a slow request, in milliseconds.
        include_token: Also apply the faults to `POST /api/v3/token`.
    """

    error_rate: float = 0.0
    error_status: int = 503
    retry_after: int | None = None
    drop_rate: float = 0.0
    close_after_response: bool = False
    slow_rate: float = 0.0
    slow_ms: float = 0.0
    include_token: bool = False

    def __post_init__(self) -> None:
        _check_rate("error_rate", self.error_rate)
        _check_rate("drop_rate", self.drop_rate)
        _check_rate("slow_rate", self.slow_rate)
        _check_non_negative("slow_ms", self.slow_ms)
        if self.error_status not in ERROR_STATUSES or isinstance(self.error_status, bool):
            raise ValueError(f"error_status must be one of {sorted(ERROR_STATUSES)}")
        retry_after: object = self.retry_after
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
        ):
            raise ValueError("retry_after must be a whole number of seconds >= 0, or null")
        for name in ("close_after_response", "include_token"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a boolean")

    def updated(self, changes: Mapping[str, Any]) -> FaultConfig:
        """Return a copy with `changes` applied (a partial update, as `POST /sim/faults` sends).

        Raises:
            KeyError: A key is not a field of this class.
            TypeError, ValueError: A value is out of range or of the wrong type.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise KeyError(f"unknown fault setting(s): {', '.join(unknown)}")
        return replace(self, **dict(changes))

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)


def _default_users() -> Mapping[str, str]:
    return {"demo": "demo"}


@dataclass(frozen=True, kw_only=True, slots=True)
class SimConfig:
    """Everything a `Simulator` needs to start.

    Attributes:
        host: Address to bind, e.g. `127.0.0.1` or `::1`.
        port: TCP port; 0 picks a free one.
        jobs: Number of jobs, with IDs 1..jobs.
        seed: Seed of the job generator and of the fault RNG.
        users: Accepted `username -> password` pairs (default `demo:demo`).
        token_ttl: Lifetime of issued tokens in seconds (the seed document
            says tokens "expire about 4 hours after issue").
        latency_ms: Delay added before every `/api/v3` response.
        tls: Serve HTTPS with a fresh CA and a certificate for 127.0.0.1, ::1
            and localhost.
        unknown_job: How `/api/v3/jobs/{id}` answers for an ID that does not
            exist: `"404"` (404 + `{"error": ...}`) or `"empty"` (200 with
            `rows: []` and a non-empty `errormsg`); the real behaviour is
            [UNKNOWN] in the reference, section 2.3.
        time_scale: Speed of simulated time relative to the wall clock, so a
            test can watch queued and running jobs finish within seconds.
        accept_bearer: Also accept `Authorization: Bearer <jwt>` besides the
            documented `Bearer:<jwt>` form.
        reject_query: Answer `/api/v3/query` with 400 so clients can test
            their fallback to per-job requests (batched `idint==a,b,c` is
            [INFER] in the reference, section 1.4).
        id_lists: How `/api/v3/query` reads a comma list of IDs (`idint==a,b,c`),
            which the reference infers but Altair documents only for text fields
            (section 1.4.1): `"all"` (every value), `"first"` (only the first value) or
            `"ignore"` (the rule is ignored: every job matches, up to `limit`).
        capacity: Requests the server serves at once; an `/api/v3` request arriving
            while that many are being served gets 503 at once. None: no limit.
        faults: Faults injected from the start.
        start_time: Epoch seconds of simulated "now" at start; None uses the
            wall clock. A fixed value makes every field reproducible.
        project: Queue name served as PROJECT by `/api/v3/project/1/project`.
        version: Text served as VERSION by `/api/v3/project/1/version`.
        max_line_size: Longest request line (method, URL, version) accepted, in
            bytes; longer ones get aiohttp's plain-text 400. vovserver's limit is
            [UNKNOWN] (reference, section 7); the default lets one `idint==` list
            carry tens of thousands of IDs.
        query_max_rows: Most rows one `/api/v3/query` answer carries, whatever its
            `limit`; None for no cap. Whether vovserver caps an answer is [UNKNOWN]
            (reference, section 9, question 7), so clients can test that they page on.
    """

    host: str = "127.0.0.1"
    port: int = 0
    jobs: int = 1000
    seed: int = 0
    users: Mapping[str, str] = field(default_factory=_default_users)
    token_ttl: float = 14400.0
    latency_ms: float = 0.0
    tls: bool = False
    unknown_job: UnknownJob = "404"
    time_scale: float = 1.0
    accept_bearer: bool = True
    reject_query: bool = False
    id_lists: IdLists = "all"
    capacity: int | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    start_time: float | None = None
    project: str = "ncsim"
    version: str = "2024.1.0 (ncinfo-sim)"
    max_line_size: int = 262_144
    query_max_rows: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.max_line_size < 1024:
            raise ValueError(f"max_line_size must be >= 1024, got {self.max_line_size}")
        if self.query_max_rows is not None and self.query_max_rows < 1:
            raise ValueError(f"query_max_rows must be >= 1, got {self.query_max_rows}")
        if self.jobs < 0:
            raise ValueError(f"jobs must be >= 0, got {self.jobs}")
        if not self.users:
            raise ValueError("at least one user is needed")
        _check_non_negative("latency_ms", self.latency_ms)
        if not (math.isfinite(self.token_ttl) and self.token_ttl > 0):
            raise ValueError(f"token_ttl must be > 0, got {self.token_ttl}")
        if not (math.isfinite(self.time_scale) and self.time_scale > 0):
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if self.id_lists not in ("all", "first", "ignore"):
            raise ValueError(f"id_lists must be all, first or ignore, got {self.id_lists!r}")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        if self.unknown_job not in ("404", "empty"):
            raise ValueError(f"unknown_job must be '404' or 'empty', got {self.unknown_job!r}")
        # A read-only copy keeps the frozen promise even if the caller mutates their dict.
        object.__setattr__(self, "users", MappingProxyType(dict(self.users)))
