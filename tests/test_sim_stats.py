"""The simulator's counters at GET /sim/stats and their reset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

from ncinfo_async.sim import ROUTES

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import Login

pytestmark = pytest.mark.asyncio


async def test_keep_alive_session_counts_one_connection(sim: Simulator, login: Login) -> None:
    """One keep-alive aiohttp session making 100 requests counts 1 connection."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        for n in range(100):
            async with session.get(sim.url + f"/api/v3/jobs/{n + 1}", headers=headers) as resp:
                assert resp.status == 200
                await resp.read()
    stats = sim.stats()
    assert stats["connections"] == 1
    assert stats["tls_handshakes"] == 0
    assert stats["requests"]["job"] == 100
    assert stats["requests"]["token"] == 1
    assert stats["requests_total"] == 101
    assert stats["tokens_issued"] == 1


async def test_separate_sessions_count_separate_connections(sim: Simulator) -> None:
    """Each new session opens (and counts) its own connection."""
    for _ in range(3):
        async with aiohttp.ClientSession() as session, session.get(sim.url + "/sim/stats") as r:
            assert r.status == 200
    assert sim.stats()["connections"] == 3


async def test_stats_endpoint_matches_method_and_counts_routes(
    sim: Simulator, login: Login
) -> None:
    """GET /sim/stats has every documented key and per-route counts, 401s included."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        paths = [
            "/api/v3/jobs/1",
            "/api/v3/jobs/1/status",
            "/api/v3/query?from=jobs&where=idint==1",
            "/api/v3/project/1/project",
            "/api/v3/project/1/version",
            "/api/v3/elsewhere",
        ]
        for path in paths:
            async with session.get(sim.url + path, headers=headers) as response:
                await response.read()
        async with session.get(sim.url + "/api/v3/jobs/2") as response:
            assert response.status == 401
        async with session.get(sim.url + "/sim/stats") as response:
            body = await response.json()
    assert body == sim.stats() | {"sim_time": body["sim_time"]}
    assert set(body["requests"]) == set(ROUTES)
    assert body["requests"] == {
        "token": 1,
        "job": 2,
        "job_field": 1,
        "query": 1,
        "project": 1,
        "version": 1,
        "unmatched": 1,
    }
    assert body["unauthorized"] == 1
    assert body["responses"] == {"200": 6, "401": 1, "404": 1}
    for key in ("connections", "tls_handshakes", "errors_injected", "drops_injected", "jobs"):
        assert isinstance(body[key], int), key
    assert body["jobs"] == 200


async def test_reset_stats(sim: Simulator, login: Login) -> None:
    """POST /sim/reset-stats and Simulator.reset_stats() zero every counter."""
    async with aiohttp.ClientSession() as session:
        await login(session, sim.url)
        assert sim.stats()["tokens_issued"] == 1
        async with session.post(sim.url + "/sim/reset-stats") as response:
            assert response.status == 200
        stats = sim.stats()
        assert stats["tokens_issued"] == 0
        assert stats["connections"] == 0
        assert set(stats["requests"].values()) == {0}
        await login(session, sim.url)
    sim.reset_stats()
    assert sim.stats()["requests"]["token"] == 0
