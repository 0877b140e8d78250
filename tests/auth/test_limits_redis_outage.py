"""Limits while their Redis cannot be reached (a fault proxy in between): per replica in memory ("local") or
refused ("refuse"), one warning and a gauge per outage, and back to Redis, missing none of the outage's
charges, once it answers."""

import logging
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from switchboard_auth.keys import KeyLimits
from switchboard_auth.limits import DAILY, RPM, FallbackLimiter, LimitsUnavailable, RedisLimiter
from switchboard_stack.faultproxy import FaultProxy

from ..redis_testing import fresh_namespace, redis_proxy, through, until_recovered
from .test_limits import NOW


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with redis_proxy() as running:
        yield running


def _degraded() -> float:
    return REGISTRY.get_sample_value("switchboard_auth_redis_degraded") or 0.0


def _degraded_operations() -> float:
    return REGISTRY.get_sample_value("switchboard_auth_redis_degraded_operations_total") or 0.0


async def _limiter(proxy: FaultProxy, namespace: str, policy: str) -> FallbackLimiter:
    shared = RedisLimiter(through(proxy), namespace)
    return FallbackLimiter(shared, policy=policy, probe_interval=0.1)


async def test_local_limits_while_redis_is_gone_then_redis_again(proxy: FaultProxy,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    limits = KeyLimits(requests_per_minute=3, daily_budget_micro_usd=1000)
    async with fresh_namespace() as namespace:
        limiter = await _limiter(proxy, namespace, "local")
        try:
            assert (await limiter.admit("k", limits, NOW)).allowed
            assert (await limiter.admit("k", limits, NOW)).allowed  # two of three in Redis
            before = _degraded_operations()
            await proxy.down()
            with caplog.at_level(logging.WARNING, logger="switchboard_auth.limits"):
                started = time.monotonic()
                local = [await limiter.admit("k", limits, NOW) for _ in range(4)]
                assert time.monotonic() - started < 2.5, "a Redis that is gone costs about a second, once"
                await limiter.settle("k", limits, "", 10, 300, NOW)  # charged in memory, owed to Redis
            assert [check.allowed for check in local] == [True, True, True, False]  # this replica's own minute
            assert limiter.outage.down and _degraded() == 1.0
            assert _degraded_operations() - before == 5
            assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
            assert "redis unreachable for auth limits" in caplog.records[0].message

            await proxy.resume()
            await until_recovered(limiter.outage)
            assert _degraded() == 0.0
            third = await limiter.admit("k", limits, NOW)  # Redis's minute: the third of three
            assert third.allowed
            assert dict((s.name, s.remaining) for s in third.statuses)[DAILY] == 700  # the outage's 300 too
            refused = await limiter.admit("k", limits, NOW)
            assert not refused.allowed and refused.refused_by == RPM
        finally:
            await limiter.close()


async def test_an_admission_from_before_the_outage_ended_during_it_is_ended_in_redis(proxy: FaultProxy) -> None:
    limits = KeyLimits(concurrency=1)
    async with fresh_namespace() as namespace:
        limiter = await _limiter(proxy, namespace, "local")
        try:
            held = await limiter.admit("k", limits, NOW)
            assert held.allowed and held.admission_id
            await proxy.down()
            await limiter.settle("k", limits, held.admission_id, 10, 0, NOW + 1)  # its usage arrives meanwhile
            await proxy.resume()
            await until_recovered(limiter.outage)
            assert (await limiter.admit("k", limits, NOW + 2)).allowed, "the slot is free in Redis too"
        finally:
            await limiter.close()


async def test_a_stalled_redis_does_not_hang_admissions(proxy: FaultProxy) -> None:
    async with fresh_namespace() as namespace:
        limiter = await _limiter(proxy, namespace, "local")
        try:
            assert (await limiter.admit("k", KeyLimits(requests_per_minute=10), NOW)).allowed
            await proxy.blackhole()
            started = time.monotonic()
            assert (await limiter.admit("k", KeyLimits(requests_per_minute=10), NOW)).allowed
            assert time.monotonic() - started < 2.0
            assert limiter.outage.down
            await proxy.resume()
            await until_recovered(limiter.outage)
        finally:
            await limiter.close()


async def test_refuse_policy_refuses_while_redis_is_gone(proxy: FaultProxy) -> None:
    limits = KeyLimits(requests_per_minute=100)
    async with fresh_namespace() as namespace:
        limiter = await _limiter(proxy, namespace, "refuse")
        try:
            assert (await limiter.admit("k", limits, NOW)).allowed
            await proxy.down()
            for _ in range(3):
                with pytest.raises(LimitsUnavailable):
                    await limiter.admit("k", limits, NOW)
            assert _degraded() == 1.0
            await proxy.resume()
            await until_recovered(limiter.outage)
            assert (await limiter.admit("k", limits, NOW)).allowed
        finally:
            await limiter.close()
