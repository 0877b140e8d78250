"""Routing through httpx.ASGITransport: trailing slashes are served, never redirected; 404 and 405 are in the
endpoint's format (405 with `Allow`). Auth and router are the in-process gRPC fakes, the upstream the simulator."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from switchboard.router.v1 import router_pb2
from switchboard_edge.app import EdgeApp, create_app
from switchboard_edge.settings import EdgeSettings
from switchboard_simulator import config as simulator_config
from switchboard_simulator.app import create_app as create_simulator

from .control_fakes import FakeAuth, FakeRouter, serve_fakes

CLAUDE_HEADERS = {"x-api-key": "good", "anthropic-version": "2023-06-01"}
CLAUDE_BODY = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
OPENAI_HEADERS = {"authorization": "Bearer good"}
OPENAI_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


@dataclass
class Edge:
    client: httpx.AsyncClient
    router: FakeRouter
    simulator: str
    app: EdgeApp

    def use_account(self, platform: str, key: str) -> None:
        self.router.account = router_pb2.Account(
            id=f"{platform}/sim", name="sim", platform=platform, base_url=self.simulator,
            credential=router_pb2.Credential(api_key=key))


@pytest.fixture()
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    runner = web.AppRunner(create_simulator(simulator_config.load(["--reply-tokens", "5"])))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    auth, router = FakeAuth(), FakeRouter()
    server, target = await serve_fakes(auth, router)
    settings = EdgeSettings(auth_target=target, router_target=target, usage_flush_seconds=0.05,
                            spool_dir=str(tmp_path / "spool"), instance_id="edge-unit")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://client-chosen-host") as client:
                yield Edge(client, router, f"http://127.0.0.1:{runner.addresses[0][1]}", app)
    finally:
        await server.stop(None)
        await runner.cleanup()


@pytest.mark.parametrize("path, platform, key, headers, body, kind", [
    pytest.param("/claude/v1/messages/", "claude-console", "sk-sim-anthropic", CLAUDE_HEADERS, CLAUDE_BODY,
                 "message", id="claude"),
    pytest.param("/openai/v1/chat/completions/", "openai", "sk-sim-openai", OPENAI_HEADERS, OPENAI_BODY,
                 "chat.completion", id="openai"),
])
async def test_a_trailing_slash_is_served_not_redirected(edge: Edge, path: str, platform: str, key: str,
                                                         headers: dict[str, str], body: dict[str, object],
                                                         kind: str) -> None:
    edge.use_account(platform, key)
    response = await edge.client.post(path, json=body, headers=headers)
    assert "location" not in response.headers
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload.get("type", payload.get("object")) == kind
    assert edge.router.issued == 1  # relayed like the route without the slash


async def test_a_trailing_slash_reaches_the_relays_own_checks(edge: Edge) -> None:
    response = await edge.client.post("/claude/v1/messages/", json=CLAUDE_BODY)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("method, path, allow", [
    pytest.param("GET", "/claude/v1/messages", "POST", id="get-messages"),
    pytest.param("PUT", "/claude/v1/messages/", "POST", id="put-messages-slash"),
])
async def test_405_in_anthropic_format_with_allow(edge: Edge, method: str, path: str, allow: str) -> None:
    response = await edge.client.request(method, path, headers=CLAUDE_HEADERS)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "method_not_allowed_error"
    assert method in payload["error"]["message"] and allow in payload["error"]["message"]


@pytest.mark.parametrize("method, path, allow", [
    pytest.param("GET", "/openai/v1/chat/completions", "POST", id="get-chat"),
    pytest.param("DELETE", "/openai/v1/chat/completions/", "POST", id="delete-chat-slash"),
    pytest.param("POST", "/healthz", "GET", id="post-healthz"),
])
async def test_405_in_openai_format_with_allow(edge: Edge, method: str, path: str, allow: str) -> None:
    response = await edge.client.request(method, path, headers=OPENAI_HEADERS)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.json()["error"] == {
        "message": f"{method} is not allowed on {path}; use {allow}.", "type": "invalid_request_error",
        "param": None, "code": "method_not_allowed"}


@pytest.mark.parametrize("path", ["/claude/v1/nope", "/claude/v1/messages//", "/claude"])
async def test_unknown_claude_paths_are_404_in_anthropic_format(edge: Edge, path: str) -> None:
    response = await edge.client.post(path, json=CLAUDE_BODY, headers=CLAUDE_HEADERS)
    assert response.status_code == 404 and "location" not in response.headers
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("path", ["/openai/v1/nope", "/v1/messages", "/healthz/"])
async def test_other_unknown_paths_are_404_in_openai_format(edge: Edge, path: str) -> None:
    response = await edge.client.get(path)
    assert response.status_code == 404 and "location" not in response.headers
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "not_found"


async def test_the_relay_fixed_routes_never_go_through_fastapi_middleware(edge: Edge) -> None:
    """The per-request layers (middleware stack, route matching) are skipped on the path every request takes:
    FastAPI builds its middleware stack on the first request it handles, and after relayed requests it has not."""
    edge.use_account("claude-console", "sk-sim-anthropic")
    for path in ("/claude/v1/messages", "/claude/v1/messages/"):
        response = await edge.client.post(path, json=CLAUDE_BODY, headers=CLAUDE_HEADERS)
        assert response.status_code == 200 and response.json()["type"] == "message"
    refused = await edge.client.post("/claude/v1/messages", json=CLAUDE_BODY, headers={"x-api-key": "bad"})
    assert refused.status_code == 401 and refused.json()["type"] == "error"
    assert edge.app.middleware_stack is None
    wrong_method = await edge.client.get("/claude/v1/messages")  # not a relay: FastAPI answers (405 with Allow)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert edge.app.middleware_stack is not None
