"""The simulator's models of unknowns and load: --id-lists, --capacity and the load stats."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import pytest

from ncinfo_async.sim._cli import build_parser, config_from_args
from ncinfo_async.sim._stats import SimStats

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import Login, SimFactory


async def query_ids(sim: Simulator, login: Login, where: str, limit: str = "") -> list[int]:
    """IDINT of every row `/api/v3/query` returns for `where`."""
    params = {"select": "idint", "from": "jobs", "where": where}
    if limit:
        params["limit"] = limit
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        url = sim.url + "/api/v3/query?" + urlencode(params)
        async with session.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
    return [row[0] for row in body["rows"]]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("id_lists", "expected"),
    [("all", [3, 5, 7]), ("first", [7]), ("ignore", [1, 2, 3])],
)
async def test_id_lists_modes_read_an_idint_list_their_way(
    sim_factory: SimFactory, login: Login, id_lists: str, expected: list[int]
) -> None:
    """all: every listed ID; first: only the first value; ignore: every job up to the limit."""
    sim = await sim_factory(jobs=50, id_lists=id_lists)
    assert await query_ids(sim, login, "idint==7,3,5", limit="3") == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("id_lists", ["first", "ignore"])
async def test_id_lists_modes_leave_other_rules_alone(
    sim_factory: SimFactory, login: Login, id_lists: str
) -> None:
    """A single-value idint rule and rules on other fields work in every mode."""
    sim = await sim_factory(jobs=50, id_lists=id_lists)
    assert await query_ids(sim, login, "idint==9") == [9]
    assert await query_ids(sim, login, "idint<4") == [1, 2, 3]


@pytest.mark.asyncio
async def test_first_mode_cuts_lists_inside_compound_rules(
    sim_factory: SimFactory, login: Login
) -> None:
    """`first` reads only the first value of an idint list under OR and NOT as well."""
    sim = await sim_factory(jobs=50, id_lists="first")
    assert await query_ids(sim, login, "idint==4,5 | idint==8,9") == [4, 8]
    rows = await query_ids(sim, login, "!idint==1,2")
    assert 1 not in rows
    assert 2 in rows


@pytest.mark.asyncio
async def test_capacity_turns_away_requests_past_the_limit(sim_factory: SimFactory) -> None:
    """With capacity 2 and slow answers, 2 of 6 simultaneous requests are served, 4 get 503."""
    sim = await sim_factory(jobs=10, capacity=2, latency_ms=300)
    async with aiohttp.ClientSession() as session:

        async def status() -> int:
            # Token requests are /api/v3 requests too; the capacity applies to them.
            async with session.post(
                sim.url + "/api/v3/token", data={"username": "demo", "password": "demo"}
            ) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(status() for _ in range(6)))
    assert sorted(statuses) == [200, 200, 503, 503, 503, 503]
    stats = sim.stats()
    assert stats["over_capacity"] == 4
    assert stats["max_inflight"] == 2
    assert stats["responses"]["503"] == 4
    assert stats["peak_rps"] == 6


@pytest.mark.asyncio
async def test_stats_count_concurrency_without_a_capacity(sim_factory: SimFactory) -> None:
    """Without --capacity nothing is turned away and max_inflight shows the peak load."""
    sim = await sim_factory(jobs=10, latency_ms=300)
    async with aiohttp.ClientSession() as session:

        async def status() -> int:
            async with session.get(sim.url + "/api/v3/jobs/1") as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(status() for _ in range(5)))
    assert statuses == [401] * 5
    stats = sim.stats()
    assert stats["over_capacity"] == 0
    assert stats["max_inflight"] == 5


def test_peak_rps_is_a_sliding_one_second_window() -> None:
    """Arrivals at 0.0-0.9 s and 1.5 s: the busiest one-second window holds 10, not 11."""
    stats = SimStats()
    for tenth in range(10):
        stats.arrived(tenth / 10)
    stats.arrived(1.5)  # 0.5 .. 1.5 holds 0.6, 0.7, 0.8, 0.9 and 1.5
    assert stats.peak_rps == 10
    for step in range(20):
        stats.arrived(3.0 + step * 0.04)  # 20 within 0.8 s
    assert stats.peak_rps == 20
    stats.reset()
    assert stats.peak_rps == 0
    stats.arrived(100.0)
    assert stats.peak_rps == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"id_lists": "all", "capacity": None}),
        (["--id-lists", "first", "--capacity", "8"], {"id_lists": "first", "capacity": 8}),
        (["--id-lists", "ignore"], {"id_lists": "ignore", "capacity": None}),
    ],
)
def test_cli_options_reach_the_config(argv: list[str], expected: dict[str, Any]) -> None:
    """`ncinfo-sim --id-lists/--capacity` set the matching SimConfig fields."""
    config = config_from_args(build_parser().parse_args(argv))
    assert {"id_lists": config.id_lists, "capacity": config.capacity} == expected


@pytest.mark.parametrize("argv", [["--id-lists", "some"], ["--capacity", "0"]])
def test_cli_refuses_bad_values(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --id-lists mode or a capacity below 1 is a usage error."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert "ncinfo-sim" in capsys.readouterr().err
