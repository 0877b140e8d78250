"""Injected faults: the spec grammar, which fault wins, and what each one does on the wire (both vendors)."""

import time
from typing import Any

import httpx
import pytest

from switchboard_simulator import faults
from switchboard_simulator.faults import Fault, FaultSpecError

from .conftest import Start
from .sim_testing import (
    ANTHROPIC_HEADERS,
    ANTHROPIC_REQUEST_ID,
    CLAUDE_BODY,
    CLAUDE_STREAM,
    OPENAI_BODY,
    OPENAI_HEADERS,
    OPENAI_STREAM,
    anthropic_events,
    openai_chunks,
    recording,
)

CLAUDE = ("/v1/messages", ANTHROPIC_HEADERS)
OPENAI = ("/v1/chat/completions", OPENAI_HEADERS)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("500", Fault("500", "status", 500), id="status"),
        pytest.param("429:7", Fault("429:7", "status", 429, 7.0), id="status-arg"),
        pytest.param("rate_limit", Fault("rate_limit", "status", 429), id="alias-rate_limit"),
        pytest.param("server_error@0.25", Fault("server_error@0.25", "status", 500, None, 0.25), id="rate"),
        pytest.param("overloaded", Fault("overloaded", "overloaded"), id="overloaded"),
        pytest.param("disconnect", Fault("disconnect", "disconnect", None, 5.0), id="disconnect-default"),
        pytest.param("disconnect:2", Fault("disconnect:2", "disconnect", None, 2.0), id="disconnect-arg"),
        pytest.param("stream_error", Fault("stream_error", "stream_error", None, 3.0), id="stream_error"),
        pytest.param("hang", Fault("hang", "hang"), id="hang"),
        pytest.param("SLOW:250@1", Fault("SLOW:250@1", "slow", None, 250.0, 1.0), id="slow-case"),
    ],
)
def test_parse(spec: str, expected: Fault) -> None:
    assert faults.parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "teapot", "200", "600", "500@2", "500@x", "slow:-1", "disconnect:x"])
def test_parse_rejects(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        faults.parse(spec)


def test_choose_precedence_header_then_key_then_global() -> None:
    key_faults = {"k": faults.parse("500")}
    globals_ = (faults.parse("503@0"), faults.parse("502"))
    assert faults.choose("429", "k", key_faults, globals_).spec == "429"  # type: ignore[union-attr]
    assert faults.choose(None, "k", key_faults, globals_).spec == "500"  # type: ignore[union-attr]
    assert faults.choose(None, "other", key_faults, globals_).spec == "502"  # type: ignore[union-attr]
    assert faults.choose("429@0", "other", key_faults, ()) is None
    assert faults.choose(None, "other", {}, ()) is None


def test_rate_is_a_probability() -> None:
    fault = faults.parse("500@0.5")
    fired = sum(fault.fires() for _ in range(4000))
    assert 1700 < fired < 2300


async def _post(client: httpx.AsyncClient, api: tuple[str, dict[str, str]], body: dict[str, Any],
                fault: str | None = None, **kwargs: Any) -> httpx.Response:
    path, headers = api
    if fault is not None:
        headers = {**headers, "x-simulator-fault": fault}
    return await client.post(path, json=body, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("fault", "status", "kind", "message"),
    [
        pytest.param("429", 429, "rate_limit_error", None, id="429"),
        pytest.param("500", 500, "api_error", "Internal server error", id="500"),
        pytest.param("overloaded", 529, "overloaded_error", "Overloaded", id="overloaded"),
        pytest.param("529", 529, "overloaded_error", "Overloaded", id="529"),
        pytest.param("403", 403, "permission_error", None, id="403"),
        pytest.param("503", 503, "api_error", "Internal server error", id="503"),
    ],
)
async def test_anthropic_status_faults(client: httpx.AsyncClient, fault: str, status: int, kind: str,
                                       message: str | None) -> None:
    response = await _post(client, CLAUDE, CLAUDE_STREAM, fault)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    if message is not None:
        assert body["error"]["message"] == message
    assert ANTHROPIC_REQUEST_ID.match(body["request_id"])
    assert body["request_id"] == response.headers["request-id"]
    assert response.headers["x-should-retry"] == ("true" if status in (429, 500, 503, 529) else "false")


async def test_anthropic_429_matches_the_recorded_one(client: httpx.AsyncClient) -> None:
    recorded = recording("anthropic/error-429-then-529-then-200-retry-sequence.yaml")[0]
    response = await _post(client, CLAUDE, CLAUDE_BODY, "429:7")
    assert response.json()["error"] == recorded.json()["error"]
    for name in ("retry-after", "x-should-retry", "anthropic-ratelimit-requests-remaining"):
        assert response.headers[name] == recorded.headers[name], name
    recorded_names = {n for n in recorded.headers if n.startswith("anthropic-ratelimit-")}
    assert recorded_names <= set(response.headers.keys())


async def test_anthropic_529_matches_the_recorded_one(client: httpx.AsyncClient) -> None:
    recorded = recording("anthropic/error-429-then-529-then-200-retry-sequence.yaml")[1]
    response = await _post(client, CLAUDE, CLAUDE_BODY, "overloaded")
    assert response.status_code == recorded.status == 529
    ours, theirs = response.json()["error"], recorded.json()["error"]
    # The current body form adds "details": null (and request_id) to the 2024 recording's fields.
    assert {k: v for k, v in ours.items() if k != "details"} == theirs and ours["details"] is None
    assert response.headers["x-should-retry"] == recorded.headers["x-should-retry"] == "true"
    assert response.headers["cache-control"] == recorded.headers["cache-control"]
    assert "retry-after" not in response.headers and "retry-after" not in recorded.headers


@pytest.mark.parametrize(
    ("fault", "status", "type_", "code"),
    [
        pytest.param("429", 429, "requests", "rate_limit_exceeded", id="429"),
        pytest.param("500", 500, "server_error", None, id="500"),
        pytest.param("overloaded", 503, "server_error", None, id="overloaded"),
        pytest.param("503", 503, "server_error", None, id="503"),
        pytest.param("404", 404, "invalid_request_error", "model_not_found", id="404"),
        pytest.param("401", 401, "invalid_request_error", "invalid_api_key", id="401"),
    ],
)
async def test_openai_status_faults(client: httpx.AsyncClient, fault: str, status: int, type_: str,
                                    code: str | None) -> None:
    response = await _post(client, OPENAI, OPENAI_STREAM, fault)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert (error["type"], error["code"]) == (type_, code)


async def test_openai_429_matches_the_recorded_one(client: httpx.AsyncClient) -> None:
    recorded = recording("openai-chat/error-429-rate_limit_exceeded.yaml")[0]
    response = await _post(client, OPENAI, {**OPENAI_BODY, "model": "gpt-3.5-turbo"}, "429:20")
    ours, theirs = response.json()["error"], recorded.json()["error"]
    assert list(ours) == list(theirs)
    assert (ours["type"], ours["param"], ours["code"]) == (theirs["type"], theirs["param"], theirs["code"])
    assert ours["message"].split(" in organization ")[0] == theirs["message"].split(" in organization ")[0]
    assert "Please try again in 20s." in ours["message"] and "Please try again in 20s." in theirs["message"]
    for name in ("retry-after", "retry-after-ms", "content-type", "vary"):
        assert response.headers[name] == recorded.headers[name], name
    assert {n for n in recorded.headers if n.startswith("x-ratelimit-")} <= set(response.headers.keys())
    assert response.text.startswith('{\n    "error": {\n') and response.text.endswith("}\n")


@pytest.mark.parametrize("api", [CLAUDE, OPENAI], ids=["anthropic", "openai"])
async def test_disconnect_cuts_a_stream_after_n_events(client: httpx.AsyncClient,
                                                       api: tuple[str, dict[str, str]]) -> None:
    body = CLAUDE_STREAM if api is CLAUDE else OPENAI_STREAM
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        headers = {**api[1], "x-simulator-fault": "disconnect:4"}
        async with client.stream("POST", api[0], json=body, headers=headers) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                received += chunk
    assert received.count(b"\n\n") == 4


@pytest.mark.parametrize("api", [CLAUDE, OPENAI], ids=["anthropic", "openai"])
async def test_disconnect_cuts_a_nonstream_body_halfway(client: httpx.AsyncClient,
                                                        api: tuple[str, dict[str, str]]) -> None:
    body = CLAUDE_BODY if api is CLAUDE else OPENAI_BODY
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
        await _post(client, api, body, "disconnect")


@pytest.mark.parametrize("api", [CLAUDE, OPENAI], ids=["anthropic", "openai"])
async def test_hang_never_answers(client: httpx.AsyncClient, api: tuple[str, dict[str, str]]) -> None:
    body = CLAUDE_BODY if api is CLAUDE else OPENAI_BODY
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await _post(client, api, body, "hang", timeout=0.3)
    assert time.monotonic() - started >= 0.3
    # The simulator still serves others, and recorded the hung request with its fault and no status.
    assert (await _post(client, api, body)).status_code == 200
    entries = (await client.get("/_simulator/requests")).json()["requests"]
    assert (entries[0]["fault"], entries[0]["status"]) == ("hang", None)


@pytest.mark.parametrize("api", [CLAUDE, OPENAI], ids=["anthropic", "openai"])
async def test_slow_delays_the_first_byte(client: httpx.AsyncClient, api: tuple[str, dict[str, str]]) -> None:
    body = CLAUDE_BODY if api is CLAUDE else OPENAI_BODY
    started = time.monotonic()
    response = await _post(client, api, body, "slow:250")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.25


async def test_anthropic_stream_error_event(client: httpx.AsyncClient) -> None:
    response = await _post(client, CLAUDE, CLAUDE_STREAM, "stream_error:2")
    assert response.status_code == 200
    events = anthropic_events(response.text)
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error",
    ]
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_openai_stream_error_line(client: httpx.AsyncClient) -> None:
    response = await _post(client, OPENAI, OPENAI_STREAM, "stream_error:1")
    payloads = openai_chunks(response.text)
    assert len(payloads) == 3 and "[DONE]" not in payloads
    assert payloads[-1] == ('{"error":{"message":"The server had an error while processing your request. '
                            'Sorry about that!","type":"server_error","param":null,"code":null}}')


async def test_stream_error_on_a_nonstream_request_answers_overloaded(client: httpx.AsyncClient) -> None:
    assert (await _post(client, CLAUDE, CLAUDE_BODY, "stream_error")).status_code == 529
    assert (await _post(client, OPENAI, OPENAI_BODY, "stream_error")).status_code == 503


@pytest.mark.parametrize(
    ("key", "anthropic_status", "openai_status"),
    [("sk-sim-broken", 500, 500), ("sk-sim-ratelimited", 429, 429), ("sk-sim-overloaded", 529, 503)],
)
async def test_default_faulty_keys(client: httpx.AsyncClient, key: str, anthropic_status: int,
                                   openai_status: int) -> None:
    claude = await client.post("/v1/messages", json=CLAUDE_BODY,
                               headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    gpt = await client.post("/v1/chat/completions", json=OPENAI_BODY,
                            headers={"authorization": f"Bearer {key}"})
    assert (claude.status_code, gpt.status_code) == (anthropic_status, openai_status)


async def test_configured_key_fault(start: Start) -> None:
    url = await start(openai={"key_faults": {"sk-flaky": "502"}})
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/v1/chat/completions", json=OPENAI_BODY,
                                   headers={"authorization": "Bearer sk-flaky"})
        # Replacing key_faults replaces the defaults: sk-sim-broken is now an unknown key.
        unknown = await http.post("/v1/chat/completions", json=OPENAI_BODY,
                                  headers={"authorization": "Bearer sk-sim-broken"})
    assert response.status_code == 502 and response.json()["error"]["type"] == "server_error"
    assert unknown.status_code == 401


async def test_global_fault_rate(start: Start) -> None:
    always = await start(faults=["500@1"])
    never = await start(faults=["500@0"])
    async with httpx.AsyncClient() as http:
        for _ in range(5):
            assert (await http.post(f"{always}/v1/messages", json=CLAUDE_BODY,
                                    headers=ANTHROPIC_HEADERS)).status_code == 500
            assert (await http.post(f"{never}/v1/messages", json=CLAUDE_BODY,
                                    headers=ANTHROPIC_HEADERS)).status_code == 200


async def test_fault_header_can_be_disabled(start: Start) -> None:
    url = await start(fault_header=False)
    async with httpx.AsyncClient(base_url=url) as http:
        response = await _post(http, CLAUDE, CLAUDE_BODY, "500")
    assert response.status_code == 200


async def test_bad_fault_header_is_a_400(client: httpx.AsyncClient) -> None:
    response = await _post(client, CLAUDE, CLAUDE_BODY, "teapot")
    assert response.status_code == 400
    assert "unknown fault 'teapot'" in response.json()["error"]["message"]


async def test_faults_need_a_valid_key_first(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=CLAUDE_BODY, headers={
        "x-api-key": "sk-nobody", "anthropic-version": "2023-06-01", "x-simulator-fault": "500"})
    assert response.status_code == 401
