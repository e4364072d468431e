"""Fault injection: every requested ID gets exactly one result, whatever the server does.

Misbehaving raw-socket servers (``rawservers.py``), the simulator's fault knobs, a server
restart and a token revocation mid-run, deadlines, per-attempt timeouts and signals.  Time
bounds here only catch hangs; no test asserts speed.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest

from ncinfo_async import Client, Settings
from ncinfo_async._fanout import JobResult
from ncinfo_async.sim import FaultConfig

from .cliutil import assert_clean_exit, cli_env, run_ncinfo, start_ncinfo
from .rawservers import (
    BAD_BODIES,
    HUGE,
    BadBody,
    Garbage,
    HalfBody,
    KeepAliveCloser,
    Silent,
)

if TYPE_CHECKING:
    from .conftest import SimFactory

pytestmark = pytest.mark.asyncio

#: Hang guard of one library run; generous, never a speed requirement.
HANG = 60


# --- helpers ----------------------------------------------------------------------------------


def settings(url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "url": url,
        "user": "demo",
        "password": "demo",
        "concurrency": 4,
        "attempts": 3,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
    }
    base.update(changes)
    return Settings(**base)


async def fetch_all(client: Client, ids: Iterable[int]) -> list[JobResult]:
    async with asyncio.timeout(HANG), client.stream_jobs(ids) as results:
        return [result async for result in results]


def exactly_once(results: list[JobResult], requested: Iterable[int]) -> dict[int, JobResult]:
    """Assert one result per distinct requested ID, none extra; return them by ID."""
    ids = [result.job_id for result in results]
    assert len(ids) == len(set(ids)), "an ID was reported twice"
    assert set(ids) == set(requested), "an ID is missing or was never requested"
    for result in results:
        assert (result.fields is None) != (result.error is None), "a result is both or neither"
    return {result.job_id: result for result in results}


def kinds(results: Iterable[JobResult]) -> set[str]:
    return {result.error.kind if result.error else "ok" for result in results}


def ids_stdin(ids: Iterable[int]) -> bytes:
    return "".join(f"{job_id}\n" for job_id in ids).encode()


# --- raw servers: broken answers ------------------------------------------------------------


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "close"])
async def test_half_body_is_a_retried_disconnect(reset: bool) -> None:
    """Half a body then RST/FIN: each ID once as `disconnected`, after exactly `attempts` GETs."""
    server = HalfBody(reset=reset)
    requested = [1, 2, 3, 2, 4, 1, 5]
    async with server as url, Client(settings(url, attempts=3)) as client:
        results = await fetch_all(client, requested)
    exactly_once(results, requested)
    assert kinds(results) == {"disconnected"}
    assert server.job_requests == 3 * 5


async def test_garbage_bytes_are_a_bad_response_not_retried() -> None:
    """Bytes that are not HTTP: each ID once as `bad_response`, sent once (retrying can't help)."""
    server = Garbage()
    requested = range(1, 9)
    async with server as url, Client(settings(url, attempts=5)) as client:
        results = await fetch_all(client, requested)
    exactly_once(results, requested)
    assert kinds(results) == {"bad_response"}
    assert server.job_requests == 8


BAD_BODY_MESSAGES = {
    "html": "HTML page",
    "truncated_json": "expected a JSON table",
    "no_columns": "'columns'",
    "other_id": "the answer is for job",
    "huge": "exceeds",
    "huge_chunked": "exceeds",
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
async def test_bad_200_bodies_are_precise_bad_responses(kind: str) -> None:
    """A 200 with a wrong body (HTML, cut JSON, no columns, other job, > max_body): bad_response.

    One worker over a keep-alive connection, so a body left unread would corrupt the next answer.
    """
    server = BadBody(kind)
    requested = [3, 1, 4, 1, 5, 9, 2, 6]
    async with server as url, Client(settings(url, concurrency=1, max_body=HUGE // 2)) as client:
        results = await fetch_all(client, requested)
    by_id = exactly_once(results, requested)
    assert kinds(results) == {"bad_response"}
    for job_id, result in by_id.items():
        assert result.error is not None
        assert result.error.job_id == job_id
        assert BAD_BODY_MESSAGES[kind] in result.error.message
    assert server.job_requests == 7  # not retried: the same server would answer the same


@pytest.mark.parametrize("on_reuse", [False, True], ids=["after-response", "on-reuse"])
async def test_silent_keepalive_close_is_retried_to_success(on_reuse: bool) -> None:
    """A server closing keep-alive connections without `Connection: close`: every job found."""
    server = KeepAliveCloser(on_reuse=on_reuse)
    requested = range(1, 41)
    async with server as url, Client(settings(url, concurrency=2, attempts=8)) as client:
        results = await fetch_all(client, requested)
    exactly_once(results, requested)
    assert kinds(results) == {"ok"}
    if on_reuse:
        assert server.dropped > 0
        assert client.stats.retries >= server.dropped


async def test_silent_keepalive_close_with_one_attempt_still_reports_each_id() -> None:
    """attempts=1: a stale pooled connection may fail a job, but as one `disconnected` result."""
    server = KeepAliveCloser(on_reuse=True)
    requested = range(1, 21)
    async with server as url, Client(settings(url, concurrency=1, attempts=1)) as client:
        results = await fetch_all(client, requested)
    exactly_once(results, requested)
    assert kinds(results) <= {"ok", "disconnected"}
    assert "ok" in kinds(results)


async def test_job_budget_bounds_a_server_that_never_answers() -> None:
    """A silent server with a 30 s read timeout: the 1 s job budget ends each job as `timeout`."""
    server = Silent()
    requested = [1, 2, 3]
    async with server as url, Client(settings(url, job_budget=1.0, read_timeout=30)) as client:
        results = await fetch_all(client, requested)
    by_id = exactly_once(results, requested)
    assert kinds(results) == {"timeout"}
    assert all("job budget" in r.error.message for r in by_id.values() if r.error)


# --- raw servers: the CLI's bounds ----------------------------------------------------------


async def test_cli_deadline_against_a_silent_server() -> None:
    """`--deadline 2` with no answers: ends, every ID once as `deadline` in input order, exit 1."""
    async with Silent() as url:
        run = await run_ncinfo(
            "--format",
            "ndjson",
            "--deadline",
            "2",
            "--concurrency",
            "8",
            env=cli_env(url),
            stdin=ids_stdin([*range(1, 101), 7, 50]),
            limit=30,
        )
    assert run.code == 1, run.err
    lines = run.lines()
    assert [line["id"] for line in lines] == list(range(1, 101))
    assert {line["error"]["kind"] for line in lines} == {"deadline"}
    assert not any(line["ok"] for line in lines)
    assert_clean_exit(run.err)


async def test_cli_read_timeout_per_attempt_without_deadline() -> None:
    """`--timeout 0.5 --attempts 2` with no answers: each ID once as `timeout`, 2 GETs each."""
    server = Silent()
    async with server as url:
        run = await run_ncinfo(
            "--no-batch",
            "--format",
            "ndjson",
            "--timeout",
            "0.5",
            "--attempts",
            "2",
            *map(str, range(1, 11)),
            env=cli_env(url),
            limit=30,
        )
    assert run.code == 1, run.err
    lines = run.lines()
    assert [line["id"] for line in lines] == list(range(1, 11))
    assert {line["error"]["kind"] for line in lines} == {"timeout"}
    assert server.job_requests == 20
    assert_clean_exit(run.err)


async def test_cli_deadline_covers_a_hanging_token_request() -> None:
    """`--deadline 2` when the token POST never answers: exit 2, each ID once as `deadline`."""
    async with Silent(token_too=True) as url:
        try:
            run = await run_ncinfo(
                "--format", "ndjson", "--deadline", "2", "1", "2", "3", env=cli_env(url), limit=15
            )
        except TimeoutError:
            pytest.fail("ncinfo --deadline 2 was still running after 15 s (killed)")
    assert run.code == 2, run.err
    lines = run.lines()
    assert [line["id"] for line in lines] == [1, 2, 3]
    assert {line["error"]["kind"] for line in lines} == {"deadline"}
    # The deadline named is the one the user gave, not what was left of it.
    assert "within the 2 s deadline" in run.err
    assert_clean_exit(run.err)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
async def test_cli_signal_during_authentication_exits_cleanly(
    signum: signal.Signals, code: int
) -> None:
    """A signal while the token request hangs: every ID `interrupted` once, status, no traceback."""
    server = Silent(token_too=True)
    async with server as url:
        proc = await start_ncinfo("--format", "ndjson", "1", "2", "3", env=cli_env(url))
        try:
            async with asyncio.timeout(30):
                await server.token_requested.wait()
                proc.send_signal(signum)
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == code, err.decode()[-2000:]
    assert_clean_exit(err.decode())
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3]
    assert all(line["error"]["kind"] == "interrupted" for line in lines)


# --- simulator knobs --------------------------------------------------------------------------


@pytest.mark.slow
async def test_cli_3000_ids_through_503s_drops_and_forced_closes(sim_factory: SimFactory) -> None:
    """Acceptance: 10% 503 + 5% drops + close-after-response, 3,000 IDs: all 3,000 once, exit 0."""
    faults = FaultConfig(
        error_rate=0.10, error_status=503, drop_rate=0.05, close_after_response=True
    )
    sim = await sim_factory(jobs=3000, faults=faults)
    run = await run_ncinfo(
        "--no-batch", "--format", "ndjson", env=cli_env(sim.url),
        stdin=ids_stdin(range(1, 3001)), limit=150,
    )  # fmt: skip
    assert run.code == 0, run.err[-2000:]
    lines = run.lines()
    assert len(lines) == 3000
    assert [line["id"] for line in lines] == list(range(1, 3001))
    assert all(line["ok"] for line in lines)
    assert {int(line["fields"]["IDINT"]) for line in lines} == set(range(1, 3001))
    stats = sim.stats()
    assert stats["errors_injected"] > 0
    assert stats["drops_injected"] > 0
    assert stats["forced_closes"] > 0
    assert_clean_exit(run.err)


async def test_429_retry_after_is_honoured_and_every_job_found(sim_factory: SimFactory) -> None:
    """25% 429 with Retry-After: 1 and zero backoff: every job found, each 429 retried once."""
    faults = FaultConfig(error_rate=0.25, error_status=429, retry_after=1)
    sim = await sim_factory(jobs=40, faults=faults)
    requested = range(1, 41)
    async with Client(settings(sim.url, concurrency=10, attempts=10, backoff_base=0.0)) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await fetch_all(client, requested)
        elapsed = loop.time() - started
    exactly_once(results, requested)
    assert kinds(results) == {"ok"}
    injected = sim.stats()["errors_injected"]
    assert injected > 0
    assert client.stats.retries == injected
    # Backoff is zero, so only the server's Retry-After can account for this wait.
    assert elapsed >= 0.9


async def test_429_on_every_attempt_is_an_http_status_error(sim_factory: SimFactory) -> None:
    """429 on every try: each ID once as `http_status` 429, after exactly `attempts` GETs."""
    sim = await sim_factory(
        jobs=20, faults=FaultConfig(error_rate=1.0, error_status=429, retry_after=0)
    )
    requested = [*range(1, 11), 3, 3]
    async with Client(settings(sim.url, attempts=3)) as client:
        results = await fetch_all(client, requested)
    by_id = exactly_once(results, requested)
    assert kinds(results) == {"http_status"}
    assert {r.error.status for r in by_id.values() if r.error} == {429}
    assert sim.stats()["requests"]["job"] == 3 * 10


async def test_slow_responses_time_out_and_are_retried(sim_factory: SimFactory) -> None:
    """20% of answers 2 s late with a 0.5 s read timeout: slow tries are retried, all found."""
    faults = FaultConfig(slow_rate=0.2, slow_ms=2000)
    sim = await sim_factory(jobs=60, faults=faults)
    requested = range(1, 61)
    async with Client(settings(sim.url, concurrency=10, attempts=10, read_timeout=0.5)) as client:
        results = await fetch_all(client, requested)
    exactly_once(results, requested)
    assert kinds(results) == {"ok"}
    slow = sim.stats()["slow_injected"]
    assert slow > 0
    assert client.stats.retries >= slow  # each late answer cost one timed-out try


async def test_restart_on_the_same_port_mid_run(sim_factory: SimFactory) -> None:
    """The server restarts mid-run (new signing key): one re-authentication, every job found."""
    first = await sim_factory(jobs=600)
    second = None
    requested = range(1, 601)
    results: list[JobResult] = []
    options = settings(first.url, concurrency=8, attempts=8, backoff_base=0.05)
    async with (
        Client(options) as client,
        asyncio.timeout(HANG),
        client.stream_jobs(requested) as stream,
    ):
        async for result in stream:
            results.append(result)
            if len(results) == 100:
                await first.stop()
                second = await sim_factory(jobs=600, port=first.port)
    assert second is not None
    exactly_once(results, requested)
    assert kinds(results) == {"ok"}
    assert client.stats.token_requests == 2
    assert second.stats()["tokens_issued"] == 1
    assert second.stats()["unauthorized"] >= 1
    assert first.stats()["requests"]["job"] + second.stats()["requests"]["job"] >= 600


async def test_revoke_mid_run_under_500_concurrent_requests(sim_factory: SimFactory) -> None:
    """A token revoked mid-run with 500 requests in flight: one new token, every job once."""
    sim = await sim_factory(jobs=2000)
    requested = range(1, 2001)
    results: list[JobResult] = []
    async with (
        Client(settings(sim.url, concurrency=500)) as client,
        asyncio.timeout(HANG),
        client.stream_jobs(requested) as stream,
    ):
        async for result in stream:
            results.append(result)
            if len(results) == 300:
                sim.revoke()
    exactly_once(results, requested)
    assert kinds(results) == {"ok"}
    stats = sim.stats()
    assert stats["unauthorized"] >= 1
    assert stats["tokens_issued"] == 2
    assert client.stats.token_requests == 2


async def test_sigint_mid_run_reports_what_was_read_and_exits_130(
    sim_factory: SimFactory,
) -> None:
    """SIGINT mid-run: exit 130; the IDs read so far each once (a prefix), the rest interrupted."""
    sim = await sim_factory(jobs=400, latency_ms=50)
    proc = await start_ncinfo(
        "--no-batch",
        "--format",
        "ndjson",
        "--concurrency",
        "4",
        *map(str, range(1, 401)),
        env=cli_env(sim.url),
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            first = await proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            rest, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in (first + rest).decode().splitlines()]
    ids = [line["id"] for line in lines]
    assert proc.returncode == 130, err.decode()[-2000:]
    assert ids == list(range(1, len(ids) + 1)), "input order with no gap and no repeat"
    assert len(ids) < 400
    interrupted = [line for line in lines if not line["ok"]]
    assert interrupted
    assert {line["error"]["kind"] for line in interrupted} == {"interrupted"}
    assert "SIGINT" in err.decode()
    assert_clean_exit(err.decode())
