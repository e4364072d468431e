"""Tier 1: every error the sans-I/O core builds, with its exact message, job ID, URL and status.

Error results are what a user reads (stderr, ndjson ``error.message``) and what the
renderers and retries branch on, so each field is pinned, not just the exception type.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from ncinfo_async import _protocol as protocol
from ncinfo_async._exceptions import (
    ApiError,
    AuthError,
    ConfigError,
    HTTPStatusError,
    NcInfoError,
    NotFoundError,
    ResponseFormatError,
)

URL = "http://127.0.0.1:1/api/v3/jobs/7"
TABLE_ROW = b'{"columns": [{"field": "id", "col": 0}], "rows": [["000000007"]]}'


def table(columns: list[Any], rows: list[Any], errormsg: str = "") -> bytes:
    """A body in the documented table shape."""
    return json.dumps({"columns": columns, "rows": rows, "errormsg": errormsg}).encode()


def fails(call: Callable[[], object]) -> NcInfoError:
    """The NcInfoError the call raises."""
    with pytest.raises(NcInfoError) as info:
        call()
    return info.value


ERRORS: list[tuple[str, Callable[[], object], type[NcInfoError], str, int | None, int | None]] = [
    # (case, call, type, exact message, job_id, status)
    (
        "job 404 with an error text",
        lambda: protocol.parse_job(404, b'{"error": "no job 7"}', job_id=7, url=URL),
        NotFoundError, "not found (no job 7)", 7, 404,
    ),
    (
        "job 404 without a body",
        lambda: protocol.parse_job(404, b"", job_id=7, url=URL),
        NotFoundError, "not found", 7, 404,
    ),
    (
        "job 404 with a non-text error",
        lambda: protocol.parse_job(404, b'{"error": 5}', job_id=7, url=URL),
        NotFoundError, "not found", 7, 404,
    ),
    (
        "job 503",
        lambda: protocol.parse_job(503, b'{"error": "busy"}', job_id=7, url=URL),
        HTTPStatusError, "HTTP 503: busy", 7, 503,
    ),
    (
        "job 500 without JSON",
        lambda: protocol.parse_job(500, b"oops", job_id=7, url=URL),
        HTTPStatusError, "HTTP 500", 7, 500,
    ),
    (
        "job with no rows",
        lambda: protocol.parse_job(200, table([{"field": "id", "col": 0}], []), job_id=7, url=URL),
        NotFoundError, "not found (no rows)", 7, 200,
    ),
    (
        "job with two rows",
        lambda: protocol.parse_job(
            200, table([{"field": "idint", "col": 0}], [[7], [7]]), job_id=7, url=URL
        ),
        ResponseFormatError, "expected one row for job 7, got 2", 7, None,
    ),
    (
        "job answer for another job",
        lambda: protocol.parse_job(
            200, table([{"field": "idint", "col": 0}], [[8]]), job_id=7, url=URL
        ),
        ResponseFormatError, "asked for job 7, the answer is for job 8", 7, None,
    ),
    (
        "job table with errormsg and no rows",
        lambda: protocol.parse_job(
            200, table([{"field": "id", "col": 0}], [], "no such job"), job_id=7, url=URL
        ),
        NotFoundError, "not found (no such job)", 7, None,
    ),
    (
        "job table with errormsg and rows",
        lambda: protocol.parse_job(
            200, table([{"field": "idint", "col": 0}], [[7]], "partial"), job_id=7, url=URL
        ),
        ApiError, "the server reported: partial", 7, None,
    ),
    (
        "HTML instead of a table",
        lambda: protocol.parse_job(200, b"\n<HTML><body>502</body>", job_id=7, url=URL),
        ResponseFormatError, "expected a JSON table, got an HTML page", 7, None,
    ),
    (
        "doctype instead of a table",
        lambda: protocol.parse_job(200, b"<!DOCTYPE html>", job_id=7, url=URL),
        ResponseFormatError, "expected a JSON table, got an HTML page", 7, None,
    ),
    (
        "empty body",
        lambda: protocol.parse_job(200, b"  \n", job_id=7, url=URL),
        ResponseFormatError, "expected a JSON table, got an empty body", 7, None,
    ),
    (
        "garbage body",
        lambda: protocol.parse_job(200, b"line one\nline two" + b"x" * 80, job_id=7, url=URL),
        ResponseFormatError,
        "expected a JSON table, got 97 bytes starting "
        "'line one line two" + "x" * 43 + "'",
        7, None,
    ),
    (
        "undecodable body",
        lambda: protocol.parse_job(200, b"\xff\xfe{", job_id=7, url=URL),
        ResponseFormatError, "expected a JSON table, got 3 bytes starting '\ufffd\ufffd{'", 7, None,
    ),
    (
        "no columns",
        lambda: protocol.parse_job(200, b'{"rows": []}', job_id=7, url=URL),
        ResponseFormatError, "the JSON answer has no 'columns' and 'rows' lists", 7, None,
    ),
    (
        "column without a field name",
        lambda: protocol.parse_job(200, table([{"col": 0}], [[1]]), job_id=7, url=URL),
        ResponseFormatError, "column 0 has no 'field' name", 7, None,
    ),
    (
        "column out of order",
        lambda: protocol.parse_job(
            200, table([{"field": "id", "col": 1}], [[1]]), job_id=7, url=URL
        ),
        ResponseFormatError, "column 0 says col=1", 7, None,
    ),
    (
        "row of the wrong length",
        lambda: protocol.parse_job(
            200, table([{"field": "id", "col": 0}], [["a", "b"]]), job_id=7, url=URL
        ),
        ResponseFormatError, "row 0 has 2 values for 1 columns", 7, None,
    ),
    (
        "row that is not a list",
        lambda: protocol.parse_job(200, table([{"field": "id", "col": 0}], [5]), job_id=7, url=URL),
        ResponseFormatError, "row 0 has not a list values for 1 columns", 7, None,
    ),
    (
        "query refused",
        lambda: protocol.parse_query(400, b'{"error": "bad rule"}', url=URL),
        HTTPStatusError, "HTTP 400: bad rule", None, 400,
    ),
    (
        "query answered with HTML",
        lambda: protocol.parse_query(200, b"<html>", url=URL),
        ResponseFormatError, "expected a JSON table, got an HTML page", None, None,
    ),
    (
        "query without an ID column",
        lambda: protocol.parse_query(200, table([{"field": "user", "col": 0}], [["u"]]), url=URL),
        ResponseFormatError, "the query answer has no IDINT or ID column", None, None,
    ),
    (
        "token refused with a reason",
        lambda: protocol.parse_token_response(401, b'{"error": "bad password"}', now=0, url=URL),
        AuthError, "the server refused the token request (HTTP 401): bad password", None, 401,
    ),
    (
        "token refused with an empty reason",
        lambda: protocol.parse_token_response(403, b'{"error": ""}', now=0, url=URL),
        AuthError, "the server refused the token request (HTTP 403)", None, 403,
    ),
    (
        "token refused without JSON",
        lambda: protocol.parse_token_response(300, b"<html>", now=0, url=URL),
        AuthError, "the server refused the token request (HTTP 300)", None, 300,
    ),
    (
        "token answer not JSON",
        lambda: protocol.parse_token_response(200, b"[1]", now=0, url=URL),
        AuthError, "the token answer is not a JSON object", None, 200,
    ),
    (
        "token answer without a type",
        lambda: protocol.parse_token_response(200, b'{"access_token": "t"}', now=0, url=URL),
        AuthError, "the token answer lacks token_type or access_token", None, 200,
    ),
    (
        "token answer with an empty token",
        lambda: protocol.parse_token_response(
            200, b'{"token_type": "Bearer", "access_token": ""}', now=0, url=URL
        ),
        AuthError, "the token answer lacks token_type or access_token", None, 200,
    ),
    (
        "token answer with a non-text token",
        lambda: protocol.parse_token_response(
            200, b'{"token_type": "Bearer", "access_token": 5}', now=0, url=URL
        ),
        AuthError, "the token answer lacks token_type or access_token", None, 200,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "kind", "message", "job_id", "status"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_error_fields(
    call: Callable[[], object],
    kind: type[NcInfoError],
    message: str,
    job_id: int | None,
    status: int | None,
) -> None:
    """Each refusal of the core has its documented type, exact message, job, URL and status."""
    error = fails(call)
    assert type(error) is kind
    assert error.message == message
    assert error.job_id == job_id
    assert error.url == URL
    assert error.status == status


def test_token_accepted_at_299_and_refused_from_300() -> None:
    """Any 2xx with a token is accepted; 300 and above are refusals."""
    body = b'{"token_type": "Bearer", "access_token": "opaque"}'
    assert protocol.parse_token_response(299, body, now=0, url=URL).access_token == "opaque"
    with pytest.raises(AuthError):
        protocol.parse_token_response(300, body, now=0, url=URL)


def test_http_status_error_keeps_retry_after() -> None:
    """The error built for a status carries the Retry-After it was given."""
    error = protocol.http_status_error(429, b"", url=URL, job_id=3, retry_after=2.5)
    assert (error.message, error.job_id, error.url, error.status) == ("HTTP 429", 3, URL, 429)
    assert error.retry_after == 2.5


def test_match_rows_gives_rows_and_located_not_found() -> None:
    """A row found is its fields; a missing ID is not found, naming the job and the query URL."""
    rows = [{"IDINT": 3, "USER": "a"}, {"ID": "000000001", "USER": "b"}]
    found3, missing, found1 = protocol.match_rows(rows, [3, 7, 1], url=URL)
    assert found3.fields == {"IDINT": 3, "USER": "a"}
    assert found1.fields == {"ID": "000000001", "USER": "b"}
    assert missing.fields is None
    assert isinstance(missing.error, NotFoundError)
    assert missing.error.message == "not found (no row in the query answer)"
    assert (missing.error.job_id, missing.error.url) == (7, URL)


def test_parse_query_checks_only_the_first_row_for_an_id() -> None:
    """An ID column is required of the answer, judged on its first row."""
    body = table([{"field": "idint", "col": 0}], [[1], ["x"]])
    assert protocol.parse_query(200, body, url=URL) == [{"IDINT": 1}, {"IDINT": "x"}]
    assert protocol.parse_query(200, table([{"field": "idint", "col": 0}], []), url=URL) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"IDINT": 5}, 5),
        ({"ID": "000000005"}, 5),
        ({"IDINT": True, "ID": "6"}, 6),
        ({"IDINT": "x", "ID": "7"}, 7),
        ({"ID": "x7"}, None),
        ({"id": "7"}, None),
        ({"ID": 8}, 8),
        ({}, None),
    ],
)
def test_job_id_of(fields: dict[str, Any], expected: int | None) -> None:
    """The ID of a row: IDINT first, then the padded ID; booleans and words are not IDs."""
    assert protocol.job_id_of(fields) == expected


def jwt(claims: object) -> str:
    """An unsigned JWT-shaped token with the given claims (padding stripped, as JWTs do)."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"e30.{payload}.sig"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (jwt({"exp": 1700000000}), 1700000000.0),
        (jwt({"exp": 1.5}), 1.5),
        (jwt({"exp": 12}), 12.0),  # a 6-byte payload: padding matters
        (jwt({"exp": 123}), 123.0),
        (jwt({"exp": True}), None),
        (jwt({"exp": float("inf")}), None),
        (jwt({"exp": "1"}), None),
        (jwt([1, 2]), None),
        ("a.b", None),
        ("a.!!!.c", None),
    ],
)
def test_jwt_expiry(token: str, expected: float | None) -> None:
    """exp is read from any payload length; booleans, infinities, strings and non-JWTs give None."""
    assert protocol.jwt_expiry(token) == expected


def test_token_freshness_and_form() -> None:
    """A token is fresh strictly before exp - margin; the form has the documented fields."""
    token = protocol.Token("Bearer", "t", expires_at=100.0)
    assert token.is_fresh(89.0, 10.0)
    assert not token.is_fresh(90.0, 10.0)
    assert protocol.Token("Bearer", "t", None).is_fresh(10**12, 10.0)
    assert protocol.token_form("me", "pw") == {"username": "me", "password": "pw"}


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:6271", True),
        ("http://127.9.8.7", True),
        ("http://LOCALHOST:80", True),
        ("http://[::1]:6271", True),
        ("http://nchost:6271", False),
        ("http://128.0.0.1", False),
        ("http://localhost.example.com", False),
        ("http://10.127.0.1", False),
    ],
)
def test_is_loopback_host(url: str, loopback: bool) -> None:
    """Only 127.0.0.0/8, ::1 and localhost count as this machine."""
    assert protocol.is_loopback_host(url) is loopback


def test_credentials_in_a_url_are_refused_whichever_part_is_there() -> None:
    """A user name alone or a password alone in the URL is refused, with the exact remedy."""
    for url in ("http://me@h:1", "http://:pw@h:1", "http://me:pw@h:1"):
        error = fails(lambda url=url: protocol.normalize_base_url(url))
        assert isinstance(error, ConfigError)
        assert error.message == "the server URL must not contain credentials; use --password-file"
    empty = fails(lambda: protocol.normalize_base_url("  "))
    assert empty.message == "the server URL is empty: set NC_URL or pass --url"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://me:pw@h/x@y", "ftp://***@h/x@y"),
        ("ftp://h/a@b", "ftp://h/a@b"),
        ("ftp://h/a@b/c", "ftp://h/a@b/c"),
        ("ftp://a:b@c@h/p", "ftp://***@c@h/p"),
        ("ftp://u@h/p/q", "ftp://***@h/p/q"),
        ("nourl@x", "nourl@x"),
        ("ftp://h://u@x", "ftp://h://u@x"),
    ],
)
def test_scheme_errors_redact_only_the_authority(url: str, shown: str) -> None:
    """A bad scheme is echoed with anything before the authority's first @ hidden."""
    error = fails(lambda: protocol.normalize_base_url(url))
    assert error.message == f"the server URL must start with http:// or https://, got {shown!r}"


def test_paths_percent_encode_every_reserved_character() -> None:
    """Field names and where rules are percent-encoded, slashes included."""
    assert protocol.job_path(5, "a/b") == "/api/v3/jobs/5/a%2Fb"
    assert protocol.query_path(["A/B"], [1]) == (
        "/api/v3/query?select=A%2FB&from=jobs&where=idint%3D%3D1&limit=1"
    )


def test_id_cost_is_digits_plus_an_encoded_comma() -> None:
    """Each ID costs its digits and a '%2C'."""
    assert protocol.id_cost(7) == 4
    assert protocol.id_cost(10**17) == 21


def test_retry_after_date_uses_the_current_time_by_default() -> None:
    """An HTTP-date Retry-After in the past is 0 s from now, without a `now` argument."""
    assert protocol.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_columns_without_col_are_taken_in_order() -> None:
    """A column that does not say its 'col' is at its position (the documented order)."""
    body = table([{"field": "id"}, {"field": "user"}], [["000000001", "me"]])
    assert protocol.parse_table(body, url=URL) == [{"ID": "000000001", "USER": "me"}]


def test_breaker_counts_connect_failures_up_to_its_threshold() -> None:
    """Each failed connect adds one to the streak; the breaker trips at the threshold."""
    breaker = protocol.Breaker(3)
    assert not breaker.failed(timed_out=False)
    assert not breaker.failed(timed_out=False)
    assert breaker.connect_failures == 2
    assert breaker.failed(timed_out=False)
    assert breaker.describe() == "the last 3 attempts got no answer (3 could not connect)"
