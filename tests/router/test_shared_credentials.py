"""Routers sharing Redis share stored credentials: one stored (StoreCredential) through any replica is served by
every replica's Pick and GetCredential, the newest winning; each replica keeps its own credentials file too."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from switchboard.router.v1 import router_pb2
from switchboard_router.state import MemoryState, RedisState

from ..redis_testing import REDIS_URL, fresh_namespace, redis_client
from .router_testing import OFFICIAL, Replica, account, serving, write_accounts

FIRST = {"access_token": "at-1", "refresh_token": "rt-1", "expires_at": "1900000000"}
SECOND = {"access_token": "at-2", "refresh_token": "rt-2", "expires_at": "1900003600"}


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    async with fresh_namespace() as name:
        yield name


@contextlib.asynccontextmanager
async def two_routers(tmp_path: Path, namespace: str) -> AsyncIterator[tuple[Replica, Replica]]:
    accounts_file = tmp_path / "accounts.yaml"
    write_accounts(accounts_file, [account("sub", platform="claude-official"), account("key")])
    async with contextlib.AsyncExitStack() as stack:
        one, two = [await stack.enter_async_context(serving(Replica(
            accounts_file, tmp_path / f"router-{i}.credentials.json", RedisState(REDIS_URL, namespace))))
            for i in (1, 2)]
        yield one, two


async def eventually(check: Callable[[], Any], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        await asyncio.sleep(0.02)


async def test_a_credential_stored_on_one_router_is_served_by_the_other(tmp_path: Path, namespace: str) -> None:
    async with two_routers(tmp_path, namespace) as (one, two):
        assert await two.picked() == {"refresh_token": "rt-test-sub-secret"}

        await one.store(**FIRST)

        async def two_serves_first() -> bool:
            return await two.picked() == FIRST
        await eventually(two_serves_first)
        assert await two.current() == FIRST
        # Each replica keeps it in its own file too (what it starts from without Redis).
        for replica in (one, two):
            stored = json.loads(replica.credentials_file.read_text())["accounts"][OFFICIAL]
            assert stored["credential"]["secrets"] == FIRST

        # The next rotation through the other replica comes back to the first.
        await two.store(**SECOND)

        async def one_serves_second() -> bool:
            return await one.picked() == SECOND and await one.current() == SECOND
        await eventually(one_serves_second)


async def test_a_late_older_credential_does_not_replace_the_shared_newer_one(tmp_path: Path, namespace: str) -> None:
    async with two_routers(tmp_path, namespace) as (one, two):
        await one.store(**SECOND)

        async def two_serves_second() -> bool:
            return await two.picked() == SECOND
        await eventually(two_serves_second)
        await two.store(**FIRST)  # expires before the one held: arrived late
        await asyncio.sleep(0.3)
        assert await one.picked() == SECOND and await two.picked() == SECOND
        client = await redis_client()
        try:
            record = json.loads(await client.hget(f"{namespace}:router:credentials", OFFICIAL))
        finally:
            await client.aclose()
        assert record["credential"]["secrets"] == SECOND


async def test_a_new_router_starts_from_the_shared_credential(tmp_path: Path, namespace: str) -> None:
    async with two_routers(tmp_path, namespace) as (one, _):
        await one.store(**FIRST)
        late = Replica(tmp_path / "accounts.yaml", tmp_path / "router-3.credentials.json",
                       RedisState(REDIS_URL, namespace))
        async with serving(late):
            async def late_serves_first() -> bool:
                return await late.picked() == FIRST
            await eventually(late_serves_first)


async def test_get_credential_without_redis_answers_the_stored_one_or_not_found(tmp_path: Path) -> None:
    accounts_file = tmp_path / "accounts.yaml"
    write_accounts(accounts_file, [account("sub", platform="claude-official")])
    async with serving(Replica(accounts_file, tmp_path / "c.json", MemoryState())) as alone:
        assert await alone.current() == {"refresh_token": "rt-test-sub-secret"}
        await alone.store(**FIRST)
        assert await alone.current() == FIRST
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await alone.stub.GetCredential(router_pb2.GetCredentialRequest(account_id="claude-official/x"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
