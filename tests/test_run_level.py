"""Run-level failures: a server that stops answering, a certificate no request will get past,
a refused port, and token answers that are garbage or refusals.

Each is reported once per run (one ``ncinfo: error:`` line, exit 2) while every requested ID
still gets its one result.  Time bounds only catch hangs.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ncinfo_async import Client, ServerUnreachable, Settings
from ncinfo_async._protocol import Token
from ncinfo_async._tokencache import TokenCache

from .cliutil import Run, assert_clean_exit, cli_env, run_ncinfo
from .rawservers import TOKEN_BODY, Silent, TokenTrouble, response

if TYPE_CHECKING:
    from .conftest import SimFactory

pytestmark = pytest.mark.asyncio


def ids_stdin(count: int) -> bytes:
    return "".join(f"{n}\n" for n in range(1, count + 1)).encode()


def assert_one_run_error(run: Run, count: int, kind: str) -> None:
    """Exit 2, one result per ID in input order, all ``kind``; one error line, no job lines."""
    assert run.code == 2, run.err[-2000:]
    lines = run.lines()
    assert [line["id"] for line in lines] == list(range(1, count + 1))
    assert {line["error"]["kind"] for line in lines} == {kind}
    assert run.err.count("ncinfo: error:") == 1, run.err
    assert "ncinfo: job " not in run.err, run.err
    assert_clean_exit(run.err)


def cache_token(directory: Path, url: str) -> None:
    """Put a token for demo at ``url`` in the cache, as an earlier run would have."""
    TokenCache(directory).save(url, "demo", Token("Bearer", "a.b.c", 4_000_000_000.0))


# --- the breaker ------------------------------------------------------------------------------


async def test_a_silent_server_trips_the_breaker_once() -> None:
    """64 IDs, a server that accepts and never answers, --timeout 0.5: one error, exit 2,
    64 results, and no more attempts than one round of the workers."""
    server = Silent()
    async with server as url:
        run = await run_ncinfo(
            "--no-batch",
            "--no-token-cache",
            "--format",
            "ndjson",
            "--timeout",
            "0.5",
            env=cli_env(url),
            stdin=ids_stdin(64),
            limit=30,
        )
    assert_one_run_error(run, 64, "unreachable")
    assert f"the server at {url} is not answering" in run.err
    assert "the last 32 attempts got no answer (32 timed out)" in run.err
    # The default concurrency (32) is the breaker's threshold: the stop comes within about
    # one round of attempts (a few early timeouts were retried while the round finished).
    assert 32 <= server.job_requests < 64


@pytest.mark.slow
async def test_a_silent_server_with_default_timeouts_ends_within_a_minute() -> None:
    """The issue's case: 64 IDs, no --deadline, default timeouts: exit 2 with 64 results."""
    server = Silent()
    async with server as url:
        run = await run_ncinfo(
            "--no-batch",
            "--no-token-cache",
            "--format",
            "ndjson",
            env=cli_env(url),
            stdin=ids_stdin(64),
            limit=60,
        )
    assert_one_run_error(run, 64, "unreachable")


async def test_a_slow_but_healthy_server_does_not_trip_the_breaker(
    sim_factory: SimFactory,
) -> None:
    """2 s per answer under a 5 s read timeout: every job found, exit 0."""
    sim = await sim_factory(jobs=24, latency_ms=2000)
    run = await run_ncinfo(
        "--no-batch",
        "--no-token-cache",
        "--format",
        "ndjson",
        "--timeout",
        "5",
        "--concurrency",
        "8",
        env=cli_env(sim.url),
        stdin=ids_stdin(24),
        limit=60,
    )
    assert run.code == 0, run.err
    assert all(line["ok"] for line in run.lines())
    assert "ncinfo: error" not in run.err


async def test_an_answer_resets_the_breaker() -> None:
    """Timeouts interleaved with answers never add up to a stop (library, threshold 8)."""

    class Flaky(TokenTrouble):
        """Leaves every other job GET unanswered."""

        async def job(
            self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> bool:
            if job_id % 2:
                await reader.read()
                return False
            return await super().job(job_id, reader, writer)

    server = Flaky([])
    options: dict[str, Any] = {"concurrency": 1, "attempts": 1, "read_timeout": 0.2}
    async with server as url, Client(settings(url, **options)) as client:
        results = [await client.fetch_job(job_id) for job_id in range(1, 41)]
    assert client.halted is None
    assert {r.error.kind for r in results if r.error} == {"timeout"}
    assert sum(r.ok for r in results) == 20


async def test_a_halted_library_client_answers_at_once_without_the_network() -> None:
    """After the breaker trips, every result is ServerUnreachable and nothing more is sent."""
    server = Silent()
    async with server as url, Client(settings(url, concurrency=4, read_timeout=0.2)) as client:
        async with asyncio.timeout(30), client.stream_jobs(range(1, 101)) as stream:
            results = [result async for result in stream]
        sent = server.job_requests
        late = await client.fetch_job(500)
        sent_after = server.job_requests
    assert isinstance(client.halted, ServerUnreachable)
    assert sorted(r.job_id for r in results) == list(range(1, 101))
    assert {type(r.error) for r in results} == {ServerUnreachable}
    assert all(r.error is not None and r.error.run_level for r in results)
    # The threshold, max(8, concurrency), trips it; attempts already in flight at that moment
    # (at most concurrency - 1, as backoffs differ) may have been sent, then none.
    assert 8 <= sent <= 8 + 4 - 1
    assert sent_after == sent
    assert isinstance(late.error, ServerUnreachable)
    assert late.error.job_id == 500
    assert server.job_requests == sent


# --- failures every request meets, with a cached token ----------------------------------------


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_port_with_a_cached_token_is_one_error(tmp_path: Path) -> None:
    """Nothing listening, a cached token (no login to fail first): one line, 100 results."""
    url = f"http://127.0.0.1:{closed_port()}"
    cache_token(tmp_path, url)
    run = await run_ncinfo(
        "--no-batch",
        "--format",
        "ndjson",
        env=cli_env(url, NCINFO_CACHE_DIR=str(tmp_path)),
        stdin=ids_stdin(100),
        limit=60,
    )
    assert_one_run_error(run, 100, "unreachable")
    assert "could not connect" in run.err


@pytest.mark.parametrize("cached", [True, False], ids=["cached-token", "login"])
async def test_an_untrusted_certificate_is_one_error(
    sim_factory: SimFactory, tmp_path: Path, cached: bool
) -> None:
    """An HTTPS server whose CA is not trusted: one error naming both remedies, exit 2."""
    sim = await sim_factory(jobs=100, tls=True)
    if cached:
        cache_token(tmp_path, sim.url)
    run = await run_ncinfo(
        "--no-batch",
        "--format",
        "ndjson",
        env=cli_env(sim.url, NCINFO_CACHE_DIR=str(tmp_path)),
        stdin=ids_stdin(100),
        limit=60,
    )
    assert "--cacert" in run.err
    assert "--insecure" in run.err
    if cached:
        assert_one_run_error(run, 100, "certificate")
    else:
        assert run.code == 2
        assert run.err.count("ncinfo: error:") == 1
    assert sim.stats()["tls_handshakes"] == 0
    # Never retried: the one request a cached token admits, or the one login, and no more.
    assert sim.stats()["connections"] == 1


# --- token answers ------------------------------------------------------------------------


def settings(url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "url": url,
        "user": "demo",
        "password": "demo",
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
    }
    base.update(changes)
    return Settings(**base)


GARBAGE_TOKEN_ANSWERS = {
    "html": response(200, b"<html><body>Sign in</body></html>", content_type="text/html"),
    "cut": response(200, TOKEN_BODY[:20]),
    "no_token": response(200, b'{"token_type": "Bearer"}'),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE_TOKEN_ANSWERS))
async def test_a_garbage_token_answer_is_retried_and_the_run_succeeds(kind: str) -> None:
    """A 200 to POST /api/v3/token that holds no token is retried; the run then succeeds."""
    server = TokenTrouble([GARBAGE_TOKEN_ANSWERS[kind]])
    async with server as url:
        run = await run_ncinfo(
            "--no-batch",
            "--no-token-cache",
            "--format",
            "ndjson",
            "1",
            "2",
            "3",
            env=cli_env(url),
            limit=60,
        )
    assert run.code == 0, run.err
    assert [line["id"] for line in run.lines()] == [1, 2, 3]
    assert server.token_requests == 2


async def test_garbage_token_answers_give_up_after_the_attempts() -> None:
    """Only garbage to the token request: --attempts 3 sends it three times, then exit 2."""
    server = TokenTrouble([GARBAGE_TOKEN_ANSWERS["html"]] * 10)
    async with server as url:
        run = await run_ncinfo(
            "--no-batch", "--no-token-cache", "--attempts", "3", "1", env=cli_env(url), limit=60
        )
    assert run.code == 2
    assert server.token_requests == 3
    assert run.err.count("ncinfo: error:") == 1
    assert "HTML page" in run.err or "not a JSON object" in run.err


async def test_a_refused_token_request_is_final_at_once() -> None:
    """401 with an error body: one token request, the server's reason, exit 2."""
    refused = response(401, b'{"error": "invalid username or password"}')
    server = TokenTrouble([refused] * 10)
    async with server as url:
        run = await run_ncinfo("--no-batch", "--no-token-cache", "1", env=cli_env(url), limit=60)
    assert run.code == 2
    assert server.token_requests == 1
    assert "invalid username or password" in run.err


async def test_wait_ends_when_the_run_is_stopped(sim_factory: SimFactory, tmp_path: Path) -> None:
    """--wait with no --wait-timeout against an untrusted certificate: one error, exit 2,
    no endless polling."""
    sim = await sim_factory(jobs=10, tls=True)
    cache_token(tmp_path, sim.url)
    run = await run_ncinfo(
        "--no-batch",
        "--wait",
        "--poll-interval",
        "0.1",
        "--format",
        "ndjson",
        "1",
        "2",
        "3",
        env=cli_env(sim.url, NCINFO_CACHE_DIR=str(tmp_path)),
        limit=60,
    )
    assert_one_run_error(run, 3, "certificate")
