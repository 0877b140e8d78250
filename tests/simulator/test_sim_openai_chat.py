"""OpenAI Chat Completions on the wire, held against the recorded vendor traffic field by field."""

import json
from typing import Any

import httpx
import pytest

from switchboard_simulator import textgen

from .conftest import Start
from .sim_testing import (
    OPENAI_BODY,
    OPENAI_COMPLETION_ID,
    OPENAI_HEADERS,
    OPENAI_REQUEST_ID,
    OPENAI_STREAM,
    openai_chunks,
    recording,
)

NONSTREAM = recording("openai-chat/nonstream.yaml")[0]
STREAM = recording("openai-chat/stream-include-usage.yaml")[0]
PATH = "/v1/chat/completions"


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path in document order, e.g. ``choices.0.message.role``."""
    if isinstance(value, dict):
        paths = []
        for key, item in value.items():
            paths.append(f"{prefix}{key}")
            paths.extend(_key_paths(item, f"{prefix}{key}."))
        return paths
    if isinstance(value, list):
        return [path for index, item in enumerate(value) for path in _key_paths(item, f"{prefix}{index}.")]
    return []


def _ratelimit_names(headers: Any) -> set[str]:
    return {name.lower() for name in headers if name.lower().startswith("x-ratelimit-")}


async def test_nonstream_completion_has_the_recorded_shape_and_format(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=OPENAI_BODY, headers=OPENAI_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == NONSTREAM.headers["content-type"] == "application/json"
    body, recorded = response.json(), NONSTREAM.json()
    assert _key_paths(body) == _key_paths(recorded)
    # Printed like the vendor: 2-space indentation and a trailing newline.
    assert NONSTREAM.body.startswith('{\n  "id": "chatcmpl-') and NONSTREAM.body.endswith("}\n")
    assert response.text.startswith('{\n  "id": "chatcmpl-') and response.text.endswith("}\n")
    assert OPENAI_COMPLETION_ID.match(recorded["id"]) and OPENAI_COMPLETION_ID.match(body["id"])
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": textgen.reply(35).text, "refusal": None,
                                 "annotations": []}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["completion_tokens"] == 35
    assert usage["prompt_tokens"] == textgen.estimate_tokens(OPENAI_BODY["messages"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["system_fingerprint"].startswith("fp_") and len(body["system_fingerprint"]) == 13


async def test_response_headers_follow_the_recording(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=OPENAI_BODY, headers=OPENAI_HEADERS)
    headers = response.headers
    assert _ratelimit_names(headers) == _ratelimit_names(NONSTREAM.headers)
    assert OPENAI_REQUEST_ID.match(NONSTREAM.headers["x-request-id"])
    assert OPENAI_REQUEST_ID.match(headers["x-request-id"])
    assert headers["openai-version"] == NONSTREAM.headers["openai-version"]
    assert headers["openai-processing-ms"].isdigit()
    assert headers["access-control-expose-headers"] == NONSTREAM.headers["access-control-expose-headers"]
    assert headers["x-ratelimit-reset-requests"].endswith("ms")


async def test_stream_with_include_usage_matches_the_recording(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=OPENAI_STREAM, headers=OPENAI_HEADERS)
    content_type = response.headers["content-type"]
    assert content_type == STREAM.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    payloads, recorded = openai_chunks(response.text), openai_chunks(STREAM.body)
    assert payloads[-1] == recorded[-1] == "[DONE]"
    chunks, recorded_chunks = [json.loads(p) for p in payloads[:-1]], [json.loads(p) for p in recorded[:-1]]
    # First chunk (role), a text chunk, the finish chunk and the usage chunk have the recorded key paths.
    for ours, theirs in ((chunks[0], recorded_chunks[0]), (chunks[1], recorded_chunks[1]),
                         (chunks[-2], recorded_chunks[-2]), (chunks[-1], recorded_chunks[-1])):
        assert _key_paths(ours) == _key_paths(theirs)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert {chunk["id"] for chunk in chunks} == {chunks[0]["id"]}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert all(chunk["obfuscation"].isalnum() for chunk in chunks)
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks[1:-2])
    assert text == textgen.reply(35).text and len(chunks) == 35 + 3
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 35


async def test_stream_framing_is_byte_exact(client: httpx.AsyncClient) -> None:
    text = (await client.post(PATH, json=OPENAI_STREAM, headers=OPENAI_HEADERS)).text
    lines = text.split("\n")
    # "data: {...}" then a blank line, every time; compact JSON as recorded.
    assert all(line.startswith("data: ") for line in lines[0::2] if line)
    assert all(line == "" for line in lines[1::2])
    assert text.endswith("data: [DONE]\n\n")
    assert STREAM.body.startswith('data: {"id":"chatcmpl-') and text.startswith('data: {"id":"chatcmpl-')


async def test_stream_without_include_usage_has_no_usage_at_all(client: httpx.AsyncClient) -> None:
    body = {**OPENAI_BODY, "stream": True}
    payloads = openai_chunks((await client.post(PATH, json=body, headers=OPENAI_HEADERS)).text)
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert payloads[-1] == "[DONE]"
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_obfuscation_can_be_declined(client: httpx.AsyncClient) -> None:
    body = {**OPENAI_BODY, "stream": True, "stream_options": {"include_obfuscation": False}}
    payloads = openai_chunks((await client.post(PATH, json=body, headers=OPENAI_HEADERS)).text)
    assert all("obfuscation" not in json.loads(p) for p in payloads[:-1])


@pytest.mark.parametrize("limit_name", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
async def test_token_limit_gives_finish_reason_length(client: httpx.AsyncClient, limit_name: str,
                                                      stream: bool) -> None:
    body = {**(OPENAI_STREAM if stream else OPENAI_BODY), limit_name: 4}
    response = await client.post(PATH, json=body, headers=OPENAI_HEADERS)
    if stream:
        chunks = [json.loads(p) for p in openai_chunks(response.text)[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
        finish, tokens = chunks[-2]["choices"][0]["finish_reason"], chunks[-1]["usage"]["completion_tokens"]
    else:
        completion = response.json()
        text = completion["choices"][0]["message"]["content"]
        finish, tokens = completion["choices"][0]["finish_reason"], completion["usage"]["completion_tokens"]
    assert (finish, tokens, text) == ("length", 4, "The quick brown fox")


async def test_401_matches_the_recorded_error_byte_for_byte(client: httpx.AsyncClient) -> None:
    recorded = recording("openai-chat/error-401-invalid_api_key.yaml")[0]
    # The recorded key was 17 characters: "invalid-" ... "2345".
    response = await client.post(PATH, content=recorded.request_body,
                                 headers={"authorization": "Bearer invalid-key-12345"})
    assert response.status_code == recorded.status == 401
    assert response.text == recorded.body
    assert response.headers["content-type"] == recorded.headers["content-type"]
    assert response.headers["vary"] == recorded.headers["vary"]
    assert OPENAI_REQUEST_ID.match(response.headers["x-request-id"])


async def test_404_matches_the_recorded_error_byte_for_byte(start: Start) -> None:
    recorded = recording("openai-chat/error-404-model_not_found.yaml")[0]
    url = await start(openai={"models": ["gpt-4o*"]})
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(PATH, content=recorded.request_body, headers=OPENAI_HEADERS)
    assert response.status_code == recorded.status == 404
    assert response.text == recorded.body
    assert response.headers["content-type"] == recorded.headers["content-type"]


async def test_400_unsupported_parameter_matches_the_recording(client: httpx.AsyncClient) -> None:
    recorded = recording("openai-chat/error-400-unsupported_parameter.yaml")[0]
    response = await client.post(PATH, content=recorded.request_body, headers=OPENAI_HEADERS)
    assert response.status_code == recorded.status == 400
    assert response.json() == recorded.json()
    # The recorder sorted the keys but kept the length: same 2-space printing, no trailing newline.
    assert len(response.content) == int(recorded.headers["content-length"])
    assert list(response.json()["error"]) == ["message", "type", "param", "code"]
    assert response.headers["content-type"] == recorded.headers["content-type"] == "application/json"


async def test_missing_key(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=OPENAI_BODY)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)


def _message(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        pytest.param({"messages": OPENAI_BODY["messages"]}, "you must provide a model parameter", None, None,
                     id="no-model"),
        pytest.param({"model": "gpt-4o"}, "Missing required parameter: 'messages'.", "messages",
                     "missing_required_parameter", id="no-messages"),
        pytest.param(_message(OPENAI_BODY, messages=[]), "Invalid 'messages': empty array. Expected an array "
                     "with minimum length 1, but got an empty array instead.", "messages", "empty_array",
                     id="empty-messages"),
        pytest.param(_message(OPENAI_BODY, messages="hi"), "Invalid type for 'messages': expected an array, "
                     "but got a string instead.", "messages", "invalid_type", id="messages-type"),
        pytest.param(_message(OPENAI_BODY, messages=[{"content": "hi"}]),
                     "Missing required parameter: 'messages[0].role'.", "messages[0].role",
                     "missing_required_parameter", id="no-role"),
        pytest.param(_message(OPENAI_BODY, max_tokens=0),
                     "Invalid 'max_tokens': integer below minimum value. "
                     "Expected a value >= 1, but got 0 instead.",
                     "max_tokens", "integer_below_min_value", id="max_tokens-zero"),
    ],
)
async def test_validation_errors(client: httpx.AsyncClient, body: dict[str, Any], message: str,
                                 param: str | None, code: str | None) -> None:
    response = await client.post(PATH, json=body, headers=OPENAI_HEADERS)
    assert response.status_code == 400
    assert response.json() == {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                         "code": code}}


async def test_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, content=b"{nope", headers=OPENAI_HEADERS)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert response.text.startswith('{\n    "error": {\n') and response.text.endswith("}\n")


async def test_unknown_model_and_default_model_patterns(client: httpx.AsyncClient) -> None:
    for model in ("gpt-4.1-mini", "o3-mini"):
        ok = await client.post(PATH, json={**OPENAI_BODY, "model": model}, headers=OPENAI_HEADERS)
        assert ok.status_code == 200, model
    missing = await client.post(PATH, json={**OPENAI_BODY, "model": "claude-3"}, headers=OPENAI_HEADERS)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
