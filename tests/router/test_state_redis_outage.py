"""The router's state while its Redis cannot be reached (a fault proxy in between): per replica in memory
("local") or picks refused ("refuse"), one warning and a gauge per outage, and Redis again once it answers."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import REGISTRY

from switchboard.router.v1 import router_pb2
from switchboard_router import metrics
from switchboard_router.state import FallbackState, Hold, HoldKind, RedisState, StateUnavailable
from switchboard_stack.faultproxy import FaultProxy

from ..redis_testing import REDIS_URL, fresh_namespace, redis_proxy, through, until_recovered
from .router_testing import Router, account


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with redis_proxy() as running:
        yield running


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    async with fresh_namespace() as name:
        yield name


def _through(proxy: FaultProxy, namespace: str, policy: str, **options: object) -> FallbackState:
    shared = RedisState(through(proxy), namespace, **options)  # type: ignore[arg-type]
    return FallbackState(shared, policy=policy, degraded=metrics.REDIS_DEGRADED,
                         degraded_operations=metrics.REDIS_DEGRADED_OPERATIONS, probe_interval=0.1)


@asynccontextmanager
async def _local_and_another(proxy: FaultProxy, namespace: str) -> AsyncIterator[tuple[FallbackState, RedisState]]:
    """A replica reaching Redis through `proxy` with the "local" policy, and another straight on Redis."""
    state, other = _through(proxy, namespace, "local"), RedisState(REDIS_URL, namespace)
    await state.start()
    await other.start()
    try:
        yield state, other
    finally:
        await state.close()
        await other.close()


def _degraded() -> float:
    return REGISTRY.get_sample_value("switchboard_router_redis_degraded") or 0.0


async def test_local_state_while_redis_is_gone_then_redis_again(proxy: FaultProxy, namespace: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    async with _local_and_another(proxy, namespace) as (state, other):
        until = time.time() + 600
        await state.bind("conv", "p/a", 600)
        await state.put_hold("p/a", "", Hold(HoldKind.THROTTLED, until, "429"))
        assert await state.acquire("p/b", "lease-1", 2, until)
        await proxy.down()

        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            await state.bind("conv-2", "p/b", 600)
            assert time.monotonic() - started < 2.5, "a Redis that is gone costs about a second, once"
            assert await state.session("conv-2", 600) == "p/b"  # stickiness in this replica's memory
            await state.put_hold("p/c", "", Hold(HoldKind.OVERLOADED, until, "529"))
            assert await state.acquire("p/b", "lease-2", 2, until)  # Redis's lease-1 still counts:
            assert not await state.acquire("p/b", "lease-3", 2, until)  # ... the limit of 2 is reached
            for _ in range(20):
                await state.session("conv-2", 600)
        outage_warnings = [r for r in caplog.records if "redis unreachable for router state" in r.message]
        assert len(outage_warnings) == 1
        assert _degraded() == 1.0 and not state.refusing()
        health = state.health()
        assert {hold.kind for hold in (health.hold_on("p/a"), health.hold_on("p/c")) if hold} == {
            HoldKind.THROTTLED, HoldKind.OVERLOADED}  # Redis's last snapshot and this replica's, together
        assert state.in_flight()["p/b"] == 2

        await proxy.resume()
        await until_recovered(state.outage)
        assert _degraded() == 0.0
        assert await state.session("conv", 600) == "p/a"  # Redis's binding from before the outage
        assert await state.session("conv-2", 600) is None  # the outage's was this replica's alone
        await state.bind("conv-3", "p/c", 600)
        assert await other.session("conv-3", 600) == "p/c"  # shared again


async def test_a_slot_taken_before_the_outage_and_ended_during_it_is_free_here_and_in_redis_after(
        proxy: FaultProxy, namespace: str) -> None:
    async with _local_and_another(proxy, namespace) as (state, other):
        until = time.time() + 600
        assert await state.acquire("p/one", "before", 1, until)  # the account's only slot, in Redis
        await proxy.down()
        assert not await state.acquire("p/one", "during-1", 1, until)  # Redis's lease still runs: full
        await state.release("p/one", "before")  # its request ends during the outage
        assert state.in_flight().get("p/one", 0) == 0
        assert await state.acquire("p/one", "during-2", 1, until)  # so the slot is free here
        await state.release("p/one", "during-2")
        await proxy.resume()
        await until_recovered(state.outage)
        # Redis was told: the slot is free there too (not held until the lease TTL), for every replica.
        assert await other.acquire("p/one", "after", 1, until)


async def test_refuse_policy_refuses_picks_while_redis_is_gone(proxy: FaultProxy, namespace: str,
                                                                router: Router) -> None:
    router.set_accounts([account("a")])
    state = _through(proxy, namespace, "refuse", clock=router.clock)
    await state.start()
    router.servicer.state = state
    try:
        assert (await router.pick()).status == router_pb2.PICK_STATUS_OK
        await proxy.down()
        for _ in range(3):
            refused = await router.pick(session_hint="conv", key_id="k")
            assert refused.status == router_pb2.PICK_STATUS_NO_ACCOUNT
            assert refused.retry_after.seconds == 1 and "shared state" in refused.message
        refused = await router.pick()  # no session: the slot is what reaches Redis
        assert refused.status == router_pb2.PICK_STATUS_NO_ACCOUNT
        assert state.refusing() and _degraded() == 1.0
        with pytest.raises(StateUnavailable):
            await state.bind("conv", "claude-console/a", 60)
        await proxy.resume()
        await until_recovered(state.outage)
        assert (await router.pick(session_hint="conv", key_id="k")).status == router_pb2.PICK_STATUS_OK
    finally:
        await state.close()


async def test_refuse_policy_refuses_a_pick_that_finds_redis_gone_at_its_slot(proxy: FaultProxy, namespace: str,
                                                                              router: Router) -> None:
    router.set_accounts([account("a")])
    state = _through(proxy, namespace, "refuse", clock=router.clock)
    await state.start()
    router.servicer.state = state
    try:
        await proxy.down()
        refused = await router.pick()  # no session, no holder: taking the slot is the first Redis call
        assert refused.status == router_pb2.PICK_STATUS_NO_ACCOUNT and "shared state" in refused.message
        assert len(router.leases) == 0, "the lease taken for it went back"
    finally:
        await proxy.resume()
        await state.close()
