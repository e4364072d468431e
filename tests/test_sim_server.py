"""Lifecycle of `Simulator`: restart on the same port, IPv6, the factory and config checks."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import aiohttp
import pytest

from ncinfo_async.sim import FaultConfig, SimConfig, Simulator

if TYPE_CHECKING:
    from .conftest import Login, SimFactory


@pytest.mark.asyncio
async def test_restart_same_instance_keeps_port_and_revokes(login: Login) -> None:
    """stop() then start() serves again on the same port, same jobs, old tokens revoked."""
    server = Simulator(SimConfig(jobs=20))
    async with server, aiohttp.ClientSession() as session:
        url, port = server.url, server.port
        headers = await login(session, url)
        async with session.get(url + "/api/v3/jobs/3/command", headers=headers) as response:
            before = await response.json()
        await server.stop()
        assert not server.running
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url + "/api/v3/jobs/3", headers=headers):
                pass
        await server.start()
        assert (server.url, server.port) == (url, port)
        async with session.get(url + "/api/v3/jobs/3", headers=headers) as response:
            assert response.status == 401
        headers = await login(session, url)
        async with session.get(url + "/api/v3/jobs/3/command", headers=headers) as response:
            assert await response.json() == before
    assert not server.running


@pytest.mark.asyncio
async def test_new_simulator_on_fixed_port_after_stop(login: Login) -> None:
    """A new Simulator binds a fixed port just released by another, despite TIME_WAIT."""
    first = Simulator(SimConfig(jobs=5))
    async with first, aiohttp.ClientSession() as session:
        await login(session, first.url)
    port = first.port
    second = Simulator(SimConfig(jobs=5, port=port))
    async with second, aiohttp.ClientSession() as session:
        assert second.port == port
        await login(session, second.url)


@pytest.mark.asyncio
async def test_start_twice_is_an_error(sim: Simulator) -> None:
    """start() on a running simulator raises instead of binding twice."""
    with pytest.raises(RuntimeError):
        await sim.start()


@pytest.mark.asyncio
async def test_port_before_start_is_an_error() -> None:
    """port and url are unknown until the first start()."""
    with pytest.raises(RuntimeError):
        _ = Simulator(SimConfig(jobs=1)).port


@pytest.mark.asyncio
async def test_ipv6_loopback(sim_factory: SimFactory, login: Login) -> None:
    """host="::1" serves on the IPv6 loopback with a bracketed URL."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = await sim_factory(host="::1", jobs=5)
    except OSError:
        pytest.skip("IPv6 loopback not available")
    assert server.url == f"http://[::1]:{server.port}"
    async with aiohttp.ClientSession() as session:
        await login(session, server.url)


@pytest.mark.asyncio
async def test_factory_as_context_manager(sim_factory: SimFactory, login: Login) -> None:
    """`async with sim_factory(...)` starts a simulator and stops it on exit."""
    async with sim_factory(jobs=3) as server:
        assert server.running
        assert server.stats()["jobs"] == 3
    assert not server.running


@pytest.mark.parametrize(
    "kwargs",
    [
        {"jobs": -1},
        {"port": 70000},
        {"users": {}},
        {"token_ttl": 0},
        {"time_scale": 0},
        {"latency_ms": -1},
        {"unknown_job": "500"},
        {"max_line_size": 10},
    ],
)
def test_bad_sim_config(kwargs: dict[str, object]) -> None:
    """SimConfig rejects out-of-range settings at construction."""
    (name,) = kwargs
    with pytest.raises(ValueError, match=name.rstrip("s")):
        SimConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"slow_rate": 2},
        {"slow_ms": -5},
        {"error_status": 404},
        {"retry_after": -1},
    ],
)
def test_bad_fault_config(kwargs: dict[str, object]) -> None:
    """FaultConfig rejects out-of-range settings at construction."""
    (name,) = kwargs
    with pytest.raises(ValueError, match=name.rstrip("s")):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_configs_are_frozen_and_keyword_only() -> None:
    """Settings are immutable, keyword-only, and copy the users mapping."""
    users = {"a": "b"}
    config = SimConfig(users=users)
    users["c"] = "d"
    assert dict(config.users) == {"a": "b"}
    with pytest.raises(AttributeError):
        config.jobs = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        FaultConfig(0.5)  # type: ignore[misc]
