"""Auth while its PostgreSQL cannot be reached (a fault proxy in between): keys looked up recently are still
answered from the cache, usage batches are refused (the edge keeps them in its spool and sends them again),
and once the database is back the pool reconnects and every record is in the ledger once."""

import contextlib
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import REGISTRY

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.cache import KeyCache
from switchboard_auth.errors import StoreError
from switchboard_auth.keys import KeyHasher, create_key
from switchboard_auth.postgres_store import PostgresKeyStore, PostgresLedger
from switchboard_auth.service import AuthServicer
from switchboard_auth.store import open_stores
from switchboard_stack.faultproxy import FaultProxy

from .auth_testing import CACHE_TTL, PEPPER, ManualClock
from .store_backends import postgres_schema

ALLOW = auth_pb2.DECISION_ALLOW


def _stale_lookups() -> float:
    return REGISTRY.get_sample_value("switchboard_auth_stale_key_lookups_total") or 0.0


@dataclass
class Outage:
    proxy: FaultProxy
    stub: auth_pb2_grpc.AuthServiceStub
    direct_url: str  # the same database, not through the proxy
    cache_clock: ManualClock

    async def authorize(self, credential: str) -> auth_pb2.AuthorizeResponse:
        request = auth_pb2.AuthorizeRequest(credential=credential, platforms=["openai"], model="gpt-4o")
        return await self.stub.Authorize(request, timeout=10)

    async def record(self, *request_ids: str, key_id: str) -> int:
        records = [auth_pb2.UsageRecord(request_id=request_id, key_id=key_id, platform="openai", model="gpt-4o",
                                        usage=auth_pb2.TokenUsage(input_tokens=10, output_tokens=5))
                   for request_id in request_ids]
        reply = await self.stub.RecordUsage(auth_pb2.RecordUsageRequest(records=records), timeout=10)
        return int(reply.accepted)


@pytest.fixture
async def outage() -> AsyncIterator[Outage]:
    async with postgres_schema() as direct_url, contextlib.AsyncExitStack() as stack:
        parts = urllib.parse.urlsplit(direct_url)
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.start()
        stack.push_async_callback(proxy.close)
        netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
        stores = await open_stores(urllib.parse.urlunsplit(parts._replace(netloc=netloc)), "")
        stack.push_async_callback(stores.close)
        cache_clock = ManualClock(1000.0)
        servicer = AuthServicer(stores.keys, stores.ledger, hasher=KeyHasher(PEPPER), cache_ttl_seconds=CACHE_TTL,
                                cache_max_entries=100, clock=cache_clock, stale_keys_seconds=300)
        server = grpc.aio.server()
        servicer.register(server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        stack.push_async_callback(server.stop, None)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stack.push_async_callback(channel.close)
        yield Outage(proxy, auth_pb2_grpc.AuthServiceStub(channel), direct_url, cache_clock)


async def _ledger_request_ids(url: str, key_id: str) -> int:
    ledger = await PostgresLedger.open(url)
    try:
        summary = await ledger.summary(key_id=key_id)
        return summary[0].requests if summary else 0
    finally:
        await ledger.close()


async def _key(url: str, name: str) -> tuple[str, str]:
    keys = await PostgresKeyStore.open(url)
    try:
        secret, record = await create_key(keys, name, pepper=PEPPER)
        return secret, record.key_id
    finally:
        await keys.close()


async def test_cached_keys_work_usage_waits_and_nothing_is_lost_or_doubled(outage: Outage) -> None:
    secret, key_id = await _key(outage.direct_url, "team-a")
    unseen, _ = await _key(outage.direct_url, "team-b")
    assert (await outage.authorize(secret)).decision == ALLOW
    assert await outage.record("r1", key_id=key_id) == 1

    await outage.proxy.down()
    outage.cache_clock.advance(CACHE_TTL + 1)  # the cached lookup has expired: the store is asked, and fails
    before = _stale_lookups()
    for _ in range(3):
        assert (await outage.authorize(secret)).decision == ALLOW
    assert _stale_lookups() - before == 3
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await outage.authorize(unseen)  # never looked up: nothing to answer from
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as not_written:
        await outage.record("r2", "r3", key_id=key_id)  # the edge keeps the batch in its spool
    assert not_written.value.code() == grpc.StatusCode.UNAVAILABLE

    await outage.proxy.resume()
    assert await outage.record("r2", "r3", key_id=key_id) == 2  # the spool's batch, sent again: the pool reconnected
    assert await outage.record("r3", "r4", key_id=key_id) == 1  # a batch sent twice counts once
    assert await _ledger_request_ids(outage.direct_url, key_id) == 4
    assert (await outage.authorize(unseen)).decision == ALLOW
    outage.cache_clock.advance(CACHE_TTL + 1)
    stale = _stale_lookups()
    assert (await outage.authorize(secret)).decision == ALLOW
    assert _stale_lookups() == stale, "fresh from the store again"


async def test_a_stalled_database_answers_cached_keys_within_a_second_or_so(outage: Outage) -> None:
    secret, _ = await _key(outage.direct_url, "team-a")
    assert (await outage.authorize(secret)).decision == ALLOW
    await outage.proxy.blackhole()
    outage.cache_clock.advance(CACHE_TTL + 1)
    started = time.monotonic()
    assert (await outage.authorize(secret)).decision == ALLOW
    assert time.monotonic() - started < 2.0
    await outage.proxy.resume()


async def test_stale_answers_are_bounded_and_never_of_a_changed_key() -> None:
    failing = False

    async def load(key_hash: str) -> None:
        if failing:
            raise StoreError("database unreachable")
        return None

    clock = ManualClock(0.0)
    served: list[int] = []
    cache = KeyCache(load, ttl_seconds=2, max_entries=10, clock=clock, stale_seconds=60,
                     on_stale=lambda: served.append(1))
    assert await cache.get("h") is None
    failing = True
    clock.advance(30)
    assert await cache.get("h") is None and served == [1]  # as last read
    clock.advance(40)  # 70 s after its TTL ran out: past the stale window
    with pytest.raises(StoreError):
        await cache.get("h")
    failing = False
    assert await cache.get("h") is None
    failing = True
    cache.forget(None)  # a key change: what was cached of it is never answered again
    clock.advance(5)
    with pytest.raises(StoreError):
        await cache.get("h")
