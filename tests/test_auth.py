"""Tier 1: the single-flight token manager, driven by a counting token source."""

from __future__ import annotations

import asyncio

import pytest

from ncinfo_async._auth import TokenManager
from ncinfo_async._exceptions import AuthError
from ncinfo_async._protocol import Token


class Source:
    """Issues numbered tokens, optionally refusing, and counts the requests."""

    def __init__(self, *, lifetime: float | None = 3600.0, refuse: bool = False) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.refuse = refuse
        self.now = 1000.0

    async def __call__(self) -> Token:
        self.calls += 1
        await asyncio.sleep(0.01)  # let every other task pile up on the lock meanwhile
        if self.refuse:
            raise AuthError("the server refused the token request (HTTP 401)")
        expires = None if self.lifetime is None else self.now + self.lifetime
        return Token("Bearer", f"t{self.calls}", expires)


@pytest.mark.asyncio
async def test_concurrent_rejections_cause_one_renewal() -> None:
    """500 tasks that saw the same token rejected cause exactly one token request."""
    source = Source()
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    _, generation = await manager.current()
    renewed = await asyncio.gather(*(manager.renew(generation) for _ in range(500)))
    assert source.calls == 2
    assert {token.access_token for token, _ in renewed} == {"t2"}


@pytest.mark.asyncio
async def test_refusal_is_sticky_and_costs_one_request() -> None:
    """A refused token request fails every waiting task without another request."""
    source = Source(refuse=True)
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    outcomes = await asyncio.gather(*(manager.current() for _ in range(50)), return_exceptions=True)
    assert all(isinstance(outcome, AuthError) for outcome in outcomes)
    assert source.calls == 1
    with pytest.raises(AuthError):
        await manager.renew(0)
    assert source.calls == 1


@pytest.mark.asyncio
async def test_renews_shortly_before_expiry() -> None:
    """A token is renewed once within the margin before its exp, not before."""
    source = Source(lifetime=3600.0)
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    first, _ = await manager.current()
    source.now += 3600 - 61
    assert (await manager.current())[0] is first
    source.now += 2
    second, _ = await manager.current()
    assert second.access_token == "t2"
    assert source.calls == 2


@pytest.mark.asyncio
async def test_short_lived_tokens_are_not_renewed_on_every_request() -> None:
    """With a lifetime below the margin, renewal waits for three quarters of the lifetime."""
    source = Source(lifetime=8.0)
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    await manager.current()
    source.now += 5.9
    await manager.current()
    assert source.calls == 1
    source.now += 0.2
    await manager.current()
    assert source.calls == 2


@pytest.mark.asyncio
async def test_tokens_without_expiry_are_used_until_rejected() -> None:
    """A token with no known expiry is never renewed proactively."""
    source = Source(lifetime=None)
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    await manager.current()
    source.now += 10**6
    await manager.current()
    assert source.calls == 1


@pytest.mark.asyncio
async def test_a_cached_token_costs_no_request() -> None:
    """Starting from a still-valid token makes no token request."""
    source = Source()
    cached = Token("Bearer", "cached", source.now + 3600)
    manager = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    assert (await manager.current())[0] is cached
    assert source.calls == 0
