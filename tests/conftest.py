"""Shared fixtures (in-process simulators on real loopback sockets) and the test tiers.

Tiers (pytest markers, `pytest -m pure` etc.; see CONTRIBUTING.md): every test gets exactly
one of `pure`, `sim`, `cli`, `faults`.  A module-level `pytestmark` (or a marker on the test)
names it explicitly; otherwise it is derived here from what the test uses, so a new test file
is tiered without anyone remembering to mark it:

- `faults`: a fault-suite module (`FAULT_MODULES`) or anything from `tests/rawservers.py`;
- `cli`: anything from `tests/cliutil.py`, `subprocess` or `asyncio.create_subprocess_*`
  (a real process is started);
- `sim`: a coroutine test, the simulator fixtures, or `Simulator` itself;
- `pure`: the rest (plain functions, no socket, no process; a module of coroutines that
  open no socket says `pytestmark = pytest.mark.pure`).

"Uses" follows the names the test's code refers to, through the helper functions of its
module and the fixtures it requests.

- `sim`: an HTTP `Simulator` with 200 jobs and the default user demo:demo.
- `sim_factory`: `await sim_factory(**SimConfig overrides)` returns a started
  simulator (200 jobs unless `jobs=` is given); `async with sim_factory(...) as sim:`
  also works. Every simulator it made is stopped at teardown.
- `login`: `await login(session, url)` returns the documented `Authorization` header
  (`{"Authorization": "Bearer:<jwt>"}`) for demo:demo or the given credentials.
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
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


# -- test tiers ------------------------------------------------------------------------

TIERS = ("pure", "sim", "cli", "faults")
#: Modules of the fault suite: their tests are `faults` whatever they use.
FAULT_MODULES = frozenset({"test_faults", "test_sim_faults", "test_properties"})
_SIM_FIXTURES = frozenset({"sim", "sim_factory", "login"})
#: Names (attributes included) that start a process: `asyncio.create_subprocess_exec` etc.
_PROCESS_NAMES = frozenset({"create_subprocess_exec", "create_subprocess_shell", "Popen"})


def _code_names(code: types.CodeType) -> Iterator[str]:
    """Global names a code object and the functions nested in it refer to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _used_objects(functions: list[Callable[..., Any]]) -> tuple[list[object], set[str]]:
    """Objects and names the functions refer to, following helpers of the same module."""
    seen: set[int] = set()
    found: list[object] = []
    names: set[str] = set()
    todo = list(functions)
    while todo:
        func = inspect.unwrap(todo.pop())
        code = getattr(func, "__code__", None)
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        namespace = getattr(func, "__globals__", {})
        for name in _code_names(code):
            names.add(name)
            obj = namespace.get(name)
            if obj is None:
                continue
            found.append(obj)
            if inspect.isfunction(obj) and obj.__module__ == func.__module__:
                todo.append(obj)
    return found, names


def _origin(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return getattr(obj, "__module__", None) or ""


def derive_tier(item: pytest.Item) -> str:
    """The tier a test belongs to by what it uses (module docstring above)."""
    assert isinstance(item, pytest.Function)
    module = item.module.__name__.rpartition(".")[2] if item.module else ""
    if module in FAULT_MODULES:
        return "faults"
    functions: list[Callable[..., Any]] = [item.function]
    for name in item.fixturenames:
        definitions = item._fixtureinfo.name2fixturedefs.get(name, ())
        functions.extend(definition.func for definition in definitions)
    used, names = _used_objects(functions)
    origins = {_origin(obj).rpartition(".")[2] for obj in used}
    if "rawservers" in origins:
        return "faults"
    if "cliutil" in origins or "subprocess" in origins or _PROCESS_NAMES & names:
        return "cli"
    if (
        inspect.iscoroutinefunction(item.function)
        or item.get_closest_marker("asyncio") is not None
        or _SIM_FIXTURES & set(item.fixturenames)
        or any(getattr(obj, "__name__", "") == "Simulator" for obj in used)
    ):
        return "sim"
    return "pure"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test exactly one tier; two explicit tiers on one test is an error."""
    report: list[str] = []
    for item in items:
        explicit = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        if len(explicit) > 1:
            raise pytest.UsageError(f"{item.nodeid}: more than one tier {sorted(explicit)}")
        if not explicit:
            item.add_marker(derive_tier(item))
        tiers = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        report.append(f"{item.nodeid}\t{','.join(tiers)}")
    # Written for tests/test_tiers.py, which checks the tiers of the whole suite.
    target = os.environ.get("NCINFO_TIER_REPORT")
    if target:
        Path(target).write_text("\n".join(report) + "\n")
