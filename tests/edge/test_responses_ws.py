"""The Responses API over WebSocket (Codex's first transport): the key from the handshake, each response.create
relayed to the HTTP upstream as one stream, its events sent as messages, errors as wrapped error events, chains
continued with incremental input, warm-ups answered without an upstream call, each response settled on its own.

The edge runs in a real uvicorn server (WebSockets need one); auth and router are in-process fakes."""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from switchboard.router.v1 import router_pb2

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_on_fakes, serve_upstream


def _events(text: str, reply: str) -> bytes:
    """A Responses stream as the vendor frames it, answering `reply`."""
    response = {"id": f"resp_{text}", "object": "response", "status": "in_progress", "output": []}
    item = {"id": f"msg_{text}", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": reply, "annotations": []}]}
    done = {**response, "status": "completed", "output": [item],
            "usage": {"input_tokens": 11, "input_tokens_details": {"cached_tokens": 3}, "output_tokens": 5,
                      "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 16}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
        ("response.output_text.delta", {"output_index": 0, "content_index": 0, "delta": reply}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": done}),
    ]
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, "sequence_number": n, **data})
        + b"\n\n" for n, (name, data) in enumerate(events))


@dataclass
class Upstream:
    seen: list[tuple[web.Request, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    # Send the first two events, then hold the stream open until the edge closes it.
    stall: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append((request, body))
        if self.status != 200:
            return web.json_response({"error": {"message": "Invalid 'input': empty.", "type": "invalid_request_error",
                                                "param": "input", "code": None}}, status=self.status)
        text = str(len(self.seen))
        stream = _events(text, f"reply number {text}")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        if self.stall:
            await response.write(b"\n\n".join(stream.split(b"\n\n")[:2]) + b"\n\n")
            try:  # comments keep the stream alive until writing fails: the edge let go of it
                for _ in range(300):
                    await asyncio.sleep(0.05)
                    await response.write(b": keep-alive\n\n")
            finally:
                self.released.set()
        await response.write(stream)
        return response


@dataclass
class Gateway:
    url: str
    upstream: Upstream
    auth: FakeAuth
    router: FakeRouter
    edge: Any


@pytest.fixture()
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    upstream = Upstream()
    async with serve_upstream({"/v1/responses": upstream.handle}) as url:
        account = router_pb2.Account(id="openai-responses/r", platform="openai-responses", base_url=url,
                                     credential=router_pb2.Credential(api_key="sk-account"))
        auth, router = FakeAuth(), FakeRouter(account)
        async with edge_on_fakes(auth, router, tmp_path, "edge-ws") as edge:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            port = listener.getsockname()[1]
            web_server = uvicorn.Server(uvicorn.Config(edge, log_config=None, ws="websockets-sansio", lifespan="on"))
            serving = asyncio.get_running_loop().create_task(web_server.serve(sockets=[listener]))
            while not web_server.started:
                await asyncio.sleep(0.01)
            try:
                yield Gateway(f"ws://127.0.0.1:{port}", upstream, auth, router, edge)
            finally:
                web_server.should_exit = True
                await serving


HEADERS = {"authorization": "Bearer good", "session_id": "codex-session-1", "originator": "codex_cli_rs",
           "x-codex-turn-metadata": "t1", "openai-beta": "responses_websockets=2026-02-06"}


def _create(**fields: Any) -> str:
    return orjson.dumps({"type": "response.create", "model": "gpt-5.5", "store": False,
                         "include": ["reasoning.encrypted_content"], **fields}).decode()


async def _until_done(ws: ClientConnection) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        messages.append(message)
        if message["type"] in ("response.completed", "response.failed", "error"):
            return messages


async def _records(auth: FakeAuth, count: int) -> None:
    for _ in range(200):
        if len(auth.records) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(auth.records)} usage records, expected {count}")


@pytest.mark.parametrize("path", ["/responses", "/v1/responses", "/openai/v1/responses", "/openai/responses"])
async def test_each_response_create_is_relayed_and_its_events_arrive_as_messages(gateway: Gateway,
                                                                               path: str) -> None:
    async with connect(gateway.url + path, additional_headers=HEADERS) as ws:
        await ws.send(_create(input="ping"))
        messages = await _until_done(ws)
    assert [m["type"] for m in messages] == ["response.created", "response.output_item.added",
                                            "response.output_text.delta", "response.output_item.done",
                                            "response.completed"]
    assert messages[2]["delta"] == "reply number 1"
    request, forwarded = gateway.upstream.seen[-1]
    # Sent upstream as an HTTP stream, with Codex's headers and without the WebSocket's own.
    assert forwarded["stream"] is True and "type" not in forwarded and forwarded["input"] == "ping"
    assert request.headers["authorization"] == "Bearer sk-account"
    assert request.headers["originator"] == "codex_cli_rs" and request.headers["x-codex-turn-metadata"] == "t1"
    assert "sec-websocket-key" not in request.headers and "openai-beta" not in request.headers
    await _records(gateway.auth, 1)
    (record,) = gateway.auth.records
    assert record.usage.input_tokens == 8 and record.usage.cache_read_input_tokens == 3
    assert record.usage.output_tokens == 5 and not record.truncated


async def test_a_refused_key_is_refused_at_the_handshake_in_openais_format(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(gateway.url + "/v1/responses", additional_headers={"authorization": "Bearer wrong"}):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert orjson.loads(response.body)["error"]["type"] == "invalid_request_error"
    assert gateway.upstream.seen == []


async def test_responses_on_one_socket_are_settled_one_by_one_and_chain_with_incremental_input(
        gateway: Gateway) -> None:
    async with connect(gateway.url + "/v1/responses", additional_headers=HEADERS) as ws:
        await ws.send(_create(input=[{"type": "message", "role": "user", "content": "first"},
                                     {"type": "additional_tools", "tools": []}]))
        first = await _until_done(ws)
        previous = first[-1]["response"]["id"]
        output = first[-1]["response"]["output"]
        await ws.send(_create(previous_response_id=previous,
                              input=[{"type": "function_call_output", "call_id": "c1", "output": "ok"}]))
        second = await _until_done(ws)
        # Not this connection's last response: left for the upstream to judge.
        await ws.send(_create(previous_response_id="resp_elsewhere", input="third"))
        await _until_done(ws)
    assert second[2]["delta"] == "reply number 2"
    _, forwarded = gateway.upstream.seen[1]
    assert "previous_response_id" not in forwarded
    assert forwarded["input"] == [{"type": "message", "role": "user", "content": "first"},
                                  {"type": "additional_tools", "tools": []}, *output,
                                  {"type": "function_call_output", "call_id": "c1", "output": "ok"}]
    _, third = gateway.upstream.seen[2]
    assert third["previous_response_id"] == "resp_elsewhere" and third["input"] == "third"
    await _records(gateway.auth, 3)
    assert len({record.request_id for record in gateway.auth.records}) == 3


async def test_a_warm_up_is_answered_without_the_upstream_and_the_next_turn_continues_it(
        gateway: Gateway) -> None:
    async with connect(gateway.url + "/v1/responses", additional_headers=HEADERS) as ws:
        await ws.send(_create(generate=False, instructions="be brief",
                              input=[{"type": "message", "role": "user", "content": "context"}]))
        warm = await _until_done(ws)
        assert [m["type"] for m in warm] == ["response.created", "response.completed"]
        assert gateway.upstream.seen == []
        await ws.send(_create(previous_response_id=warm[-1]["response"]["id"], input="go"))
        await _until_done(ws)
    _, forwarded = gateway.upstream.seen[0]
    assert "generate" not in forwarded
    assert forwarded["input"] == [{"type": "message", "role": "user", "content": "context"},
                                  {"type": "message", "role": "user",
                                   "content": [{"type": "input_text", "text": "go"}]}]


async def test_an_upstream_refusal_is_a_wrapped_error_event_and_the_socket_stays_open(gateway: Gateway) -> None:
    gateway.upstream.status = 400
    async with connect(gateway.url + "/v1/responses", additional_headers=HEADERS) as ws:
        await ws.send(_create(input="ping"))
        (error,) = await _until_done(ws)
        await ws.send("not json")
        (bad,) = await _until_done(ws)
        gateway.upstream.status = 200
        await ws.send(_create(input="again"))
        again = await _until_done(ws)
    # The upstream's own error object, with its status, as Codex reads a WebSocket error.
    assert error == {"type": "error", "status": 400, "error": {"message": "Invalid 'input': empty.",
                                                               "type": "invalid_request_error", "param": "input",
                                                               "code": None}}
    assert bad["type"] == "error" and bad["status"] == 400 and "JSON" in bad["error"]["message"]
    assert again[-1]["type"] == "response.completed"


async def test_a_client_gone_mid_stream_ends_the_upstream_call_and_settles_it_as_truncated(
        gateway: Gateway) -> None:
    gateway.upstream.stall = True
    async with connect(gateway.url + "/v1/responses", additional_headers=HEADERS) as ws:
        await ws.send(_create(input="ping"))
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "response.created"
    await asyncio.wait_for(gateway.upstream.released.wait(), 10)
    await _records(gateway.auth, 1)
    (record,) = gateway.auth.records
    assert record.truncated and record.end_reason == "client_closed"
    assert gateway.router.held == set()  # the lease went back with the outcome


async def test_draining_closes_idle_sockets_as_going_away_and_refuses_new_ones(gateway: Gateway) -> None:
    async with connect(gateway.url + "/v1/responses", additional_headers=HEADERS) as ws:
        await ws.send(_create(input="ping"))
        await _until_done(ws)
        gateway.edge.state.begin_drain()
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1001
    with pytest.raises(InvalidStatus) as refused:
        async with connect(gateway.url + "/v1/responses", additional_headers=HEADERS):
            pass
    assert refused.value.response.status_code == 503
    assert refused.value.response.headers["retry-after"] == "1"
