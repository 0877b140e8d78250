"""The OpenAI Responses API on the wire (POST /v1/responses, /v1/responses/compact), held against the
recorded vendor traffic field by field, and driven with the official openai SDK."""

import base64
import gzip
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import yaml

from switchboard_simulator import defaults, textgen
from switchboard_simulator.config import load
from switchboard_simulator.vendors import openai as openai_vendor
from switchboard_simulator.vendors.responses_format import encrypted_content, encrypted_for

from .conftest import Start
from .sim_testing import OPENAI_HEADERS, OPENAI_KEY, OPENAI_REQUEST_ID, RECORDINGS, anthropic_events, recording

PATH = "/v1/responses"
DIR = "openai-responses"
RESPONSE_ID = re.compile(r"^resp_[0-9a-f]{50}$")
ITEM_ID = re.compile(r"^(msg|rs|fc|cmp)_[0-9a-f]{50}$")
CALL_ID = re.compile(r"^call_[A-Za-z0-9]{24}$")
REPLY = textgen.reply(35).text


def _json_body(body: str | bytes) -> Any:
    return json.loads(gzip.decompress(body) if isinstance(body, bytes) else body)


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path in document order, list positions included (``output.0.content.0.text``)."""
    if isinstance(value, dict):
        paths = []
        for key, item in value.items():
            paths.append(f"{prefix}{key}")
            paths.extend(_key_paths(item, f"{prefix}{key}."))
        return paths
    if isinstance(value, list):
        return [path for index, item in enumerate(value) for path in _key_paths(item, f"{prefix}{index}.")]
    return []


def _shape(value: Any) -> Any:
    """The value with every leaf replaced by its type name (to compare types, not values)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _first_seen(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _request(path: str, index: int = 0) -> dict[str, Any]:
    return json.loads(recording(f"{DIR}/{path}")[index].request_body)


def _recorded_events(path: str, index: int = 0) -> list[tuple[str, Any]]:
    return anthropic_events(recording(f"{DIR}/{path}")[index].body)


def _ids_share_the_response_stem(body: dict[str, Any]) -> None:
    stem = body["id"][5:21]
    for item in body["output"]:
        assert ITEM_ID.match(item["id"]) and item["id"].split("_", 1)[1][:16] == stem


async def _post(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(PATH, json=body, headers={**OPENAI_HEADERS, **headers})


async def _events(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> list[tuple[str, Any]]:
    response = await _post(client, {**body, "stream": True}, **headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = anthropic_events(response.text)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(name == data["type"] for name, data in events)
    return events


def _keys_by_type(events: list[tuple[str, Any]]) -> dict[str, list[str]]:
    return {name: list(data) for name, data in events}


# ------------------------------------------------------------------------------------------ non-stream


async def test_nonstream_matches_the_recording(client: httpx.AsyncClient) -> None:
    recorded = recording(f"{DIR}/nonstream.yaml")[0]
    expected = _json_body(recorded.body)
    response = await _post(client, _request("nonstream.yaml"))
    assert response.status_code == 200
    assert response.headers["content-type"] == recorded.headers["content-type"] == "application/json"
    body = response.json()
    assert _key_paths(body) == _key_paths(expected)
    assert _shape(body) == _shape(expected)
    # Printed like the vendor: 2-space indentation, no trailing newline.
    assert response.text.startswith('{\n  "id": "resp_') and response.text.endswith("\n}")
    assert RESPONSE_ID.match(expected["id"]) and RESPONSE_ID.match(body["id"])
    _ids_share_the_response_stem(body)
    for key in ("object", "status", "background", "billing", "model", "reasoning", "store", "text", "tools",
                "tool_choice", "truncation", "service_tier", "metadata", "error", "incomplete_details"):
        assert body[key] == expected[key], key
    message = body["output"][0]
    assert message["content"][0]["text"] == REPLY and message["phase"] == "final_answer"
    usage = body["usage"]
    assert usage["output_tokens"] == 35 and usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert body["completed_at"] >= body["created_at"] > time.time() - 60


async def test_response_headers_follow_the_recording(client: httpx.AsyncClient) -> None:
    recorded = recording(f"{DIR}/nonstream.yaml")[0].headers
    response = await _post(client, _request("nonstream.yaml"))
    names = {name for name in recorded if name.startswith(("x-ratelimit-", "openai-"))}
    assert names <= set(response.headers)
    assert response.headers["openai-version"] == recorded["openai-version"]
    assert response.headers["x-content-type-options"] == recorded["x-content-type-options"]
    assert OPENAI_REQUEST_ID.match(recorded["x-request-id"])
    assert OPENAI_REQUEST_ID.match(response.headers["x-request-id"])


async def test_reasoning_and_function_call_match_the_recording(client: httpx.AsyncClient) -> None:
    first, second = recording(f"{DIR}/nonstream-reasoning-function-calls.yaml")
    expected = _json_body(first.body)
    response = await _post(client, json.loads(first.request_body))
    body = response.json()
    assert _key_paths(body) == _key_paths(expected)
    assert _shape(body) == _shape(expected)
    _ids_share_the_response_stem(body)
    reasoning, call = body["output"]
    assert reasoning["encrypted_content"].startswith("gAAAAAB") and reasoning["summary"] == []
    assert call["name"] == "db_lookup" and json.loads(call["arguments"]) == {"key": "sim"}
    assert CALL_ID.match(call["call_id"]) and CALL_ID.match(expected["output"][1]["call_id"])
    # Tools are echoed normalised exactly as the vendor does (strict, additionalProperties false).
    assert body["tools"] == expected["tools"] and body["reasoning"] == expected["reasoning"]
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    # The second turn replays the reasoning item (encrypted) and the call; after the tool's output, text.
    # The recorded reasoning item was encrypted for the vendor's organisation, so it is refused as the vendor
    # refuses another organisation's; the simulator's own item (made for this key) takes its place.
    follow_up = json.loads(second.request_body)
    recorded = follow_up["input"][1]
    assert recorded["type"] == "reasoning"
    refused = await _post(client, follow_up)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_encrypted_content"
    follow_up["input"][1] = {**recorded, "id": reasoning["id"], "encrypted_content": reasoning["encrypted_content"]}
    replay = await _post(client, follow_up)
    assert replay.status_code == 200
    output = replay.json()["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert output[1]["content"][0]["text"] == REPLY


async def test_reasoning_tokens_follow_the_effort(client: httpx.AsyncClient) -> None:
    base = {"model": "o4-mini", "input": "hi"}
    medium = (await _post(client, base)).json()
    high = (await _post(client, {**base, "reasoning": {"effort": "high"}})).json()
    none = (await _post(client, {**base, "model": "gpt-5.1", "reasoning": {"effort": "none"}})).json()
    assert medium["reasoning"] == {"effort": "medium", "summary": None}
    tokens = [b["usage"]["output_tokens_details"]["reasoning_tokens"] for b in (medium, high, none)]
    assert tokens[1] > tokens[0] > 0 == tokens[2]
    assert [item["type"] for item in medium["output"]] == ["reasoning", "message"]
    assert "encrypted_content" not in medium["output"][0]
    plain = (await _post(client, {"model": "gpt-4o", "input": "hi"})).json()
    assert plain["reasoning"] == {"effort": None, "summary": None}
    assert [item["type"] for item in plain["output"]] == ["message"] and "phase" not in plain["output"][0]


# ---------------------------------------------------------------------------------------------- streams


async def test_stream_text_matches_the_recording(client: httpx.AsyncClient) -> None:
    recorded = _recorded_events("stream-text.yaml")
    events = await _events(client, _request("stream-text.yaml"))
    names = [name for name, _ in events]
    assert _first_seen(names) == _first_seen([name for name, _ in recorded])
    assert names.count("response.output_text.delta") == 35
    assert _keys_by_type(events) == _keys_by_type(recorded)
    deltas = [data for name, data in events if name == "response.output_text.delta"]
    assert "".join(d["delta"] for d in deltas) == REPLY
    assert all(d["obfuscation"] and d["logprobs"] == [] for d in deltas)
    created, completed = events[0][1]["response"], events[-1][1]["response"]
    assert _key_paths(created) == _key_paths(recorded[0][1]["response"])
    assert _key_paths(completed) == _key_paths(recorded[-1][1]["response"])
    assert (created["status"], created["service_tier"], created["usage"]) == ("in_progress", "auto", None)
    assert (completed["status"], completed["service_tier"]) == ("completed", "default")
    assert "billing" not in completed and completed["usage"]["output_tokens"] == 35
    assert events[-2][1]["item"] == completed["output"][0]


async def test_stream_function_call_matches_the_recording(client: httpx.AsyncClient) -> None:
    for index in (0, 1):
        recorded = _recorded_events("stream-function-call.yaml", index)
        events = await _events(client, _request("stream-function-call.yaml", index))
        assert _first_seen([n for n, _ in events]) == _first_seen([n for n, _ in recorded])
        assert _keys_by_type(events) == _keys_by_type(recorded)
    events = await _events(client, _request("stream-function-call.yaml", 0))
    deltas = "".join(d["delta"] for n, d in events if n == "response.function_call_arguments.delta")
    done = next(d for n, d in events if n == "response.function_call_arguments.done")
    assert deltas == done["arguments"] and json.loads(deltas) == {"a": 1, "b": 1}
    added = next(d["item"] for n, d in events if n == "response.output_item.added")
    assert added["arguments"] == "" and added["status"] == "in_progress" and added["name"] == "multiply"
    completed = events[-1][1]["response"]
    assert completed["output"][0]["arguments"] == deltas and completed["output"][0]["call_id"] == added["call_id"]


async def test_stream_reasoning_summary_matches_the_recording(client: httpx.AsyncClient) -> None:
    recorded = _recorded_events("stream-reasoning-summary.yaml")
    events = await _events(client, _request("stream-reasoning-summary.yaml"))
    assert _first_seen([n for n, _ in events]) == _first_seen([n for n, _ in recorded])
    assert _keys_by_type(events) == _keys_by_type(recorded)
    summary = "".join(d["delta"] for n, d in events if n == "response.reasoning_summary_text.delta")
    done = next(d for n, d in events if n == "response.reasoning_summary_text.done")
    assert summary == done["text"] and summary.startswith("**")
    completed = events[-1][1]["response"]
    assert completed["reasoning"] == recorded[-1][1]["response"]["reasoning"] == {"effort": "medium",
                                                                                   "summary": "detailed"}
    assert completed["output"][0]["summary"] == [{"type": "summary_text", "text": summary}]
    assert completed["model"] == recorded[-1][1]["response"]["model"] == "gpt-5-2025-08-07"


async def test_obfuscation_can_be_turned_off(client: httpx.AsyncClient) -> None:
    events = await _events(client, {"model": "gpt-4o", "input": "hi",
                                    "stream_options": {"include_obfuscation": False}})
    assert all("obfuscation" not in data for _, data in events)


# ------------------------------------------------------------------------------------------- the limits


async def test_max_output_tokens_makes_the_response_incomplete(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o", "input": "hi", "max_output_tokens": 20}
    answer = (await _post(client, body)).json()
    assert answer["status"] == "incomplete" and answer["incomplete_details"] == {"reason": "max_output_tokens"}
    assert answer["usage"]["output_tokens"] == 20 and answer["output"][0]["status"] == "incomplete"
    events = await _events(client, body)
    assert events[-1][0] == "response.incomplete" and events[-1][1]["response"]["status"] == "incomplete"
    # A reasoning model can spend the whole budget thinking: then there is no message at all.
    thinking = (await _post(client, {"model": "gpt-5", "input": "hi", "max_output_tokens": 20})).json()
    assert [item["type"] for item in thinking["output"]] == ["reasoning"] and thinking["status"] == "incomplete"
    assert thinking["usage"]["output_tokens_details"]["reasoning_tokens"] == 20


async def test_prompt_cache_key_reports_cached_tokens(client: httpx.AsyncClient) -> None:
    turn = [{"role": "user", "content": "Tell me about pelicans. " * 40}]
    body = {"model": "gpt-5-codex", "instructions": "You are a coding agent. " * 20, "input": turn,
            "prompt_cache_key": "conversation-1"}
    first = (await _post(client, body)).json()["usage"]
    later = {**body, "input": [*turn, {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "More"}]}
    second = (await _post(client, later)).json()["usage"]
    other_key = (await _post(client, {**later, "prompt_cache_key": "conversation-2"})).json()["usage"]
    no_key = (await _post(client, {k: v for k, v in later.items() if k != "prompt_cache_key"})).json()["usage"]
    assert first["input_tokens_details"]["cached_tokens"] == 0
    assert 0 < second["input_tokens_details"]["cached_tokens"] < second["input_tokens"]
    assert second["input_tokens_details"]["cached_tokens"] >= first["input_tokens"] - 1
    assert other_key["input_tokens_details"]["cached_tokens"] == no_key["input_tokens_details"]["cached_tokens"] == 0


async def test_codex_style_input_with_unknown_item_types_is_accepted(client: httpx.AsyncClient) -> None:
    body = {
        "model": "gpt-5.1-codex-max", "instructions": "You are Codex.", "store": False,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
            {"type": "additional_tools", "tools": [{"type": "function", "name": "x"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "ok"},
            {"type": "compaction", "encrypted_content": encrypted_content(256, openai_vendor.ORGANIZATION)},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go on"}]},
        ],
        "tools": [{"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark",
                                                                      "definition": "start: /.+/"}}],
        "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "medium", "summary": "auto"},
        "parallel_tool_calls": False, "text": {"verbosity": "low"},
    }
    response = await _post(client, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["tools"] == body["tools"] and answer["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert answer["parallel_tool_calls"] is False and answer["store"] is False
    assert answer["output"][0]["encrypted_content"].startswith("gAAAAAB")


async def test_tool_choice_decides_the_call(client: httpx.AsyncClient) -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]},
                                         "days": {"type": "integer"}}, "required": ["city", "unit"]}}
    base = {"model": "gpt-4.1", "input": "What's up?", "tools": [tool]}
    assert (await _post(client, base)).json()["output"][0]["type"] == "message"
    required = (await _post(client, {**base, "tool_choice": "required"})).json()["output"][0]
    assert required["type"] == "function_call" and json.loads(required["arguments"]) == {"city": "sim",
                                                                                         "unit": "c"}
    named = (await _post(client, {**base, "input": "ask get_weather", "tool_choice": "none"})).json()
    assert named["output"][0]["type"] == "message"


# --------------------------------------------------------------------------------------------- errors


async def test_validation_errors_match_the_recording(client: httpx.AsyncClient) -> None:
    cassette = yaml.safe_load((RECORDINGS / DIR / "error-400-invalid_request_error.yaml").read_text())
    interaction = cassette["interactions"][0]
    response = await _post(client, interaction["request"]["parsed_body"])
    assert response.status_code == interaction["response"]["status"]["code"] == 400
    assert response.json() == interaction["response"]["parsed_body"]
    assert response.headers["content-type"] == "application/json"


async def test_model_not_found_matches_the_recording_byte_for_byte(client: httpx.AsyncClient) -> None:
    recorded = recording(f"{DIR}/error-400-model_not_found.yaml")[0]
    response = await _post(client, json.loads(recorded.request_body))
    assert response.status_code == recorded.status == 400
    assert response.text == recorded.body
    assert response.headers["content-type"] == recorded.headers["content-type"]
    assert OPENAI_REQUEST_ID.match(response.headers["x-request-id"])


async def test_wrong_key_matches_the_recording_byte_for_byte(client: httpx.AsyncClient) -> None:
    recorded = recording(f"{DIR}/error-401-invalid_api_key-stream-request.yaml")[0]
    response = await client.post(PATH, json=json.loads(recorded.request_body),
                                 headers={"authorization": "Bearer invalid-key-12345"})
    assert response.status_code == recorded.status == 401
    assert response.text == recorded.body
    assert response.headers["www-authenticate"] == recorded.headers["www-authenticate"]
    no_key = await client.post(PATH, json={"model": "gpt-4o", "input": "hi"})
    assert no_key.status_code == 401 and no_key.json()["error"]["message"].startswith("You didn't provide an API key")


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"input": "hi"}, "model", "missing_required_parameter"),
    ({"model": "gpt-4o"}, "input", "missing_required_parameter"),
    ({"model": "gpt-4o", "input": {"role": "user"}}, "input", "invalid_type"),
    ({"model": "gpt-4o", "input": "hi", "temperature": 3}, "temperature", "decimal_above_max_value"),
    ({"model": "gpt-4o", "input": "hi", "max_output_tokens": 5}, "max_output_tokens", "integer_below_min_value"),
    ({"model": "gpt-4o", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name",
     "missing_required_parameter"),
    ({"model": "gpt-4o", "input": "hi", "reasoning": {"effort": "high"}}, "reasoning.effort",
     "unsupported_parameter"),
    ({"model": "gpt-5", "input": "hi", "reasoning": {"effort": "huge"}}, "reasoning.effort", "invalid_value"),
])
async def test_validation_errors(client: httpx.AsyncClient, body: dict[str, Any], param: str, code: str) -> None:
    response = await _post(client, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert not response.text.endswith("\n")


async def test_the_openai_keys_work_too(start: Start) -> None:
    base_url = await start(openai={"keys": ["sk-chat-only"]})
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(PATH, json={"model": "gpt-4o", "input": "hi"},
                                   headers={"authorization": "Bearer sk-chat-only"})
    assert response.status_code == 200


async def test_insufficient_quota_matches_the_recordings(client: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {defaults.OPENAI_NO_QUOTA_KEY}"}
    response = await client.post(PATH, json={"model": "gpt-5-nano", "input": "hi"}, headers=headers)
    assert response.status_code == 429
    assert response.json() == json.loads((RECORDINGS / DIR / "error-429-insufficient_quota.body.json").read_text())
    recorded = [json.loads(line) for line in (RECORDINGS / DIR / "stream-error-insufficient_quota.chunks.txt")
                .read_text().splitlines() if line.strip()]
    stream = await client.post(PATH, json={"model": "gpt-5-nano", "input": "hi", "stream": True}, headers=headers)
    assert stream.status_code == 200
    events = [data for _, data in anthropic_events(stream.text)]
    assert [e["type"] for e in events] == [e["type"] for e in recorded]
    assert [e["sequence_number"] for e in events] == [e["sequence_number"] for e in recorded]
    assert events[2]["error"] == recorded[2]["error"]
    assert events[3]["response"]["error"] == recorded[3]["response"]["error"]
    assert events[3]["response"]["status"] == "failed" and events[3]["response"]["output"] == []


# ---------------------------------------------------------------------------------------------- faults


async def test_status_faults(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o", "input": "hi"}
    for spec, status in (("500", 500), ("429:7", 429), ("overloaded", 503), ("stream_error", 503)):
        response = await _post(client, body, **{"x-simulator-fault": spec})
        assert response.status_code == status, spec
    limited = await _post(client, body, **{"x-simulator-fault": "429:7"})
    assert limited.headers["retry-after"] == "7" and limited.json()["error"]["code"] == "rate_limit_exceeded"
    broken = await client.post(PATH, json=body, headers={"authorization": "Bearer sk-sim-broken"})
    assert broken.status_code == 500


async def test_stream_error_sends_deltas_then_error_and_failed(client: httpx.AsyncClient) -> None:
    events = await _events(client, {"model": "gpt-4o", "input": "hi"}, **{"x-simulator-fault": "stream_error:2"})
    names = [name for name, _ in events]
    assert names.count("response.output_text.delta") == 2
    assert names[-2:] == ["error", "response.failed"]
    assert events[-2][1]["error"]["type"] == "server_error"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error" and failed["usage"] is None


async def test_disconnect_cuts_the_stream(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await _post(client, {"model": "gpt-4o", "input": "hi", "stream": True}, **{"x-simulator-fault": "disconnect:3"})
    with pytest.raises(httpx.RemoteProtocolError):
        await _post(client, {"model": "gpt-4o", "input": "hi"}, **{"x-simulator-fault": "disconnect"})


async def test_hang_and_slow(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await client.post(PATH, json={"model": "gpt-4o", "input": "hi"}, timeout=0.3,
                          headers={**OPENAI_HEADERS, "x-simulator-fault": "hang"})
    started = time.monotonic()
    response = await _post(client, {"model": "gpt-4o", "input": "hi"}, **{"x-simulator-fault": "slow:200"})
    assert response.status_code == 200 and time.monotonic() - started >= 0.2


# ------------------------------------------------------------------------------------------- compaction


async def test_compact_keeps_user_messages_and_adds_a_compaction_item(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-5.1-codex-max", "input": [
        {"role": "user", "content": "Create a simple landing page for a dog petting café."},
        {"id": "msg_001", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Below is a page…"}]},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}"},
    ]}
    response = await client.post(f"{PATH}/compact", json=body, headers=OPENAI_HEADERS)
    assert response.status_code == 200
    answer = response.json()
    assert list(answer) == ["id", "object", "created_at", "output", "usage"]
    assert answer["object"] == "response.compaction" and RESPONSE_ID.match(answer["id"])
    user, compaction = answer["output"]
    assert user["role"] == "user" and user["type"] == "message" and user["status"] == "completed"
    assert user["content"] == [{"type": "input_text", "text": body["input"][0]["content"]}]
    assert list(compaction) == ["id", "type", "encrypted_content"] and compaction["id"].startswith("cmp_")
    assert compaction["encrypted_content"].startswith("gAAAAAB")
    usage = answer["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    unknown = await client.post(f"{PATH}/compact", json={**body, "model": "nope"}, headers=OPENAI_HEADERS)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "model_not_found"
    faulty = await client.post(f"{PATH}/compact", json=body, headers={**OPENAI_HEADERS, "x-simulator-fault": "500"})
    assert faulty.status_code == 500


# ----------------------------------------------------------------------------- encrypted content


UNVERIFIED = "Encrypted content could not be decrypted or parsed."
ORG_KEYS = {"openai_responses": {"keys": ["sk-org-a", "sk-org-b", "sk-unlisted"],
                                 "organizations": {"sk-org-a": "org-a", "sk-org-b": "org-b"}}}
THINK: dict[str, Any] = {"model": "gpt-5", "include": ["reasoning.encrypted_content"],
                         "reasoning": {"effort": "medium"}}


def _with_last_byte_flipped(blob: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[-1] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode()


def _refusal(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": "invalid_encrypted_content"}}


def _unverified(blob: str) -> dict[str, Any]:
    return _refusal(f"The encrypted content {blob[:4]}...{blob[-4:]} could not be verified. Reason: {UNVERIFIED}")


def _as(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _turn(*items: dict[str, Any]) -> dict[str, Any]:
    return {**THINK, "input": [{"role": "user", "content": "think"}, *items,
                               {"role": "user", "content": "go on"}]}


def _assert_refused(response: httpx.Response, expected: dict[str, Any]) -> None:
    assert response.status_code == 400
    assert response.json() == expected
    # Printed as the vendor prints its validation errors: 2-space indentation, no trailing newline.
    assert response.text == json.dumps(expected, indent=2, ensure_ascii=False)


async def _reasoning_item(http: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await http.post(PATH, json={**THINK, "input": "think"}, headers=_as(key))
    assert response.status_code == 200, response.text
    item = response.json()["output"][0]
    assert item["type"] == "reasoning" and item["encrypted_content"].startswith("gAAAAAB")
    return dict(item)


async def test_reasoning_is_bound_to_the_organisation_of_the_key(start: Start) -> None:
    base_url = await start(**ORG_KEYS)
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        made = await _reasoning_item(http, "sk-org-a")
        blob = made["encrypted_content"]
        assert encrypted_for(blob, "org-a") and not encrypted_for(blob, "org-b")
        accepted = await http.post(PATH, json=_turn(made), headers=_as("sk-org-a"))
        assert accepted.status_code == 200 and accepted.headers["openai-organization"] == "org-a"
        # Another organisation's key is refused, whole or streaming, with the vendor's body.
        for stream in (False, True):
            refused = await http.post(PATH, json={**_turn(made), "stream": stream}, headers=_as("sk-org-b"))
            _assert_refused(refused, _unverified(blob))
        # Unlisted keys (and the openai section's) share the vendor's one organisation.
        shared = await _reasoning_item(http, "sk-unlisted")
        both = await http.post(PATH, json=_turn(shared), headers=_as(OPENAI_KEY))
        assert both.status_code == 200 and both.headers["openai-organization"] == openai_vendor.ORGANIZATION
        _assert_refused(await http.post(PATH, json=_turn(shared), headers=_as("sk-org-a")),
                        _unverified(shared["encrypted_content"]))
        # The first item that fails is the one named; items without encrypted content are not checked.
        bare = {"type": "reasoning", "id": "rs_1", "summary": []}
        _assert_refused(await http.post(PATH, json=_turn(bare, shared, made), headers=_as("sk-org-a")),
                        _unverified(shared["encrypted_content"]))
        assert (await http.post(PATH, json=_turn(bare), headers=_as("sk-org-a"))).status_code == 200


@pytest.mark.parametrize("forged", [
    "gAAAAABsomething",  # made up
    _with_last_byte_flipped(encrypted_content(256, "org-a")),  # the MAC changed
    encrypted_content(256, "org-a")[:-8],  # cut short
    "Work...out.",  # not base64 at all
])
async def test_forged_encrypted_content_is_refused(start: Start, forged: str) -> None:
    base_url = await start(**ORG_KEYS)
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        item = {"type": "reasoning", "id": "rs_1", "encrypted_content": forged, "summary": []}
        _assert_refused(await http.post(PATH, json=_turn(item), headers=_as("sk-org-a")), _unverified(forged))
        typed = await http.post(PATH, json=_turn({**item, "encrypted_content": 7}), headers=_as("sk-org-a"))
        assert typed.status_code == 400 and typed.json()["error"]["code"] == "invalid_type"
        assert typed.json()["error"]["param"] == "input[1].encrypted_content"


async def test_compaction_items_are_bound_to_the_organisation_of_the_key(start: Start) -> None:
    base_url = await start(**ORG_KEYS)
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        compacted = await http.post(f"{PATH}/compact", json={"model": "gpt-5", "input": "a long talk"},
                                    headers=_as("sk-org-a"))
        assert compacted.status_code == 200 and compacted.headers["openai-organization"] == "org-a"
        item = compacted.json()["output"][-1]
        assert item["type"] == "compaction" and encrypted_for(item["encrypted_content"], "org-a")
        for path in (PATH, f"{PATH}/compact"):
            assert (await http.post(path, json=_turn(item), headers=_as("sk-org-a"))).status_code == 200
            # Refused by another organisation's key: named by its id, or abbreviated when it has none.
            _assert_refused(await http.post(path, json=_turn(item), headers=_as("sk-org-b")), _refusal(
                f"The encrypted content for item {item['id']} could not be verified. Reason: {UNVERIFIED}"))
            anonymous = {"type": "compaction", "encrypted_content": item["encrypted_content"]}
            _assert_refused(await http.post(path, json=_turn(anonymous), headers=_as("sk-org-b")),
                            _unverified(item["encrypted_content"]))
        # The compact endpoint checks reasoning items too.
        made = await _reasoning_item(http, "sk-org-b")
        _assert_refused(await http.post(f"{PATH}/compact", json=_turn(made), headers=_as("sk-org-a")),
                        _unverified(made["encrypted_content"]))


def test_organisations_from_the_command_line() -> None:
    config = load(["--openai-responses-organization", "sk-x=org-x", "--openai-responses-organization", "sk-y=org-y"],
                  {})
    vendor = config.openai_responses
    assert vendor.organization("sk-x") == "org-x" and vendor.organization("sk-y") == "org-y"
    assert vendor.organization("sk-z") == openai_vendor.ORGANIZATION


# --------------------------------------------------------------------------------------------- the SDK


@pytest.fixture
async def gpt(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=f"{base_url}/v1", max_retries=0) as sdk:
        yield sdk


async def test_sdk_nonstream(gpt: openai.AsyncOpenAI) -> None:
    response = await gpt.responses.create(model="gpt-5", input="Two names for a pet pelican",
                                          reasoning={"effort": "low"})
    assert response.output_text == REPLY and response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens == 35
    assert response.model == "gpt-5-2025-08-07" and response.id.startswith("resp_")


async def test_sdk_stream(gpt: openai.AsyncOpenAI) -> None:
    stream = await gpt.responses.create(model="gpt-5", input="hi", stream=True,
                                        reasoning={"effort": "medium", "summary": "auto"})
    kinds, pieces, final = [], [], None
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            pieces.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert "".join(pieces) == REPLY and final is not None and final.output_text == REPLY
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0


async def test_sdk_stream_helper_and_function_call(gpt: openai.AsyncOpenAI) -> None:
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {
        "type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}]
    async with gpt.responses.stream(model="gpt-4.1", input="please lookup the key", tools=tools) as stream:
        final = await stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.name == "lookup" and json.loads(call.arguments) == {"key": "sim"}


async def test_sdk_errors(gpt: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await gpt.responses.create(model="no-such-model", input="hi")
    assert bad.value.code == "model_not_found"
    async with openai.AsyncOpenAI(api_key=defaults.OPENAI_NO_QUOTA_KEY, base_url=str(gpt.base_url),
                                  max_retries=0) as broke:
        with pytest.raises(openai.RateLimitError) as quota:
            await broke.responses.create(model="gpt-4o", input="hi")
    assert quota.value.code == "insufficient_quota"
