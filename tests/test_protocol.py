"""Tier 1: the sans-I/O protocol module, on recorded bodies and hand-made bad ones."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ncinfo_async import _protocol as protocol
from ncinfo_async._exceptions import (
    ApiError,
    AuthError,
    ConfigError,
    HTTPStatusError,
    NotFoundError,
    ResponseFormatError,
)

SAMPLES = Path(__file__).parent / "samples"
URL = "http://127.0.0.1:1/api/v3/jobs/2"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_protocol_never_imports_aiohttp_or_asyncio() -> None:
    """The protocol module stays sans-I/O: importing it loads neither aiohttp nor asyncio."""
    code = (
        "import sys; import ncinfo_async._protocol; "
        "print(sorted(m for m in ('aiohttp', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://mercury:6444/project", "http://mercury:6444"),
        ("https://nchost:6271", "https://nchost:6271"),
        (
            "HTTPS://NCHost.example.com:6330/api/v3/project/1/version",
            "https://nchost.example.com:6330",
        ),
        ("  http://127.0.0.1:8080/  \n", "http://127.0.0.1:8080"),
        ("http://[::1]:6271/project", "http://[::1]:6271"),
        ("http://host", "http://host"),
    ],
)
def test_normalize_base_url_keeps_scheme_host_port(given: str, expected: str) -> None:
    """NC_URL is cut to scheme://host:port as the seed does (vovbrowser may add /project)."""
    assert protocol.normalize_base_url(given) == expected


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("", "empty"),
        ("mercury:6444", "http:// or https://"),
        ("ftp://host:1", "http:// or https://"),
        ("http://:6444/x", "no host"),
        ("http://host:99999", "invalid port"),
        ("http://user:hunter2@host:1", "credentials"),
    ],
)
def test_normalize_base_url_rejects_bad_urls(given: str, fragment: str) -> None:
    """A missing or malformed NC_URL is a clear ConfigError, and a password in it is not echoed."""
    with pytest.raises(ConfigError, match=fragment) as info:
        protocol.normalize_base_url(given)
    assert "hunter2" not in str(info.value)


def test_scheme_error_redacts_credentials() -> None:
    """An unusable URL with a password in it is quoted without the password."""
    with pytest.raises(ConfigError) as info:
        protocol.normalize_base_url("gopher://me:hunter2@host:1")
    assert "hunter2" not in str(info.value)
    assert "***@host:1" in str(info.value)


def test_job_and_query_paths() -> None:
    """Paths follow the documented forms; the where rule's '==' and ',' are percent-encoded."""
    assert protocol.job_path(1138) == "/api/v3/jobs/1138"
    assert protocol.job_path(1138, "status") == "/api/v3/jobs/1138/status"
    assert protocol.query_path(["ID", "STATUSNC"], [1, 22]) == (
        "/api/v3/query?select=ID%2CSTATUSNC&from=jobs&where=idint%3D%3D1%2C22&limit=2"
    )


def test_id_cost_bounds_the_query_url() -> None:
    """A batch's URL is the empty query's plus each ID's cost, within MAX_ID_COST each."""
    ids = [1, 22, 333, 10**17 + 5]
    empty = len(protocol.query_path(["ID"], []))
    assert len(protocol.query_path(["ID"], ids)) <= empty + sum(map(protocol.id_cost, ids))
    assert max(map(protocol.id_cost, ids)) <= protocol.MAX_ID_COST


def test_batch_select_always_carries_idint() -> None:
    """Batched queries always select IDINT, which ties rows to requested IDs."""
    assert protocol.batch_select(["id", "statusnc"]) == ["ID", "STATUSNC", "IDINT"]
    assert protocol.batch_select(["*"]) == ["*"]
    assert protocol.batch_select(["IDINT"]) == ["IDINT"]


def test_match_rows_marks_missing_ids_not_found() -> None:
    """IDs absent from a query answer become NotFoundError, in request order."""
    rows = protocol.parse_query(200, sample("query_3.json"), url=URL)
    results = protocol.match_rows(rows, [3, 7, 1], url=URL)
    assert [r.job_id for r in results] == [3, 7, 1]
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, NotFoundError)


def test_query_refusals_are_typed() -> None:
    """A refused query is an HTTPStatusError or ApiError, which triggers the per-job fallback."""
    with pytest.raises(HTTPStatusError):
        protocol.parse_query(400, b'{"error": "bad rule"}', url=URL)
    with pytest.raises(ApiError):
        protocol.parse_query(200, b'{"errormsg": "no", "columns": [], "rows": [[]]}', url=URL)
    # Without rows too: a failed query says nothing of the IDs it was asked about, while
    # the same answer from one job's accessor means that job is unknown.
    empty = b'{"errormsg": "bad rule", "columns": [{"field": "idint", "col": 0}], "rows": []}'
    with pytest.raises(ApiError) as refused:
        protocol.parse_query(200, empty, url=URL)
    assert not isinstance(refused.value, NotFoundError)
    with pytest.raises(NotFoundError):
        protocol.parse_table(empty, url=URL, job_id=5)


def test_token_header_is_type_colon_token() -> None:
    """The Authorization value is token_type + ':' + access_token, as the docs show."""
    token = protocol.parse_token_response(200, sample("token.json"), now=0.0, url="u")
    assert token.header == f"Bearer:{token.access_token}"
    assert "***" in repr(token)
    assert token.access_token not in repr(token)


def test_token_expiry_comes_from_the_jwt_exp_claim() -> None:
    """The exp claim is read without verifying the signature."""
    body = json.loads(sample("token.json"))
    payload = body["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    token = protocol.parse_token_response(200, sample("token.json"), now=0.0, url="u")
    assert token.expires_at == claims["exp"]


def test_token_without_jwt_falls_back_to_expires_in_or_none() -> None:
    """A token that is not a JWT is tolerated: expiry from expires_in, else unknown."""
    with_ttl = json.dumps({"token_type": "Bearer", "access_token": "opaque", "expires_in": 60})
    token = protocol.parse_token_response(200, with_ttl.encode(), now=1000.0, url="u")
    assert token.expires_at == 1060.0
    bare = json.dumps({"token_type": "Bearer", "access_token": "a.b.c"}).encode()
    assert protocol.parse_token_response(200, bare, now=0.0, url="u").expires_at is None


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (401, sample("token_refused_401.json"), "invalid username or password"),
        (403, b"<html>nope</html>", "HTTP 403"),
        (200, b"not json", "not a JSON object"),
        (200, b'{"token_type": "Bearer"}', "lacks"),
    ],
)
def test_token_refusals_are_auth_errors(status: int, body: bytes, fragment: str) -> None:
    """A refused or unusable token answer is an AuthError that keeps the server's reason."""
    with pytest.raises(AuthError, match=fragment):
        protocol.parse_token_response(status, body, now=0.0, url="u")


def test_parse_job_reads_the_recorded_row() -> None:
    """A recorded job answer becomes one dict keyed by upper-case field names."""
    fields = protocol.parse_job(200, sample("job_2.json"), job_id=2, url=URL)
    assert fields["ID"] == "000000002"
    assert fields["IDINT"] == 2
    assert {"USER", "GROUP", "COMMAND", "STATUSNC", "HOST", "DURATIONPP"} <= set(fields)


def test_parse_table_reads_the_documented_examples() -> None:
    """Both documented example bodies parse, whatever their key order and field case."""
    assert protocol.parse_table(sample("doc_status_field.json"), url=URL) == [{"STATUS": "VALID"}]
    assert protocol.parse_table(sample("doc_project.json"), url=URL) == [{"PROJECT": "MY_NC_QUEUE"}]
    rows = protocol.parse_table(sample("query_3.json"), url=URL)
    assert [row["IDINT"] for row in rows] == [1, 2, 3]


def test_not_found_as_404_or_as_empty_rows() -> None:
    """Unknown jobs are NotFoundError in both forms the simulator (and maybe servers) use."""
    with pytest.raises(NotFoundError, match="no job with id 99999") as info:
        protocol.parse_job(404, sample("not_found_404.json"), job_id=99999, url=URL)
    assert info.value.status == 404
    empty = b'{"startrow":1,"endrow":0,"query":"q","errormsg":"no such job","columns":[],"rows":[]}'
    with pytest.raises(NotFoundError, match="no such job"):
        protocol.parse_job(200, empty, job_id=5, url=URL)
    bare = b'{"startrow":1,"endrow":0,"query":"q","errormsg":"","columns":[],"rows":[]}'
    with pytest.raises(NotFoundError):
        protocol.parse_job(200, bare, job_id=5, url=URL)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty body"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML page"),
        (sample("job_2.json")[:200], "expected a JSON table"),
        (b"[1, 2, 3]", "expected a JSON table"),
        (b'{"rows": []}', "no 'columns' and 'rows'"),
        (b'{"columns": [{"col": 0}], "rows": [[1]]}', "no 'field'"),
        (b'{"columns": [{"col": 1, "field": "ID"}], "rows": [["1"]]}', "col=1"),
        (
            b'{"columns": [{"col": 0, "field": "ID"}], "rows": [["1", "2"]]}',
            "2 values for 1 columns",
        ),
        (b'{"columns": [{"col": 0, "field": "ID"}], "rows": ["x"]}', "not a list"),
    ],
)
def test_malformed_bodies_name_the_problem(body: bytes, fragment: str) -> None:
    """Garbage, HTML, truncated JSON and shape errors give a ResponseFormatError that says why."""
    with pytest.raises(ResponseFormatError, match=fragment) as info:
        protocol.parse_job(200, body, job_id=2, url=URL)
    assert info.value.job_id == 2


def test_a_row_for_another_job_is_refused() -> None:
    """An answer about job 3 to a question about job 2 is never taken as job 2."""
    with pytest.raises(ResponseFormatError, match="asked for job 2, the answer is for job 3"):
        protocol.parse_job(
            200,
            b'{"errormsg":"","columns":[{"col":0,"field":"IDINT"}],"rows":[[3]]}',
            job_id=2,
            url=URL,
        )


def test_errormsg_with_rows_is_an_api_error() -> None:
    """A non-empty errormsg beside rows is reported, not silently ignored."""
    body = b'{"errormsg":"partial","columns":[{"col":0,"field":"IDINT"}],"rows":[[2]]}'
    with pytest.raises(ApiError, match="partial"):
        protocol.parse_job(200, body, job_id=2, url=URL)


def test_unexpected_status_keeps_the_server_reason() -> None:
    """Other statuses become HTTPStatusError with the status and the error text."""
    with pytest.raises(HTTPStatusError, match="HTTP 400: bad rule") as info:
        protocol.parse_job(400, b'{"error": "bad rule"}', job_id=2, url=URL)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("100000", protocol.MAX_RETRY_AFTER),
        ("Thu, 01 Jan 1970 00:00:30 GMT", 20.0),
        ("Thu, 01 Jan 1970 00:00:05 GMT", 0.0),
        ("soon", None),
    ],
)
def test_retry_after_seconds_or_date(value: str | None, expected: float | None) -> None:
    """Retry-After is read as delta-seconds or an HTTP date, capped and never negative."""
    assert protocol.parse_retry_after(value, now=10.0) == expected


def test_backoff_is_capped_full_jitter() -> None:
    """The delay spans [0, min(cap, base*2^(n-1))): full jitter under a cap."""
    assert protocol.backoff_delay(1, base=0.5, cap=8.0, draw=0.999) == pytest.approx(0.4995)
    assert protocol.backoff_delay(3, base=0.5, cap=8.0, draw=0.5) == 1.0
    assert protocol.backoff_delay(10, base=0.5, cap=8.0, draw=0.5) == 4.0
    assert protocol.backoff_delay(10, base=0.5, cap=8.0, draw=0.0) == 0.0


@pytest.mark.parametrize("concurrency", [1, 8, 32, 500])
def test_the_breaker_threshold_scales_with_concurrency(concurrency: int) -> None:
    """K = max(8, concurrency): at least one whole round of concurrent attempts."""
    assert protocol.breaker_threshold(concurrency) == max(8, concurrency)


def test_the_breaker_trips_on_a_streak_and_any_answer_resets_it() -> None:
    """K failures in a row trip it; an answer in between starts the count again."""
    breaker = protocol.Breaker(3)
    assert not breaker.failed(timed_out=True)
    assert not breaker.failed(timed_out=False)
    breaker.answered()
    assert not breaker.failed(timed_out=True)
    assert not breaker.failed(timed_out=True)
    assert breaker.failed(timed_out=False)
    assert breaker.describe() == (
        "the last 3 attempts got no answer (2 timed out, 1 could not connect)"
    )


def test_a_repeated_header_is_reused_and_a_changed_one_checked_again() -> None:
    """The header memo never lets a wrong header through after a good one was seen."""

    def table(columns: list[dict[str, object]], row: list[object]) -> bytes:
        return json.dumps({"columns": columns, "rows": [row], "errormsg": ""}).encode()

    good = [{"col": 0, "field": "id"}, {"col": 1, "field": "statusNC"}]
    assert protocol.parse_table(table(good, [7, "Done"]), url=URL) == [
        {"ID": 7, "STATUSNC": "Done"}
    ]
    assert protocol.parse_table(table(good, [8, "Queued"]), url=URL) == [
        {"ID": 8, "STATUSNC": "Queued"}
    ]
    swapped = [{"col": 1, "field": "id"}, {"col": 0, "field": "statusNC"}]
    with pytest.raises(ResponseFormatError, match="col=1"):
        protocol.parse_table(table(swapped, [9, "Done"]), url=URL)
    nameless = [{"col": 0, "field": "id"}, {"col": 1}]
    with pytest.raises(ResponseFormatError, match="no 'field'"):
        protocol.parse_table(table(nameless, [9, "Done"]), url=URL)
    other = [{"col": 0, "field": "id"}, {"col": 1, "field": "priority"}]
    assert protocol.parse_table(table(other, [9, 4]), url=URL) == [{"ID": 9, "PRIORITY": 4}]
    # The good header again, after the refused ones: still parsed with its own names.
    assert protocol.parse_table(table(good, [7, "Done"]), url=URL) == [
        {"ID": 7, "STATUSNC": "Done"}
    ]


def test_columns_without_col_are_taken_in_list_order() -> None:
    """A header whose columns omit ``col`` is read in list order, not refused."""
    body = json.dumps(
        {"columns": [{"field": "id"}, {"field": "user"}], "rows": [[5, "ann"]], "errormsg": ""}
    ).encode()
    assert protocol.parse_table(body, url=URL) == [{"ID": 5, "USER": "ann"}]
