"""Shared fixtures: in-process simulators on real loopback sockets.

- `sim`: an HTTP `Simulator` with 200 jobs and the default user demo:demo.
- `sim_factory`: `await sim_factory(**SimConfig overrides)` returns a started
  simulator (200 jobs unless `jobs=` is given); `async with sim_factory(...) as sim:`
  also works. Every simulator it made is stopped at teardown.
- `login`: `await login(session, url)` returns the documented `Authorization` header
  (`{"Authorization": "Bearer:<jwt>"}`) for demo:demo or the given credentials.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from ncinfo_async.sim import SimConfig, Simulator

if TYPE_CHECKING:
    import aiohttp

Login = Callable[..., Awaitable[dict[str, str]]]


class _PendingSim:
    """What `sim_factory(...)` returns: await it, or use it as an async context manager."""

    def __init__(self, made: list[Simulator], overrides: dict[str, Any]) -> None:
        overrides.setdefault("jobs", 200)
        self._sim = Simulator(SimConfig(**overrides))
        made.append(self._sim)

    async def _start(self) -> Simulator:
        if not self._sim.running:
            await self._sim.start()
        return self._sim

    def __await__(self) -> Generator[Any, None, Simulator]:
        return self._start().__await__()

    async def __aenter__(self) -> Simulator:
        return await self._start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._sim.stop()


class SimFactory:
    """Builds simulators from `SimConfig` keyword overrides and remembers them."""

    def __init__(self) -> None:
        self.made: list[Simulator] = []

    def __call__(self, **overrides: Any) -> _PendingSim:
        return _PendingSim(self.made, overrides)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    """An HTTP simulator with 200 jobs and the default user demo:demo."""
    async with Simulator(SimConfig(jobs=200)) as server:
        yield server


@pytest_asyncio.fixture
async def sim_factory() -> AsyncIterator[SimFactory]:
    """A factory of simulators, all stopped at teardown."""
    factory = SimFactory()
    try:
        yield factory
    finally:
        for server in factory.made:
            await server.stop()


async def _login(
    session: aiohttp.ClientSession,
    url: str,
    user: str = "demo",
    password: str = "demo",
    **request_kwargs: Any,
) -> dict[str, str]:
    form = {"username": user, "password": password}
    async with session.post(url + "/api/v3/token", data=form, **request_kwargs) as response:
        assert response.status == 200, await response.text()
        token = await response.json()
    return {"Authorization": f"{token['token_type']}:{token['access_token']}"}


@pytest.fixture
def login() -> Login:
    """`await login(session, url[, user, password])` -> the documented auth header."""
    return _login


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's NC_* variables or shares a token cache with another."""
    for name in [name for name in os.environ if name.startswith(("NC_", "NCINFO_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NCINFO_CACHE_DIR", str(tmp_path_factory.mktemp("token-cache")))
