"""Two auth processes sharing one PostgreSQL and one Redis behave as one auth: they enforce a key's limits
together, and a key changed through one is refused by the other at once."""

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2_grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.keys import KeyLimits, KeyState, create_key
from switchboard_auth.store import open_stores

from ..redis_testing import REDIS_URL, fresh_namespace
from .auth_testing import PEPPER, free_port, subprocess_env
from .store_backends import postgres_url_fixture  # noqa: F401
from .test_auth_main import wait_serving


@contextlib.asynccontextmanager
async def replica(database_url: str, namespace: str) -> AsyncIterator[auth_pb2_grpc.AuthServiceStub]:
    port = free_port()
    env = subprocess_env(SWITCHBOARD_AUTH_LISTEN=f"127.0.0.1:{port}", SWITCHBOARD_AUTH_METRICS_PORT="-1",
                         SWITCHBOARD_AUTH_DATABASE_URL=database_url, SWITCHBOARD_AUTH_REDIS_URL=REDIS_URL,
                         SWITCHBOARD_AUTH_REDIS_NAMESPACE=namespace,
                         # Caches that alone would hide a change for a minute.
                         SWITCHBOARD_AUTH_CACHE_TTL_SECONDS="60")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard_auth", env=env,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(health_pb2_grpc.HealthStub(channel), proc)
            yield auth_pb2_grpc.AuthServiceStub(channel)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=15)


async def test_two_replicas_enforce_one_limit_and_see_each_others_changes(postgres_url: str) -> None:
    stores = await open_stores(postgres_url, "")
    key, _ = await create_key(stores.keys, "shared", pepper=PEPPER, limits=KeyLimits(requests_per_minute=5))
    try:
        async with fresh_namespace() as namespace, replica(postgres_url, namespace) as one, \
                replica(postgres_url, namespace) as two:
            ask = auth_pb2.AuthorizeRequest(credential=key, platforms=["openai"], model="gpt-4o")
            answers = []
            for _ in range(5):  # ten requests, alternating replicas, five a minute allowed in all
                answers += [await one.Authorize(ask, timeout=5), await two.Authorize(ask, timeout=5)]
            allowed = [a.decision == auth_pb2.DECISION_ALLOW for a in answers]
            assert sum(allowed) == 5 and allowed[:5] == [True] * 5
            refused = answers[-1]
            assert refused.reason == auth_pb2.REASON_RATE_LIMITED and refused.refused_by == "requests_per_minute"

            await stores.keys.set_state("shared", KeyState.DISABLED)  # as the CLI or the admin API would
            for stub in (one, two):  # each follows the change log: within about a second, not the 60 s cache
                for _ in range(100):
                    if (await stub.Authorize(ask, timeout=5)).reason == auth_pb2.REASON_KEY_DISABLED:
                        break
                    await asyncio.sleep(0.05)
                assert (await stub.Authorize(ask, timeout=5)).reason == auth_pb2.REASON_KEY_DISABLED
    finally:
        await stores.close()
