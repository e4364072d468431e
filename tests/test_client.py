"""Tier 2: the client against the in-process simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from ncinfo_async import Client, Settings, Token
from ncinfo_async._exceptions import (
    AuthError,
    CertificateError,
    DisconnectedError,
    HTTPStatusError,
    NotFoundError,
)
from ncinfo_async._fanout import JobResult
from ncinfo_async._transport import load_ca_context, tls_setting
from ncinfo_async.sim import FaultConfig, Simulator

from .simutil import FakeClock, tracing_session


def settings_for(sim: Simulator, **changes: Any) -> Settings:
    base: dict[str, Any] = {"url": sim.url, "user": "demo", "password": "demo", "concurrency": 8}
    base.update(changes)
    return Settings(**base)


async def fetch_all(client: Client, ids: Any) -> list[JobResult]:
    async with client.stream_jobs(ids) as results:
        return [result async for result in results]


@pytest.mark.asyncio
async def test_every_job_once_in_input_order(sim: Simulator) -> None:
    """200 jobs come back once each, in input order, with the simulator's fields."""
    async with Client(settings_for(sim)) as client:
        results = await fetch_all(client, range(200, 0, -1))
    assert [r.job_id for r in results] == list(range(200, 0, -1))
    assert all(r.ok for r in results)
    first = results[-1].fields
    assert first is not None
    assert first["ID"] == "000000001"
    assert first["IDINT"] == 1


@pytest.mark.asyncio
async def test_keepalive_uses_one_connection_per_worker(sim: Simulator) -> None:
    """With keep-alive, 200 requests over 8 workers open at most 8 (+1 token) connections."""
    async with Client(settings_for(sim)) as client:
        await fetch_all(client, range(1, 201))
    stats = sim.stats()
    assert stats["requests"]["job"] == 200
    assert 1 <= stats["connections"] <= 9


@pytest.mark.asyncio
async def test_no_keepalive_opens_a_connection_per_request(sim: Simulator) -> None:
    """keepalive=False really opens a new connection for every request."""
    async with Client(settings_for(sim, keepalive=False)) as client:
        await fetch_all(client, range(1, 51))
    stats = sim.stats()
    assert stats["connections"] == stats["requests_total"] == 51


@pytest.mark.asyncio
async def test_unknown_ids_are_per_job_errors(sim_factory: Any) -> None:
    """Unknown IDs are NotFoundError values beside the known jobs, in both server styles."""
    for style in ("404", "empty"):
        sim = await sim_factory(jobs=10, unknown_job=style)
        async with Client(settings_for(sim)) as client:
            results = await fetch_all(client, [1, 500, 2, 501])
        assert [r.ok for r in results] == [True, False, True, False]
        assert all(isinstance(r.error, NotFoundError) for r in results if not r.ok)


@pytest.mark.asyncio
async def test_revoked_token_under_500_concurrent_requests(sim_factory: Any) -> None:
    """500 requests meeting a revoked token cause exactly one new token request."""
    sim = await sim_factory(jobs=500)
    async with Client(settings_for(sim, concurrency=500)) as client:
        await client.authenticate()
        sim.revoke()
        results = await fetch_all(client, range(1, 501))
    stats = sim.stats()
    assert sorted(r.job_id for r in results) == list(range(1, 501))
    assert all(r.ok for r in results)
    assert stats["requests"]["token"] == 2
    assert client.stats.token_requests == 2
    assert stats["unauthorized"] >= 1


@pytest.mark.asyncio
async def test_wrong_password_is_one_auth_error(sim: Simulator) -> None:
    """A wrong password raises AuthError once, after exactly one token request."""
    async with Client(settings_for(sim, password="wrong", concurrency=50)) as client:
        with pytest.raises(AuthError, match="invalid username or password"):
            await fetch_all(client, range(1, 101))
    assert sim.stats()["requests"]["token"] == 1
    assert sim.stats()["requests"]["job"] == 0


@pytest.mark.asyncio
async def test_token_is_renewed_before_it_expires(sim_factory: Any) -> None:
    """A token about to expire is renewed ahead of its exp, so no request meets a 401."""
    clock = FakeClock()
    sim = await sim_factory(jobs=5, token_ttl=600.0)
    sim.state.tokens.clock = clock  # the server and the client share one hand-moved clock
    async with Client(settings_for(sim), clock=clock) as client:
        assert (await client.fetch_job(1)).ok
        clock.advance(599.5)  # inside the renewal margin, before exp
        assert (await client.fetch_job(2)).ok
    assert sim.stats()["unauthorized"] == 0
    assert sim.stats()["tokens_issued"] == 2


@pytest.mark.asyncio
async def test_token_is_used_until_the_renewal_margin(sim_factory: Any) -> None:
    """A token far from its exp is reused: one token request for requests hours apart."""
    clock = FakeClock()
    sim = await sim_factory(jobs=5, token_ttl=4 * 3600.0)
    sim.state.tokens.clock = clock
    async with Client(settings_for(sim), clock=clock) as client:
        assert (await client.fetch_job(1)).ok
        clock.advance(3 * 3600)
        assert (await client.fetch_job(2)).ok
    assert sim.stats()["tokens_issued"] == 1
    assert sim.stats()["unauthorized"] == 0


@pytest.mark.asyncio
async def test_https_verified_against_the_simulator_ca(sim_factory: Any, tmp_path: Path) -> None:
    """HTTPS works with the CA written by the simulator, reusing one TLS connection per worker."""
    sim = await sim_factory(jobs=50, tls=True)
    ca = sim.write_ca(tmp_path / "ca.pem")
    async with Client(settings_for(sim, cafile=str(ca), concurrency=4)) as client:
        results = await fetch_all(client, range(1, 51))
    assert all(r.ok for r in results)
    assert 1 <= sim.stats()["tls_handshakes"] <= 5


@pytest.mark.asyncio
async def test_aclose_returns_with_every_tls_socket_closed(
    sim_factory: Any, tmp_path: Path
) -> None:
    """Leaving ``async with`` closes each pooled TLS connection's socket before returning."""
    sim = await sim_factory(jobs=40, tls=True)
    ca = sim.write_ca(tmp_path / "ca.pem")
    async with Client(settings_for(sim, cafile=str(ca), concurrency=4)) as client:
        results = await fetch_all(client, range(1, 41))
        connector = client.session.connector
        assert connector is not None
        # The pool's idle connections (private, read only to check what close does to them).
        sockets = [
            proto.transport.get_extra_info("socket")
            for entries in connector._conns.values()
            for proto, _ in entries
            if proto.transport is not None
        ]
    assert all(r.ok for r in results)
    assert sockets
    # No sleep and no extra loop turn: the sockets are already closed when aclose returns.
    assert [sock.fileno() for sock in sockets] == [-1] * len(sockets)


def test_tls_setting_per_security_level() -> None:
    """http and --insecure use no context of ours; the default store is aiohttp's (True)."""
    plain = Settings(url="http://127.0.0.1:1", user="u")
    assert tls_setting(plain) is False
    assert tls_setting(Settings(url="http://127.0.0.1:1", user="u", cafile="ca.pem")) is False
    assert tls_setting(Settings(url="https://127.0.0.1:1", user="u")) is True
    assert tls_setting(Settings(url="https://127.0.0.1:1", user="u", insecure=True)) is False
    assert tls_setting(Settings(url="https://127.0.0.1:1", user="u", cafile="ca.pem")) is None


def test_ca_context_trusts_only_the_given_file(tmp_path: Path) -> None:
    """--cacert builds a context holding that file's CA alone, not the default store."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    context = load_ca_context(str(ca))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.asyncio
async def test_https_refuses_an_untrusted_certificate(sim_factory: Any) -> None:
    """By default the system store is used: the simulator's private CA is refused, once."""
    sim = await sim_factory(jobs=5, tls=True)
    async with Client(settings_for(sim)) as client:
        with pytest.raises(CertificateError, match="--cacert"):
            await client.authenticate()
    assert sim.stats()["requests"]["token"] == 0


@pytest.mark.asyncio
async def test_insecure_accepts_a_self_signed_server(sim_factory: Any) -> None:
    """insecure=True talks to a server whose certificate is not trusted."""
    sim = await sim_factory(jobs=5, tls=True)
    async with Client(settings_for(sim, insecure=True)) as client:
        assert (await client.fetch_job(3)).ok


@pytest.mark.asyncio
async def test_attempts_are_exactly_as_configured(sim: Simulator) -> None:
    """A dropped connection is retried by our loop only: 3 attempts means 3 requests."""
    async with Client(settings_for(sim, attempts=3, backoff_base=0.01)) as client:
        await client.authenticate()
        sim.reset_stats()
        sim.set_faults(FaultConfig(drop_rate=1.0))
        result = await client.fetch_job(7)
    assert isinstance(result.error, DisconnectedError)
    assert sim.stats()["requests"]["job"] == 3
    assert client.stats.retries == 2


@pytest.mark.asyncio
async def test_retry_after_is_honoured_then_gives_up(sim: Simulator) -> None:
    """A 503 with Retry-After is retried after that delay; the final error keeps the status."""
    async with Client(settings_for(sim, attempts=2)) as client:
        await client.authenticate()
        sim.set_faults(FaultConfig(error_rate=1.0, error_status=503, retry_after=1))
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await client.fetch_job(7)
        waited = loop.time() - started
    assert isinstance(result.error, HTTPStatusError)
    assert result.error.status == 503
    assert waited >= 1.0


@pytest.mark.asyncio
async def test_recovers_from_transient_errors(sim: Simulator) -> None:
    """With 30% 503s and 10% drops every job still arrives, through retries."""
    sim.set_faults(FaultConfig(error_rate=0.3, drop_rate=0.1, close_after_response=True))
    async with Client(
        settings_for(sim, attempts=10, backoff_base=0.01, backoff_cap=0.05)
    ) as client:
        results = await fetch_all(client, range(1, 201))
    assert all(r.ok for r in results)
    assert client.stats.retries > 0


@pytest.mark.asyncio
@pytest.mark.asyncio
async def test_a_given_session_is_used_and_left_open(sim: Simulator) -> None:
    """Every request of the client goes through the caller's session, which stays usable."""
    session, sent = tracing_session()
    async with session:
        async with Client(settings_for(sim), session=session) as client:
            assert (await client.fetch_job(1)).ok
            assert (await client.fetch_job(2)).ok
        assert sent == ["POST /api/v3/token", "GET /api/v3/jobs/1", "GET /api/v3/jobs/2"]
        async with session.get(sim.url + "/sim/stats") as response:  # still open and working
            assert response.status == 200
    assert sim.stats()["requests_total"] == 3


@pytest.mark.asyncio
async def test_set_token_is_used_then_renewed_when_refused(sim: Simulator) -> None:
    """A token set from outside is sent as is; when the server refuses it, one renewal follows."""
    async with Client(settings_for(sim)) as client:
        client.set_token(Token("Bearer", "not-a-valid-jwt", None))
        assert (await client.fetch_job(4)).ok
        assert client.token is not None
        assert client.token.access_token != "not-a-valid-jwt"
    assert sim.stats()["unauthorized"] == 1
    assert sim.stats()["tokens_issued"] == 1


@pytest.mark.asyncio
async def test_job_budget_counts_from_each_jobs_own_start(sim_factory: Any) -> None:
    """One worker, two 1.2 s jobs, 2 s budget: the second job is not charged the first's time."""
    sim = await sim_factory(jobs=5, latency_ms=1200)
    settings = settings_for(sim, concurrency=1, job_budget=2.0, attempts=1)
    async with Client(settings) as client:
        await client.authenticate()
        results = await fetch_all(client, [1, 2])
    assert [(r.job_id, r.ok) for r in results] == [(1, True), (2, True)]


@pytest.mark.asyncio
async def test_a_cancelled_job_is_not_reported_as_over_budget(sim_factory: Any) -> None:
    """Cancelling fetch_job from outside propagates; only the budget's own expiry is a result."""
    sim = await sim_factory(jobs=5, latency_ms=60_000)
    async with Client(settings_for(sim, job_budget=30.0)) as client:
        task = asyncio.create_task(client.fetch_job(1))
        await asyncio.sleep(0)  # let the task start its request
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
