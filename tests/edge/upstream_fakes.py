"""A scripted vendor upstream (aiohttp on a free local port) and an edge wired to the auth and router fakes,
for the edge's tests that drive whole requests through it."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiohttp import web
from fastapi import FastAPI

from switchboard_edge.app import create_app
from switchboard_edge.http_limits import HttpLimits, protocol_for
from switchboard_edge.settings import EdgeSettings

from .control_fakes import FakeAuth, FakeRouter, serve_fakes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve_upstream(routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """An upstream answering ``POST`` on each of `routes` (path → handler); yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def edge_on_fakes(auth: FakeAuth, router: FakeRouter, tmp_path: Path, instance_id: str,
                        **settings: Any) -> AsyncIterator[FastAPI]:
    """The edge app (not started) using `auth` and `router` over real gRPC, spooling under `tmp_path`."""
    server, target = await serve_fakes(auth, router)
    try:
        yield create_app(EdgeSettings(auth_target=target, router_target=target, usage_flush_seconds=0.05,
                                      spool_dir=str(tmp_path / "spool"), instance_id=instance_id, **settings))
    finally:
        await server.stop(None)


@asynccontextmanager
async def edge_client(edge: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of `edge`, with the edge's lifespan (start and shutdown) around it."""
    async with edge.router.lifespan_context(edge):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://edge") as client:
            yield client


@asynccontextmanager
async def edge_listening(settings: EdgeSettings, ws: str = "none") -> AsyncIterator[None]:
    """The edge app served by a real uvicorn on `settings.port`, with the edge's own HTTP protocol (limits,
    deadlines, framing checks), as `python -m switchboard_edge` serves it; stopped after."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, ws=ws,
                            http=protocol_for(HttpLimits.from_settings(settings)), access_log=False,
                            log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(300):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield
    finally:
        server.should_exit = True
        await serving
