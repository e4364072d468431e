"""`GET /api/v3/query` of the simulator: select/from/where/order/limit/format (section 1.4)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import pytest

from ncinfo_async.sim import FIELDS

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import Login, SimFactory

pytestmark = pytest.mark.asyncio


async def query(sim: Simulator, login: Login, **params: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session:
        headers = await login(session, sim.url)
        url = sim.url + "/api/v3/query?" + urlencode(params)
        async with session.get(url, headers=headers) as response:
            text = await response.text()
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, text, body


async def all_jobs(sim: Simulator, login: Login) -> list[dict[str, Any]]:
    status, _, body = await query(sim, login, select="*", **{"from": "jobs"})
    assert status == 200
    names = [column["field"] for column in body["columns"]]
    return [dict(zip(names, row, strict=True)) for row in body["rows"]]


async def test_documented_example_query(sim: Simulator, login: Login) -> None:
    """The REQURLS-24 Form 3 example: rows, startrow/endrow and the ORDERBY echo."""
    status, _, body = await query(
        sim,
        login,
        select="idint,host,status",
        where="status==VALID",
        limit="10",
        order="host DESC",
        **{"from": "jobs"},
    )
    assert status == 200
    assert body["query"] == (
        "SELECT idint,host,status FROM jobs WHERE status==VALID ORDERBY host DESC LIMIT 10"
    )
    assert body["columns"] == [
        {"col": 0, "field": "idint"},
        {"col": 1, "field": "host"},
        {"col": 2, "field": "status"},
    ]
    rows = body["rows"]
    assert len(rows) == 10
    assert body["startrow"] == 1
    assert body["endrow"] == 10
    assert all(row[2] == "VALID" for row in rows)
    hosts = [row[1] for row in rows]
    assert hosts == sorted(hosts, reverse=True)
    jobs = await all_jobs(sim, login)
    valid_hosts = sorted((j["HOST"] for j in jobs if j["STATUS"] == "VALID"), reverse=True)
    assert hosts == valid_hosts[:10]


async def test_select_star_without_where_returns_every_job(sim: Simulator, login: Login) -> None:
    """`select=*` gives every field upper-case; no `where` gives all jobs in ID order."""
    status, _, body = await query(sim, login, select="*", **{"from": "jobs"})
    assert status == 200
    assert [column["field"] for column in body["columns"]] == list(FIELDS)
    assert [row[1] for row in body["rows"]] == list(range(1, 201))
    assert body["endrow"] == 200
    assert body["query"] == "SELECT * FROM jobs"


@pytest.mark.parametrize(
    ("where", "check"),
    [
        ("statusnc==Done,Failed", lambda j: j["STATUSNC"] in ("Done", "Failed")),
        ("statusnc!=Done", lambda j: j["STATUSNC"] != "Done"),
        ("idint<20", lambda j: j["IDINT"] < 20),
        ("idint>190", lambda j: j["IDINT"] > 190),
        ("idint<10 | idint>195", lambda j: j["IDINT"] < 10 or j["IDINT"] > 195),
        ("user~^user0 priority>4", lambda j: j["USER"].startswith("user0") and j["PRIORITY"] > 4),
        ("user~^user0 & priority>4", lambda j: j["USER"].startswith("user0") and j["PRIORITY"] > 4),
        ("!statusnc==Done", lambda j: j["STATUSNC"] != "Done"),
        ("NOT host", lambda j: j["HOST"] == ""),
        (
            "statusnc==Done idint<50 | statusnc==Failed",
            lambda j: (j["STATUSNC"] == "Done" and j["IDINT"] < 50) or j["STATUSNC"] == "Failed",
        ),
        (
            "statusnc==Done (idint<50 | statusnc==Failed)",
            lambda j: j["STATUSNC"] == "Done" and j["IDINT"] < 50,
        ),
        ("duration>1h", lambda j: j["DURATION"] > 3600),
        ('jobname~"^(sim|syn)$"', lambda j: j["JOBNAME"] in ("sim", "syn")),
        # SELRULES' own examples (reference, section 1.4.1).
        ("isjob & status==FAILED,INVALID", lambda j: j["STATUS"] in ("FAILED", "INVALID")),
        ("isjob autokill>10m", lambda j: j["AUTOKILL"] > 600),
        ("idint<50 | idint>190", lambda j: j["IDINT"] < 50 or j["IDINT"] > 190),
        ("isjob", lambda j: True),
        ("!isfile jobclass==regress", lambda j: j["JOBCLASS"] == "regress"),
    ],
)
async def test_where_rules_select_matching_jobs(
    sim_factory: SimFactory, login: Login, where: str, check: Any
) -> None:
    """Each supported rule form selects exactly the jobs a Python predicate selects."""
    # Frozen simulated time (tiny scale) so running jobs keep their values between calls.
    server = await sim_factory(time_scale=1e-6)
    jobs = await all_jobs(server, login)
    expected = [j["IDINT"] for j in jobs if check(j)]
    assert expected, "the rule should match something"
    status, _, body = await query(server, login, select="idint", where=where, **{"from": "jobs"})
    assert status == 200, body
    assert [row[0] for row in body["rows"]] == expected


@pytest.mark.parametrize("where", ["!isjob", "isfile", "isjob==0", "isjob autokill<0"])
async def test_flag_rules_that_select_nothing(sim: Simulator, login: Login, where: str) -> None:
    """`isjob` is 1 and `isfile` 0 for every job, so their negations select no job."""
    status, _, body = await query(sim, login, select="idint", where=where, **{"from": "jobs"})
    assert status == 200, body
    assert body["rows"] == []


async def test_query_max_rows_caps_every_answer(sim_factory: SimFactory, login: Login) -> None:
    """With query_max_rows, an answer carries at most that many rows, whatever its limit."""
    server = await sim_factory(query_max_rows=3)
    status, _, body = await query(server, login, select="idint", limit="10", **{"from": "jobs"})
    assert status == 200
    assert body["rows"] == [[1], [2], [3]]
    assert body["endrow"] == 3


async def test_idint_comma_list_batch(sim: Simulator, login: Login) -> None:
    """`idint==a,b,c` returns those jobs in ID order and silently skips unknown IDs."""
    status, _, body = await query(
        sim, login, select="id,idint,statusnc", where="idint==150,3,77,999999", **{"from": "jobs"}
    )
    assert status == 200
    assert [row[1] for row in body["rows"]] == [3, 77, 150]
    assert [row[0] for row in body["rows"]] == ["000000003", "000000077", "000000150"]


async def test_idint_batch_of_thousands(sim_factory: SimFactory, login: Login) -> None:
    """A 5,000-ID comma list (a chunk of a 20,000-ID run) answers every known ID."""
    server = await sim_factory(jobs=20000)
    ids = list(range(3, 20000, 4))[:5000]
    status, _, body = await query(
        server, login, select="idint", where="idint==" + ",".join(map(str, ids)), **{"from": "jobs"}
    )
    assert status == 200
    assert [row[0] for row in body["rows"]] == ids


async def test_order_and_limit(sim: Simulator, login: Login) -> None:
    """`order` sorts ascending or DESC by several keys; `limit` truncates; 0 gives none."""
    _, _, body = await query(
        sim, login, select="user,idint", order="user, idint DESC", **{"from": "jobs"}
    )
    rows = [tuple(row) for row in body["rows"]]
    assert rows == sorted(rows, key=lambda r: (r[0], -r[1]))
    _, _, limited = await query(sim, login, select="idint", limit="0", **{"from": "jobs"})
    assert limited["rows"] == []
    assert limited["endrow"] == 0


async def test_csv_formats_read_back(sim: Simulator, login: Login) -> None:
    """`format=csv` and `csv-noheader` carry the same rows as json."""
    params = {"select": "id,user,command,durationpp", "from": "jobs", "where": "idint<30"}
    _, _, body = await query(sim, login, **params)
    _, text, _ = await query(sim, login, format="csv", **params)
    _, bare, _ = await query(sim, login, format="csv-noheader", **params)
    expected = [[str(value) for value in row] for row in body["rows"]]
    assert list(csv.reader(io.StringIO(text))) == [
        ["id", "user", "command", "durationpp"],
        *expected,
    ]
    assert list(csv.reader(io.StringIO(bare))) == expected


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"select": "idint"}, "from"),
        ({"from": "nodes"}, "nodes"),
        ({"from": "jobs", "where": "status==VALID | (idint<3"}, "')'"),
        ({"from": "jobs", "where": "nosuchfield==3"}, "nosuchfield"),
        ({"from": "jobs", "where": "idint==1,x"}, "x"),
        ({"from": "jobs", "where": 'host~"(["'}, "regular expression"),
        ({"from": "jobs", "order": "nosuch"}, "nosuch"),
        ({"from": "jobs", "order": "host SIDEWAYS"}, "SIDEWAYS"),
        ({"from": "jobs", "limit": "ten"}, "limit"),
        ({"from": "jobs", "limit": "-1"}, "limit"),
        ({"from": "jobs", "select": "idint,,host"}, "select"),
        ({"from": "jobs", "format": "xml"}, "format"),
    ],
)
async def test_bad_queries_are_400(
    sim: Simulator, login: Login, params: dict[str, str], needle: str
) -> None:
    """Malformed rules, unknown sources or fields and bad parameters get a clear 400."""
    status, _, body = await query(sim, login, **params)
    assert status == 400
    assert needle in body["error"]


async def test_unknown_select_field_is_empty(sim: Simulator, login: Login) -> None:
    """An unknown field in `select` gives an empty-string column, like `/jobs/{id}/{field}`."""
    status, _, body = await query(
        sim, login, select="idint,bogus", where="idint==1,2", **{"from": "jobs"}
    )
    assert status == 200
    assert body["rows"] == [[1, ""], [2, ""]]


async def test_reject_query_mode(sim_factory: SimFactory, login: Login) -> None:
    """With reject_query the endpoint answers 400 `{"error"}` while /jobs/{id} still works."""
    server = await sim_factory(reject_query=True)
    status, _, body = await query(server, login, where="idint==1,2", **{"from": "jobs"})
    assert status == 400
    assert body["error"]
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        async with session.get(server.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 200
