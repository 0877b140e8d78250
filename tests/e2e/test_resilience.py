"""Failover before the first byte, clean endings after it, leases returned, key changes honoured."""

import asyncio
import time

import grpc
import httpx
import orjson

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Stack

from .conftest import cli


def test_failover_to_the_next_account_before_the_first_byte(
    stack: Stack, http: httpx.Client, upstream: httpx.Client, keys  # type: ignore[no-untyped-def]
) -> None:
    # An opening of its own: the router keeps a conversation (by its hash) where an earlier "Hi" went.
    body = {"model": "gpt-failover-1", "messages": [{"role": "user", "content": "Hi, fail over"}]}
    response = http.post("/openai/v1/chat/completions", json=body, headers={"authorization": f"Bearer {keys.full}"})
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"
    tried = [entry["headers"]["authorization"] for entry in upstream.get("/_simulator/requests").json()["requests"]]
    assert tried == ["Bearer sk-sim-broken", "Bearer sk-sim-openai"]
    edge_metrics = httpx.get(f"http://127.0.0.1:{stack.ports.edge_metrics}/metrics").text
    assert 'switchboard_upstream_failovers_total{platform="openai",reason="http_500"}' in edge_metrics


def test_broken_stream_ends_with_an_error_event(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-cut-1", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "Hi, cut me off"}]}
    response = http.post("/claude/v1/messages", json=body,
                         headers={"x-api-key": keys.full, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert events[0].startswith("event: message_start")
    assert "event: message_stop" not in response.text
    name, data = events[-1].split("\n", 1)
    assert name == "event: error"
    error = orjson.loads(data.removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"


def test_every_lease_is_returned(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    for _ in range(5):
        http.post("/openai/v1/chat/completions", json=body, headers={"authorization": f"Bearer {keys.full}"})

    async def in_flight() -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports.router}") as channel:
            reply = await router_pb2_grpc.RouterServiceStub(channel).ListAccounts(
                router_pb2.ListAccountsRequest(), timeout=5)
        return sum(status.in_flight for status in reply.accounts)



    deadline = time.monotonic() + 5
    while (count := asyncio.run(in_flight())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count == 0


def test_disabled_key_is_refused_once_the_caches_expire(stack: Stack, http: httpx.Client) -> None:
    key = create_demo_key(stack.db_path, "e2e-soon-disabled")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    assert http.post("/openai/v1/chat/completions", json=body, headers=headers).status_code == 200
    cli(stack, "keys", "disable", "e2e-soon-disabled")
    disabled_at = time.monotonic()
    status = 200
    while status == 200 and time.monotonic() - disabled_at < 5:
        status = http.post("/openai/v1/chat/completions", json=body, headers=headers).status_code
        time.sleep(0.05)
    # auth's cache (0.5 s) plus the edge's reuse of decisions (0.5 s) bound the wait; 5 s is slack.
    assert status == 401
