"""Wiring: the client-facing routes, their endpoints, and the process-wide clients.

| route                                   | dialect   | platforms it reaches                          |
|-----------------------------------------|-----------|-----------------------------------------------|
| POST /claude/v1/messages                | Anthropic | every platform, Anthropic's own first         |
| POST /openai/v1/chat/completions        | OpenAI    | every platform, OpenAI chat's own first       |
| POST /gemini/{v1beta,v1}/models/{m}:…   | Gemini    | chat: Gemini's own, then those with a         |
|                                         |           | translator; countTokens: Gemini's own         |
| POST /gemini/v1/chat                    | OpenAI in, Gemini out | gemini, then openai/azure     |
| POST (or WebSocket GET) /responses,     | Responses | every platform with a translator, Responses'  |
|   /v1/responses, /openai/v1/responses,  |           | own first                                     |
|   /openai/responses                     |           |                                               |
| POST /claude/v1/messages/count_tokens   | Anthropic | Anthropic's own platforms                     |
| POST {each Responses route}/compact     | Responses | those serving "compact" (one JSON answer)     |

A platform speaking another format is reached through `switchboard_edge.translate` (the registry lists
the directions); a bare model name goes only to the platforms whose accounts serve it
(`switchboard_edge.catalog`), a platform's own format first.

Each route is also served with a trailing slash (never redirected: a redirect would be built from the
client's Host). Errors the routing makes (404, 405 with `Allow`) are in the path's dialect.
"""

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, WebSocket
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send

from switchboard.auth.v1 import auth_pb2
from switchboard_edge import admin_routes, framing, inbound, models, sessions
from switchboard_edge.control import ControlPlane
from switchboard_edge.errors import (
    ClientFormat,
    MethodNotAllowed,
    NotFound,
    SwitchboardError,
    format_for_path,
    render,
)
from switchboard_edge.exchange import Endpoint
from switchboard_edge.relay import Relay
from switchboard_edge.responses_ws import ResponsesSockets
from switchboard_edge.settings import EdgeSettings
from switchboard_edge.spool import UsageSpool
from switchboard_edge.upstream import registry
from switchboard_edge.upstream_http import Upstreams


def _reach(client_format: ClientFormat, operation: str = "chat",
           request_format: ClientFormat | None = None) -> dict[str, Any]:
    """An endpoint's platforms (natives first), its natives and its request format."""
    platforms = registry.reachable(client_format, operation, request_format)
    return {"platforms": platforms, "natives": registry.natives(platforms, client_format),
            "request_format": request_format}


CLAUDE_MESSAGES = Endpoint(
    route="/claude/v1/messages",
    client_format=ClientFormat.ANTHROPIC,
    operation="chat",
    **_reach(ClientFormat.ANTHROPIC),
    session=sessions.anthropic_session,
)
CLAUDE_COUNT_TOKENS = Endpoint(
    route="/claude/v1/messages/count_tokens",
    client_format=ClientFormat.ANTHROPIC,
    operation="count_tokens",
    **_reach(ClientFormat.ANTHROPIC, "count_tokens"),
    session=sessions.anthropic_session,
)
# Gemini's native API: the action after the model decides the operation and whether it streams.
GEMINI_ENDPOINTS = tuple(
    Endpoint(
        route=f"/gemini/{version}/models/{{model}}:{action}",
        client_format=ClientFormat.GEMINI,
        operation=operation,
        **_reach(ClientFormat.GEMINI, operation),
        session=sessions.gemini_session,
        model_in_path=True,
        key_in_query=True,
        stream=stream,
        framing=framing.gemini_stream,
    )
    for version in ("v1beta", "v1")
    for action, operation, stream in (("generateContent", "chat", False), ("streamGenerateContent", "chat", True),
                                      ("countTokens", "count_tokens", False))
)
# The contract's Gemini endpoint: OpenAI-style `messages` in, Gemini's own generateContent answer out.
GEMINI_CHAT = Endpoint(
    route="/gemini/v1/chat",
    client_format=ClientFormat.GEMINI,
    operation="chat",
    **_reach(ClientFormat.GEMINI, "chat", request_format=ClientFormat.OPENAI),
    session=sessions.openai_session,
    key_in_query=True,
)
# Codex appends /responses to whatever base URL the user typed: every such path is served.
RESPONSES_ENDPOINTS = tuple(
    Endpoint(
        route=route,
        client_format=ClientFormat.RESPONSES,
        operation="chat",
        **_reach(ClientFormat.RESPONSES),
        session=sessions.responses_session,
    )
    for route in ("/responses", "/v1/responses", "/openai/v1/responses", "/openai/responses")
)
# Codex compacts its context with `POST {base_url}/responses/compact`: one JSON answer, never a stream.
RESPONSES_COMPACT_ENDPOINTS = tuple(
    Endpoint(
        route=f"{endpoint.route}/compact",
        client_format=ClientFormat.RESPONSES,
        operation="compact",
        **_reach(ClientFormat.RESPONSES, "compact"),
        session=sessions.responses_session,
        stream=False,
    )
    for endpoint in RESPONSES_ENDPOINTS
)
OPENAI_CHAT = Endpoint(
    route="/openai/v1/chat/completions",
    client_format=ClientFormat.OPENAI,
    operation="chat",
    **_reach(ClientFormat.OPENAI),
    session=sessions.openai_session,
)


class EdgeApp(FastAPI):
    """FastAPI, with the relay's fixed-path routes dispatched straight from the ASGI call.

    Those routes read the raw request themselves and answer every error in their own format: FastAPI's
    middleware stack and route matching would be pure per-request cost on the path every request takes. Any
    other request (another method on those paths, Gemini's templated paths, listings, admin) goes through
    FastAPI as usual.
    """

    relay_routes: dict[str, Callable[[Request], Awaitable[Response]]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.relay_routes.get(scope["path"])
            if handler is not None:
                scope["app"] = self
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class _Runtime:
    """The process-wide clients, created in the lifespan and used by the routes."""

    control: ControlPlane
    relay: Relay
    sockets: ResponsesSockets


def create_app(settings: EdgeSettings) -> EdgeApp:
    runtime = _Runtime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        control = ControlPlane(
            settings.auth_target,
            settings.router_target,
            rpc_timeout=settings.rpc_timeout_seconds,
            usage_flush_seconds=settings.usage_flush_seconds,
            usage_batch_size=settings.usage_batch_size,
            holder=settings.instance_id or f"{socket.gethostname()}:{settings.port}",
            spool=UsageSpool(settings.spool_dir),
            catalog_refresh_seconds=settings.catalog_refresh_seconds,
            auth_outage_grace=settings.auth_outage_grace_seconds,
            router_outage_grace=settings.router_outage_grace_seconds,
        )
        control.start()
        upstreams = Upstreams()
        runtime.control = control
        runtime.relay = Relay(settings, control, upstreams)
        runtime.sockets = ResponsesSockets(runtime.relay, control.admission, settings.max_body_bytes)

        def drain() -> None:
            runtime.relay.drain()
            runtime.sockets.drain()

        # The server calls this from its SIGTERM handler: thread-safe, the drain itself runs on the loop.
        app.state.begin_drain = functools.partial(asyncio.get_running_loop().call_soon_threadsafe, drain)
        try:
            yield
        finally:
            await control.close()
            await upstreams.close()

    app = EdgeApp(title="Switchboard edge", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)
    app.relay_routes = {}

    # The relay routes are plain Starlette routes: they read the raw request themselves, so FastAPI's
    # parameter resolution would be pure per-request cost. SDKs given a Base URL ending in "/" may call
    # the route with a trailing slash: the same handler serves it.
    for endpoint in (CLAUDE_MESSAGES, CLAUDE_COUNT_TOKENS, OPENAI_CHAT, GEMINI_CHAT, *GEMINI_ENDPOINTS,
                     *RESPONSES_ENDPOINTS, *RESPONSES_COMPACT_ENDPOINTS):
        handler = _relay_route(runtime, endpoint)
        app.add_route(endpoint.route, handler, methods=["POST"])
        app.add_route(endpoint.route + "/", handler, methods=["POST"])
        if "{" not in endpoint.route:
            app.relay_routes[endpoint.route] = app.relay_routes[endpoint.route + "/"] = handler

    # Codex's WebSocket transport: the same Responses routes, as GET with Upgrade: websocket.
    for endpoint in RESPONSES_ENDPOINTS if settings.responses_websocket else ():
        socket_handler = _socket_route(runtime, endpoint)
        app.router.routes.append(WebSocketRoute(endpoint.route, socket_handler))
        app.router.routes.append(WebSocketRoute(endpoint.route + "/", socket_handler))

    for path, client_format, render_list in (("/claude/v1/models", ClientFormat.ANTHROPIC, models.anthropic_list),
                                             ("/openai/v1/models", ClientFormat.OPENAI, models.openai_list),
                                             ("/gemini/v1beta/models", ClientFormat.GEMINI, models.gemini_list),
                                             ("/gemini/v1/models", ClientFormat.GEMINI, models.gemini_list)):
        listing = _models_route(runtime, client_format, render_list)
        app.add_route(path, listing, methods=["GET"])
        app.add_route(path + "/", listing, methods=["GET"])

    admin_routes.install(app, settings, lambda: runtime.control)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> Response:
        control = runtime.control
        checks = await asyncio.gather(
            _serving(control.auth_channel, settings.rpc_timeout_seconds),
            _serving(control.router_channel, settings.rpc_timeout_seconds),
        )
        report = {"auth": checks[0], "router": checks[1]}
        ready = all(checks)
        return Response(
            orjson.dumps({"status": "ready" if ready else "not ready", "checks": report}),
            200 if ready else 503,
            media_type="application/json",
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        client_format = format_for_path(request.url.path)
        error: SwitchboardError
        if exc.status_code == 404:
            error = NotFound(f"No route for {request.method} {inbound.shown(request.url.path)}.")
        elif exc.status_code == 405:
            allow = tuple((exc.headers or {}).get("Allow", "").split(", "))
            error = MethodNotAllowed(
                f"{request.method} is not allowed on {inbound.shown(request.url.path)}; use {', '.join(allow)}.",
                allow=allow)
        else:
            error = SwitchboardError(str(exc.detail))
            error.status = exc.status_code
        status, payload, headers = render(error, client_format)
        return Response(payload, status, headers)

    return app


def _models_route(runtime: "_Runtime", client_format: ClientFormat,
                  render_list: Callable[[list[str]], bytes]) -> Callable[[Request], Awaitable[Response]]:
    platforms = registry.reachable(client_format)

    async def listing(request: Request) -> Response:
        try:
            query_key = request.query_params.get("key", "") if client_format is ClientFormat.GEMINI else ""
            credential = inbound.extract_key(request.headers, query_key)
            client = auth_pb2.ClientMetadata(user_agent=request.headers.get("user-agent", ""),
                                             client_format=client_format.value)
            key, accounts = await asyncio.gather(runtime.control.admission.key(credential, client),
                                                 runtime.control.admission.accounts())
        except SwitchboardError as error:
            status, payload, headers = render(error, client_format)
            return Response(payload, status, headers)
        names = models.listed_models(accounts, platforms, key)
        return Response(render_list(names), 200, media_type="application/json")

    return listing


def _relay_route(runtime: "_Runtime", endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def relay(request: Request) -> Response:
        return await runtime.relay.handle(request, endpoint)

    return relay


def _socket_route(runtime: "_Runtime", endpoint: Endpoint) -> Callable[[WebSocket], Awaitable[None]]:
    async def socket(websocket: WebSocket) -> None:
        await runtime.sockets.serve(websocket, endpoint)

    return socket


async def _serving(channel: object, timeout: float) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
