"""Redis for the tests that need it (router state, auth limits): one home for where it is and what its absence
means."""

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from switchboard_common.redis_outage import RedisOutage
from switchboard_stack.faultproxy import FaultProxy

from .required import unavailable

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_client() -> aioredis.Redis:
    """A client to a reachable Redis. Without one the test is skipped on a developer's machine and fails in
    CI (CI=true): the Redis backend is never left untested there."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        unavailable(f"Redis at {REDIS_URL}", exc)
    return client


@contextlib.asynccontextmanager
async def fresh_namespace() -> AsyncIterator[str]:
    """A key namespace of its own for one test (Redis must be reachable, as `redis_client` says); its keys are
    deleted afterwards."""
    client = await redis_client()
    name = f"sbtest-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        keys = [key async for key in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@contextlib.asynccontextmanager
async def redis_proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the test Redis (reachable, as `redis_client` says), for outages on demand."""
    await (await redis_client()).aclose()
    target = urlsplit(REDIS_URL)
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def through(proxy: FaultProxy) -> str:
    """The test Redis's URL, by way of `proxy`."""
    return f"redis://127.0.0.1:{proxy.port}{urlsplit(REDIS_URL).path}"


async def until_recovered(outage: RedisOutage, timeout: float = 5.0) -> None:
    """Waits until a service's Redis outage is over (its probe found Redis again)."""
    deadline = time.monotonic() + timeout
    while outage.down:
        assert time.monotonic() < deadline, "Redis answered again, but the service did not go back to it"
        await asyncio.sleep(0.05)
