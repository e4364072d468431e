"""Tier 2: ``VOVRestV3Async`` against the in-process simulator, and the ported example."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ncinfo_async._exceptions import AuthError, ConfigError, HTTPStatusError
from ncinfo_async._facade import VOVRestV3Async
from ncinfo_async.sim import Simulator

from .simutil import tracing_session

if TYPE_CHECKING:
    from .conftest import SimFactory

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).parent.parent
ENV = {"USER": "demo"}
# 2021-10-12 13:26:28 UTC, as in test_sim_seed: fixed simulated time, reproducible fields.
START = 1634045188.0


async def test_authorize_and_get_a_job(sim: Simulator) -> None:
    """A full vendor-style URL with NC_URL's /project path returns the table JSON text."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url + "/project", "demo")
        text = await vrest.submitRequest("GET", sim.url + "/project/api/v3/jobs/1")
    table = json.loads(text)
    fields = [column["field"] for column in table["columns"]]
    assert table["rows"][0][fields.index("ID")] == "000000001"
    assert sim.stats()["tokens_issued"] == 1


async def test_a_path_works_like_a_full_url(sim: Simulator) -> None:
    """``/api/v3/...`` is sent to the authorized server, byte-identical to the full URL."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        by_path = await vrest.submitRequest("GET", "/api/v3/jobs/7")
        by_url = await vrest.submitRequest("GET", sim.url + "/api/v3/jobs/7")
    assert by_path == by_url


async def test_query_with_params(sim: Simulator) -> None:
    """queryParams are percent-encoded onto the path; '==', ',' and spaces survive."""
    params = {"select": "idint,user", "from": "jobs", "where": "idint==3,5,9", "order": "idint"}
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        text = await vrest.submitRequest("GET", sim.url + "/api/v3/query", queryParams=params)
    table = json.loads(text)
    assert [row[0] for row in table["rows"]] == [3, 5, 9]
    assert sim.stats()["requests"]["query"] == 1


async def test_concurrent_requests_share_one_token(sim: Simulator) -> None:
    """asyncio.gather over 50 requests costs one token request."""
    async with VOVRestV3Async(environ=ENV, concurrency=8) as vrest:
        await vrest.authorize(sim.url, "demo")
        texts = await asyncio.gather(
            *(vrest.submitRequest("GET", f"/api/v3/jobs/{i}") for i in range(1, 51))
        )
    assert len(texts) == 50
    stats = sim.stats()
    assert stats["tokens_issued"] == 1
    assert stats["requests"]["job"] == 50
    # The pool holds concurrency + 1 connections: one is kept for token requests.
    assert stats["connections"] <= 9


async def test_wrong_password_raises_auth_error(sim: Simulator) -> None:
    """A refused login raises AuthError with the server's reason, and nothing is left open."""
    vrest = VOVRestV3Async(environ=ENV)
    with pytest.raises(AuthError, match="invalid username or password"):
        await vrest.authorize(sim.url, "wrong")
    with pytest.raises(ConfigError, match="authorize"):
        await vrest.submitRequest("GET", "/api/v3/jobs/1")
    await vrest.close()


async def test_username_defaults_to_user(sim: Simulator) -> None:
    """Without username, $USER from the given environment is used; no user is an error."""
    async with VOVRestV3Async(environ={"USER": "nobody"}) as vrest:
        with pytest.raises(AuthError):
            await vrest.authorize(sim.url, "demo")
        await vrest.authorize(sim.url, "demo", username="demo")
    async with VOVRestV3Async(environ={}) as vrest:
        with pytest.raises(ConfigError, match="USER"):
            await vrest.authorize(sim.url, "demo")


async def test_another_host_is_a_config_error(sim: Simulator) -> None:
    """A URL on another server (or scheme, or port) is refused before anything is sent."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        before = sim.stats()["requests_total"]
        for other in (
            "http://elsewhere:6444/api/v3/jobs/1",
            sim.url.replace("http://", "https://") + "/api/v3/jobs/1",
            sim.url.rsplit(":", 1)[0] + ":1/api/v3/jobs/1",
        ):
            with pytest.raises(ConfigError, match="not the authorized server"):
                await vrest.submitRequest("GET", other)
        assert sim.stats()["requests_total"] == before


async def test_non_2xx_raises_http_status_error(sim: Simulator) -> None:
    """An unknown job's 404 raises HTTPStatusError carrying the server's error text."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        with pytest.raises(HTTPStatusError, match="no job with id 99999") as caught:
            await vrest.submitRequest("GET", "/api/v3/jobs/99999")
    assert caught.value.status == 404


async def test_post_with_json_is_sent_once(sim: Simulator) -> None:
    """A POST goes out once with its JSON body; the simulator's 404 comes back as an error."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        with pytest.raises(HTTPStatusError, match="no such endpoint: POST /api/v3/jobs"):
            await vrest.submitRequest("POST", "/api/v3/jobs", jsonData={"autokill": 60})
    assert sim.stats()["requests"]["unmatched"] == 1


async def test_methods_and_bodies(sim: Simulator) -> None:
    """Only the vendor's five methods are accepted, and GET carries no body."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        with pytest.raises(ConfigError, match="unsupported method"):
            await vrest.submitRequest("TRACE", "/api/v3/jobs/1")
        with pytest.raises(ConfigError, match="has no body"):
            await vrest.submitRequest("GET", "/api/v3/jobs/1", jsonData={"a": 1})
        # The vendor's default jsonData={} means no body.
        assert await vrest.submitRequest("get", "/api/v3/jobs/1", jsonData={})


async def test_jwt_round_trip(sim: Simulator) -> None:
    """getJWT returns the documented 'type:token' value, and setJWT takes it back."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        jwt = vrest.getJWT()
        token_type, _, access_token = jwt.partition(":")
        assert token_type == "Bearer"
        assert access_token.count(".") == 2
        vrest.setJWT(jwt)
        assert vrest.getJWT() == jwt
        vrest.setJWT(access_token)  # a bare JWT keeps the current token type
        assert vrest.getJWT() == jwt
        await vrest.submitRequest("GET", "/api/v3/jobs/1")
    assert sim.stats()["tokens_issued"] == 1


async def test_bad_jwt_is_renewed_with_the_stored_password(sim: Simulator) -> None:
    """After setJWT with a bad token, a 401 gets a new token and the request succeeds."""
    async with VOVRestV3Async(environ=ENV) as vrest:
        await vrest.authorize(sim.url, "demo")
        good = vrest.getJWT()
        vrest.setJWT("Bearer:not.a.jwt")
        text = await vrest.submitRequest("GET", "/api/v3/jobs/2")
        assert json.loads(text)["rows"]
        assert vrest.getJWT() not in (good, "Bearer:not.a.jwt")
    stats = sim.stats()
    assert stats["tokens_issued"] == 2
    assert stats["unauthorized"] == 1


async def test_set_jwt_before_authorize(sim: Simulator) -> None:
    """A token from elsewhere works without authorize(); the full URL names the server."""
    async with VOVRestV3Async(environ=ENV) as first:
        await first.authorize(sim.url, "demo")
        jwt = first.getJWT()
    async with VOVRestV3Async(environ=ENV) as second:
        with pytest.raises(ConfigError, match="no JWT"):
            second.getJWT()
        second.setJWT(jwt)
        with pytest.raises(ConfigError, match="authorize"):
            await second.submitRequest("GET", "/api/v3/jobs/1")
        text = await second.submitRequest("GET", sim.url + "/api/v3/jobs/1")
        assert json.loads(text)["rows"]
        # No password is known: a refused token cannot be renewed.
        second.setJWT("Bearer:bogus")
        with pytest.raises(AuthError, match="no password"):
            await second.submitRequest("GET", "/api/v3/jobs/1")
    assert sim.stats()["tokens_issued"] == 1


async def test_given_session_is_not_closed(sim: Simulator) -> None:
    """A session passed in carries every request and is left open for its owner."""
    session, sent = tracing_session()
    async with session:
        async with VOVRestV3Async(environ=ENV, session=session) as vrest:
            await vrest.authorize(sim.url, "demo")
            await vrest.submitRequest("GET", "/api/v3/jobs/1")
        assert sent == ["POST /api/v3/token", "GET /api/v3/jobs/1"]
        async with session.get(sim.url + "/sim/stats") as response:
            assert response.status == 200


async def test_https_with_ca(sim_factory: SimFactory, tmp_path: Path) -> None:
    """Over HTTPS the CA bundle is used; without it the certificate is refused."""
    server = await sim_factory(tls=True)
    cafile = str(server.write_ca(tmp_path / "ca.pem"))
    async with VOVRestV3Async(environ=ENV, cafile=cafile) as vrest:
        await vrest.authorize(server.url, "demo")
        assert json.loads(await vrest.submitRequest("GET", "/api/v3/jobs/1"))["rows"]


# --- The ported example --------------------------------------------------------------------


async def run_script(script: Path, url: str, *job_ids: str) -> tuple[int, bytes, bytes]:
    """Run a script with the seed's environment; an asyncio subprocess keeps the sim serving."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REQUESTS_")}
    env.update(NC_URL=url, USER="demo", NC_PASSWORD="demo", PYTHONDEVMODE="0")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *job_ids,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout, stderr


async def test_example_matches_the_seed_byte_for_byte(sim_factory: SimFactory) -> None:
    """examples/nc_info_async.py prints exactly what the seed's nc_info.py prints."""
    server = await sim_factory(start_time=START)
    jobs = ("5", "000000008", "120", "1", "5")
    url = server.url + "/project"
    seed_code, seed_out, seed_err = await run_script(ROOT / "tests/seed/nc_info.py", url, *jobs)
    assert seed_code == 0, seed_err
    code, out, err = await run_script(ROOT / "examples/nc_info_async.py", url, *jobs)
    assert code == 0, err
    assert out == seed_out
    assert out.count(b"\n\n") == len(jobs)
    # One token for the seed run and one for the example's.
    assert server.stats()["tokens_issued"] == 2


async def test_example_reports_unknown_jobs(sim: Simulator) -> None:
    """An unknown ID is reported on stderr, the others are printed, and the exit status is 1."""
    code, out, err = await run_script(ROOT / "examples/nc_info_async.py", sim.url, "3", "99999")
    assert code == 1
    assert out.startswith(b"Job             000000003\n")
    assert b"job 99999: HTTP 404" in err
