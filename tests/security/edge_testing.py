"""An edge app for the security tests, reached through httpx.ASGITransport from any client address: the real
AuthServicer and AdminServicer on SQLite (in-process gRPC), the router the edge tests' fake, the upstream the
simulator (an OpenAI chat platform, so the other formats go through their translators)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from aiohttp import web
from fastapi import FastAPI

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_auth.admin import AdminServicer
from switchboard_auth.keys import KeyHasher, create_key
from switchboard_auth.service import AuthServicer
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger
from switchboard_edge.app import create_app
from switchboard_edge.settings import EdgeSettings
from switchboard_simulator import config as simulator_config
from switchboard_simulator.app import create_app as create_simulator

from ..edge.control_fakes import FakeRouter

ADMIN_TOKEN = "security-admin-token"
PEPPER = "security-pepper"
SIMULATOR_OPENAI_KEY = "sk-sim-openai"


@dataclass
class SecuredEdge:
    app: FastAPI
    settings: EdgeSettings
    key: str  # a valid Switchboard key, any platform and model
    router: FakeRouter

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A client whose requests come from `address` (the TCP peer the edge sees)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://edge", timeout=10)


@asynccontextmanager
async def secured_edge(workdir: Path, upstream: web.Application | None = None,
                       **settings: Any) -> AsyncIterator[SecuredEdge]:
    """The edge app (lifespan running) with `settings` over the defaults here; its one account's OpenAI chat
    upstream is `upstream`, or the simulator."""
    runner = web.AppRunner(upstream or create_simulator(simulator_config.load(["--reply-tokens", "3"])))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    simulator = f"http://127.0.0.1:{runner.addresses[0][1]}"
    db = str(workdir / "auth.db")
    keys, ledger = await SqliteKeyStore.open(db), await SqliteLedger.open(db)
    key, _ = await create_key(keys, "security", pepper=PEPPER)
    server = grpc.aio.server()
    AuthServicer(keys, ledger, hasher=KeyHasher(PEPPER), cache_ttl_seconds=0, cache_max_entries=10).register(server)
    AdminServicer(keys, ledger, pepper=PEPPER).register(server)
    router = FakeRouter(router_pb2.Account(id="openai/sim", name="sim", platform="openai", base_url=simulator,
                                           credential=router_pb2.Credential(api_key=SIMULATOR_OPENAI_KEY)))
    router_pb2_grpc.add_RouterServiceServicer_to_server(router, server)
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    options: dict[str, Any] = {"auth_target": target, "router_target": target, "admin_token": ADMIN_TOKEN,
                               "spool_dir": str(workdir / "spool"), "instance_id": "edge-security",
                               "usage_flush_seconds": 0.05, **settings}
    edge_settings = EdgeSettings(**options)
    app = create_app(edge_settings)
    try:
        async with app.router.lifespan_context(app):
            yield SecuredEdge(app, edge_settings, key, router)
    finally:
        await server.stop(None)
        await ledger.close()
        await keys.close()
        await runner.cleanup()
