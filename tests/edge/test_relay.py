"""The relay through httpx.ASGITransport: the edge app in-process, auth and router as in-process gRPC fakes,
the upstream the real simulator app on a local port. What reaches the client, the upstream and the ledger."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from grpc_health.v1 import health, health_pb2
from prometheus_client import REGISTRY

from switchboard.router.v1 import router_pb2
from switchboard_edge.app import create_app
from switchboard_edge.settings import EdgeSettings
from switchboard_simulator import config as simulator_config
from switchboard_simulator.app import create_app as create_simulator

from .control_fakes import FakeAuth, FakeRouter, serve_fakes

FAULTS = ["--key-fault", "sk-sim-error=stream_error:3", "--key-fault", "sk-sim-cut=disconnect:6",
          "--key-fault", "sk-sim-hang=hang", "--key-fault", "sk-sim-limited=429:7"]
# A second Anthropic organisation: thinking signed for one is refused by the other.
ORGANIZATIONS = ["--anthropic-key", "sk-sim-org-2", "--anthropic-organization", "sk-sim-org-2=org-2",
                 "--openai-responses-key", "sk-sim-org-2", "--openai-responses-organization", "sk-sim-org-2=org-2"]


@dataclass
class Edge:
    client: httpx.AsyncClient
    auth: FakeAuth
    router: FakeRouter
    simulator: str
    health: health.aio.HealthServicer

    def use_account(self, platform: str, key: str) -> None:
        self.router.account = router_pb2.Account(
            id=f"{platform}/sim", name="sim", platform=platform, base_url=self.simulator,
            credential=router_pb2.Credential(api_key=key))

    async def records(self, count: int) -> list:  # type: ignore[type-arg]
        """The usage records auth received, once `count` arrived (the edge flushes every 50 ms here)."""
        for _ in range(100):
            if len(self.auth.records) >= count:
                break
            await asyncio.sleep(0.02)
        return list(self.auth.records)


@pytest.fixture()
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    runner = web.AppRunner(create_simulator(simulator_config.load(["--reply-tokens", "40", *FAULTS, *ORGANIZATIONS])),
                           handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    simulator = f"http://127.0.0.1:{runner.addresses[0][1]}"
    auth, router, health_servicer = FakeAuth(), FakeRouter(), health.aio.HealthServicer()
    server, target = await serve_fakes(auth, router, health_servicer)
    settings = EdgeSettings(auth_target=target, router_target=target, usage_flush_seconds=0.05,
                            upstream_timeout_seconds=0.5,
                            spool_dir=str(tmp_path / "spool"), instance_id="edge-unit")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
                yield Edge(client, auth, router, simulator, health_servicer)
    finally:
        await server.stop(None)
        await runner.cleanup()


CLAUDE_HEADERS = {"x-api-key": "good", "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": "Bearer good"}


async def test_stream_must_be_a_boolean_in_each_endpoints_format(edge: Edge) -> None:
    edge.use_account("openai", "sk-sim-openai")
    body = {"model": "gpt-4o", "stream": "true", "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert edge.router.issued == 0  # refused before any account was taken
    # null is OpenAI's "absent": a plain completion.
    response = await edge.client.post("/openai/v1/chat/completions", json={**body, "stream": None},
                                      headers=OPENAI_HEADERS)
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"
    edge.use_account("claude-console", "sk-sim-anthropic")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "stream": None,
            "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


async def test_an_invalid_key_is_refused_without_a_pick(edge: Edge) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/openai/v1/chat/completions", json=body,
                                      headers={"authorization": "Bearer not-a-key"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert edge.auth.authenticated == 1 and edge.router.issued == 0


@pytest.mark.parametrize("platform, key, path, headers", [
    pytest.param("claude-console", "sk-sim-error", "/claude/v1/messages", CLAUDE_HEADERS, id="anthropic"),
    pytest.param("openai", "sk-sim-error", "/openai/v1/chat/completions", OPENAI_HEADERS, id="openai"),
])
async def test_the_vendors_error_event_is_the_only_one_and_the_stream_is_billed(
    edge: Edge, platform: str, key: str, path: str, headers: dict[str, str]
) -> None:
    edge.use_account(platform, key)
    model = "claude-sonnet-4-5" if platform == "claude-console" else "gpt-4o"
    body = {"model": model, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "Hi " * 50}]}
    response = await edge.client.post(path, json=body, headers=headers)
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block.strip()]
    errors = [block for block in events if '"error"' in block]
    assert len(errors) == 1 and events[-1] == errors[0]
    (record,) = await edge.records(1)
    assert record.end_reason == "upstream_error" and record.truncated and record.usage_estimated
    assert record.usage.input_tokens > 0 and record.usage.output_tokens >= 3


async def test_an_upstream_cut_gets_one_gateway_error_event_and_is_billed(edge: Edge) -> None:
    edge.use_account("claude-console", "sk-sim-cut")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.text.count("event: error") == 1
    error = orjson.loads(response.text.rsplit("event: error\ndata: ", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    (record,) = await edge.records(1)
    assert record.end_reason == "upstream_broke" and record.usage_estimated
    assert record.usage.input_tokens > 0 and record.usage.output_tokens > 0


async def test_picks_carry_this_edges_holder_name(edge: Edge) -> None:
    edge.use_account("openai", "sk-sim-openai")
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    assert (await edge.client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_HEADERS)).status_code == 200
    assert edge.router.last_pick is not None and edge.router.last_pick.holder == "edge-unit"
    (record,) = await edge.records(1)
    assert record.end_reason == "complete" and not record.usage_estimated


async def test_refused_requests_never_mint_model_labels(edge: Edge) -> None:
    for index in range(5):
        body = {"model": f"minted-{index}", "messages": [{"role": "user", "content": "Hi"}]}
        await edge.client.post("/openai/v1/chat/completions", json=body, headers={"authorization": "Bearer nope"})
    labels = {sample.labels.get("gen_ai_request_model") for metric in REGISTRY.collect() for sample in metric.samples}
    assert not any(label and label.startswith("minted-") for label in labels)


async def test_a_gateway_defect_answers_500_and_still_returns_the_lease(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard_edge.upstream.anthropic import AnthropicMessages

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(AnthropicMessages, "build", broken)
    edge.use_account("claude-console", "sk-sim-anthropic")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 500 and response.json()["error"]["type"] == "api_error"
    assert "a bug" not in response.text
    for _ in range(50):
        if not edge.router.held:
            break
        await asyncio.sleep(0.02)
    assert edge.router.issued == 1 and edge.router.held == set()


def _status(platform: str, models: list[str], mapping: dict[str, str] | None = None, groups: list[str] | None = None,
            state: int = router_pb2.ACCOUNT_STATE_READY) -> router_pb2.AccountStatus:
    account = router_pb2.Account(id=f"{platform}/x", platform=platform, model_mapping=mapping or {},
                                 groups=groups or [])
    return router_pb2.AccountStatus(account=account, state=state, models=models)


async def test_model_lists_show_what_the_key_may_use_and_the_pool_serves(edge: Edge) -> None:
    edge.router.statuses = [
        _status("claude-console", ["claude-sonnet-4-5", "claude-*"], {"claude-fast": "claude-haiku-4-5"}),
        _status("claude-ccr", ["claude-team-only"], groups=["team-b"]),
        _status("bedrock", ["claude-opus-4-1"], state=router_pb2.ACCOUNT_STATE_DISABLED),
        _status("openai", ["gpt-4o", "gpt-4o-mini", "o3"]),
    ]
    response = await edge.client.get("/claude/v1/models", headers=CLAUDE_HEADERS)
    assert response.status_code == 200
    listed = response.json()
    # Every format reaches every platform through a translator: one list, in each endpoint's own shape.
    reachable = ["claude-fast", "claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini", "o3"]
    assert [model["id"] for model in listed["data"]] == reachable
    assert listed["data"][0]["type"] == "model" and listed["has_more"] is False
    response = await edge.client.get("/openai/v1/models", headers=OPENAI_HEADERS)
    assert response.json()["object"] == "list"
    assert [model["id"] for model in response.json()["data"]] == reachable
    response = await edge.client.get("/openai/v1/models", headers={"authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


async def test_count_tokens_reaches_an_anthropic_platform(edge: Edge) -> None:
    edge.use_account("claude-console", "sk-sim-anthropic")
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello there, how are you?"}]}
    response = await edge.client.post("/claude/v1/messages/count_tokens", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
    assert edge.router.last_pick is not None and "bedrock" not in edge.router.last_pick.platforms


async def _settled(edge: Edge) -> None:
    for _ in range(50):
        if not edge.router.held:
            return
        await asyncio.sleep(0.02)


async def test_an_upstream_429_passes_through_when_no_account_is_left(edge: Edge) -> None:
    edge.use_account("openai", "sk-sim-limited")
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"  # the vendor's own body
    await _settled(edge)
    assert edge.router.held == set()


async def test_a_silent_upstream_times_out_with_504_in_the_clients_format(edge: Edge) -> None:
    edge.use_account("claude-console", "sk-sim-hang")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    await _settled(edge)
    assert edge.router.issued == 1 and edge.router.held == set()  # no failover after a timeout


async def test_a_lease_is_returned_when_authorize_refuses(edge: Edge) -> None:
    edge.use_account("openai", "sk-sim-openai")
    edge.auth.deny_on_authorize.add("valid-but-not-here")
    headers = {"authorization": "Bearer valid-but-not-here"}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/openai/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    await _settled(edge)
    assert edge.router.issued == 1 and edge.router.held == set()


async def test_a_changed_identity_picks_again_with_the_new_one(edge: Edge) -> None:
    edge.use_account("openai", "sk-sim-openai")
    edge.auth.authorized_key_id = "k-rotated"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    assert response.status_code == 200
    await _settled(edge)
    assert edge.router.issued == 2 and edge.router.last_pick is not None
    assert edge.router.last_pick.key_id == "k-rotated" and edge.router.held == set()


async def test_readyz_follows_the_health_of_auth_and_router(edge: Edge) -> None:
    await edge.health.set("", health_pb2.HealthCheckResponse.SERVING)
    response = await edge.client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"] == {"auth": True, "router": True}
    await edge.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    response = await edge.client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "not ready"


def _anthropic_events(text: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], orjson.loads(lines["data"])))
    return events


async def test_a_translated_claude_stream_is_whole_and_ends_with_message_stop(edge: Edge) -> None:
    edge.use_account("openai", "sk-sim-openai")
    body = {"model": "gpt-4o", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    response = await edge.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = _anthropic_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names.count("message_start") == 1 and names[-1] == "message_stop"
    assert events[0][1]["message"]["usage"]["input_tokens"] > 0 and events[0][1]["message"]["model"] == "gpt-4o"
    opened = [data["index"] for name, data in events if name == "content_block_start"]
    closed = [data["index"] for name, data in events if name == "content_block_stop"]
    assert opened == closed == list(range(len(opened))) and opened
    (delta,) = [data for name, data in events if name == "message_delta"]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] > 0
    (record,) = await edge.records(1)
    assert record.end_reason != "upstream_error" and not record.truncated and not record.usage_estimated


@pytest.mark.parametrize("key", ["sk-sim-cut", "sk-sim-error"], ids=["upstream-cut", "upstream-error-event"])
async def test_a_translated_claude_stream_cut_short_ends_with_one_anthropic_error(edge: Edge, key: str) -> None:
    edge.use_account("openai", key)
    body = {"model": "gpt-4o", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "Hi " * 50}]}
    response = await edge.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 200
    events = _anthropic_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "error" and names.count("error") == 1
    assert "message_stop" not in names  # a cut answer is never passed off as a finished one
    assert events[-1][1]["type"] == "error" and events[-1][1]["error"]["type"]
    (record,) = await edge.records(1)
    assert record.truncated


async def test_a_conversation_that_moved_organisation_is_sent_again_without_its_thinking(edge: Edge) -> None:
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                                    "required": ["city"]}}
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    body = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "tools": [tool], "messages": ask,
            "thinking": {"type": "enabled", "budget_tokens": 2048}}
    edge.use_account("claude-console", "sk-sim-anthropic")
    first = await edge.client.post("/claude/v1/messages", json={**body, "tool_choice": {"type": "any"}},
                                   headers=CLAUDE_HEADERS)
    thinking, call = first.json()["content"]
    assert thinking["type"] == "thinking" and call["type"] == "tool_use"
    history = [*ask, {"role": "assistant", "content": [thinking, call]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18C"}]}]
    # The session moves to an account of another organisation, which refuses the first one's signature.
    edge.use_account("claude-console", "sk-sim-org-2")
    async with httpx.AsyncClient(base_url=edge.simulator) as simulator:
        await simulator.delete("/_simulator/requests")
        response = await edge.client.post("/claude/v1/messages", json={**body, "messages": history},
                                          headers=CLAUDE_HEADERS)
        assert response.status_code == 200, response.text
        assert response.json()["content"][-1]["type"] == "text"
        sent = (await simulator.get("/_simulator/requests")).json()["requests"]
    assert [entry["status"] for entry in sent if entry["path"] == "/v1/messages"] == [400, 200]
    resent = sent[-1]["body"]
    assert [block["type"] for block in resent["messages"][1]["content"]] == ["tool_use"]
    assert "thinking" not in resent  # a tool loop without its thinking block must run with thinking off


async def test_a_responses_conversation_that_moved_is_sent_again_without_its_encrypted_reasoning(edge: Edge) -> None:
    body = {"model": "gpt-5", "store": False, "reasoning": {"effort": "medium"},
            "include": ["reasoning.encrypted_content"], "input": "Think, then answer."}
    edge.use_account("openai-responses", "sk-sim-openai")
    first = await edge.client.post("/openai/v1/responses", json=body, headers=OPENAI_HEADERS)
    assert first.status_code == 200, first.text
    output = first.json()["output"]
    assert output[0]["type"] == "reasoning" and output[0]["encrypted_content"]
    history = [{"type": "message", "role": "user", "content": "Think, then answer."}, *output,
               {"type": "message", "role": "user", "content": "And again?"}]
    edge.use_account("openai-responses", "sk-sim-org-2")
    async with httpx.AsyncClient(base_url=edge.simulator) as simulator:
        await simulator.delete("/_simulator/requests")
        response = await edge.client.post("/openai/v1/responses", json={**body, "input": history},
                                          headers=OPENAI_HEADERS)
        sent = (await simulator.get("/_simulator/requests")).json()["requests"]
    assert response.status_code == 200, response.text
    assert [entry["status"] for entry in sent] == [400, 200]
    assert [item["type"] for item in sent[-1]["body"]["input"]] == ["message", "message", "message"]


async def test_a_refusal_about_something_else_is_not_sent_again(edge: Edge) -> None:
    edge.use_account("claude-console", "sk-sim-anthropic")
    # A thinking block the edge could remove, but the refusal names another problem (the third message's role).
    forged = [{"role": "user", "content": "Hi"},
              {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "c2ln"},
                                                {"type": "text", "text": "Hello"}]},
              {"role": "robot", "content": "Go on"}]
    async with httpx.AsyncClient(base_url=edge.simulator) as simulator:
        await simulator.delete("/_simulator/requests")
        response = await edge.client.post("/claude/v1/messages", json={
            "model": "claude-sonnet-4-5", "max_tokens": 64, "messages": forged}, headers=CLAUDE_HEADERS)
        sent = (await simulator.get("/_simulator/requests")).json()["requests"]
    assert response.status_code == 400
    assert len([entry for entry in sent if entry["path"] == "/v1/messages"]) == 1
