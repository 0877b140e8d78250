"""Redis for the tests that need it (router state, auth limits): one home for where it is and what its absence
means."""

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

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
