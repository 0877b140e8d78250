"""A vendor's own error event inside a stream that began with 200 (Anthropic `event: error`, Responses `error` /
`response.failed`, an OpenAI chat error chunk, Google's error object in a Gemini stream): the client sees it as the
vendor sent it, and the router is told its kind and message (the excerpt `upstream_error` makes of a refusal's body,
never the account's credential) with an outcome that matches the kind (`failover.in_stream`). A scripted upstream,
the router a gRPC fake; event shapes as in tests/fixtures/vendor-recordings."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from switchboard.router.v1 import router_pb2
from switchboard_edge import failover
from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.anthropic import AnthropicStreamTap
from switchboard_edge.upstream.base import error_excerpt, error_kind
from switchboard_edge.upstream.openai_responses import ResponsesStreamTap

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
KEY = "sk-ant-api03-the-accounts-own-key-0123456789"
CLAUDE_HEADERS = {"x-api-key": "good", "anthropic-version": "2023-06-01"}
BEARER = {"authorization": "Bearer good"}
# What Anthropic sends with a successful stream (headers-retry-after-on-200-stream.yaml): a retry-after too.
STREAM_HEADERS = {"retry-after": "24", "anthropic-ratelimit-tokens-remaining": "2399000", "request-id": "req_1"}


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join((f"event: {name}\n".encode() if name else b"") + b"data: " + orjson.dumps(data) + b"\n\n"
                    for name, data in events)


def _anthropic(error: dict[str, Any]) -> bytes:
    """An Anthropic stream cut by the vendor's `event: error` after its first text (as the simulator sends it)."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}}
    return _sse([
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hel"}}),
        ("error", {"type": "error", "error": error}),
    ])


def _responses(*failure: tuple[str, dict[str, Any]]) -> bytes:
    """A Responses stream: created, in_progress, one text delta, then `failure` (the recorded order)."""
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "model": "gpt-5", "output": [],
                "error": None, "usage": None}
    return _sse([
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": response}),
        ("response.in_progress", {"type": "response.in_progress", "sequence_number": 1, "response": response}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 2,
                                        "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hel"}),
        *failure,
    ])


def _failed(code: str, message: str) -> tuple[str, dict[str, Any]]:
    response = {"id": "resp_1", "object": "response", "status": "failed", "model": "gpt-5", "output": [],
                "error": {"code": code, "message": message}, "usage": None}
    return "response.failed", {"type": "response.failed", "sequence_number": 3, "response": response}


def _recorded_responses_failure() -> bytes:
    """openai-responses/stream-error-insufficient_quota.chunks.txt (payloads only), framed as the vendor frames
    them: each with its `event:` line."""
    lines = (RECORDINGS / "openai-responses/stream-error-insufficient_quota.chunks.txt").read_text().splitlines()
    return _sse([(event["type"], event) for event in map(orjson.loads, lines)])


@dataclass
class Upstream:
    """Answers every request with `body` (an SSE stream) and `headers`, status 200."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    async def answer(self, request: web.Request) -> web.Response:
        return web.Response(status=200, body=self.body, headers={**self.headers, "content-type": "text/event-stream"})


@dataclass
class Stack:
    client: httpx.AsyncClient
    router: FakeRouter
    auth: FakeAuth
    upstream: Upstream
    url: str

    def use(self, platform: str) -> None:
        self.router.account = router_pb2.Account(id=f"{platform}/a", name="a", platform=platform, base_url=self.url,
                                                 credential=router_pb2.Credential(api_key=KEY))

    async def report(self) -> router_pb2.ReportOutcomeRequest:
        await _eventually(lambda: len(self.router.outcomes) >= 1)
        (report,) = self.router.outcomes
        return report


async def _eventually(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never happened")


@pytest.fixture()
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    upstream = Upstream()
    routes = {"/v1/messages": upstream.answer, "/v1/responses": upstream.answer,
              "/v1/chat/completions": upstream.answer, "/v1beta/models/{action}": upstream.answer}
    async with serve_upstream(routes) as url:
        auth, router = FakeAuth(), FakeRouter()
        async with edge_on_fakes(auth, router, tmp_path, "edge-stream-errors") as edge:
            async with edge_client(edge) as client:
                yield Stack(client, router, auth, upstream, url)


async def test_an_anthropic_overloaded_error_mid_stream_reaches_the_router_as_overloaded(stack: Stack) -> None:
    stack.use("claude-console")
    stack.upstream.body = _anthropic({"type": "overloaded_error", "message": "Overloaded"})
    stack.upstream.headers = STREAM_HEADERS
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    response = await stack.client.post("/claude/v1/messages", json=body, headers=CLAUDE_HEADERS)
    assert response.status_code == 200
    assert response.content == stack.upstream.body  # the vendor's own error event, and nothing of the gateway's
    report = await stack.report()
    assert (report.outcome, report.status_code, report.error_type) == (
        router_pb2.OUTCOME_RATE_LIMITED, 200, "upstream_error")
    assert report.upstream_error == "overloaded_error: Overloaded"
    assert report.model == "claude-sonnet-4-5"
    assert dict(report.upstream_headers) == {"retry-after": "24", "anthropic-ratelimit-tokens-remaining": "2399000"}
    await _eventually(lambda: len(stack.auth.records) >= 1)
    (record,) = stack.auth.records
    assert record.end_reason == "upstream_error" and record.truncated
    assert (record.usage.input_tokens, record.usage.output_tokens) == (12, 1)


async def test_a_responses_usage_limit_in_response_failed_reaches_the_router_as_rate_limited(stack: Stack) -> None:
    stack.use("openai-responses")
    stack.upstream.body = _responses(_failed("usage_limit_reached", "The usage limit has been reached"))
    body = {"model": "gpt-5", "stream": True, "input": "Hi"}
    response = await stack.client.post("/openai/v1/responses", json=body, headers=BEARER)
    assert response.status_code == 200 and response.content == stack.upstream.body
    report = await stack.report()
    assert (report.outcome, report.status_code) == (router_pb2.OUTCOME_RATE_LIMITED, 200)
    assert report.upstream_error == "usage_limit_reached: The usage limit has been reached"


@pytest.mark.parametrize(
    ("platform", "path", "headers", "body", "stream", "outcome", "excerpt"),
    [
        pytest.param("claude-console", "/claude/v1/messages", CLAUDE_HEADERS,
                     {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                      "messages": [{"role": "user", "content": "Hi"}]},
                     _anthropic({"type": "rate_limit_error", "message": "Rate limited"}),
                     router_pb2.OUTCOME_RATE_LIMITED, "rate_limit_error: Rate limited", id="anthropic-rate-limit"),
        pytest.param("claude-console", "/claude/v1/messages", CLAUDE_HEADERS,
                     {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                      "messages": [{"role": "user", "content": "Hi"}]},
                     _anthropic({"type": "api_error", "message": f"Internal server error (key {KEY})"}),
                     router_pb2.OUTCOME_UPSTREAM_ERROR, "api_error: Internal server error (key [redacted])",
                     id="anthropic-api-error-key-masked"),
        pytest.param("openai-responses", "/openai/v1/responses", BEARER, {"model": "gpt-5", "stream": True,
                                                                          "input": "Hi"},
                     _recorded_responses_failure(), router_pb2.OUTCOME_RATE_LIMITED,
                     "insufficient_quota: You exceeded your current quota, please check your plan and billing "
                     "details. For more information on this error, read the docs: "
                     "https://platform.openai.com/docs/guides/error-codes/api-errors.", id="responses-recorded-quota"),
        pytest.param("openai-responses", "/openai/v1/responses", BEARER, {"model": "gpt-5", "stream": True,
                                                                          "input": "Hi"},
                     _responses(("error", {"type": "error", "code": "rate_limit_exceeded", "sequence_number": 3,
                                           "message": "Rate limit reached for gpt-5", "param": None})),
                     router_pb2.OUTCOME_RATE_LIMITED, "rate_limit_exceeded: Rate limit reached for gpt-5",
                     id="responses-error-event-own-fields"),
        pytest.param("openai-responses", "/openai/v1/responses", BEARER, {"model": "gpt-5", "stream": True,
                                                                          "input": "Hi"},
                     _responses(_failed("server_error", "An error occurred while processing your request.")),
                     router_pb2.OUTCOME_UPSTREAM_ERROR,
                     "server_error: An error occurred while processing your request.", id="responses-server-error"),
        pytest.param("openai", "/openai/v1/chat/completions", BEARER,
                     {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
                     _sse([("", {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                                 "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}),
                           ("", {"error": {"message": "The server had an error while processing your request.",
                                           "type": "server_error", "param": None, "code": None}})]),
                     router_pb2.OUTCOME_UPSTREAM_ERROR,
                     "server_error: The server had an error while processing your request.", id="openai-chunk"),
        pytest.param("gemini", "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                     {"x-goog-api-key": "good"}, {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
                     _sse([("", {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]}),
                           ("", {"error": {"code": 429, "message": "Resource exhausted. Please try again later.",
                                           "status": "RESOURCE_EXHAUSTED"}})]),
                     router_pb2.OUTCOME_RATE_LIMITED, "RESOURCE_EXHAUSTED: Resource exhausted. Please try again later.",
                     id="gemini-resource-exhausted"),
        pytest.param("gemini", "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                     {"x-goog-api-key": "good"}, {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
                     _sse([("", {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]}),
                           ("", {"error": {"code": 500, "message": "An internal error has occurred.",
                                           "status": "INTERNAL"}})]),
                     router_pb2.OUTCOME_UPSTREAM_ERROR, "INTERNAL: An internal error has occurred.",
                     id="gemini-internal"),
    ],
)
async def test_each_vendors_in_stream_error_reaches_the_router_with_its_kind(
    stack: Stack, platform: str, path: str, headers: dict[str, str], body: dict[str, Any], stream: bytes,
    outcome: int, excerpt: str,
) -> None:
    stack.use(platform)
    stack.upstream.body = stream
    response = await stack.client.post(path, json=body, headers=headers)
    assert response.status_code == 200
    report = await stack.report()
    assert (report.outcome, report.status_code, report.error_type, report.upstream_error) == (
        outcome, 200, "upstream_error", excerpt)


async def test_a_stream_the_vendor_finished_reports_no_error(stack: Stack) -> None:
    stack.use("openai")
    stack.upstream.body = _sse([("", {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                                      "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
                                      "error": None}),
                                ("", {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                                      "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})])
    stack.upstream.body += b"data: [DONE]\n\n"
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    response = await stack.client.post("/openai/v1/chat/completions", json=body, headers=BEARER)
    assert response.status_code == 200
    report = await stack.report()
    assert (report.outcome, report.upstream_error, report.error_type) == (router_pb2.OUTCOME_SUCCESS, "", "")


# -- the taps and the outcome, alone ---------------------------------------------------------------------------


def test_the_responses_tap_keeps_the_first_of_the_recorded_error_and_failed_events() -> None:
    tap = ResponsesStreamTap()
    for event in SSEDecoder().feed(_recorded_responses_failure()):
        assert tap.observe(event)  # the client sees every one
    assert tap.errored and not tap.complete
    assert tap.error is not None and error_kind(tap.error) == "insufficient_quota"
    assert tap.error["type"] == "error"  # the `error` event, not the `response.failed` after it


def test_an_unreadable_error_event_still_ends_the_stream_as_errored_without_an_excerpt() -> None:
    tap = AnthropicStreamTap()
    tap.observe(SSEDecoder().feed(b"event: error\ndata: not json\n\n")[0])
    assert tap.errored and tap.error is None
    assert (error_kind(tap.error), error_excerpt(tap.error)) == ("", "")
    assert failover.in_stream("") == router_pb2.OUTCOME_UPSTREAM_ERROR


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        ("overloaded_error", router_pb2.OUTCOME_RATE_LIMITED),
        ("server_is_overloaded", router_pb2.OUTCOME_RATE_LIMITED),
        ("slow_down", router_pb2.OUTCOME_RATE_LIMITED),
        ("rate_limit_error", router_pb2.OUTCOME_RATE_LIMITED),
        ("rate_limit_exceeded", router_pb2.OUTCOME_RATE_LIMITED),
        ("usage_limit_reached", router_pb2.OUTCOME_RATE_LIMITED),
        ("insufficient_quota", router_pb2.OUTCOME_RATE_LIMITED),
        ("RESOURCE_EXHAUSTED", router_pb2.OUTCOME_RATE_LIMITED),
        ("api_error", router_pb2.OUTCOME_UPSTREAM_ERROR),
        ("server_error", router_pb2.OUTCOME_UPSTREAM_ERROR),
        ("INTERNAL", router_pb2.OUTCOME_UPSTREAM_ERROR),
        ("invalid_request_error", router_pb2.OUTCOME_UPSTREAM_ERROR),
    ],
)
def test_the_outcome_of_an_in_stream_error_kind(kind: str, outcome: int) -> None:
    assert failover.in_stream(kind) == outcome
