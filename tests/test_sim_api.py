"""The per-job and project accessors of the simulator (reference sections 1.2-1.3, 4)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from ncinfo_async.sim import FIELDS

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import Login, SimFactory

pytestmark = pytest.mark.asyncio

TABLE_KEYS = {"startrow", "endrow", "query", "errormsg", "columns", "rows"}


async def fetch(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, str, Any]:
    async with session.get(url, headers=headers) as response:
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, text, body


def find(body: dict[str, Any], key: str) -> Any:
    """The seed's `find(dd, key)`: the value of the column named `key` in row 0."""
    fields = [column["field"] for column in body["columns"]]
    return body["rows"][0][fields.index(key)]


async def test_job_table_shape(sim: Simulator, login: Login) -> None:
    """GET /api/v3/jobs/{id} returns the documented table with one upper-case row."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        status, _, body = await fetch(session, sim.url + "/api/v3/jobs/42", headers)
    assert status == 200
    assert set(body) == TABLE_KEYS
    assert body["startrow"] == 1
    assert body["endrow"] == 1
    assert body["errormsg"] == ""
    assert body["query"] == "SELECT * FROM jobs WHERE idint==42"
    assert body["columns"] == [{"col": i, "field": name} for i, name in enumerate(FIELDS)]
    assert len(body["rows"]) == 1
    assert len(body["rows"][0]) == len(FIELDS)
    assert find(body, "ID") == "000000042"
    assert find(body, "IDINT") == 42
    for name in ("USER", "GROUP", "COMMAND", "STATUS", "STATUSNC", "HOST", "DURATIONPP"):
        assert isinstance(find(body, name), str), name
    for name in ("DURATION", "PRIORITY", "SUBMITTIME", "STARTTIME", "ENDTIME", "EXIT"):
        assert isinstance(find(body, name), int), name


@pytest.mark.parametrize("path", ["/42", "/42/", "/42/*", "/000000042", "/0042/*"])
async def test_job_path_forms_are_identical(sim: Simulator, login: Login, path: str) -> None:
    """`/jobs/{id}`, `/jobs/{id}/`, `/jobs/{id}/*` and padded IDs give the same body."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        _, reference, _ = await fetch(session, sim.url + "/api/v3/jobs/42", headers)
        status, text, _ = await fetch(session, sim.url + "/api/v3/jobs" + path, headers)
    assert status == 200
    assert text == reference


@pytest.mark.parametrize("spelling", ["status", "STATUS", "Status"])
async def test_single_field_echoes_spelling(sim: Simulator, login: Login, spelling: str) -> None:
    """`/jobs/{id}/{field}` returns one column named as the client spelled it."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        _, _, whole = await fetch(session, sim.url + "/api/v3/jobs/7", headers)
        status, _, body = await fetch(session, sim.url + f"/api/v3/jobs/7/{spelling}", headers)
    assert status == 200
    assert body["columns"] == [{"col": 0, "field": spelling}]
    assert body["rows"] == [[find(whole, "STATUS")]]
    assert body["query"] == f"SELECT {spelling} FROM jobs WHERE idint==7"


async def test_unknown_field_is_empty_string(sim: Simulator, login: Login) -> None:
    """An unknown field name answers 200 with an empty-string value ([INFER] section 4.2)."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        status, _, body = await fetch(session, sim.url + "/api/v3/jobs/7/nosuchfield", headers)
    assert status == 200
    assert body["columns"] == [{"col": 0, "field": "nosuchfield"}]
    assert body["rows"] == [[""]]


async def test_unknown_job_404_mode(sim: Simulator, login: Login) -> None:
    """By default an unknown job ID gets 404 with a JSON error."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        for path in ("/api/v3/jobs/999999", "/api/v3/jobs/999999/status"):
            status, _, body = await fetch(session, sim.url + path, headers)
            assert status == 404
            assert "999999" in body["error"]


async def test_unknown_job_empty_mode(sim_factory: SimFactory, login: Login) -> None:
    """With unknown_job="empty" an unknown ID gets 200, no rows and a non-empty errormsg."""
    server = await sim_factory(unknown_job="empty")
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        status, _, body = await fetch(session, server.url + "/api/v3/jobs/999999", headers)
    assert status == 200
    assert body["rows"] == []
    assert body["errormsg"]
    assert body["endrow"] == 0


@pytest.mark.parametrize("raw", ["abc", "12x", "-5", "1.5", "%C2%B2", "99999999999999999999"])
async def test_non_numeric_id_is_400(sim: Simulator, login: Login, raw: str) -> None:
    """A job ID that is not digits gets 400 with a JSON error, never a 500."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        status, _, body = await fetch(session, sim.url + f"/api/v3/jobs/{raw}", headers)
    assert status == 400
    assert body["error"]


async def test_job_csv_formats(sim: Simulator, login: Login) -> None:
    """`format=csv` has a header line, `csv-noheader` only the row; both parse with csv."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        _, _, whole = await fetch(session, sim.url + "/api/v3/jobs/9", headers)
        status, text, _ = await fetch(session, sim.url + "/api/v3/jobs/9?format=csv", headers)
        assert status == 200
        status2, bare, _ = await fetch(
            session, sim.url + "/api/v3/jobs/9/command?format=csv-noheader", headers
        )
        bad, _, error = await fetch(session, sim.url + "/api/v3/jobs/9?format=xml", headers)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(FIELDS)
    assert rows[1] == [str(value) for value in whole["rows"][0]]
    assert status2 == 200
    assert list(csv.reader(io.StringIO(bare))) == [[find(whole, "COMMAND")]]
    assert bad == 400
    assert "format" in error["error"]


@pytest.mark.parametrize(
    ("path", "field", "query", "value"),
    [
        ("/api/v3/project/1/project", "PROJECT", "SELECT project FROM 1", "ncsim"),
        ("/api/v3/project/1/version", "VERSION", "SELECT version FROM 1", "2024.1.0 (ncinfo-sim)"),
    ],
)
async def test_project_accessors(
    sim: Simulator, login: Login, path: str, field: str, query: str, value: str
) -> None:
    """The project accessors answer like [DOC-EX] EX101: one upper-case column."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        status, _, body = await fetch(session, sim.url + path, headers)
    assert status == 200
    assert body == {
        "startrow": 1,
        "endrow": 1,
        "query": query,
        "errormsg": "",
        "columns": [{"col": 0, "field": field}],
        "rows": [[value]],
    }


async def test_unmatched_api_path_is_404(sim: Simulator, login: Login) -> None:
    """Unknown /api/v3 paths and methods get 404 JSON after auth, and are counted."""
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        status, _, body = await fetch(session, sim.url + "/api/v3/nothing/here", headers)
        assert status == 404
        assert body["error"]
        async with session.delete(sim.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 404
    assert sim.stats()["requests"]["unmatched"] == 2


async def test_jobs_evolve_with_scaled_time(sim_factory: SimFactory, login: Login) -> None:
    """With time_scale, queued/running jobs end Done or Failed, with consistent fields."""
    server = await sim_factory(jobs=60, time_scale=2000.0)
    select = "/api/v3/query?from=jobs&select=idint,statusnc,status,host,endtime,exit,duration"
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        _, _, before = await fetch(session, server.url + select, headers)
        active = {row[0] for row in before["rows"] if row[1] in ("Queued", "Running")}
        assert active
        # Waiting for simulated time to pass (every job ends within 420 simulated
        # seconds, 0.21 s here): a time-based condition, polled.
        deadline = time.monotonic() + 10
        while True:
            _, _, after = await fetch(session, server.url + select, headers)
            if all(row[1] in ("Done", "Failed") for row in after["rows"] if row[0] in active):
                break
            assert time.monotonic() < deadline, "active jobs never finished"
            await asyncio.sleep(0.05)
    for idint, statusnc, status, host, endtime, exit_code, duration in after["rows"]:
        if idint in active:
            assert (statusnc, status) in (("Done", "VALID"), ("Failed", "FAILED"))
            assert host
            assert endtime > 0
            assert duration > 0
            assert (exit_code == 0) == (statusnc == "Done")
