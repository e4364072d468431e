"""--where (jobs chosen by a selection rule) and the CI report formats, end to end.

Tier 1 for the rule checks and page URLs, tier 2 for paging against real servers on loopback,
tier 3 for the CLI against the simulator.
"""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from junitparser import JUnitXml

from ncinfo_async import Client, Settings
from ncinfo_async._exceptions import ApiError, ConfigError, ResponseFormatError
from ncinfo_async._where import check_rule, rule_path, select_jobs, wait_for_rule
from ncinfo_async.sim import Simulator
from ncinfo_async.sim._jobs import generate_jobs

from .cliutil import assert_clean_exit, cli_env, run_ncinfo

T0 = 1_790_000_000.0


def env_for(url: str | None, tmp_path: Path) -> dict[str, str]:
    """The CLI environment with a token cache in this test's own directory."""
    return cli_env(url, NCINFO_CACHE_DIR=str(tmp_path / "cache"))


def settings_for(url: str) -> Settings:
    return Settings(url=url, user="demo", password="demo", concurrency=4, attempts=2)


async def server_jobs(sim: Simulator, where: str) -> list[int]:
    """The IDs the simulator itself holds for a rule, read straight from its job table."""
    async with Client(settings_for(sim.url)) as client:
        pages = [page async for page in select_jobs(client, where, ["idint"], page_size=10**6)]
    return [result.job_id for page in pages for result in page]


# --- Tier 1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule", ["statusnc==Failed", " (a==1 | b==2) c ", 'jobname~"(x"', "a==1 (b==2)"]
)
def test_check_rule_accepts_balanced_rules(rule: str) -> None:
    """Rules whose parentheses balance (quoted ones aside) are passed on unchanged, stripped."""
    assert check_rule(rule) == rule.strip()


@pytest.mark.parametrize("rule", ["", "   ", "(a==1", "a==1)", "a==1) | (b==2", ")("])
def test_check_rule_refuses_what_would_escape_its_parentheses(rule: str) -> None:
    """An empty rule or unbalanced parentheses are a usage error before any request."""
    with pytest.raises(ConfigError):
        check_rule(rule)


def test_rule_path_pages_by_id() -> None:
    """A page asks for the rule AND idint>last, ordered by idint, limited to the page size."""
    path = rule_path("user==ci | x==1", ["id", "statusnc"], after=41, page_size=500)
    parts = urlsplit(path)
    assert parts.path == "/api/v3/query"
    assert parse_qs(parts.query) == {
        "select": ["ID,STATUSNC,IDINT"],
        "from": ["jobs"],
        "where": ["(user==ci | x==1) idint>41"],
        "order": ["idint"],
        "limit": ["500"],
    }


# --- Tier 2 ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pages_cover_every_job_once(sim_factory: Any) -> None:
    """Small pages return every matching job once, in ID order, in ceil(N / page) + 1 queries."""
    sim = await sim_factory(jobs=300, start_time=T0, time_scale=1e-9)
    expected = await server_jobs(sim, "statusnc==Done")
    before = sim.stats()["requests"]["query"]
    async with Client(settings_for(sim.url)) as client:
        pages = [page async for page in select_jobs(client, "statusnc==Done", ["*"], page_size=7)]
    got = [result.job_id for page in pages for result in page]
    assert got == expected
    assert all(len(page) == 7 for page in pages[:-1])
    assert sim.stats()["requests"]["query"] - before == math.ceil(len(expected) / 7) + 1
    assert all(result.fields and result.fields["STATUSNC"] == "Done" for p in pages for result in p)


@pytest.mark.asyncio
async def test_a_server_capping_its_answers_is_paged_through(sim_factory: Any) -> None:
    """A server that sends fewer rows than `limit` asks for still yields every job: only an
    empty page ends the selection."""
    sim = await sim_factory(jobs=100, start_time=T0, time_scale=1e-9, query_max_rows=6)
    expected = list(range(1, 101))
    async with Client(settings_for(sim.url)) as client:
        pages = [page async for page in select_jobs(client, "isjob", ["idint"], page_size=1000)]
    assert [result.job_id for page in pages for result in page] == expected
    assert [len(page) for page in pages] == [6] * 16 + [4]


async def _table_server(body: dict[str, Any]) -> AsyncIterator[str]:
    """A loopback server answering the token request and every query with ``body``."""

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"token_type": "Bearer", "access_token": "x.y.z"})

    async def query(request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/api/v3/token", token)
    app.router.add_get("/api/v3/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_an_errormsg_refusal_is_one_api_error() -> None:
    """A 200 answer whose errormsg is set is the server refusing the rule, its text kept."""
    body = {"startrow": 0, "endrow": 0, "query": "", "errormsg": "bad rule near 'x'"}
    body |= {"columns": [{"col": 0, "field": "IDINT"}], "rows": []}
    async for url in _table_server(body):
        async with Client(settings_for(url)) as client:
            with pytest.raises(ApiError, match="bad rule near 'x'"):
                async for _ in select_jobs(client, "x", ["*"]):
                    pass


@pytest.mark.asyncio
async def test_a_server_ignoring_the_paging_condition_is_caught() -> None:
    """A server that sends the same full page again (ignoring idint>N) does not loop forever."""
    rows = [[n] for n in (1, 2)]
    body = {"startrow": 1, "endrow": 2, "query": "", "errormsg": ""}
    body |= {"columns": [{"col": 0, "field": "IDINT"}], "rows": rows}
    async for url in _table_server(body):
        async with Client(settings_for(url)) as client:
            pages = select_jobs(client, "x", ["*"], page_size=2)
            first = await anext(pages)
            assert [result.job_id for result in first] == [1, 2]
            with pytest.raises(ResponseFormatError, match="idint>2"):
                await anext(pages)


@pytest.mark.asyncio
async def test_wait_on_a_rule_takes_in_jobs_that_appear_later() -> None:
    """A job the rule selects only at a later poll joins the wait, and the wait goes on
    until it is finished too; a job that left the rule is fetched by ID meanwhile."""
    # What the rule selects at each poll (ID -> status); job 1 leaves it at the second poll.
    polls = [{1: "Running"}, {2: "Running"}, {2: "Done"}]
    status = {1: "Running", 2: "Running"}
    rule_polls = 0

    def table(ids: list[int]) -> dict[str, Any]:
        columns = [{"col": 0, "field": "IDINT"}, {"col": 1, "field": "STATUSNC"}]
        rows = [[job_id, status[job_id]] for job_id in ids]
        return {"startrow": 1, "endrow": len(rows), "query": "", "errormsg": "", "columns": columns,
                "rows": rows}  # fmt: skip

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"token_type": "Bearer", "access_token": "x.y.z"})

    async def query(request: web.Request) -> web.Response:
        nonlocal rule_polls
        where = request.query["where"]
        if where.startswith("idint=="):  # a fetch by ID of jobs that left the rule
            status[1] = "Done"
            return web.json_response(table([int(n) for n in where[7:].split(",")]))
        after = int(where.rsplit("idint>", 1)[1])
        if after == 0:  # a poll's first page
            rule_polls += 1
        selected = polls[min(rule_polls - 1, len(polls) - 1)]
        status.update(selected)
        return web.json_response(table(sorted(n for n in selected if n > after)))

    app = web.Application()
    app.router.add_post("/api/v3/token", token)
    app.router.add_get("/api/v3/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with Client(settings_for(url)) as client:
            outcome = await wait_for_rule(
                client, "x==1", ["STATUSNC"], terminal={"Done"}, poll_interval=0.01
            )
    finally:
        await runner.cleanup()
    assert outcome.polls == 3
    assert outcome.unfinished == []
    assert [(r.job_id, (r.fields or {})["STATUSNC"]) for r in outcome.results] == [
        (1, "Done"),
        (2, "Done"),
    ]


# --- Tier 3 ----------------------------------------------------------------------------------


def failed_job(jobs: int) -> int:
    """A job that is Failed from the start (its end lies before the simulator's start)."""
    for plan in generate_jobs(jobs, 0, T0):
        if plan.kind == "timeline" and plan.outcome == "Failed" and plan.end < T0:
            return plan.idint
    raise AssertionError("no Failed job in the generated set")


@pytest.mark.asyncio
async def test_junit_four_testcases_two_failures(sim_factory: Any, tmp_path: Path) -> None:
    """ncinfo --format junit --fail-on Failed 1 2 <Failed> 999999: four testcases, two fail."""
    sim = await sim_factory(jobs=400, start_time=T0, time_scale=1e-9)
    failed = failed_job(400)
    run = await run_ncinfo(
        "--format", "junit", "--fail-on", "Failed", "1", "2", str(failed), "999999",
        env=env_for(sim.url, tmp_path),
    )  # fmt: skip
    assert run.code == 3, run.err
    assert_clean_exit(run.err)
    path = tmp_path / "report.xml"
    path.write_text(run.out)
    suite = next(iter(JUnitXml.fromfile(str(path))))
    cases = list(suite)
    assert [case.name for case in cases] == ["job 1", "job 2", f"job {failed}", "job 999999"]
    failing = [case.name for case in cases if any(r._tag == "failure" for r in case.result)]
    assert failing == [f"job {failed}", "job 999999"]
    assert (suite.tests, suite.failures, suite.errors) == (4, 2, 0)


@pytest.mark.asyncio
async def test_where_failed_prints_exactly_the_failed_jobs(
    sim_factory: Any, tmp_path: Path
) -> None:
    """--where 'statusnc==Failed' --format ndjson: the server's Failed jobs, in <= 5 requests."""
    sim = await sim_factory(jobs=3000, start_time=T0, time_scale=1e-9)
    expected = await server_jobs(sim, "statusnc==Failed")
    assert len(expected) > 100
    stats = sim.stats()["requests"]
    run = await run_ncinfo(
        "--where", "statusnc==Failed", "--format", "ndjson", env=env_for(sim.url, tmp_path)
    )
    assert run.code == 0, run.err
    lines = run.lines()
    assert [line["id"] for line in lines] == expected
    assert all(line["fields"]["STATUSNC"] == "Failed" for line in lines)
    after = sim.stats()["requests"]
    sent = {route: after[route] - stats.get(route, 0) for route in after}
    assert sum(sent.values()) <= 5
    assert sent["query"] == 2  # the page, and the empty page that proves it was the last
    assert sent["job"] == 0


@pytest.mark.asyncio
async def test_where_pages_through_the_cli(sim_factory: Any, tmp_path: Path) -> None:
    """--page-size splits the selection into pages; every job comes once, in ID order."""
    sim = await sim_factory(jobs=200, start_time=T0, time_scale=1e-9)
    expected = await server_jobs(sim, "isjob autokill>10m")
    before = sim.stats()["requests"]["query"]
    run = await run_ncinfo(
        "--where", "isjob autokill>10m", "--page-size", "9", "--format", "csv",
        "--fields", "idint,autokill", env=env_for(sim.url, tmp_path),
    )  # fmt: skip
    assert run.code == 0, run.err
    rows = list(csv.reader(io.StringIO(run.out)))
    assert rows[0] == ["IDINT", "AUTOKILL"]
    assert [int(row[0]) for row in rows[1:]] == expected
    assert all(int(row[1]) > 600 for row in rows[1:])
    assert sim.stats()["requests"]["query"] - before == math.ceil(len(expected) / 9) + 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("rule", "needle"),
    [("nosuch==1", "unknown field 'nosuch'"), ("status==VALID | ()", "expected a field name")],
)
async def test_a_refused_rule_is_one_error(
    sim: Simulator, tmp_path: Path, rule: str, needle: str
) -> None:
    """A rule the server refuses: exit 2, the server's message once, nothing on stdout."""
    run = await run_ncinfo("--where", rule, "--format", "json", env=env_for(sim.url, tmp_path))
    assert run.code == 2
    assert run.out == ""
    assert run.err.count("ncinfo: error: the server refused the selection rule") == 1
    assert needle in run.err
    assert_clean_exit(run.err)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "args",
    [
        ("--where", "statusnc==Failed", "7"),
        ("--where", "x==1", "-"),
        ("--where", "(x==1"),
        ("--page-size", "5", "7"),
    ],
)
async def test_where_usage_errors(sim: Simulator, tmp_path: Path, args: tuple[str, ...]) -> None:
    """IDs (or stdin) with --where, a rule with unbalanced parentheses, or --page-size without
    --where: exit 2, no request."""
    before = sim.stats()["requests"]
    run = await run_ncinfo(*args, env=env_for(sim.url, tmp_path))
    assert run.code == 2
    assert "ncinfo: error:" in run.err
    assert sim.stats()["requests"] == before


@pytest.mark.asyncio
async def test_where_selecting_nothing(sim: Simulator, tmp_path: Path) -> None:
    """A rule that selects no job is a valid, empty answer (exit 0) with a notice."""
    run = await run_ncinfo(
        "--where", "user==nobody", "--format", "json", env=env_for(sim.url, tmp_path)
    )
    assert run.code == 0
    assert json.loads(run.out) == {"results": []}
    assert "no job matches --where 'user==nobody'" in run.err


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", ["text", "json", "ndjson", "csv", "table", "junit", "markdown"])
async def test_where_with_every_format(sim_factory: Any, tmp_path: Path, fmt: str) -> None:
    """Every output format renders the jobs a rule selects; --fail-on and --summary apply."""
    sim = await sim_factory(jobs=200, start_time=T0, time_scale=1e-9)
    rule = "isjob & status==FAILED,INVALID"
    expected = await server_jobs(sim, rule)
    failed = len(await server_jobs(sim, "statusnc==Failed"))
    run = await run_ncinfo(
        "--where", rule, "--format", fmt, "--fail-on", "Failed", "--summary",
        env=env_for(sim.url, tmp_path),
    )  # fmt: skip
    assert run.code == 3, run.err
    assert_clean_exit(run.err)
    ids = [f"{job_id:09d}" for job_id in expected]
    if fmt == "json":
        document = json.loads(run.out)
        assert [r["id"] for r in document["results"]] == expected
        assert document["summary"]["requested"] == len(expected)
    elif fmt == "ndjson":
        assert [line["id"] for line in run.lines()] == expected
    elif fmt == "junit":
        root = ET.fromstring(run.out)
        assert root.get("tests") == str(len(expected))
        assert root.get("failures") == str(failed)
        names = [case.get("name") for case in root.iterfind("testsuite/testcase")]
        assert names == [f"job {job_id}" for job_id in expected]
    elif fmt == "markdown":
        assert f"## ncinfo: {len(expected)} jobs, {len(expected)} found" in run.out
        assert f"in a --fail-on status or with an error ({failed})" in run.out
    else:
        positions = [run.out.index(job_id) for job_id in ids]
        assert positions == sorted(positions)
        assert "Summary: " in run.out + run.err


@pytest.mark.asyncio
async def test_wait_on_a_rule_follows_jobs_that_leave_it(sim_factory: Any, tmp_path: Path) -> None:
    """--wait --where 'statusnc==Running': jobs that stop running leave the rule but are
    followed by ID until they end; each is printed once, finished, in ID order."""
    # 50x: the simulator's running jobs end within 6 s of wall time; those ending after 4 s
    # are surely still running when the command first runs the rule.
    sim = await sim_factory(jobs=200, start_time=T0, time_scale=50.0)
    running = {
        plan.idint
        for plan in generate_jobs(200, 0, T0)
        if plan.kind == "timeline" and plan.start <= T0 and plan.end > T0 + 200
    }
    assert running
    run = await run_ncinfo(
        "--where", "statusnc==Running", "--wait", "--poll-interval", "0.2",
        "--format", "ndjson", "--fields", "idint,statusnc", env=env_for(sim.url, tmp_path),
    )  # fmt: skip
    assert run.code == 0, run.err
    lines = run.lines()
    ids = [line["id"] for line in lines]
    assert ids == sorted(set(ids))
    assert running <= set(ids)
    assert {line["fields"]["STATUSNC"] for line in lines} <= {"Done", "Failed"}
    assert sim.stats()["requests"]["query"] >= 2  # it polled the rule again


@pytest.mark.asyncio
async def test_wait_on_a_rule_times_out(sim_factory: Any, tmp_path: Path) -> None:
    """Jobs that never finish stop a --where wait at --wait-timeout with exit 4."""
    sim = await sim_factory(jobs=200, start_time=T0)
    run = await run_ncinfo(
        "--where", "statusnc==Suspended", "--wait", "--poll-interval", "0.2",
        "--wait-timeout", "1", "--format", "ndjson", env=env_for(sim.url, tmp_path),
    )  # fmt: skip
    assert run.code == 4, run.err
    assert run.lines()
    assert all(line["fields"]["STATUSNC"] == "Suspended" for line in run.lines())
    assert "still unfinished" in run.err
    # Not a terminal: a status line per poll tells a CI log where the wait stands.
    assert "ncinfo: waiting: 0/" in run.err


@pytest.mark.asyncio
async def test_deadline_during_the_pages(sim_factory: Any, tmp_path: Path) -> None:
    """A --deadline that passes between pages: the jobs so far in a closed document, exit 2."""
    sim = await sim_factory(jobs=50, latency_ms=300)
    run = await run_ncinfo(
        "--where", "isjob", "--page-size", "2", "--deadline", "2", "--format", "json",
        env=env_for(sim.url, tmp_path),
    )  # fmt: skip
    assert run.code == 2, run.err
    results = json.loads(run.out)["results"]
    assert 0 < len(results) < 50
    assert [r["id"] for r in results] == list(range(1, len(results) + 1))
    assert "deadline passed before every job the rule selects was fetched" in run.err
    assert_clean_exit(run.err)
