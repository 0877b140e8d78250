"""Wiring: the vendors' routes from the registry, the request log and counter they share, and the
server's start and stop.

Every vendor is served on the one port; their paths do not collide::

    POST   /v1/messages                          Anthropic Messages (query strings such as ?beta=true ignored)
    POST   /v1/messages/count_tokens             Anthropic token counting
    POST   /v1/oauth/token                       Anthropic OAuth token refresh
    POST   /v1/chat/completions                  OpenAI Chat Completions
    POST   /openai/deployments/{d}/chat/completions?api-version=…   Azure OpenAI (deployment path)
    POST   /openai/v1/chat/completions           Azure OpenAI (v1 path, model in the body)
    POST   /model/{modelId}/invoke               Bedrock InvokeModel (Anthropic models)
    POST   /model/{modelId}/invoke-with-response-stream   Bedrock InvokeModelWithResponseStream
    POST   /v1/responses, /v1/responses/compact  OpenAI Responses API
    POST   /backend-api/codex/responses[/compact]   ChatGPT/Codex backend (ChatGPT sign-in)
    POST   /oauth/token                          ChatGPT sign-in token refresh (auth.openai.com)
    POST   /{v1beta,v1}/models/{model}:{generateContent|streamGenerateContent|countTokens}   Gemini
    GET    /{v1beta,v1}/models[/{model}]         Gemini models list and get
    GET    /healthz                              {"status": "ok"}
    GET    /metrics                              Prometheus text
    GET    /_simulator/requests                  {"requests": [entry, …]} oldest first; ?limit=N keeps the newest N
    DELETE /_simulator/requests                  clears the log, answers {"cleared": N}

Every vendor route runs the shared `pipeline` (read and parse the body once, record it, then
auth → faults → validate → reply).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from . import pipeline
from .config import SimulatorConfig
from .metrics import RequestCounter
from .recorder import RequestLog
from .vendors import VENDORS

REQUEST_LOG = web.AppKey("request_log", RequestLog)
COUNTER = web.AppKey("counter", RequestCounter)
MAX_BODY_BYTES = 32 * 1024 * 1024 + 65536  # the vendors' 32 MB request limit, plus headroom
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


def _json(value: Any) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[COUNTER].render(), content_type="text/plain", charset="utf-8")


async def _list_requests(request: web.Request) -> web.Response:
    limit_text = request.query.get("limit", "")
    limit = int(limit_text) if limit_text.isdigit() else None
    return _json({"requests": request.app[REQUEST_LOG].entries(limit)})


async def _clear_requests(request: web.Request) -> web.Response:
    return _json({"cleared": request.app[REQUEST_LOG].clear()})


def create_app(config: SimulatorConfig) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    log = RequestLog(config.record_limit, enabled=config.record_requests)
    counter = RequestCounter()
    app[REQUEST_LOG] = log
    app[COUNTER] = counter
    for vendor in VENDORS:
        for route in vendor.routes(config):
            app.router.add_route(route.method, route.path, pipeline.handler(route.endpoint, log, counter))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/_simulator/requests", _list_requests)
    app.router.add_delete("/_simulator/requests", _clear_requests)
    return app


@asynccontextmanager
async def serve(config: SimulatorConfig) -> AsyncIterator[str]:
    """Runs the simulator until the block exits; yields its base URL (the real port when port is 0).

    Handlers are cancelled when their client disconnects, which is what ends a ``hang`` fault.
    """
    runner = web.AppRunner(
        create_app(config), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=2048)
        await site.start()
        port = runner.addresses[0][1]
        host = "127.0.0.1" if config.host in _WILDCARD_HOSTS else config.host
        if ":" in host:
            host = f"[{host}]"
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
