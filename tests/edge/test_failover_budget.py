"""Failover has a time budget besides `max_attempts`: no new attempt starts once `failover_budget_seconds` have
passed since the request's first attempt began; the client then gets what it gets with no account left (the last
upstream answer where it passes through, else the gateway's error). Two Anthropic accounts on a scripted upstream,
the router a gRPC fake; time is driven by a budget of 0 (spent as soon as an attempt has taken any time) or by
readings given to the pure check, never by waiting."""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from switchboard.router.v1 import router_pb2
from switchboard_edge import failover
from switchboard_edge.settings import EdgeSettings, load

from .control_fakes import FakeAuth, FakePool
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

CLAUDE_HEADERS = {"x-api-key": "good", "anthropic-version": "2023-06-01"}
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
LIMITED = {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded "
                                                                            "your per-minute rate limit"}}
BROKEN = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
          "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
          "usage": {"input_tokens": 5, "output_tokens": 2}}


@dataclass
class Upstream:
    """Answers by the account's key: `sk-busy` 429, `sk-broken` 500, anything else 200; keeps the keys it saw."""

    seen: list[str] = field(default_factory=list)

    async def messages(self, request: web.Request) -> web.Response:
        key = request.headers.get("x-api-key", "")
        self.seen.append(key)
        if key == "sk-busy":
            return web.json_response(LIMITED, status=429, headers={"retry-after": "7"})
        if key == "sk-broken":
            return web.json_response(BROKEN, status=500)
        return web.json_response(ANSWER)


@dataclass
class Stack:
    client: httpx.AsyncClient
    pool: FakePool
    upstream: Upstream


def _account(url: str, name: str, key: str) -> router_pb2.Account:
    return router_pb2.Account(id=f"claude-console/{name}", name=name, platform="claude-console", base_url=url,
                              credential=router_pb2.Credential(api_key=key))


@pytest.fixture()
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """`request.param`: (the first account's key, the edge's settings)."""
    first, settings = request.param
    upstream = Upstream()
    async with serve_upstream({"/v1/messages": upstream.messages}) as url:
        pool = FakePool([_account(url, "first", first), _account(url, "second", "sk-fine")])
        async with edge_on_fakes(FakeAuth(), pool, tmp_path, "edge-budget", **settings) as edge:
            async with edge_client(edge) as client:
                yield Stack(client, pool, upstream)


def _failovers(reason: str) -> float:
    return REGISTRY.get_sample_value("switchboard_upstream_failovers_total",
                                     {"platform": "claude-console", "reason": reason}) or 0.0


async def _outcomes(pool: FakePool, count: int) -> list[tuple[str, int]]:
    for _ in range(200):
        if len(pool.outcomes) >= count:
            break
        await asyncio.sleep(0.02)
    return [(outcome.account_id, outcome.outcome) for outcome in pool.outcomes]


@pytest.mark.parametrize("stack", [("sk-busy", {})], indirect=True)
async def test_within_the_budget_another_account_serves(stack: Stack) -> None:
    before = _failovers("http_429")
    response = await stack.client.post("/claude/v1/messages", json=BODY, headers=CLAUDE_HEADERS)
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "Hi"
    assert stack.upstream.seen == ["sk-busy", "sk-fine"] and stack.pool.issued == 2
    assert await _outcomes(stack.pool, 2) == [("claude-console/first", router_pb2.OUTCOME_RATE_LIMITED),
                                              ("claude-console/second", router_pb2.OUTCOME_SUCCESS)]
    assert _failovers("http_429") == before + 1


@pytest.mark.parametrize("stack", [("sk-busy", {"failover_budget_seconds": 0.0})], indirect=True)
async def test_a_spent_budget_passes_the_last_upstream_answer(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    before = _failovers("http_429")
    with caplog.at_level(logging.INFO, logger="switchboard_edge.relay"):
        response = await stack.client.post("/claude/v1/messages", json=BODY, headers=CLAUDE_HEADERS)
    assert response.status_code == 429  # the vendor's own answer, as with no account left
    assert response.json() == LIMITED and response.headers["retry-after"] == "7"
    assert stack.upstream.seen == ["sk-busy"] and stack.pool.issued == 1  # no second pick, no second attempt
    assert await _outcomes(stack.pool, 1) == [("claude-console/first", router_pb2.OUTCOME_RATE_LIMITED)]
    assert _failovers("http_429") == before  # no failover happened
    assert any("failover budget of 0 s spent after 1 attempts" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("stack", [("sk-broken", {"failover_budget_seconds": 0.0})], indirect=True)
async def test_a_spent_budget_with_no_answer_to_pass_is_the_gateways_error(stack: Stack) -> None:
    response = await stack.client.post("/claude/v1/messages", json=BODY, headers=CLAUDE_HEADERS)
    assert response.status_code == 502
    error: dict[str, Any] = orjson.loads(response.content)
    assert error["type"] == "error" and error["error"]["message"] == "The upstream API failed (HTTP 500)."
    assert stack.upstream.seen == ["sk-broken"] and stack.pool.issued == 1
    assert await _outcomes(stack.pool, 1) == [("claude-console/first", router_pb2.OUTCOME_UPSTREAM_ERROR)]


@pytest.mark.parametrize(
    ("first_attempt", "now", "budget", "within"),
    [
        pytest.param(100.0, 100.0, 0.0, True, id="no-time-passed"),
        pytest.param(100.0, 160.0, 60.0, True, id="at-the-budget"),
        pytest.param(100.0, 160.001, 60.0, False, id="past-the-budget"),
        pytest.param(100.0, 100.001, 0.0, False, id="zero-budget"),
    ],
)
def test_another_attempt_starts_only_within_the_budget(first_attempt: float, now: float, budget: float,
                                                       within: bool) -> None:
    assert failover.within_budget(first_attempt, now, budget) is within


def test_the_budget_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EdgeSettings().failover_budget_seconds == 60.0
    monkeypatch.setenv("SWITCHBOARD_EDGE_FAILOVER_BUDGET_SECONDS", "12.5")
    assert load().failover_budget_seconds == 12.5
