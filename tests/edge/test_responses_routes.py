"""The Responses API routes: every path Codex may build, the openai-responses platform behind them, typed stream
events relayed as the upstream sent them, usage from response.completed, one failure event per failed stream."""

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from aiohttp import web

from switchboard.router.v1 import router_pb2

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings" / "openai-responses"


def _recorded(name: str) -> bytes:
    body = yaml.safe_load((RECORDINGS / name).read_text())["interactions"][0]["response"]["body"]["string"]
    body = body if isinstance(body, bytes) else body.encode()
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body  # recorded as the wire carried it


@dataclass
class Upstream:
    seen: list[tuple[web.Request, dict]] = field(default_factory=list)  # type: ignore[type-arg]
    cut: bool = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append((request, body))
        if not body.get("stream"):
            return web.Response(body=_recorded("nonstream.yaml"), content_type="application/json")
        stream = _recorded("stream-text.yaml")
        if self.cut:  # the first three events, then the connection ends
            stream = b"\n\n".join(stream.split(b"\n\n")[:3]) + b"\n\n"
        return web.Response(body=stream, content_type="text/event-stream")


@dataclass
class Gateway:
    client: httpx.AsyncClient
    upstream: Upstream
    auth: FakeAuth


@pytest.fixture()
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    upstream = Upstream()
    async with serve_upstream({"/v1/responses": upstream.handle}) as url:
        account = router_pb2.Account(id="openai-responses/r", platform="openai-responses", base_url=url,
                                     credential=router_pb2.Credential(api_key="sk-account"))
        auth = FakeAuth()
        async with edge_on_fakes(auth, FakeRouter(account), tmp_path, "edge-responses") as edge:
            async with edge_client(edge) as client:
                yield Gateway(client, upstream, auth)


HEADERS = {"authorization": "Bearer good", "session_id": "codex-session-1", "originator": "codex_cli_rs",
           "x-codex-turn-metadata": "t1"}
BODY = {"model": "gpt-5.5", "input": [{"type": "message", "role": "user", "content": "ping"},
                                      {"type": "additional_tools", "tools": []}],
        "include": ["reasoning.encrypted_content"], "store": False}


@pytest.mark.parametrize("path", ["/responses", "/v1/responses", "/openai/v1/responses", "/openai/responses"])
async def test_every_codex_path_reaches_the_responses_platform(gateway: Gateway, path: str) -> None:
    response = await gateway.client.post(path, json=BODY, headers=HEADERS)
    assert response.status_code == 200 and response.json()["object"] == "response"
    request, forwarded = gateway.upstream.seen[-1]
    assert request.headers["authorization"] == "Bearer sk-account"
    assert request.headers["originator"] == "codex_cli_rs" and request.headers["x-codex-turn-metadata"] == "t1"
    assert forwarded["input"][1] == {"type": "additional_tools", "tools": []}
    assert forwarded["include"] == ["reasoning.encrypted_content"]


async def test_a_stream_is_relayed_and_billed_from_response_completed(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/responses", json={**BODY, "stream": True}, headers=HEADERS)
    assert response.text == _recorded("stream-text.yaml").decode()
    for _ in range(100):
        if gateway.auth.records:
            break
        await asyncio.sleep(0.02)
    (record,) = gateway.auth.records
    assert record.end_reason == "complete" and not record.usage_estimated
    assert (record.usage.input_tokens, record.usage.output_tokens) == (11, 5)
    assert record.session_id == "codex-session-1"


async def test_a_cut_stream_ends_with_one_error_event(gateway: Gateway) -> None:
    gateway.upstream.cut = True
    response = await gateway.client.post("/v1/responses", json={**BODY, "stream": True}, headers=HEADERS)
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert events[-1].startswith("event: error\ndata: ")
    assert orjson.loads(events[-1].split("data: ", 1)[1])["type"] == "error"
    assert response.text.count("event: error") == 1


async def test_refusals_are_in_openais_format(gateway: Gateway) -> None:
    response = await gateway.client.post("/responses", json=BODY, headers={"authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
