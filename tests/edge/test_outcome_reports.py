"""What the edge tells the router of each attempt, for its verdicts on the account (`switchboard_router.verdicts`):
the vendor's rate-limit and usage-window headers on every outcome (a success's and a stream's too), the vendor's
own error kind and message, and the upstream model. A scripted Anthropic upstream, the router a gRPC fake."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web

from switchboard.router.v1 import router_pb2
from switchboard_edge.upstream.base import upstream_error, upstream_hints

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

CLAUDE_HEADERS = {"x-api-key": "good", "anthropic-version": "2023-06-01"}
MODEL = "claude-sonnet-4-5-20250929"
KEY = "sk-ant-api03-the-accounts-own-key-0123456789"
# A subscription answer's usage windows (values as in anomalyco/opencode#49499 and askalf/dario#141).
WINDOWS = {
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-5h-status": "allowed",
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": "1777120000",
    "anthropic-ratelimit-unified-7d_sonnet-utilization": "0.0",
    "anthropic-ratelimit-unified-7d_sonnet-reset": "1777154400",
    "anthropic-ratelimit-unified-representative-claim": "five_hour",
}
ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
          "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
          "usage": {"input_tokens": 5, "output_tokens": 2}}
EVENTS = [
    ("message_start", {"type": "message_start", "message": {**ANSWER, "content": [], "stop_reason": None,
                                                            "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                                                                           "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
                                                                                   "text": "Hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 2}}),
    ("message_stop", {"type": "message_stop"}),
]


@dataclass
class Upstream:
    """Answers each request with the next of `answers` (status, headers, body)."""

    answers: list[tuple[int, dict[str, str], bytes, str]]

    async def messages(self, request: web.Request) -> web.Response:
        status, headers, body, content_type = self.answers.pop(0)
        return web.Response(status=status, body=body, headers={**headers, "content-type": content_type})


@dataclass
class Stack:
    client: httpx.AsyncClient
    router: FakeRouter
    upstream: Upstream

    async def outcomes(self, count: int) -> list[router_pb2.ReportOutcomeRequest]:
        await _eventually(lambda: len(self.router.outcomes) >= count)
        return list(self.router.outcomes)


async def _eventually(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never happened")


@pytest.fixture()
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    upstream = Upstream([])
    async with serve_upstream({"/v1/messages": upstream.messages}) as url:
        router = FakeRouter(router_pb2.Account(id="claude-console/sub", name="sub", platform="claude-console",
                                               base_url=url, credential=router_pb2.Credential(api_key=KEY)))
        async with edge_on_fakes(FakeAuth(), router, tmp_path, "edge-reports") as edge:
            async with edge_client(edge) as client:
                yield Stack(client, router, upstream)


def _sse() -> bytes:
    return b"".join(f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n" for name, data in EVENTS)


def _body(stream: bool) -> dict[str, object]:
    return {"model": MODEL, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_successs_usage_windows_reach_the_router(stack: Stack, stream: bool) -> None:
    body, content_type = (_sse(), "text/event-stream") if stream else (orjson.dumps(ANSWER), "application/json")
    stack.upstream.answers.append((200, {**WINDOWS, "request-id": "req_1", "x-other": "no"}, body, content_type))
    response = await stack.client.post("/claude/v1/messages", json=_body(stream), headers=CLAUDE_HEADERS)
    assert response.status_code == 200
    [report] = await stack.outcomes(1)
    assert report.outcome == router_pb2.OUTCOME_SUCCESS and report.model == MODEL
    assert dict(report.upstream_headers) == WINDOWS  # the hint headers only, names lower-case
    assert report.upstream_error == ""
    assert "anthropic-ratelimit-unified-5h-utilization" not in response.headers  # the client never sees them


async def test_a_refusals_vendor_error_reaches_the_router(stack: Stack) -> None:
    refusal = {"type": "error", "error": {"type": "rate_limit_error",
                                          "message": "Extra usage is required for long context requests."},
               "request_id": "req_011CY5YJLsmBrFu4pcWKKt5b"}  # Wei-Shaw/sub2api#572
    stack.upstream.answers.append((429, {**WINDOWS, "retry-after": "60"}, orjson.dumps(refusal), "application/json"))
    response = await stack.client.post("/claude/v1/messages", json=_body(False), headers=CLAUDE_HEADERS)
    assert response.status_code == 429  # no other account: the vendor's own answer
    [report] = await stack.outcomes(1)
    assert (report.outcome, report.status_code, report.model) == (router_pb2.OUTCOME_RATE_LIMITED, 429, MODEL)
    assert report.upstream_error == "rate_limit_error: Extra usage is required for long context requests."
    assert dict(report.upstream_headers) == {**WINDOWS, "retry-after": "60"}


async def test_the_accounts_credential_never_reaches_the_router(stack: Stack) -> None:
    echoed = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"}}
    stack.upstream.answers.append((401, {"x-should-retry": "false"}, orjson.dumps(echoed), "application/json"))
    response = await stack.client.post("/claude/v1/messages", json=_body(False), headers=CLAUDE_HEADERS)
    assert response.status_code == 502  # the gateway's own error: the vendor's is about the account
    [report] = await stack.outcomes(1)
    assert report.outcome == router_pb2.OUTCOME_AUTH_FAILED
    assert report.upstream_error == "authentication_error: invalid x-api-key [redacted]"


def test_the_hints_cover_every_header_family_the_router_reads() -> None:
    headers = [("Retry-After", "7"), ("retry-after-ms", "7000"), ("x-should-retry", "true"),
               ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "6m0s"),
               ("anthropic-ratelimit-unified-7d_opus-status", "rejected"),
               ("anthropic-ratelimit-requests-remaining", "0"),
               ("x-codex-primary-used-percent", "100"), ("x-codex-secondary-reset-at", "1778239400"),
               ("content-type", "application/json"), ("set-cookie", "__cf_bm=x"), ("request-id", "req_1")]
    assert upstream_hints(headers) == {name.lower(): value for name, value in headers[:9]}
    assert upstream_hints([], retry_after=2.2) == {"retry-after": "3"}  # a delay given only in the body


@pytest.mark.parametrize(
    ("body", "excerpt"),
    [
        pytest.param({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                "plan_type": "plus", "resets_at": 1777936568, "eligible_promo": None,
                                "resets_in_seconds": 13872}},
                     "usage_limit_reached: The usage limit has been reached "
                     "(resets_at=1777936568, resets_in_seconds=13872)", id="codex-usage-limit"),
        pytest.param({"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "param": None,
                                "code": "rate_limit_exceeded"}},
                     "rate_limit_exceeded: Rate limit reached for gpt-4o", id="openai-code"),
        pytest.param({"error": {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}},
                     "RESOURCE_EXHAUSTED: Resource exhausted.", id="google-status"),
        pytest.param({"message": "Too many requests, please wait before trying again."},
                     "Too many requests, please wait before trying again.", id="bedrock-message"),
        pytest.param({"detail": "You do not have access to this account."},
                     "You do not have access to this account.", id="codex-detail"),
        pytest.param({"error": {"type": "x", "message": "Bearer eyJhbGciOi.eyJzdWIiOiIx.c2ln was refused"}},
                     "x: [redacted] was refused", id="bearer-masked"),
    ],
)
def test_the_vendors_error_excerpt(body: dict[str, object], excerpt: str) -> None:
    assert upstream_error(orjson.dumps(body)) == excerpt


def test_an_error_excerpt_is_short_and_keeps_its_reset() -> None:
    long = {"error": {"type": "usage_limit_reached", "message": "x" * 1000, "resets_in_seconds": 600}}
    excerpt = upstream_error(orjson.dumps(long))
    assert len(excerpt) == 300 and excerpt.endswith("… (resets_in_seconds=600)")
    assert upstream_error(b"<html>502 Bad Gateway</html>") == ""
