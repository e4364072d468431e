"""Tier 2/3: re-authentication against the simulator, counted by its own counters.

Revocations are triggered by the simulator's request counters (the run is under way), never
by a sleep; a cached token that the server no longer accepts costs exactly one 401; ``-v``
says what the client does without printing a secret.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ncinfo_async import Client, Settings
from ncinfo_async._fanout import JobResult
from ncinfo_async._protocol import Token
from ncinfo_async._tokencache import TokenCache

from .cliutil import assert_clean_exit, cli_env, run_ncinfo, start_ncinfo
from .rawservers import RawServer, job_table, response
from .simutil import until

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import SimFactory

pytestmark = pytest.mark.asyncio

#: Hang guard of one run; never a speed requirement.
HANG = 90


def settings(url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {"url": url, "user": "demo", "password": "demo"}
    base.update(changes)
    return Settings(**base)


def job_requests(sim: Simulator) -> int:
    count: int = sim.stats()["requests"]["job"]
    return count


@pytest.mark.parametrize("revocations", [2, 5])
async def test_every_revocation_during_a_run_costs_one_token_and_no_job(
    sim_factory: SimFactory, revocations: int
) -> None:
    """N revocations while 500 requests are in flight: N new tokens, every job found once."""
    jobs = 3000
    sim = await sim_factory(jobs=jobs, latency_ms=5)
    # Revoke each time the server has seen another slice of the run's job requests.
    marks = [jobs * (n + 1) // (revocations + 3) for n in range(revocations)]
    results: list[JobResult] = []
    async with (
        Client(settings(sim.url, concurrency=500)) as client,
        asyncio.timeout(HANG),
        client.stream_jobs(range(1, jobs + 1)) as stream,
    ):
        async for result in stream:
            results.append(result)
            stats = sim.stats()
            # The next revocation comes once the last one was met (its new token issued).
            settled = stats["tokens_issued"] == 1 + stats["revocations"]
            if marks and settled and stats["requests"]["job"] >= marks[0]:
                marks.pop(0)
                sim.revoke()
    assert not marks, "the run ended before every revocation"
    assert sorted(result.job_id for result in results) == list(range(1, jobs + 1))
    assert [r.error for r in results if not r.ok] == []
    stats = sim.stats()
    assert stats["revocations"] == revocations
    assert stats["tokens_issued"] == 1 + revocations
    assert client.stats.token_requests == 1 + revocations
    assert stats["unauthorized"] >= revocations


async def test_requests_waiting_for_the_rate_cap_take_the_renewed_token(
    sim_factory: SimFactory,
) -> None:
    """Under --max-rate, a revocation costs a 401 per request already sent, not per waiter.

    50 workers queue at a cap of 100 requests/s; each took the token before it waited.  A
    waiter whose turn comes after the renewal sends the new token, not the revoked one.
    """
    jobs = 300
    sim = await sim_factory(jobs=jobs)
    results: list[JobResult] = []
    async with (
        Client(settings(sim.url, concurrency=50, max_rate=100.0)) as client,
        asyncio.timeout(HANG),
        client.stream_jobs(range(1, jobs + 1)) as stream,
    ):
        async for result in stream:
            results.append(result)
            if len(results) == 100:
                sim.revoke()
    assert sorted(r.job_id for r in results) == list(range(1, jobs + 1))
    assert [r.error for r in results if not r.ok] == []
    stats = sim.stats()
    assert stats["tokens_issued"] == 2
    # Requests on the wire when the revocation landed meet it (one or two at 100/s); the
    # 49 or so waiting for the cap then must not: each would be a 401.
    assert stats["unauthorized"] <= 10, stats["unauthorized"]


async def test_cli_survives_two_revocations_a_second_apart_in_spirit(
    sim_factory: SimFactory,
) -> None:
    """The CLI at --concurrency 500 through two revocations: exit 0, no 401 kept, 3 tokens."""
    jobs = 3000
    sim = await sim_factory(jobs=jobs, latency_ms=20)
    stdin = "".join(f"{n}\n" for n in range(1, jobs + 1)).encode()
    proc = await start_ncinfo(
        "--no-batch",
        "--no-token-cache",
        "--concurrency",
        "500",
        "--format",
        "ndjson",
        env=cli_env(sim.url),
        stdin=True,
    )
    try:
        async with asyncio.timeout(HANG):
            talk = asyncio.create_task(proc.communicate(stdin))
            for mark in (jobs // 4, jobs // 2):
                # Bounded polling of the server's counter (it has no event to wait on):
                # revoke once the run is that far.
                while job_requests(sim) < mark and not talk.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                sim.revoke()
            out, err = await talk
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert proc.returncode == 0, err.decode()[-2000:]
    assert [line["id"] for line in lines] == list(range(1, jobs + 1))
    assert all(line["ok"] for line in lines)
    stats = sim.stats()
    assert stats["revocations"] == 2
    assert stats["tokens_issued"] == 3
    assert stats["unauthorized"] >= 2
    assert_clean_exit(err.decode())


def cache_env(url: str, directory: Path, **extra: str) -> dict[str, str]:
    return cli_env(url, NCINFO_CACHE_DIR=str(directory), **extra)


async def test_a_revoked_cached_token_costs_exactly_one_401(sim: Simulator, tmp_path: Path) -> None:
    """A cached token the server no longer accepts, at --concurrency 100: one 401, one token."""
    env = cache_env(sim.url, tmp_path / "cache")
    first = await run_ncinfo("--no-batch", "1", env=env)
    assert first.code == 0, first.err
    assert TokenCache(tmp_path / "cache").load(sim.url, "demo") is not None, "nothing cached"
    sim.revoke()
    before = sim.stats()
    stdin = "".join(f"{n}\n" for n in range(1, 201)).encode()
    run = await run_ncinfo(
        "--no-batch", "--concurrency", "100", "--format", "ndjson", env=env, stdin=stdin
    )
    after = sim.stats()
    assert run.code == 0, run.err
    assert all(line["ok"] for line in run.lines())
    assert after["unauthorized"] - before["unauthorized"] == 1
    assert after["tokens_issued"] - before["tokens_issued"] == 1
    # 200 jobs plus the one request the refused token admitted.
    assert after["requests"]["job"] - before["requests"]["job"] == 201
    # The new token replaced the refused one in the cache: a third run needs no token.
    third = await run_ncinfo("--no-batch", "5", env=env)
    assert third.code == 0
    assert sim.stats()["tokens_issued"] == after["tokens_issued"]
    assert sim.stats()["unauthorized"] == after["unauthorized"]


async def test_a_library_client_with_a_revoked_token_costs_one_401(sim: Simulator) -> None:
    """Client(token=...) that the server refuses: one 401 under 100 workers, then the rest."""
    async with Client(settings(sim.url)) as client:
        stale = await client.authenticate()
    sim.revoke()
    before = sim.stats()["unauthorized"]
    async with (
        Client(settings(sim.url, concurrency=100), token=stale) as client,
        asyncio.timeout(HANG),
        client.stream_jobs(range(1, 201)) as stream,
    ):
        results = [result async for result in stream]
    assert all(result.ok for result in results)
    assert sim.stats()["unauthorized"] - before == 1
    assert client.stats.token_requests == 1


async def test_verbose_logs_token_request_cached_token_and_retries_without_secrets(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """-v: the token request names the user, a cached token is announced, each retry gives
    its reason and wait; no password or token appears."""
    from ncinfo_async.sim import FaultConfig

    password = "pw-Zq81-never-printed"
    sim = await sim_factory(users={"alice": password})
    env = cache_env(sim.url, tmp_path / "cache", NC_USER="alice", NC_PASSWORD=password)
    first = await run_ncinfo("--no-batch", "-v", "1", env=env)
    assert first.code == 0, first.err
    assert f"POST {sim.url}/api/v3/token (token for user alice)" in first.err
    assert f"POST {sim.url}/api/v3/token -> 200" in first.err
    assert "cached token" not in first.err
    token = TokenCache(tmp_path / "cache").load(sim.url, "alice")
    assert token is not None
    # Every job request fails twice with a 503, then is answered.
    sim.set_faults(FaultConfig(error_rate=1.0, error_status=503))
    proc = await start_ncinfo("--no-batch", "-v", "--attempts", "8", "2", env=env)
    try:
        async with asyncio.timeout(HANG):
            assert proc.stderr is not None
            seen = await proc.stderr.readuntil(b"retry 3/8")
            sim.set_faults(FaultConfig())
            _, rest = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (seen + rest).decode()
    assert proc.returncode == 0, err
    assert "using a cached token" in err
    assert f"retry 2/8 of GET {sim.url}/api/v3/jobs/2 in " in err
    assert ": HTTP 503: injected fault" in err
    assert "token for user" not in err  # the cached token was enough
    for secret in (password, token.access_token, token.access_token.split(".")[2]):
        assert secret not in err + first.err
    assert_clean_exit(err)


def unused_listening_backlog() -> tuple[Any, Any]:
    """A loopback socket that listens but never accepts, its backlog already full.

    Linux then drops further SYNs, so a connection attempt stays pending: a real slow connect.
    """
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(server.getsockname())
    return server, filler


async def test_verbose_logs_a_connection_still_pending_after_a_second() -> None:
    """-v: a connection attempt that has not completed after 1 s is logged while it waits."""
    server, filler = unused_listening_backlog()
    try:
        port = server.getsockname()[1]
        run = await run_ncinfo(
            "--no-batch",
            "-v",
            "--no-token-cache",
            "--connect-timeout",
            "2.5",
            "--attempts",
            "1",
            "1",
            env=cli_env(f"http://127.0.0.1:{port}"),
        )
    finally:
        filler.close()
        server.close()
    assert run.code == 2, run.err
    assert f"still connecting for POST http://127.0.0.1:{port}/api/v3/token after 1 s" in run.err
    assert run.err.count("ncinfo: error:") == 1
    assert_clean_exit(run.err)


class HeldFirstJob(RawServer):
    """Holds its answer to the first job GET until ``release`` is set; answers the rest at
    once, whatever token they carry."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if self.job_requests == 1:
            await self.release.wait()
        writer.write(response(200, job_table(job_id)))
        await writer.drain()
        return True


async def test_set_token_during_a_cached_tokens_probe_releases_the_held_requests() -> None:
    """set_token while a cached token's one admitted request is in flight: the requests held
    behind that probe go on with the new token instead of waiting forever."""
    server = HeldFirstJob()
    cached = Token("Bearer", "cached.token.x", None)
    async with server as url, Client(settings(url, concurrency=4), token=cached) as client:
        async with asyncio.timeout(HANG):  # only a hang guard
            jobs = [asyncio.create_task(client.fetch_job(job_id)) for job_id in (1, 2, 3)]
            await until(lambda: server.job_requests == 1, what="the probe was not sent")
            assert not any(job.done() for job in jobs)
            client.set_token(Token("Bearer", "given.token.x", None))
            # The held requests go out with the given token while the probe is still held.
            await until(lambda: server.job_requests == 3, what="held requests still held")
            server.release.set()
            results = await asyncio.gather(*jobs)
    assert [(result.job_id, result.ok) for result in results] == [(1, True), (2, True), (3, True)]
    assert server.token_requests == 0
