"""Fixtures for the router tests: a router on an in-process grpc.aio server (port 0),
fed from a YAML file in tmp_path."""

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from switchboard.router.v1 import router_pb2_grpc

from .router_testing import Router, write_accounts


@pytest.fixture
def environ() -> dict[str, str]:
    return {}


@pytest.fixture
async def router(tmp_path: Path, environ: dict[str, str]) -> AsyncIterator[Router]:
    path = tmp_path / "accounts.yaml"
    write_accounts(path, [])
    harness = Router(path, environ)
    server = grpc.aio.server()
    harness.servicer.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        harness.stub = router_pb2_grpc.RouterServiceStub(channel)
        yield harness
    await server.stop(None)
