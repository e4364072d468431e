"""The Accelerator REST v3 protocol as pure functions: no I/O, no aiohttp, no asyncio.

URL building, the ``Authorization`` header, token answers, JWT expiry, the
``{"columns", "rows"}`` table shape, ``Retry-After`` and the retry backoff all live here, so
they can be tested without a network and reused by any HTTP stack.  References in comments
("REST ref §N") point at the project's notes on Altair's documentation.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import quote, urlsplit

import orjson

from ._exceptions import (
    ApiError,
    AuthError,
    ConfigError,
    HTTPStatusError,
    NcInfoError,
    NotFoundError,
    ResponseFormatError,
)

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
#: One job: upper-case field name to value, as the server typed it (REST ref §1.3).
JobFields: TypeAlias = dict[str, JsonValue]

API_PREFIX: Final = "/api/v3"
TOKEN_PATH: Final = API_PREFIX + "/token"
QUERY_PATH: Final = API_PREFIX + "/query"

#: Statuses worth another attempt: overload and gateway trouble, never other 4xx.
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

#: The fields the seed's ``nc_info.py`` prints, in its order.
SEED_FIELDS: Final = ("ID", "USER", "GROUP", "COMMAND", "STATUSNC", "HOST", "DURATIONPP")


@dataclass(frozen=True, slots=True)
class JobResult:
    """The outcome for one job ID: its fields, or the error that stands for them.

    Attributes:
        job_id: the job's integer ID.
        fields: upper-case field name to value, when the job was found.
        error: why there are no fields, otherwise.
    """

    job_id: int
    fields: JobFields | None = None
    error: NcInfoError | None = None

    @property
    def ok(self) -> bool:
        """Whether the job was found."""
        return self.error is None


# --- URLs -------------------------------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """Reduce an ``NC_URL`` to ``scheme://host:port``, as the seed's ``nc_info.py`` does.

    ``nc cmd vovbrowser`` may print ``http://host:6444/project``; the REST API lives at the
    root of the web port, so any path, query or fragment is dropped (REST ref §6).

    Raises:
        ConfigError: the URL is empty, not http(s), has no host, carries credentials,
            or has an invalid port.
    """
    text = url.strip()
    if not text:
        raise ConfigError("the server URL is empty: set NC_URL or pass --url")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"the server URL must start with http:// or https://, got {_redact_url(text)!r}"
        )
    if parts.username is not None or parts.password is not None:
        # Never let a password ride in a URL: it would end up in logs and error messages.
        raise ConfigError("the server URL must not contain credentials; use --password-file")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"the server URL has an invalid port: {text!r}") from None
    host = parts.hostname
    if not host:
        raise ConfigError(f"the server URL has no host: {text!r}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def _redact_url(text: str) -> str:
    """Drop anything before an ``@`` in the authority, so a pasted password is not echoed."""
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text


def is_loopback_host(base_url: str) -> bool:
    """Tell whether a normalised base URL points at this machine."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def job_path(job_id: int, field: str | None = None) -> str:
    """Path of ``GET /api/v3/jobs/{id}`` (all fields) or ``/jobs/{id}/{field}`` (REST ref §1.2)."""
    path = f"{API_PREFIX}/jobs/{job_id}"
    return path if field is None else f"{path}/{quote(field, safe='')}"


def query_path(select: Sequence[str], job_ids: Sequence[int]) -> str:
    """Path and query string of one batched ``/api/v3/query`` for the given job IDs.

    Uses the documented comma-list selection rule ``idint==a,b,c`` (REST ref §1.4.1); ``=``
    and ``,`` are percent-encoded as the documentation asks for reserved characters.
    """
    fields = ",".join(select)
    where = "idint==" + ",".join(map(str, job_ids))
    return (
        f"{QUERY_PATH}?select={quote(fields, safe='')}&from=jobs"
        f"&where={quote(where, safe='')}&limit={len(job_ids)}"
    )


#: The most one ID adds to a query URL: 18 digits, a percent-encoded comma (3) and the
#: growth of the ``limit`` parameter it contributes to (at most one more digit).
MAX_ID_COST: Final = 22


def id_cost(job_id: int) -> int:
    """What one ID adds to a batched query's URL: its digits and a ``%2C`` separator."""
    return len(str(job_id)) + 3


def batch_select(fields: Sequence[str]) -> list[str]:
    """The ``select`` list of a batched query: the fields asked for, plus ``IDINT``.

    ``IDINT`` is what ties each returned row to a requested ID; ``*`` already has it.
    """
    chosen = [name.upper() for name in fields]
    return chosen if "*" in chosen or "IDINT" in chosen else [*chosen, "IDINT"]


def parse_query(status: int, body: bytes, *, url: str) -> list[JobFields]:
    """Rows of a ``/api/v3/query`` answer.

    Raises:
        HTTPStatusError: a status other than 200.
        ApiError: a non-empty ``errormsg``, with rows or without.
        ResponseFormatError: as for ``parse_table``.
    """
    if status != 200:
        raise http_status_error(status, body, url=url)
    rows = parse_table(body, url=url, query=True)
    if rows and job_id_of(rows[0]) is None:
        raise ResponseFormatError("the query answer has no IDINT or ID column", url=url)
    return rows


def match_rows(rows: Iterable[JobFields], job_ids: Sequence[int], *, url: str) -> list[JobResult]:
    """One result per requested ID, in order: its row, or not found when it has none."""
    by_id = {job_id_of(row): row for row in rows}
    return [
        JobResult(job_id, fields=by_id[job_id])
        if job_id in by_id
        else JobResult(
            job_id,
            error=NotFoundError("not found (no row in the query answer)", job_id=job_id, url=url),
        )
        for job_id in job_ids
    ]


# --- Tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A JWT access token as issued by ``POST /api/v3/token`` (REST ref §2.1).

    Attributes:
        token_type: as the server sent it (``Bearer`` on the simulator).
        access_token: the JWT itself; never logged.
        expires_at: epoch seconds when it stops working, if known.
    """

    token_type: str
    access_token: str
    expires_at: float | None

    def __repr__(self) -> str:
        return (
            f"Token(token_type={self.token_type!r}, access_token='***', "
            f"expires_at={self.expires_at!r})"
        )

    @property
    def header(self) -> str:
        """The ``Authorization`` value, exactly as documented: ``<token_type>:<access_token>``.

        REST ref §2.2: the example joins the two with a colon and no space.
        """
        return f"{self.token_type}:{self.access_token}"

    def is_fresh(self, now: float, margin: float) -> bool:
        """Tell whether the token will still be valid ``margin`` seconds from ``now``."""
        return self.expires_at is None or now + margin < self.expires_at


def token_form(username: str, password: str) -> dict[str, str]:
    """The form fields of the token request (REST ref §2.1: form-encoded, not JSON)."""
    return {"username": username, "password": password}


def jwt_expiry(access_token: str) -> float | None:
    """Read the ``exp`` claim of a JWT without verifying it; None when there is none.

    The client cannot verify the server's signature (it does not hold the key) and needs the
    expiry only to refresh ahead of time, so a token that is not a JWT is simply tolerated.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and math.isfinite(exp):
        return float(exp)
    return None


def parse_token_response(status: int, body: bytes, *, now: float, url: str) -> Token:
    """Turn the answer of ``POST /api/v3/token`` into a ``Token``.

    Raises:
        AuthError: the server refused the credentials (its ``error`` text is kept, REST ref
            §2.1), or the answer has no usable token.
    """
    data = _loads_object(body)
    if status >= 300:
        reason = data.get("error") if data is not None else None
        detail = f": {reason}" if isinstance(reason, str) and reason else ""
        raise AuthError(
            f"the server refused the token request (HTTP {status}){detail}", url=url, status=status
        )
    if data is None:
        raise AuthError("the token answer is not a JSON object", url=url, status=status)
    token_type = data.get("token_type")
    access_token = data.get("access_token")
    if not isinstance(token_type, str) or not isinstance(access_token, str) or not access_token:
        raise AuthError("the token answer lacks token_type or access_token", url=url, status=status)
    expires_at = jwt_expiry(access_token)
    expires_in = data.get("expires_in")
    if (
        expires_at is None
        and isinstance(expires_in, int | float)
        and not isinstance(expires_in, bool)
    ):
        expires_at = now + float(expires_in)
    return Token(token_type=token_type, access_token=access_token, expires_at=expires_at)


# --- Tables -----------------------------------------------------------------------------------


def _loads_object(body: bytes) -> dict[str, JsonValue] | None:
    """Parse a JSON object, or return None for anything else."""
    try:
        # orjson: three times faster than json on job tables, which matters with --batch.
        data = orjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _describe(body: bytes) -> str:
    """A short, safe description of an unexpected body for an error message."""
    head = body[:60].decode("utf-8", "replace").replace("\n", " ").strip()
    if not head:
        return "an empty body"
    if head.lstrip().lower().startswith(("<!doctype", "<html")):
        return "an HTML page"
    return f"{len(body)} bytes starting {head!r}"


class _LastHeader:
    """The last ``columns`` list that passed the checks, and its upper-cased field names."""

    __slots__ = ("columns", "names")

    def __init__(self) -> None:
        self.columns: list[JsonValue] | None = None
        self.names: list[str] = []


#: Every job answer repeats the same 22-column header: an equal header (one C-level ``==``)
#: reuses the names checked last time instead of checking each column again per job.
_last_header = _LastHeader()


def _column_names(columns: list[JsonValue], *, url: str, job_id: int | None) -> list[str]:
    """The upper-cased field names of a table's ``columns``, in ``col`` order.

    Raises:
        ResponseFormatError: a column without a ``field`` name, or out of ``col`` order.
    """
    last = _last_header
    if columns == last.columns:
        return last.names
    names: list[str] = []
    for position, column in enumerate(columns):
        if not isinstance(column, dict) or not isinstance(column.get("field"), str):
            raise ResponseFormatError(
                f"column {position} has no 'field' name", job_id=job_id, url=url
            )
        col = column.get("col", position)
        if col != position:
            # The documented tables list columns in 'col' order; anything else would
            # silently shift every value, so refuse it.
            raise ResponseFormatError(f"column {position} says col={col!r}", job_id=job_id, url=url)
        names.append(str(column["field"]).upper())
    last.columns, last.names = columns, names
    return names


def parse_table(
    body: bytes, *, url: str, job_id: int | None = None, query: bool = False
) -> list[JobFields]:
    """Parse the documented table shape into one dict per row (REST ref §1.3).

    Field names are upper-cased: the server echoes the spelling it was asked for, and
    field names are case-insensitive (REST ref §1.3).

    Raises:
        ResponseFormatError: the body is not JSON, or lacks ``columns``/``rows``, or a row
            does not match the columns.
        NotFoundError: ``errormsg`` is non-empty and there are no rows, for one job's
            accessor (REST ref §2.3: how an unknown ID may be answered).
        ApiError: ``errormsg`` is non-empty and there are rows anyway, or it is a ``query``
            answer (the query itself failed: its rows say nothing of the IDs asked).
    """
    data = _loads_object(body)
    if data is None:
        raise ResponseFormatError(
            f"expected a JSON table, got {_describe(body)}", job_id=job_id, url=url
        )
    columns, rows, errormsg = data.get("columns"), data.get("rows"), data.get("errormsg", "")
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise ResponseFormatError(
            "the JSON answer has no 'columns' and 'rows' lists", job_id=job_id, url=url
        )
    names = _column_names(columns, url=url, job_id=job_id)
    if errormsg and isinstance(errormsg, str):
        if not rows and not query:
            raise NotFoundError(f"not found ({errormsg})", job_id=job_id, url=url)
        raise ApiError(f"the server reported: {errormsg}", job_id=job_id, url=url)
    table: list[JobFields] = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            size = len(row) if isinstance(row, list) else "not a list"
            raise ResponseFormatError(
                f"row {index} has {size} values for {len(names)} columns", job_id=job_id, url=url
            )
        table.append(dict(zip(names, row, strict=True)))
    return table


def job_id_of(fields: Mapping[str, JsonValue]) -> int | None:
    """The integer job ID of a row, from ``IDINT`` or the zero-padded ``ID``."""
    for key in ("IDINT", "ID"):
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def parse_job(status: int, body: bytes, *, job_id: int, url: str) -> JobFields:
    """Interpret the answer of ``GET /api/v3/jobs/{id}`` for one job.

    Raises:
        NotFoundError: HTTP 404, or an empty table (REST ref §2.3: unknown IDs are [UNKNOWN],
            so both forms are accepted).
        HTTPStatusError: any other non-200 status.
        ResponseFormatError, ApiError: as for ``parse_table``; also a row for another job.
    """
    if status == 404:
        reason = _error_text(body)
        raise NotFoundError(
            "not found" + (f" ({reason})" if reason else ""), job_id=job_id, url=url, status=status
        )
    if status != 200:
        raise http_status_error(status, body, url=url, job_id=job_id)
    rows = parse_table(body, url=url, job_id=job_id)
    if not rows:
        raise NotFoundError("not found (no rows)", job_id=job_id, url=url, status=status)
    if len(rows) > 1:
        raise ResponseFormatError(
            f"expected one row for job {job_id}, got {len(rows)}", job_id=job_id, url=url
        )
    found = job_id_of(rows[0])
    if found is not None and found != job_id:
        raise ResponseFormatError(
            f"asked for job {job_id}, the answer is for job {found}", job_id=job_id, url=url
        )
    return rows[0]


def _error_text(body: bytes) -> str:
    """The ``error`` member of a JSON error body, if any (REST ref §2.1)."""
    data = _loads_object(body)
    error = data.get("error") if data is not None else None
    return error if isinstance(error, str) else ""


def http_status_error(
    status: int,
    body: bytes,
    *,
    url: str,
    job_id: int | None = None,
    retry_after: float | None = None,
) -> HTTPStatusError:
    """Build the error for an unexpected status, keeping the server's ``error`` text."""
    reason = _error_text(body)
    return HTTPStatusError(
        f"HTTP {status}" + (f": {reason}" if reason else ""),
        job_id=job_id,
        url=url,
        status=status,
        retry_after=retry_after,
    )


# --- Retries ----------------------------------------------------------------------------------


#: Longest Retry-After we honour; a server asking for more is treated as asking for this.
MAX_RETRY_AFTER: Final = 300.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    from email.utils import parsedate_to_datetime  # rare path; keeps start-up light

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - current), MAX_RETRY_AFTER)


def backoff_delay(retry: int, *, base: float, cap: float, draw: float) -> float:
    """Delay before retry number ``retry`` (1-based): capped exponential with full jitter.

    ``draw`` is a uniform random number in [0, 1); full jitter spreads retries of many
    concurrent requests evenly instead of in synchronised waves (AWS "Exponential Backoff
    And Jitter"; gRPC A6 uses the same formula).
    """
    return draw * min(cap, base * 2.0 ** (retry - 1))


# --- The run-level breaker --------------------------------------------------------------------


def breaker_threshold(concurrency: int) -> int:
    """How many attempts in a row must time out or fail to connect before a run stops.

    At least 8 (a run's worth of one request's tries), and at least one whole round of the
    concurrent requests: when every worker's attempt failed in turn and none got an answer,
    the server is not answering this client at all.
    """
    return max(8, concurrency)


class Breaker:
    """Counts the attempts in a row that got no answer; any answer resets the count.

    Args:
        threshold: the count at which the breaker trips (see ``breaker_threshold``).
    """

    __slots__ = ("connect_failures", "threshold", "timeouts")

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        #: Attempts in the current streak that timed out.
        self.timeouts = 0
        #: Attempts in the current streak that could not connect.
        self.connect_failures = 0

    @property
    def streak(self) -> int:
        """Attempts in a row that got no answer."""
        return self.timeouts + self.connect_failures

    def answered(self) -> None:
        """An attempt got a complete HTTP answer, whatever its status: the server is there."""
        self.timeouts = self.connect_failures = 0

    def failed(self, *, timed_out: bool) -> bool:
        """An attempt timed out (``timed_out``) or could not connect; True once tripped."""
        if timed_out:
            self.timeouts += 1
        else:
            self.connect_failures += 1
        return self.streak >= self.threshold

    def describe(self) -> str:
        """What the streak saw, in words."""
        parts = []
        if self.timeouts:
            parts.append(f"{self.timeouts} timed out")
        if self.connect_failures:
            parts.append(f"{self.connect_failures} could not connect")
        return f"the last {self.streak} attempts got no answer ({', '.join(parts)})"
