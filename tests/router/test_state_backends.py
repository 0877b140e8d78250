"""One behavioural suite for both router state backends, and what only Redis can show: two replicas.

Redis comes from SWITCHBOARD_TEST_REDIS_URL (default redis://127.0.0.1:6379/0);
each test gets its own namespace and deletes its keys. Without Redis the Redis
cases skip on a developer's machine and fail in CI (CI=true).
Expiry is shown with real, short TTLs.
"""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from switchboard_router.state import (
    Health,
    Hold,
    HoldKind,
    MemoryState,
    RedisState,
    RouterState,
    StateUnavailable,
    Window,
)

from ..redis_testing import REDIS_URL, fresh_namespace, redis_client

SHORT = 0.3  # seconds: a TTL that runs out within the test


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    async with fresh_namespace() as name:
        yield name


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[RouterState]:
    async with contextlib.AsyncExitStack() as stack:
        backend: RouterState
        if request.param == "memory":
            backend = MemoryState()
        else:
            backend = RedisState(REDIS_URL, await stack.enter_async_context(fresh_namespace()))
        await backend.start()
        stack.push_async_callback(backend.close)
        yield backend


async def eventually(check: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        await asyncio.sleep(0.02)


# Holds.


async def test_holds_with_and_without_expiry(state: RouterState) -> None:
    throttled = Hold(HoldKind.THROTTLED, time.time() + SHORT, "429")
    refused = Hold(HoldKind.ERROR, None, "401 invalid x-api-key")
    await state.put_hold("team-a", "", throttled)
    await state.put_hold("team-b", "", refused)
    assert state.health().holds == {("team-a", ""): (throttled,), ("team-b", ""): (refused,)}

    await asyncio.sleep(SHORT + 0.05)
    assert state.health().hold_on("team-a") is None
    assert state.health().hold_on("team-b") == refused


async def test_holds_per_family(state: RouterState) -> None:
    now = time.time()
    opus = Hold(HoldKind.WINDOW, now + 60, "opus weekly limit")
    await state.put_hold("team-a", "opus", opus)
    health = state.health()
    assert health.hold_on("team-a", "opus") == opus
    assert health.hold_on("team-a", "sonnet") is None
    assert health.hold_on("team-a") is None

    overloaded = Hold(HoldKind.OVERLOADED, now + 30, "529")
    await state.put_hold("team-a", "", overloaded)
    health = state.health()
    assert health.hold_on("team-a", "sonnet") == overloaded
    assert health.hold_on("team-a", "opus") == opus  # the one ending last decides


async def test_a_hold_replaces_one_of_its_kind(state: RouterState) -> None:
    await state.put_hold("team-a", "", Hold(HoldKind.THROTTLED, time.time() + 60, "first"))
    second = Hold(HoldKind.THROTTLED, time.time() + 5, "second")
    await state.put_hold("team-a", "", second)
    assert state.health().holds == {("team-a", ""): (second,)}


async def test_clear_holds_by_kind(state: RouterState) -> None:
    until = time.time() + 60
    refused = Hold(HoldKind.ERROR, None, "403")
    await state.put_hold("team-a", "", Hold(HoldKind.THROTTLED, until, "429"))
    await state.put_hold("team-a", "opus", Hold(HoldKind.OVERLOADED, until, "529"))
    await state.put_hold("team-a", "", refused)
    await state.put_hold("team-b", "", Hold(HoldKind.THROTTLED, until, "429"))

    await state.clear_holds("team-a", frozenset())
    assert len(state.health().holds) == 3

    await state.clear_holds("team-a", frozenset({HoldKind.THROTTLED, HoldKind.OVERLOADED}))
    assert set(state.health().holds) == {("team-a", ""), ("team-b", "")}
    assert state.health().hold_on("team-a") == refused

    await state.clear_holds("team-a")
    assert set(state.health().holds) == {("team-b", "")}


# Windows.


async def test_windows_are_kept_until_they_reset(state: RouterState) -> None:
    five_hours = Window("5h", 0.97, time.time() + SHORT)
    seven_days = Window("7d", 0.4, time.time() + 60)
    await state.put_window("team-a", "", five_hours)
    await state.put_window("team-a", "", seven_days)
    await state.put_window("team-a", "opus", Window("7d", 1.0, None))
    windows = state.health().windows
    assert set(windows[("team-a", "")]) == {five_hours, seven_days}
    assert windows[("team-a", "opus")] == (Window("7d", 1.0, None),)

    newer = Window("7d", 0.5, seven_days.resets_at)
    await state.put_window("team-a", "", newer)
    await asyncio.sleep(SHORT + 0.05)
    assert state.health().windows[("team-a", "")] == (newer,)


# Circuit breaker.


async def test_breaker_opens_at_threshold_and_a_success_closes_it(state: RouterState) -> None:
    assert await state.record_failure("team-a", threshold=3, open_seconds=30) is None
    assert await state.record_failure("team-a", threshold=3, open_seconds=30) is None
    opened = await state.record_failure("team-a", threshold=3, open_seconds=30)
    assert opened is not None and opened.kind is HoldKind.BREAKER
    assert opened.until is not None and 29 < opened.until - time.time() <= 30
    assert state.health().hold_on("team-a") == opened

    # The count started again when it opened.
    assert await state.record_failure("team-a", threshold=3, open_seconds=30) is None

    await state.record_success("team-a")
    assert state.health().hold_on("team-a") is None
    # ... and the success ended the streak.
    assert await state.record_failure("team-a", threshold=3, open_seconds=30) is None
    assert await state.record_failure("team-a", threshold=3, open_seconds=30) is None


async def test_breaker_closes_by_itself_and_leaves_other_holds(state: RouterState) -> None:
    refused = Hold(HoldKind.ERROR, None, "401")
    await state.put_hold("team-a", "", refused)
    opened = await state.record_failure("team-a", threshold=1, open_seconds=SHORT)
    assert opened is not None
    assert set(state.health().holds[("team-a", "")]) == {refused, opened}
    await asyncio.sleep(SHORT + 0.05)
    assert state.health().holds[("team-a", "")] == (refused,)

    await state.record_failure("team-a", threshold=1, open_seconds=30)
    await state.record_success("team-a")
    assert state.health().holds[("team-a", "")] == (refused,)


async def test_a_half_open_breaker_reopens_on_one_failure_and_a_success_closes_it(state: RouterState) -> None:
    assert await state.record_failure("team-a", threshold=2, open_seconds=30) is None
    assert await state.record_failure("team-a", threshold=2, open_seconds=30) is not None
    await state.record_success("team-a")  # a request already in flight got through: closed, not half-open
    assert state.health().half_open == frozenset() and state.health().hold_on("team-a") is None

    await state.record_failure("team-a", threshold=2, open_seconds=SHORT)
    assert await state.record_failure("team-a", threshold=2, open_seconds=SHORT) is not None
    assert state.health().half_open == frozenset()  # open, not yet half-open
    await asyncio.sleep(SHORT + 0.05)
    assert state.health().half_open == {"team-a"} and state.health().hold_on("team-a") is None
    reopened = await state.record_failure("team-a", threshold=2, open_seconds=SHORT)  # the probe failed
    assert reopened is not None and state.health().hold_on("team-a") == reopened
    await asyncio.sleep(SHORT + 0.05)
    assert state.health().half_open == {"team-a"}
    await state.record_success("team-a")  # the probe got through
    assert state.health().half_open == frozenset()
    assert await state.record_failure("team-a", threshold=2, open_seconds=SHORT) is None  # counting afresh


# Sessions.


async def test_sessions_slide_and_unbind(state: RouterState) -> None:
    await state.bind("conversation-1", "team-a", ttl=0.4)
    for _ in range(3):  # 3 × 0.2 s outlives the first TTL only because each read renews it
        await asyncio.sleep(0.2)
        assert await state.session("conversation-1", ttl=0.4) == "team-a"
    await state.unbind("conversation-1")
    assert await state.session("conversation-1", ttl=SHORT) is None
    await state.unbind("conversation-1")


async def test_a_session_nobody_reads_expires(state: RouterState) -> None:
    await state.bind("conversation-1", "team-a", ttl=0.1)
    await state.bind("conversation-2", "team-b", ttl=60)
    await asyncio.sleep(0.15)
    assert await state.session("conversation-1", ttl=60) is None
    assert await state.session("conversation-2", ttl=60) == "team-b"


# Concurrency slots.


async def test_slots_honour_the_limit_under_concurrency(state: RouterState) -> None:
    expires_at = time.time() + 60
    taken = await asyncio.gather(*(state.acquire("team-a", f"lease-{i}", 5, expires_at) for i in range(50)))
    assert sum(taken) == 5
    assert state.in_flight() == {"team-a": 5}


async def test_expired_leases_free_their_slot(state: RouterState) -> None:
    assert await state.acquire("team-a", "crashed", 1, time.time() + SHORT)
    assert not await state.acquire("team-a", "waiting", 1, time.time() + 60)
    await asyncio.sleep(SHORT + 0.05)
    assert state.in_flight() == {}
    assert await state.acquire("team-a", "waiting", 1, time.time() + 60)
    assert state.in_flight() == {"team-a": 1}


async def test_release_is_idempotent_and_frees_the_slot(state: RouterState) -> None:
    expires_at = time.time() + 60
    assert await state.acquire("team-a", "lease-1", 1, expires_at)
    assert await state.acquire("team-a", "lease-1", 1, expires_at)  # the same lease again: still one slot
    assert state.in_flight() == {"team-a": 1}
    await state.release("team-a", "lease-1")
    await state.release("team-a", "lease-1")
    await state.release("team-a", "never-taken")
    assert state.in_flight() == {}
    assert await state.acquire("team-a", "lease-2", 1, expires_at)


async def test_unlimited_slots_are_still_counted(state: RouterState) -> None:
    expires_at = time.time() + 60
    assert all([await state.acquire("team-a", f"lease-{i}", 0, expires_at) for i in range(7)])
    assert state.in_flight() == {"team-a": 7}


async def test_extend_keeps_a_live_lease_only(state: RouterState) -> None:
    assert await state.acquire("team-a", "lease-1", 1, time.time() + SHORT)
    assert await state.extend("team-a", "lease-1", time.time() + 60)
    await asyncio.sleep(SHORT + 0.05)
    assert state.in_flight() == {"team-a": 1}
    assert not await state.acquire("team-a", "lease-2", 1, time.time() + 60)
    await state.release("team-a", "lease-1")
    assert not await state.extend("team-a", "lease-1", time.time() + 60)
    assert state.in_flight() == {}


async def test_extend_all_moves_every_live_lease_of_a_heartbeat(state: RouterState) -> None:
    for lease in ("lease-1", "lease-2"):
        assert await state.acquire("team-a", lease, 0, time.time() + SHORT)
    assert await state.acquire("team-b", "lease-3", 0, time.time() + SHORT)
    await state.release("team-b", "lease-3")
    await state.extend_all([("team-a", "lease-1"), ("team-a", "lease-2"), ("team-b", "lease-3")], time.time() + 60)
    await asyncio.sleep(SHORT + 0.05)
    assert state.in_flight() == {"team-a": 2}  # the released lease stays released
    await state.extend_all([], time.time() + 60)


# Managed accounts.


async def test_accounts_put_delete_list(state: RouterState) -> None:
    start = state.accounts_version()
    waiter = asyncio.create_task(state.wait_accounts_changed(start))
    await state.put_account("claude-console/team-a", b'{"platform": "anthropic"}')
    assert await asyncio.wait_for(waiter, 2.0) > start
    await state.put_account("openai/team-b", b"\x00binary\xff")
    assert await state.accounts() == {
        "claude-console/team-a": b'{"platform": "anthropic"}',
        "openai/team-b": b"\x00binary\xff",
    }
    before = state.accounts_version()
    await state.delete_account("claude-console/team-a")
    await state.delete_account("claude-console/team-a")
    assert state.accounts_version() > before
    assert await state.accounts() == {"openai/team-b": b"\x00binary\xff"}


# Redis only: two replicas on one namespace.


async def test_two_replicas_see_each_other_within_two_seconds(namespace: str) -> None:
    one, two = RedisState(REDIS_URL, namespace), RedisState(REDIS_URL, namespace)
    await one.start()
    await two.start()
    try:
        # Leases publish nothing: the periodic reload brings them.
        for i in range(3):
            assert await one.acquire("team-a", f"lease-{i}", 3, time.time() + 60)
        await eventually(lambda: two.in_flight() == {"team-a": 3})
        assert not await two.acquire("team-a", "lease-3", 3, time.time() + 60)  # the limit is shared

        hold = Hold(HoldKind.THROTTLED, time.time() + 60, "429")
        window = Window("5h", 0.8, time.time() + 60)
        version = two.accounts_version()
        await one.put_hold("team-a", "opus", hold)
        await one.put_window("team-a", "", window)
        await one.bind("conversation-1", "team-a", ttl=60)
        await one.put_account("team-a", b"record")

        await eventually(lambda: two.health().hold_on("team-a", "opus") == hold)
        await eventually(lambda: two.health().windows.get(("team-a", "")) == (window,))
        await eventually(lambda: two.accounts_version() != version)
        assert await two.accounts() == {"team-a": b"record"}
        assert await two.session("conversation-1", ttl=60) == "team-a"

        await two.clear_holds("team-a")
        await two.release("team-a", "lease-0")
        await eventually(lambda: one.health().hold_on("team-a", "opus") is None)
        await eventually(lambda: one.in_flight() == {"team-a": 2})
    finally:
        await one.close()
        await two.close()


async def test_redis_keys_are_namespaced_and_expire(namespace: str) -> None:
    state = RedisState(REDIS_URL, namespace)
    await state.start()
    client = await redis_client()
    try:
        await state.put_hold("team-a", "", Hold(HoldKind.THROTTLED, time.time() + SHORT, "429"))
        await state.put_window("team-a", "", Window("5h", 0.5, time.time() + SHORT))
        await state.acquire("team-a", "lease-1", 1, time.time() + SHORT)
        await state.record_failure("team-a", threshold=5, open_seconds=30)
        await state.bind("conversation-1", "team-a", ttl=SHORT)
        keys = {key.decode() async for key in client.scan_iter(match=f"{namespace}:*")}
        prefix = f"{namespace}:router:"
        assert keys == {
            prefix + name
            for name in (
                "hold:team-a",
                "window:team-a",
                "slots:team-a",
                "breaker:team-a",
                "session:conversation-1",
                "live",
            )
        }
        for key in keys:
            assert await client.pttl(key) > 0, key

        await asyncio.sleep(SHORT + 0.05)
        remaining = {key.decode() async for key in client.scan_iter(match=f"{namespace}:*")}
        assert remaining == {prefix + "breaker:team-a"}  # a failure streak outlives the holds
    finally:
        await client.aclose()
        await state.close()


async def test_an_unreachable_redis_is_state_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = RedisState(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(StateUnavailable):
        await state.start()
    with pytest.raises(StateUnavailable):
        await state.put_hold("team-a", "", Hold(HoldKind.THROTTLED, time.time() + 60, "429"))
    assert state.health() == Health()
    await state.close()
