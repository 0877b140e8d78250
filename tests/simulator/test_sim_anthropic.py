"""Anthropic Messages on the wire, held against the recorded vendor traffic field by field."""

from typing import Any

import httpx
import pytest

from switchboard_simulator import textgen

from .conftest import Start
from .sim_testing import (
    ANTHROPIC_HEADERS,
    ANTHROPIC_MESSAGE_ID,
    ANTHROPIC_REQUEST_ID,
    CLAUDE_BODY,
    CLAUDE_STREAM,
    RFC3339,
    anthropic_events,
    collapse,
    recording,
    sse_frames,
)

VERSION = {"anthropic-version": "2023-06-01"}
STREAM_TEXT = recording("anthropic/messages-stream-text.yaml")[0]
# The newest recording (May 2026): message_start and message_delta carry stop_details.
STREAM_2026 = recording("anthropic/messages-stream-tool-use.yaml")[1]
NONSTREAM = recording("anthropic/messages-nonstream-text.yaml")[0]


def _ratelimit_names(headers: Any) -> set[str]:
    return {name.lower() for name in headers if name.lower().startswith("anthropic-ratelimit-")}


async def test_nonstream_message_has_the_recorded_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == NONSTREAM.headers["content-type"] == "application/json"
    body = response.json()
    recorded = NONSTREAM.json()
    current = anthropic_events(STREAM_2026.body)[0][1]["message"]
    # Same keys in the same order as the current API (recorded 2025 keys plus stop_details).
    assert list(body) == list(current)
    assert [k for k in body if k != "stop_details"] == list(recorded)
    assert list(body["usage"]) == list(current["usage"])
    assert set(recorded["usage"]) <= set(body["usage"])
    assert list(body["content"][0]) == list(recorded["content"][0]) == ["type", "text"]
    assert ANTHROPIC_MESSAGE_ID.match(recorded["id"]) and ANTHROPIC_MESSAGE_ID.match(body["id"])
    assert body["type"] == "message" and body["role"] == "assistant" and body["model"] == "claude-sonnet-4-5"
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None


async def test_nonstream_usage_counts_match_the_text(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)).json()
    text = body["content"][0]["text"]
    assert text == textgen.reply(35).text
    assert body["usage"]["output_tokens"] == 35
    assert body["usage"]["input_tokens"] == textgen.estimate_tokens(CLAUDE_BODY["messages"])
    assert body["usage"]["cache_creation_input_tokens"] == body["usage"]["cache_read_input_tokens"] == 0


async def test_response_headers_follow_the_recordings(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
    headers = response.headers
    recorded = STREAM_TEXT.headers
    assert headers["content-type"] == recorded["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == STREAM_TEXT.headers["cache-control"] == "no-cache"
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert ANTHROPIC_REQUEST_ID.match(STREAM_TEXT.headers["request-id"])
    assert ANTHROPIC_REQUEST_ID.match(headers["request-id"])
    assert _ratelimit_names(headers) == _ratelimit_names(STREAM_TEXT.headers)
    assert RFC3339.match(STREAM_TEXT.headers["anthropic-ratelimit-requests-reset"])
    assert RFC3339.match(headers["anthropic-ratelimit-requests-reset"])
    remaining, limit = (int(headers[f"anthropic-ratelimit-requests-{n}"]) for n in ("remaining", "limit"))
    assert 0 < remaining < limit


async def test_stream_events_match_the_recorded_sequence_and_shapes(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
    events = anthropic_events(response.text)
    recorded = anthropic_events(STREAM_TEXT.body)
    names = [name for name, _ in events]
    assert collapse(names) == collapse([name for name, _ in recorded]) == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert names.count("content_block_delta") == 35
    for name, data in events:
        assert data["type"] == name
    current = dict(anthropic_events(STREAM_2026.body))
    ours = dict(events)
    started, current_start = ours["message_start"]["message"], current["message_start"]["message"]
    assert list(started) == list(current_start)
    assert list(started["usage"]) == list(current_start["usage"])
    assert started["content"] == [] and started["stop_reason"] is None
    assert started["usage"]["output_tokens"] == 1
    assert ours["content_block_start"] == dict(recorded)["content_block_start"]
    assert list(ours["message_delta"]) == list(current["message_delta"]) == ["type", "delta", "usage"]
    assert list(ours["message_delta"]["delta"]) == list(current["message_delta"]["delta"])
    assert list(ours["message_delta"]["usage"]) == list(current["message_delta"]["usage"])
    assert ours["message_delta"]["delta"]["stop_reason"] == "end_turn"
    assert ours["message_delta"]["usage"]["output_tokens"] == 35
    delta_keys = [list(data["delta"]) for name, data in recorded if name == "content_block_delta"][0]
    assert all(list(data["delta"]) == delta_keys for name, data in events if name == "content_block_delta")
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == textgen.reply(35).text


async def test_stream_framing_is_byte_exact(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
    frames = sse_frames(response.text)
    # Two lines per frame, ping exactly as recorded, and space padding before the closing brace as recorded.
    assert all(frame.count("\n") == 1 for frame in frames)
    ping = 'event: ping\ndata: {"type": "ping"}'
    assert frames[2] == ping and ping in sse_frames(STREAM_TEXT.body)
    assert any(frame.endswith(" }") for frame in sse_frames(STREAM_TEXT.body))
    padded = [frame for frame in frames if frame.endswith(" }")]
    assert len(padded) >= len(frames) // 2
    second = await client.post("/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
    assert len(second.content) == len(response.content), "same shape, same length (padding is positional)"


async def test_sse_padding_can_be_turned_off(start: Start) -> None:
    url = await start(anthropic={"sse_padding": False})
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
    assert not any(frame.endswith(" }") for frame in sse_frames(response.text))


@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
async def test_max_tokens_truncates_with_stop_reason_max_tokens(
    client: httpx.AsyncClient, stream: bool
) -> None:
    body = {**CLAUDE_BODY, "max_tokens": 7, "stream": stream}
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    if stream:
        events = anthropic_events(response.text)
        final = dict(events)["message_delta"]
        stop_reason, output_tokens = final["delta"]["stop_reason"], final["usage"]["output_tokens"]
        text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    else:
        message = response.json()
        stop_reason, output_tokens = message["stop_reason"], message["usage"]["output_tokens"]
        text = message["content"][0]["text"]
    assert (stop_reason, output_tokens) == ("max_tokens", 7)
    assert text == "The quick brown fox jumps over the"


async def test_reply_length_and_chunking_are_configurable(start: Start) -> None:
    url = await start(reply_tokens=12, chunk_tokens=5)
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
    events = anthropic_events(response.text)
    deltas = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert len(deltas) == 3 and "".join(deltas) == textgen.reply(12).text
    assert dict(events)["message_delta"]["usage"]["output_tokens"] == 12


async def test_query_string_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages?beta=true", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200


def _assert_error(response: httpx.Response, status: int, kind: str, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["type", "error", "request_id"]
    assert body["type"] == "error" and body["error"] == {"type": kind, "message": message}
    assert body["request_id"] == response.headers["request-id"]
    assert ANTHROPIC_REQUEST_ID.match(body["request_id"])
    assert response.headers["x-should-retry"] == ("true" if status >= 500 or status == 429 else "false")


async def test_401_matches_the_recorded_error(client: httpx.AsyncClient) -> None:
    recorded = recording("anthropic/error-401-authentication_error.yaml")[0]
    response = await client.post("/v1/messages", content=recorded.request_body,
                                 headers={"x-api-key": "sk-ant-wrong", "anthropic-version": "2023-06-01"})
    assert response.status_code == recorded.status == 401
    assert response.json()["error"] == recorded.json()["error"]
    assert list(response.json()) == list(recorded.json())
    assert response.headers["x-should-retry"] == recorded.headers["x-should-retry"] == "false"
    _assert_error(response, 401, "authentication_error", "invalid x-api-key")


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        pytest.param({}, 401, "x-api-key header is required", id="no-key"),
        pytest.param({"x-api-key": ""}, 401, "x-api-key header is required", id="empty-key"),
        pytest.param({"authorization": "Bearer sk-oat-x"}, 401, "Invalid bearer token", id="bad-bearer"),
    ],
)
async def test_authentication_failures(client: httpx.AsyncClient, headers: dict[str, str], status: int,
                                       message: str) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_BODY, headers={**headers, **VERSION})
    _assert_error(response, status, "authentication_error", message)


async def test_bearer_token_of_a_known_key_is_accepted(client: httpx.AsyncClient) -> None:
    headers = {"authorization": "Bearer sk-sim-anthropic", "anthropic-version": "2023-06-01"}
    assert (await client.post("/v1/messages", json=CLAUDE_BODY, headers=headers)).status_code == 200


async def test_any_key_is_accepted_when_configured(start: Start) -> None:
    url = await start(anthropic={"accept_any_key": True})
    async with httpx.AsyncClient(base_url=url) as http:
        headers = {"x-api-key": "whatever", "anthropic-version": "2023-06-01"}
        assert (await http.post("/v1/messages", json=CLAUDE_BODY, headers=headers)).status_code == 200
        headers = {"anthropic-version": "2023-06-01"}
        assert (await http.post("/v1/messages", json=CLAUDE_BODY, headers=headers)).status_code == 401


async def test_400_matches_the_recorded_error(client: httpx.AsyncClient) -> None:
    recorded = recording("anthropic/error-400-invalid_request_error.yaml")[0]
    response = await client.post("/v1/messages", content=recorded.request_body, headers=ANTHROPIC_HEADERS)
    assert response.status_code == recorded.status == 400
    assert response.json()["error"] == recorded.json()["error"]


async def test_404_matches_the_recorded_error(client: httpx.AsyncClient) -> None:
    recorded = recording("anthropic/error-404-not_found_error.yaml")[0]
    response = await client.post("/v1/messages", content=recorded.request_body, headers=ANTHROPIC_HEADERS)
    assert response.status_code == recorded.status == 404
    assert response.json()["error"] == recorded.json()["error"]
    assert list(response.json()) == list(recorded.json())
    assert response.headers["x-should-retry"] == recorded.headers["x-should-retry"]


async def test_served_models_are_configurable_globs(start: Start) -> None:
    url = await start(anthropic={"models": ["claude-sonnet-*"]})
    async with httpx.AsyncClient(base_url=url) as http:
        ok = await http.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
        missing = await http.post("/v1/messages", json={**CLAUDE_BODY, "model": "claude-haiku-4-5"},
                                  headers=ANTHROPIC_HEADERS)
    assert ok.status_code == 200
    _assert_error(missing, 404, "not_found_error", "model: claude-haiku-4-5")


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in CLAUDE_BODY.items() if k != key}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(_without("max_tokens"), "max_tokens: Field required", id="no-max_tokens"),
        pytest.param(_without("messages"), "messages: Field required", id="no-messages"),
        pytest.param(_without("model"), "model: Field required", id="no-model"),
        pytest.param({**CLAUDE_BODY, "max_tokens": "many"}, "max_tokens: Input should be a valid integer",
                     id="max_tokens-type"),
        pytest.param({**CLAUDE_BODY, "max_tokens": 0},
                     "max_tokens: Input should be greater than or equal to 1", id="max_tokens-zero"),
        pytest.param({**CLAUDE_BODY, "messages": []}, "messages: at least one message is required",
                     id="messages-empty"),
        pytest.param({**CLAUDE_BODY, "messages": [{"role": "robot", "content": "hi"}]},
                     "messages.0.role: Input should be 'user' or 'assistant'", id="bad-role"),
        pytest.param({**CLAUDE_BODY, "stream": "yes"}, "stream: Input should be a valid boolean",
                     id="stream-type"),
    ],
)
async def test_validation_errors(client: httpx.AsyncClient, body: dict[str, Any], message: str) -> None:
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    _assert_error(response, 400, "invalid_request_error", message)


async def test_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", content=b'{"model": "claude', headers=ANTHROPIC_HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["message"].startswith("The request body is not valid JSON: ")


async def test_missing_anthropic_version_header(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_BODY, headers={"x-api-key": "sk-sim-anthropic"})
    _assert_error(response, 400, "invalid_request_error", "anthropic-version: header is required")


async def test_a_streamed_request_that_fails_gets_a_json_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json={**CLAUDE_BODY, "stream": True},
                                 headers={"x-api-key": "nope", "anthropic-version": "2023-06-01"})
    _assert_error(response, 401, "authentication_error", "invalid x-api-key")


async def test_count_tokens_uses_the_same_estimate(client: httpx.AsyncClient) -> None:
    body = {"model": "claude-sonnet-4-5", "messages": CLAUDE_BODY["messages"], "system": "Be brief."}
    response = await client.post("/v1/messages/count_tokens", json=body, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200
    assert response.json() == {"input_tokens": textgen.estimate_tokens(body["messages"], body["system"])}
    message = await client.post("/v1/messages", json={**body, "max_tokens": 5}, headers=ANTHROPIC_HEADERS)
    assert message.json()["usage"]["input_tokens"] == response.json()["input_tokens"]
