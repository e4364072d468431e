"""Tier 1: the client's decisions as a socket-free matrix (aioresponses-ng).

Status x attempt x token generation, ``Retry-After``, garbage bodies and connection errors:
what the client sends next and what each job's result is.  Only decisions are tested here;
pooling, TLS, keep-alive and real faults are tested over real sockets elsewhere.
"""

from __future__ import annotations

import ssl
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from ncinfo_async import AuthError, Client, Settings
from ncinfo_async._protocol import breaker_threshold

from .rawservers import job_table

pytestmark = pytest.mark.asyncio

BASE = "http://127.0.0.1:9"
TOKEN = BASE + "/api/v3/token"
GOOD_TOKEN: dict[str, Any] = {"token_type": "Bearer", "access_token": "a.b.c"}


def job_url(job_id: int) -> str:
    return f"{BASE}/api/v3/jobs/{job_id}"


def settings(**changes: Any) -> Settings:
    base: dict[str, Any] = {
        "url": BASE,
        "user": "demo",
        "password": "demo",
        "attempts": 3,
        "backoff_base": 0.0,  # no waiting: only the decisions matter here
        "concurrency": 1,
    }
    base.update(changes)
    return Settings(**base)


def sent(mock: aioresponses, method: str, url: str) -> int:
    return len(mock.requests.get((method, URL(url)), []))


def answer(mock: aioresponses, url: str, status: int, **kwargs: Any) -> None:
    body = job_table(1) if status == 200 else b'{"error": "nope"}'
    mock.get(url, status=status, body=kwargs.pop("body", body), **kwargs)


@pytest.mark.parametrize("login", [False, True], ids=["token-on-demand", "logged-in"])
@pytest.mark.parametrize("attempts", [1, 2, 3])
@pytest.mark.parametrize(
    ("status", "retried", "kind"),
    [
        (200, False, "ok"),
        (400, False, "http_status"),
        (403, False, "http_status"),
        (404, False, "not_found"),
        (429, True, "http_status"),
        (500, True, "http_status"),
        (502, True, "http_status"),
        (503, True, "http_status"),
        (504, True, "http_status"),
    ],
)
async def test_status_by_attempts(
    status: int, retried: bool, kind: str, attempts: int, login: bool
) -> None:
    """Each status is sent once or retried up to --attempts; the result names the outcome.

    Logged in first, the first attempt takes the short path and hands a retryable status
    over to the retry loop: the attempt it made still counts.
    """
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        for _ in range(attempts + 1):
            answer(mock, job_url(1), status)
        async with Client(settings(attempts=attempts)) as client:
            if login:
                await client.authenticate()
            result = await client.fetch_job(1)
        assert sent(mock, "GET", job_url(1)) == (attempts if retried else 1)
    assert (result.error.kind if result.error else "ok") == kind
    if result.error is not None and kind == "http_status":
        assert result.error.status == status


@pytest.mark.parametrize(
    ("failures", "attempts", "ok"), [(1, 2, True), (2, 3, True), (2, 2, False)]
)
async def test_a_retryable_status_then_an_answer(failures: int, attempts: int, ok: bool) -> None:
    """503s then a 200: found if the 200 comes within the attempts, else the 503 is final."""
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        for _ in range(failures):
            answer(mock, job_url(1), 503)
        answer(mock, job_url(1), 200)
        async with Client(settings(attempts=attempts)) as client:
            result = await client.fetch_job(1)
    assert result.ok is ok


@pytest.mark.parametrize("login", [False, True], ids=["token-on-demand", "logged-in"])
@pytest.mark.parametrize(
    ("rejections", "attempts", "ok", "tokens"),
    [
        (1, 3, True, 2),  # one revocation: one new token, one resend
        (2, 3, True, 3),  # two revocations in a row: a new token each time
        # Still 401 after the attempts: final, and the token is renewed for later requests.
        (3, 3, False, 4),
        (1, 1, False, 2),  # --attempts 1 leaves no resend, but the next request is served
    ],
)
async def test_401_by_token_generation(
    rejections: int, attempts: int, ok: bool, tokens: int, login: bool
) -> None:
    """A 401 is resent with a newer token within the attempts; each 401 on the newest
    token costs exactly one token request.  Logged in first, the 401 meets the short first
    attempt, which hands over to the renewal as its first send."""
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN, repeat=True)
        for _ in range(rejections):
            answer(mock, job_url(1), 401)
        answer(mock, job_url(1), 200)
        answer(mock, job_url(2), 200, body=job_table(2))
        async with Client(settings(attempts=attempts)) as client:
            if login:
                await client.authenticate()
            result = await client.fetch_job(1)
            # The next request uses the newest token at once.
            assert (await client.fetch_job(2)).ok
        assert sent(mock, "POST", TOKEN) == tokens
        assert client.stats.reauthentications == min(rejections, attempts - 1)
    assert result.ok is ok
    if not ok:
        assert result.error is not None
        assert result.error.status == 401


async def test_a_401_with_a_refused_renewal_is_an_auth_error() -> None:
    """A 401, then the token request refused: AuthError, raised for the run, one POST each."""
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        mock.post(TOKEN, status=401, payload={"error": "invalid username or password"})
        answer(mock, job_url(1), 401)
        async with Client(settings()) as client:
            with pytest.raises(AuthError, match="invalid username or password"):
                await client.fetch_job(1)
        assert sent(mock, "POST", TOKEN) == 2


@pytest.mark.parametrize(
    ("retry_after", "budget", "gets"),
    [
        ("0", 120.0, 2),  # asked to come back at once: retried
        ("1000", 120.0, 1),  # capped at 300 s, still past the 120 s job budget: given up
        ("Wed, 21 Oct 2015 07:28:00 GMT", 120.0, 2),  # a date in the past: no wait
    ],
)
async def test_retry_after_against_the_job_budget(
    retry_after: str, budget: float, gets: int
) -> None:
    """Retry-After replaces the backoff; a wait past the job budget ends the job at once."""
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        answer(mock, job_url(1), 503, headers={"Retry-After": retry_after})
        answer(mock, job_url(1), 200)
        async with Client(settings(job_budget=budget)) as client:
            result = await client.fetch_job(1)
        assert sent(mock, "GET", job_url(1)) == gets
    assert result.ok is (gets == 2)


@pytest.mark.parametrize(
    "body",
    [b"<!DOCTYPE html><html>Login</html>", b'{"columns": [', b'{"rows": []}', b"", b"[1, 2]"],
    ids=["html", "cut", "no-columns", "empty", "array"],
)
async def test_a_garbage_job_body_is_a_bad_response_sent_once(body: bytes) -> None:
    """A 200 whose body is not the documented table: one GET, `bad_response`."""
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        answer(mock, job_url(1), 200, body=body)
        async with Client(settings()) as client:
            result = await client.fetch_job(1)
        assert sent(mock, "GET", job_url(1)) == 1
    assert result.error is not None
    assert result.error.kind == "bad_response"


@pytest.mark.parametrize(
    ("garbage", "attempts", "ok"),
    [(1, 3, True), (2, 3, True), (3, 3, False)],
)
async def test_garbage_token_answers_are_retried_within_the_attempts(
    garbage: int, attempts: int, ok: bool
) -> None:
    """200s to the token request that hold no token are retried; after the attempts, AuthError."""
    with aioresponses() as mock:
        for _ in range(garbage):
            mock.post(TOKEN, status=200, body=b"<html>proxy login</html>")
        mock.post(TOKEN, payload=GOOD_TOKEN)
        answer(mock, job_url(1), 200)
        async with Client(settings(attempts=attempts)) as client:
            if ok:
                assert (await client.fetch_job(1)).ok
            else:
                with pytest.raises(AuthError, match="not a JSON object"):
                    await client.authenticate()
        assert sent(mock, "POST", TOKEN) == min(garbage + 1, attempts)


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_token_request_is_final_at_once(status: int) -> None:
    """401/403 with an error body to the token request: one POST, AuthError with the reason."""
    with aioresponses() as mock:
        mock.post(TOKEN, status=status, payload={"error": "no such user"}, repeat=True)
        async with Client(settings()) as client:
            with pytest.raises(AuthError, match="no such user"):
                await client.authenticate()
        assert sent(mock, "POST", TOKEN) == 1


def connector_key() -> SimpleNamespace:
    return SimpleNamespace(host="127.0.0.1", port=9, ssl=True, is_ssl=False)


CONNECT_ERRORS = {
    "refused": lambda: aiohttp.ClientConnectorError(
        connector_key(), ConnectionRefusedError(111, "Connect call failed")
    ),
    "dns": lambda: aiohttp.ClientConnectorDNSError(
        connector_key(), OSError(-2, "Name or service not known")
    ),
}


@pytest.mark.parametrize("cause", sorted(CONNECT_ERRORS))
async def test_connect_failures_are_retried_then_trip_the_breaker(cause: str) -> None:
    """Refused or unresolvable: retried per job, and after max(8, concurrency) attempts in a
    row the client stops the run with one ServerUnreachable and sends nothing more."""
    make = CONNECT_ERRORS[cause]
    threshold = breaker_threshold(1)
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        for job_id in range(1, 11):
            for _ in range(3):
                mock.get(job_url(job_id), exception=make())
        async with Client(settings(attempts=3)) as client:
            results = [await client.fetch_job(job_id) for job_id in range(1, 11)]
        gets = sum(sent(mock, "GET", job_url(job_id)) for job_id in range(1, 11))
    assert gets == threshold
    # Jobs 1 and 2 used up their 3 attempts; job 3's second attempt was the 8th in a row.
    assert [r.error.kind for r in results if r.error] == ["connect"] * 2 + ["unreachable"] * 8
    assert client.halted is not None
    assert "the last 8 attempts got no answer (8 could not connect)" in str(client.halted)


async def test_an_answer_between_connect_failures_resets_the_breaker() -> None:
    """Seven failures, an answer, seven failures: no stop."""
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        for job_id, outcome in enumerate(["fail"] * 7 + ["ok"] + ["fail"] * 7, start=1):
            if outcome == "ok":
                answer(mock, job_url(job_id), 200, body=job_table(job_id))
            else:
                mock.get(job_url(job_id), exception=CONNECT_ERRORS["refused"]())
        async with Client(settings(attempts=1)) as client:
            results = [await client.fetch_job(job_id) for job_id in range(1, 16)]
    assert client.halted is None
    assert sum(result.ok for result in results) == 1


async def test_an_untrusted_certificate_stops_the_run_at_the_first_attempt() -> None:
    """A certificate error is never retried and stops the run: later jobs are not sent."""
    error = aiohttp.ClientConnectorCertificateError(
        connector_key(), ssl.SSLCertVerificationError("certificate verify failed")
    )
    with aioresponses() as mock:
        mock.post(TOKEN, payload=GOOD_TOKEN)
        mock.get(job_url(1), exception=error)
        async with Client(settings()) as client:
            first = await client.fetch_job(1)
            second = await client.fetch_job(2)
        assert sent(mock, "GET", job_url(1)) == 1
        assert sent(mock, "GET", job_url(2)) == 0
    for result in (first, second):
        assert result.error is not None
        assert result.error.kind == "certificate"
        assert result.error.run_level
    assert second.error is not None
    assert second.error.job_id == 2
