"""Tier 1: the single-flight token manager, driven by a counting token source."""

from __future__ import annotations

import asyncio

import pytest

from ncinfo_async._auth import TokenManager
from ncinfo_async._exceptions import AuthError
from ncinfo_async._protocol import Token

# Coroutines, but no socket or process: part of the fast tier.
pytestmark = pytest.mark.pure


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


class GatedSource:
    """Issues numbered tokens only when the test opens the gate; counts the requests."""

    def __init__(self, *, fail: BaseException | None = None) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> Token:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return Token("Bearer", f"t{self.calls}", None)


async def ticks(n: int) -> None:
    """Let the event loop run ``n`` rounds (no wall clock involved)."""
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_all_renewal_waiters_are_released_together() -> None:
    """When a renewal completes, its 200 waiters all resume at once, not one per loop round."""
    source = GatedSource()
    manager = TokenManager(source, margin=60.0, initial=Token("Bearer", "t0", None))
    tasks = [asyncio.create_task(manager.renew(1)) for _ in range(200)]
    await source.started.wait()
    await ticks(2)
    assert not any(task.done() for task in tasks)
    source.gate.set()
    await ticks(3)  # a lock handed from task to task would have released about three
    assert all(task.done() for task in tasks)
    assert {task.result()[0].access_token for task in tasks} == {"t1"}
    assert source.calls == 1


@pytest.mark.asyncio
async def test_each_revocation_costs_one_renewal_and_stale_requests_catch_up() -> None:
    """Revocation after revocation: one token request each; a request holding any older
    generation gets the newest token without another request."""
    source = Source(lifetime=None)
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    _, first = await manager.current()
    for revocation in range(1, 6):
        _, newest = await manager.current()
        renewed = await asyncio.gather(*(manager.renew(newest) for _ in range(100)))
        assert {generation for _, generation in renewed} == {newest + 1}
        assert source.calls == 1 + revocation
        # A request that carried the very first token and met a 401 only now catches up.
        token, generation = await manager.renew(first)
        assert (token.access_token, generation) == (f"t{1 + revocation}", newest + 1)
        assert source.calls == 1 + revocation


@pytest.mark.asyncio
async def test_a_failed_renewal_fails_its_waiters_once_then_may_be_retried() -> None:
    """A token request that failed (not refused) fails all its waiters with one request;
    a later renewal tries again."""
    from ncinfo_async._exceptions import ConnectError

    source = GatedSource(fail=ConnectError("cannot connect"))
    manager = TokenManager(source, margin=60.0, initial=Token("Bearer", "t0", None))
    tasks = [asyncio.create_task(manager.renew(1)) for _ in range(20)]
    await source.started.wait()
    source.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(outcome, ConnectError) for outcome in outcomes)
    assert source.calls == 1
    source.fail = None
    assert (await manager.renew(1))[0].access_token == "t2"


@pytest.mark.asyncio
async def test_a_cancelled_renewer_hands_the_renewal_to_a_waiter() -> None:
    """If the task renewing is cancelled, a waiter renews instead: nobody waits forever."""
    source = GatedSource()
    manager = TokenManager(source, margin=60.0, initial=Token("Bearer", "t0", None))
    renewer = asyncio.create_task(manager.renew(1))
    await source.started.wait()
    waiter = asyncio.create_task(manager.renew(1))
    await ticks(2)
    renewer.cancel()
    source.gate.set()
    token, generation = await asyncio.wait_for(waiter, 10)  # a hang guard only
    assert (token.access_token, generation) == ("t2", 2)
    assert source.calls == 2


@pytest.mark.asyncio
async def test_an_unconfirmed_token_admits_one_request_until_settled() -> None:
    """A cached token goes to one caller at a time until its request is settled."""
    source = Source()
    cached = Token("Bearer", "cached", source.now + 3600)
    manager = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    assert not manager.confirmed
    first, generation = await manager.current()
    others = [asyncio.create_task(manager.current()) for _ in range(50)]
    await ticks(3)
    assert not any(task.done() for task in others)
    # Holding the token without sending with it (a login check) is not held back.
    assert (await manager.current(send=False))[0] is cached
    manager.settle(generation)
    await ticks(3)
    assert all(task.done() for task in others)
    assert {task.result()[0] for task in others} == {first}
    assert manager.confirmed
    assert source.calls == 0


@pytest.mark.asyncio
async def test_a_refused_unconfirmed_token_is_replaced_once_for_every_waiter() -> None:
    """The one request a cached token admitted met a 401: one renewal, and every waiter
    gets the new, trusted token."""
    source = Source()
    cached = Token("Bearer", "cached", source.now + 3600)
    manager = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    _, generation = await manager.current()
    others = [asyncio.create_task(manager.current()) for _ in range(50)]
    await ticks(3)
    token, _ = await manager.renew(generation)
    results = await asyncio.gather(*others)
    assert {got for got, _ in results} == {token}
    assert token.access_token == "t1"
    assert manager.confirmed
    assert source.calls == 1


@pytest.mark.asyncio
async def test_a_refused_renewal_of_an_unconfirmed_token_fails_every_waiter() -> None:
    """A cached token refused, then the password refused: waiters raise, nobody hangs."""
    source = Source(refuse=True)
    cached = Token("Bearer", "cached", source.now + 3600)
    manager = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    _, generation = await manager.current()
    others = [asyncio.create_task(manager.current()) for _ in range(10)]
    await ticks(3)
    with pytest.raises(AuthError):
        await manager.renew(generation)
    outcomes = await asyncio.gather(*others, return_exceptions=True)
    assert all(isinstance(outcome, AuthError) for outcome in outcomes)
    assert source.calls == 1


@pytest.mark.asyncio
async def test_a_confirmed_cached_token_is_renewed_when_later_revoked() -> None:
    """A cached token that was settled and later met a 401 is replaced by one token request."""
    source = Source()
    cached = Token("Bearer", "cached", source.now + 3600)
    manager = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    _, generation = await manager.current()
    manager.settle(generation)
    token, newer = await manager.renew(generation)
    assert (token.access_token, newer) == ("t1", generation + 1)
    assert (await manager.current())[0] is token
    assert source.calls == 1


@pytest.mark.asyncio
async def test_settling_another_generation_leaves_a_cached_token_unconfirmed() -> None:
    """Only a request made with the current token confirms it; any other generation does not."""
    source = Source()
    cached = Token("Bearer", "cached", source.now + 3600)
    manager = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    _, generation = await manager.current()
    manager.settle(generation - 1)
    assert not manager.confirmed
    waiter = asyncio.create_task(manager.current())
    await ticks(3)
    assert not waiter.done()
    manager.settle(generation)
    assert (await waiter)[0] is cached


@pytest.mark.asyncio
async def test_ready_only_for_a_confirmed_token_not_due_for_renewal() -> None:
    """ready() gives the token without awaiting only when current() would not wait or ask."""
    source = Source()
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    assert manager.ready() is None  # no token yet
    token, generation = await manager.current()
    assert manager.ready() == (token, generation)
    source.now = token.expires_at - 61  # type: ignore[operator]
    assert manager.ready() == (token, generation)
    source.now += 1  # within the margin: due for renewal
    assert manager.ready() is None
    cached = Token("Bearer", "cached", source.now + 3600)
    unconfirmed = TokenManager(source, margin=60.0, initial=cached, clock=lambda: source.now)
    assert unconfirmed.ready() is None  # the server has not accepted it yet
    unconfirmed.settle(unconfirmed.generation)
    assert unconfirmed.ready() == (cached, 1)


@pytest.mark.asyncio
async def test_ready_says_no_after_a_refused_renewal_until_a_token_is_given() -> None:
    """After a refusal ready() is None (current() raises it); use() starts afresh."""
    source = Source()
    manager = TokenManager(source, margin=60.0, clock=lambda: source.now)
    _, generation = await manager.current()
    source.refuse = True
    with pytest.raises(AuthError):
        await manager.renew(generation)
    assert manager.ready() is None
    given = Token("Bearer", "given", None)
    manager.use(given)
    assert manager.ready() is None  # unconfirmed, as a cached token
    assert await manager.current() == (given, generation + 1)
