"""The key cache (cache.KeyCache): TTL for found and not-found answers, size bound, shared lookups."""

import asyncio
from datetime import UTC, datetime

import pytest

from switchboard_auth.cache import KeyCache
from switchboard_auth.errors import StoreError
from switchboard_auth.keys import KeyRecord, KeyState
from switchboard_auth.policy import CompiledKey

from .auth_testing import ManualClock


def compiled(name: str) -> CompiledKey:
    return CompiledKey.of(
        KeyRecord(key_id="key_0123456789ab", name=name, key_hash=name, state=KeyState.ACTIVE,
                  created_at=datetime.now(UTC))
    )


class Backend:
    """A fake store: counts lookups; `keys` can change underneath the cache."""

    def __init__(self) -> None:
        self.keys: dict[str, CompiledKey] = {}
        self.lookups: list[str] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def load(self, key_hash: str) -> CompiledKey | None:
        self.lookups.append(key_hash)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise StoreError("down")
        return self.keys.get(key_hash)


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


async def test_found_key_is_served_from_cache_until_ttl_then_reloaded(backend: Backend, clock: ManualClock) -> None:
    cache = KeyCache(backend.load, ttl_seconds=2.0, max_entries=10, clock=clock)
    backend.keys["h"] = compiled("a")
    assert (await cache.get("h")).record.name == "a"  # type: ignore[union-attr]
    del backend.keys["h"]  # deleted in the store
    clock.advance(1.9)
    assert await cache.get("h") is not None
    assert backend.lookups == ["h"]
    clock.advance(0.2)
    assert await cache.get("h") is None
    assert backend.lookups == ["h", "h"]


async def test_unknown_key_is_negatively_cached_for_ttl(backend: Backend, clock: ManualClock) -> None:
    cache = KeyCache(backend.load, ttl_seconds=2.0, max_entries=10, clock=clock)
    assert await cache.get("nope") is None
    assert await cache.get("nope") is None
    assert backend.lookups == ["nope"]
    backend.keys["nope"] = compiled("late")
    clock.advance(2.0)
    assert await cache.get("nope") is not None


async def test_size_is_bounded_per_kind_and_misses_cannot_evict_found_keys(
    backend: Backend, clock: ManualClock
) -> None:
    cache = KeyCache(backend.load, ttl_seconds=60, max_entries=3, clock=clock)
    for i in range(3):
        backend.keys[f"k{i}"] = compiled(f"k{i}")
        await cache.get(f"k{i}")
    for i in range(100):
        await cache.get(f"bogus{i}")
    assert len(cache) == 6
    backend.lookups.clear()
    for i in range(3):
        assert await cache.get(f"k{i}") is not None
    assert backend.lookups == []  # found keys survived the flood of misses
    backend.keys["k3"] = compiled("k3")
    await cache.get("k3")  # the oldest found entry (k0) goes
    backend.lookups.clear()
    await cache.get("k0")
    assert backend.lookups == ["k0"]


async def test_concurrent_misses_share_one_lookup(backend: Backend, clock: ManualClock) -> None:
    cache = KeyCache(backend.load, ttl_seconds=2.0, max_entries=10, clock=clock)
    backend.keys["h"] = compiled("a")
    backend.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.get("h")) for _ in range(20)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # one caller giving up does not cancel the lookup for the others
    backend.gate.set()
    results = await asyncio.gather(*waiters[1:])
    assert all(r is not None and r.record.name == "a" for r in results)
    assert backend.lookups == ["h"]


async def test_store_failures_propagate_and_are_not_cached(backend: Backend, clock: ManualClock) -> None:
    cache = KeyCache(backend.load, ttl_seconds=2.0, max_entries=10, clock=clock)
    backend.fail = True
    with pytest.raises(StoreError):
        await cache.get("h")
    backend.fail = False
    backend.keys["h"] = compiled("a")
    assert await cache.get("h") is not None


async def test_zero_ttl_means_every_call_reaches_the_store(backend: Backend, clock: ManualClock) -> None:
    cache = KeyCache(backend.load, ttl_seconds=0, max_entries=10, clock=clock)
    await cache.get("h")
    await cache.get("h")
    assert backend.lookups == ["h", "h"]
    assert len(cache) == 0
