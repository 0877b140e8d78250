"""Fixtures for the auth tests: SQLite stores in tmp_path and an in-process gRPC server on port 0."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from switchboard.auth.v1 import auth_pb2_grpc
from switchboard_auth.keys import KeyHasher
from switchboard_auth.service import AuthServicer
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger
from switchboard_common.grpc_metrics import MetricsInterceptor

from .auth_testing import CACHE_TTL, PEPPER, Harness, ManualClock


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "auth.db"


@pytest.fixture
async def harness(db_path: Path) -> AsyncIterator[Harness]:
    keys = await SqliteKeyStore.open(str(db_path))
    ledger = await SqliteLedger.open(str(db_path))
    cache_clock, wall_clock = ManualClock(1000.0), ManualClock(time.time())
    servicer = AuthServicer(
        keys,
        ledger,
        hasher=KeyHasher(PEPPER),
        cache_ttl_seconds=CACHE_TTL,
        cache_max_entries=100,
        clock=cache_clock,
        now=wall_clock,
    )
    server = grpc.aio.server(interceptors=[MetricsInterceptor()])
    servicer.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Harness(
            stub=auth_pb2_grpc.AuthServiceStub(channel),
            channel=channel,
            keys=keys,
            ledger=ledger,
            db_path=db_path,
            cache_clock=cache_clock,
            wall_clock=wall_clock,
        )
    finally:
        await channel.close()
        await server.stop(None)
        await ledger.close()
        await keys.close()
