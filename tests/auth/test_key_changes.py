"""Key changes pushed: the cache forgets a changed key at once, and every watcher hears of it."""

import asyncio
from datetime import UTC, datetime

from switchboard_auth.cache import KeyCache
from switchboard_auth.key_changes import KeyChanges
from switchboard_auth.keys import KeyRecord, KeyState
from switchboard_auth.policy import CompiledKey

from .auth_testing import ManualClock


def compiled(key_id: str) -> CompiledKey:
    return CompiledKey.of(KeyRecord(key_id=key_id, name=key_id, key_hash=key_id, state=KeyState.ACTIVE,
                                    created_at=datetime.now(UTC)))


async def test_forget_drops_the_changed_key_and_every_not_found_answer_at_once() -> None:
    stored = {"hash-a": compiled("key_aaaaaaaaaaaa"), "hash-b": compiled("key_bbbbbbbbbbbb")}
    lookups: list[str] = []

    async def load(key_hash: str) -> CompiledKey | None:
        lookups.append(key_hash)
        return stored.get(key_hash)

    cache = KeyCache(load, ttl_seconds=3600, max_entries=10, clock=ManualClock(0))
    for key_hash in ("hash-a", "hash-b", "hash-new"):
        await cache.get(key_hash)
    stored["hash-new"] = compiled("key_cccccccccccc")  # created after its hash was looked up in vain
    cache.forget(frozenset({"key_aaaaaaaaaaaa"}))
    lookups.clear()
    assert (await cache.get("hash-new")) is not None
    await cache.get("hash-a")
    await cache.get("hash-b")  # still cached: not changed
    assert lookups == ["hash-new", "hash-a"]
    cache.forget(None)
    lookups.clear()
    await cache.get("hash-b")
    assert lookups == ["hash-b"]


async def test_a_lookup_under_way_when_a_key_changes_does_not_store_its_stale_answer() -> None:
    gate = asyncio.Event()
    answers = iter([compiled("key_aaaaaaaaaaaa"), None])

    async def load(key_hash: str) -> CompiledKey | None:
        await gate.wait()
        return next(answers)

    cache = KeyCache(load, ttl_seconds=3600, max_entries=10, clock=ManualClock(0))
    stale = asyncio.create_task(cache.get("hash-a"))
    await asyncio.sleep(0)
    cache.forget(frozenset({"key_aaaaaaaaaaaa"}))  # e.g. deleted while the store was being read
    gate.set()
    assert (await stale) is not None  # that caller got the old answer...
    assert (await cache.get("hash-a")) is None  # ...but it was not kept


async def test_watchers_hear_everything_first_then_each_change_and_the_replica_forgets() -> None:
    forgotten: list[frozenset[str] | None] = []
    changes = KeyChanges(forgotten.append)
    watcher = changes.watch()
    assert await anext(watcher) is None  # a new watcher cannot know what it missed
    changes.publish(["key_aaaaaaaaaaaa"])
    assert await anext(watcher) == frozenset({"key_aaaaaaaaaaaa"})
    assert forgotten == [frozenset({"key_aaaaaaaaaaaa"})]
    for n in range(100):  # a watcher far behind is told to forget everything instead
        changes.publish([f"key_{n:012d}"])
    assert await anext(watcher) is None
    await watcher.aclose()


async def test_follow_publishes_what_the_change_log_gains() -> None:
    log: list[str] = ["key_before"]

    async def changes_since(seq: int) -> tuple[int, list[str]]:
        return len(log), log[seq:] if seq >= 0 else []

    forgotten: list[frozenset[str] | None] = []
    changes = KeyChanges(forgotten.append)
    following = asyncio.create_task(changes.follow(changes_since, poll_seconds=0.01))
    await asyncio.sleep(0.05)
    assert forgotten == []  # what happened before it started is not news
    log.append("key_disabled")
    for _ in range(100):
        if forgotten:
            break
        await asyncio.sleep(0.01)
    assert forgotten == [frozenset({"key_disabled"})]
    following.cancel()
