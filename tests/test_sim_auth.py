"""Token issue and the Authorization check of the simulator (reference sections 2.1-2.3)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import aiohttp
import jwt
import pytest

from .simutil import FakeClock

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator

    from .conftest import Login, SimFactory

pytestmark = pytest.mark.asyncio


async def get_status(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with session.get(url, headers=headers) as response:
        await response.read()
        return response.status


async def test_token_issues_documented_shape(sim: Simulator) -> None:
    """POST /api/v3/token with form fields returns token_type, a HS256 JWT and expires_in."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            sim.url + "/api/v3/token", data={"username": "demo", "password": "demo"}
        ) as response,
    ):
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 14400
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["sub"] == "demo"
    assert set(claims) >= {"sub", "iat", "exp", "jti"}
    assert 14399 <= claims["exp"] - claims["iat"] <= 14401
    assert abs(claims["iat"] - time.time()) < 60
    assert sim.stats()["tokens_issued"] == 1


@pytest.mark.parametrize(
    "form",
    [
        {"username": "demo", "password": "wrong"},
        {"username": "nobody", "password": "demo"},
        {"username": "demo"},
        {"password": "demo"},
        {},
    ],
)
async def test_token_rejects_bad_credentials(sim: Simulator, form: dict[str, str]) -> None:
    """Wrong or missing credentials get 401 with a JSON `error` string."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.url + "/api/v3/token", data=form) as response,
    ):
        assert response.status == 401
        body = await response.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert sim.stats()["unauthorized"] == 1
    assert sim.stats()["tokens_issued"] == 0


async def test_token_json_body_is_not_accepted(sim: Simulator) -> None:
    """The documented request is form-encoded; a JSON body has no form fields -> 401."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            sim.url + "/api/v3/token", json={"username": "demo", "password": "demo"}
        ) as response,
    ):
        assert response.status == 401


async def test_custom_users(sim_factory: SimFactory, login: Login) -> None:
    """Configured users log in with their own passwords; the default one no longer does."""
    server = await sim_factory(users={"alice": "s3cret", "bob": "pw"})
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url, "alice", "s3cret")
        assert await get_status(session, server.url + "/api/v3/jobs/1", headers) == 200
        async with session.post(
            server.url + "/api/v3/token", data={"username": "demo", "password": "demo"}
        ) as response:
            assert response.status == 401


async def test_documented_and_bearer_headers(sim: Simulator, login: Login) -> None:
    """Both `Bearer:<jwt>` (documented) and `Bearer <jwt>` are accepted by default."""
    async with aiohttp.ClientSession() as session:
        documented = await login(session, sim.url)
        token = documented["Authorization"].split(":", 1)[1]
        url = sim.url + "/api/v3/jobs/1"
        assert await get_status(session, url, documented) == 200
        assert await get_status(session, url, {"Authorization": f"Bearer {token}"}) == 200
        assert await get_status(session, url, {"Authorization": f"bearer:{token}"}) == 200
    assert sim.stats()["unauthorized"] == 0


async def test_no_bearer_rejects_rfc6750_form(sim_factory: SimFactory, login: Login) -> None:
    """With accept_bearer=False only the documented `Bearer:<jwt>` form passes."""
    server = await sim_factory(accept_bearer=False)
    async with aiohttp.ClientSession() as session:
        documented = await login(session, server.url)
        token = documented["Authorization"].split(":", 1)[1]
        url = server.url + "/api/v3/jobs/1"
        assert await get_status(session, url, documented) == 200
        assert await get_status(session, url, {"Authorization": f"Bearer {token}"}) == 401


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer:",
        "Bearer",
        "Basic:abc",
        "Bearer:not.a.jwt",
        "Bearer:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJl",
    ],
)
async def test_missing_or_malformed_token_is_401(sim: Simulator, header: str | None) -> None:
    """Every /api/v3 route needs a valid token: 401 with a JSON error otherwise."""
    headers = {} if header is None else {"Authorization": header}
    async with aiohttp.ClientSession() as session:
        for path in ("/api/v3/jobs/1", "/api/v3/query?from=jobs", "/api/v3/project/1/project"):
            async with session.get(sim.url + path, headers=headers) as response:
                assert response.status == 401, path
                assert (await response.json())["error"]
    assert sim.stats()["unauthorized"] == 3


async def test_forged_signature_is_rejected(sim: Simulator, login: Login) -> None:
    """A token with valid claims but signed with another key is refused."""
    forged = jwt.encode(
        {"sub": "demo", "iat": int(time.time()), "exp": int(time.time()) + 600, "jti": "x"},
        b"not-the-secret-key-of-the-simulator",
        algorithm="HS256",
    )
    async with aiohttp.ClientSession() as session:
        status = await get_status(
            session, sim.url + "/api/v3/jobs/1", {"Authorization": f"Bearer:{forged}"}
        )
    assert status == 401


async def test_token_expires_after_ttl(sim_factory: SimFactory, login: Login) -> None:
    """A token is refused as soon as its `exp` claim has passed; a fresh login works again."""
    clock = FakeClock()
    server = await sim_factory(token_ttl=0.5)
    server.state.tokens.clock = clock
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url)
        token = headers["Authorization"].split(":", 1)[1]
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        assert exp == clock() + 0.5
        url = server.url + "/api/v3/jobs/1"
        clock.advance(0.499)
        assert await get_status(session, url, headers) == 200
        clock.advance(0.001)  # exactly at exp
        async with session.get(url, headers=headers) as response:
            assert response.status == 401
            assert "expired" in (await response.json())["error"]
        assert await get_status(session, url, await login(session, server.url)) == 200


async def test_revoke_invalidates_all_tokens(sim: Simulator, login: Login) -> None:
    """Simulator.revoke() and POST /sim/revoke invalidate every issued token."""
    async with aiohttp.ClientSession() as session:
        url = sim.url + "/api/v3/jobs/1"
        first = await login(session, sim.url)
        second = await login(session, sim.url)
        assert await get_status(session, url, first) == 200
        sim.revoke()
        assert await get_status(session, url, first) == 401
        assert await get_status(session, url, second) == 401
        third = await login(session, sim.url)
        assert await get_status(session, url, third) == 200
        async with session.post(sim.url + "/sim/revoke") as response:
            assert response.status == 200
        assert await get_status(session, url, third) == 401
    assert sim.stats()["revocations"] == 2
