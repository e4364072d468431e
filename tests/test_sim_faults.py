"""Fault injection of the simulator: errors, drops, forced closes, slow and latency."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest

from ncinfo_async.sim import FaultConfig

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import Login, SimFactory

pytestmark = pytest.mark.asyncio


async def statuses(sim: Simulator, login: Login, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        result = []
        for n in range(count):
            async with session.get(sim.url + f"/api/v3/jobs/{n + 1}", headers=headers) as resp:
                await resp.read()
                result.append(resp.status)
        return result


async def raw_get(sim: Simulator, path: str) -> bytes:
    """Send one GET on a fresh socket and return every byte until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n".encode())
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_error_rate_one_answers_error_status(
    sim_factory: SimFactory, login: Login, status: int
) -> None:
    """error_rate=1 answers every /api/v3 call with error_status and `{"error"}`, not /token."""
    server = await sim_factory(faults=FaultConfig(error_rate=1.0, error_status=status))
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        async with session.get(server.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == status
            assert (await response.json())["error"]
            assert "Retry-After" not in response.headers
    assert server.stats()["errors_injected"] == 1
    assert server.stats()["responses"] == {"200": 1, str(status): 1}


async def test_retry_after_header(sim_factory: SimFactory, login: Login) -> None:
    """retry_after is sent as a Retry-After header with injected errors."""
    faults = FaultConfig(error_rate=1.0, error_status=429, retry_after=7)
    server = await sim_factory(faults=faults)
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        async with session.get(server.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "7"


async def test_faults_come_before_auth(sim_factory: SimFactory) -> None:
    """An injected error is sent even to a request without a token (like a proxy's 502)."""
    server = await sim_factory(faults=FaultConfig(error_rate=1.0, error_status=502))
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + "/api/v3/jobs/1") as response,
    ):
        assert response.status == 502


async def test_partial_error_rate_is_seeded(sim_factory: SimFactory, login: Login) -> None:
    """error_rate=0.3 fails some requests; the same seed fails the same ones."""
    faults = FaultConfig(error_rate=0.3)
    first = await statuses(await sim_factory(seed=5, faults=faults), login, 60)
    second = await statuses(await sim_factory(seed=5, faults=faults), login, 60)
    other = await statuses(await sim_factory(seed=6, faults=faults), login, 60)
    assert first == second
    assert first != other
    assert set(first) == {200, 503}
    assert 5 <= first.count(503) <= 35


async def test_include_token_faults_the_token_route(sim_factory: SimFactory) -> None:
    """include_token=True extends injected errors to POST /api/v3/token."""
    server = await sim_factory(faults=FaultConfig(error_rate=1.0, include_token=True))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.url + "/api/v3/token", data={"username": "demo", "password": "demo"}
        ) as response,
    ):
        assert response.status == 503
    assert server.stats()["tokens_issued"] == 0


async def test_drop_rate_aborts_without_response(sim_factory: SimFactory) -> None:
    """drop_rate=1 closes the connection with no response bytes at all."""
    server = await sim_factory(faults=FaultConfig(drop_rate=1.0))
    assert await raw_get(server, "/api/v3/jobs/1") == b""
    stats = server.stats()
    assert stats["drops_injected"] == 1
    assert stats["responses"] == {}
    # The control routes are never faulted.
    assert (await raw_get(server, "/sim/stats")).startswith(b"HTTP/1.1 200")


async def test_drop_seen_by_aiohttp_client(sim_factory: SimFactory, login: Login) -> None:
    """An aiohttp client sees a drop as a disconnection error (after its one retry)."""
    server = await sim_factory(faults=FaultConfig(drop_rate=1.0))
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(server.url + "/api/v3/jobs/1", headers=headers) as response:
                await response.read()
    assert server.stats()["drops_injected"] >= 1


async def test_close_after_response_defeats_keep_alive(
    sim_factory: SimFactory, login: Login
) -> None:
    """close_after_response sends Connection: close; 100 requests need ~100 connections."""
    server = await sim_factory(faults=FaultConfig(close_after_response=True))
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        server.reset_stats()
        for n in range(100):
            async with session.get(server.url + f"/api/v3/jobs/{n + 1}", headers=headers) as resp:
                assert resp.status == 200
                assert resp.headers["Connection"] == "close"
                await resp.read()
    stats = server.stats()
    assert 99 <= stats["connections"] <= 101
    assert stats["forced_closes"] == 100


async def test_slow_rate_delays_requests(sim_factory: SimFactory, login: Login) -> None:
    """slow_rate=1 with slow_ms=300 delays every /api/v3 response by at least 0.3 s."""
    server = await sim_factory(faults=FaultConfig(slow_rate=1.0, slow_ms=300))
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        started = time.monotonic()
        async with session.get(server.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 200
        assert time.monotonic() - started >= 0.3
    assert server.stats()["slow_injected"] == 1


async def test_latency_applies_to_every_api_response(sim_factory: SimFactory, login: Login) -> None:
    """latency_ms delays /api/v3 responses, the token included, but not /sim routes."""
    server = await sim_factory(latency_ms=200)
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        headers = await login(session, server.url)
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        async with session.get(server.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 200
        assert time.monotonic() - started >= 0.2


async def test_faults_change_at_run_time(sim: Simulator, login: Login) -> None:
    """POST /sim/faults applies a partial update; set_faults() replaces the settings."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        url = sim.url + "/api/v3/jobs/1"
        async with session.post(
            sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 500}
        ) as response:
            assert response.status == 200
            body = await response.json()
        assert body["error_rate"] == 1.0
        assert body["error_status"] == 500
        assert body["drop_rate"] == 0.0
        async with session.get(url, headers=headers) as response:
            assert response.status == 500
        sim.set_faults(FaultConfig())
        async with session.get(url, headers=headers) as response:
            assert response.status == 200
        async with session.get(sim.url + "/sim/faults") as response:
            assert (await response.json()) == FaultConfig().as_dict()


@pytest.mark.parametrize(
    "update",
    [
        {"error_rate": 2},
        {"error_rate": "high"},
        {"error_status": 404},
        {"retry_after": -1},
        {"close_after_response": "yes"},
        {"no_such_knob": 1},
        [1, 2],
    ],
)
async def test_bad_fault_updates_are_400(sim: Simulator, update: object) -> None:
    """Invalid fault settings are refused with 400 and leave the faults unchanged."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.url + "/sim/faults", json=update) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]
    assert sim.stats()["faults"] == FaultConfig().as_dict()
