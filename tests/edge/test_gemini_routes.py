"""Gemini's native API under /gemini: the key in x-goog-api-key or ?key= (never forwarded), the model and action in
the path, answers relayed as the upstream gave them, errors in Gemini's format. The upstream replays recordings."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web

from switchboard.router.v1 import router_pb2

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings" / "gemini"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def _recorded(name: str) -> bytes:
    body = yaml.safe_load((RECORDINGS / name).read_text())["interactions"][0]["response"]["body"]["string"]
    return body if isinstance(body, bytes) else body.encode()


@dataclass
class Upstream:
    seen: list[web.Request] = field(default_factory=list)
    # Stream only the first chunk, then end without the final one.
    cut: bool = False
    # Answer every call with this (status, body) instead.
    refusal: tuple[int, bytes] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        action = request.match_info["target"].rsplit(":", 1)[1]
        if self.refusal is not None:
            return web.Response(status=self.refusal[0], body=self.refusal[1], content_type="application/json")
        if action == "streamGenerateContent" and self.cut:
            first = _recorded("streamGenerateContent-sse.yaml").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            return web.Response(body=first, content_type="text/event-stream")
        if action == "streamGenerateContent":
            return web.Response(body=_recorded("streamGenerateContent-sse.yaml"), content_type="text/event-stream")
        if action == "countTokens":
            return web.json_response({"totalTokens": 5})
        return web.Response(body=_recorded("generateContent.yaml"), content_type="application/json")


@dataclass
class Gateway:
    client: httpx.AsyncClient
    upstream: Upstream
    auth: FakeAuth
    router: FakeRouter


@pytest.fixture()
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    upstream = Upstream()
    async with serve_upstream({"/v1beta/models/{target}": upstream.handle}) as url:
        account = router_pb2.Account(id="gemini/g", platform="gemini", base_url=url,
                                     credential=router_pb2.Credential(api_key="AIza-account"))
        auth, router = FakeAuth(), FakeRouter(account)
        async with edge_on_fakes(auth, router, tmp_path, "edge-gemini") as edge:
            async with edge_client(edge) as client:
                yield Gateway(client, upstream, auth, router)


async def test_generate_content_with_the_key_in_the_query(gateway: Gateway) -> None:
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=good", json=BODY)
    assert response.status_code == 200 and response.json()["candidates"]
    (seen,) = gateway.upstream.seen
    assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen.headers["x-goog-api-key"] == "AIza-account" and "key" not in seen.query
    assert gateway.router.last_pick is not None and gateway.router.last_pick.model == "gemini-2.5-flash"


async def test_stream_and_count_tokens_with_the_key_in_the_header(gateway: Gateway) -> None:
    headers = {"x-goog-api-key": "good"}
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                                         json=BODY, headers=headers)
    assert response.status_code == 200 and response.text == _recorded("streamGenerateContent-sse.yaml").decode()
    assert gateway.upstream.seen[-1].query.get("alt") == "sse"
    response = await gateway.client.post("/gemini/v1/models/gemini-2.5-flash:countTokens", json=BODY, headers=headers)
    assert response.json() == {"totalTokens": 5}


async def test_errors_the_gateway_makes_are_in_geminis_format(gateway: Gateway) -> None:
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=wrong", json=BODY)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED" and response.json()["error"]["code"] == 401
    response = await gateway.client.get("/gemini/v1beta/nothing-here", headers={"x-goog-api-key": "good"})
    assert response.status_code == 404 and response.json()["error"]["status"] == "NOT_FOUND"
    assert gateway.upstream.seen == []


async def test_models_are_listed_in_geminis_format(gateway: Gateway) -> None:
    gateway.router.statuses = [router_pb2.AccountStatus(
        account=router_pb2.Account(id="gemini/g", platform="gemini"), state=router_pb2.ACCOUNT_STATE_READY,
        models=["gemini-2.5-flash", "gemini-*"])]
    response = await gateway.client.get("/gemini/v1beta/models?key=good")
    assert response.status_code == 200
    assert [model["name"] for model in response.json()["models"]] == ["models/gemini-2.5-flash"]


async def test_stream_without_alt_sse_is_one_json_array_of_the_upstreams_chunks(gateway: Gateway) -> None:
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                                         json=BODY, headers={"x-goog-api-key": "good"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    # The upstream is still asked for SSE; its chunks become the array's elements, in order.
    assert gateway.upstream.seen[-1].query.get("alt") == "sse"
    recorded = _recorded("streamGenerateContent-sse.yaml").decode()
    chunks = [json.loads(line[len("data: "):]) for line in recorded.splitlines() if line.startswith("data: ")]
    assert response.text.startswith("[{") and response.text.endswith("}]")
    assert json.loads(response.text) == chunks and len(chunks) > 1


async def test_json_array_stream_cut_short_ends_with_an_error_element_and_stays_valid_json(
        gateway: Gateway) -> None:
    gateway.upstream.cut = True
    response = await gateway.client.post("/gemini/v1/models/gemini-2.5-flash:streamGenerateContent",
                                         json=BODY, headers={"x-goog-api-key": "good"})
    elements = json.loads(response.text)
    assert elements[0]["candidates"] and elements[-1]["error"]["status"] == "UNAVAILABLE"
    assert not any(candidate.get("finishReason") for element in elements[:-1]
                   for candidate in element.get("candidates", []))


def _recorded_error(name: str) -> tuple[int, bytes]:
    response = yaml.safe_load((RECORDINGS / name).read_text())["interactions"][0]["response"]
    body = response["body"]["string"]
    return response["status"]["code"], body if isinstance(body, bytes) else body.encode()


async def _outcomes(router: FakeRouter) -> list[router_pb2.ReportOutcomeRequest]:
    for _ in range(100):
        if router.outcomes:
            return router.outcomes
        await asyncio.sleep(0.02)
    raise AssertionError("no outcome reported")


async def test_an_invalid_account_key_is_the_accounts_fault_not_the_clients(gateway: Gateway) -> None:
    gateway.upstream.refusal = _recorded_error("error-400-API_KEY_INVALID-stream-request.yaml")
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                                         json=BODY, headers={"x-goog-api-key": "good"})
    # Not passed through as the client's 400: the gateway's account was refused (and no other account is left).
    assert response.status_code == 502 and response.json()["error"]["status"] == "UNAVAILABLE"
    (outcome,) = await _outcomes(gateway.router)
    assert outcome.outcome == router_pb2.OUTCOME_AUTH_FAILED and outcome.error_type == "api_key_invalid"


async def test_resource_exhausted_hands_its_retry_delay_to_the_client_and_the_router(gateway: Gateway) -> None:
    body = {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                                  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.5s"}]}}
    gateway.upstream.refusal = (429, json.dumps(body).encode())
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                                         json=BODY, headers={"x-goog-api-key": "good"})
    assert response.status_code == 429 and response.json() == body  # the vendor's own answer, passed through
    assert response.headers["retry-after"] == "37"
    (outcome,) = await _outcomes(gateway.router)
    assert outcome.outcome == router_pb2.OUTCOME_RATE_LIMITED and outcome.upstream_headers["retry-after"] == "37"


async def test_not_found_passes_the_vendors_404_through_when_no_other_account_serves(gateway: Gateway) -> None:
    status, recorded = _recorded_error("error-404-NOT_FOUND.yaml")
    gateway.upstream.refusal = (status, recorded)
    response = await gateway.client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                                         json=BODY, headers={"x-goog-api-key": "good"})
    assert response.status_code == 404 and response.content == recorded
    (outcome,) = await _outcomes(gateway.router)
    assert outcome.outcome == router_pb2.OUTCOME_CLIENT_ERROR and outcome.error_type == "not_found"
