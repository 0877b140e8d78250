"""Responses client ⇄ Anthropic upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import seal
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.responses_to_anthropic import TRANSLATOR
from switchboard_simulator.vendors import anthropic as anthropic_vendor

from .responses_anthropic_support import (
    GOLDEN,
    as_json,
    check_responses_stream,
    events_of,
    golden,
    recording,
    response_text,
)

MODULE = "responses_to_anthropic"
TARGET = Target(platform="claude-console", model="claude-sonnet-4-5", stream=True, input_estimate=120)
WHOLE = Target(platform="claude-console", model="claude-sonnet-4-5", stream=False)


def _stable(response: dict[str, Any]) -> dict[str, Any]:
    response = dict(response)
    response["created_at"] = 0
    response.pop("completed_at", None)
    return response


def _stable_events(events: list[SSEEvent]) -> list[dict[str, Any]]:
    out = as_json(events)
    for event in out:
        if isinstance(event["data"].get("response"), dict):
            event["data"]["response"] = _stable(event["data"]["response"])
    return out


@pytest.mark.parametrize("case", sorted(p.name for p in (GOLDEN / MODULE).glob("request-*.json")))
def test_golden_requests(case: str) -> None:
    data = golden(MODULE, case)
    conversion = TRANSLATOR.request(data["client"], data.get("headers", {}), WHOLE)
    assert conversion.body == data["upstream"]
    assert conversion.headers == {}
    assert anthropic_vendor.validate(conversion.body) is None


@pytest.mark.parametrize("case", sorted(p.name for p in (GOLDEN / MODULE).glob("response-*.json")))
def test_golden_responses(case: str) -> None:
    data = golden(MODULE, case)
    assert _stable(TRANSLATOR.response(data["upstream"], WHOLE)) == data["client"]


@pytest.mark.parametrize("case", sorted(p.name for p in (GOLDEN / MODULE).glob("stream-*.json")))
def test_golden_streams(case: str) -> None:
    data = golden(MODULE, case)
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for event in data["upstream"]:
        out += converter.feed(SSEEvent(f"event: {event['type']}\ndata: {orjson.dumps(event).decode()}\n\n".encode()))
    out += converter.finish()
    check_responses_stream(out)
    assert _stable_events(out) == data["client"]


STREAMS = ["messages-stream-text.yaml", "messages-stream-thinking.yaml", "messages-stream-tool-use.yaml",
           "messages-stream-thinking-tool-use.yaml"]


@pytest.mark.parametrize("name", STREAMS)
def test_recorded_anthropic_streams(name: str) -> None:
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for event in events_of(response_text("anthropic", name)):
        out += converter.feed(event)
    out += converter.finish()
    datas = check_responses_stream(out)
    final = datas[-1]["response"]
    assert final["id"].startswith("resp_") and final["model"] == TARGET.model
    kinds = [item["type"] for item in final["output"]]
    if "thinking" in name:
        assert kinds[0] == "reasoning"
        assert final["output"][0]["encrypted_content"].startswith("sbx1.claude-console.")
    if "tool-use" in name:
        call = next(item for item in final["output"] if item["type"] == "function_call")
        assert isinstance(orjson.loads(call["arguments"]), dict) and call["call_id"].startswith("toolu_")
    # Compared with the shape of a real Responses stream's terminal event.
    real = [orjson.loads(e.data) for e in events_of(response_text("openai-responses", "stream-text.yaml"))][-1]
    assert set(real["response"]) - set(final) <= {"billing", "completed_at", "frequency_penalty", "moderation",
                                                  "presence_penalty", "prompt_cache_retention"}
    assert set(final["usage"]) == set(real["response"]["usage"])


@pytest.mark.parametrize("name", ["messages-nonstream-text.yaml", "messages-nonstream-thinking.yaml",
                                  "messages-nonstream-tool-use.yaml"])
def test_recorded_anthropic_answers(name: str) -> None:
    body = orjson.loads(response_text("anthropic", name))
    answer = TRANSLATOR.response(body, WHOLE)
    real = orjson.loads(response_text("openai-responses", "nonstream-reasoning-function-calls.yaml"))
    assert set(real) - set(answer) <= {"billing", "completed_at", "frequency_penalty", "moderation",
                                       "presence_penalty", "prompt_cache_retention"}
    assert answer["status"] == "completed" and answer["object"] == "response"
    for item in answer["output"]:
        same = next((r for r in real["output"] if r["type"] == item["type"]), None)
        if same is not None:
            assert set(same) == set(item)
    usage = body["usage"]
    assert answer["usage"]["input_tokens"] == usage["input_tokens"] + (usage.get("cache_read_input_tokens") or 0) + (
        usage.get("cache_creation_input_tokens") or 0)


def test_thinking_round_trip_and_foreign_reasoning_dropped() -> None:
    body = orjson.loads(response_text("anthropic", "messages-nonstream-thinking.yaml"))
    answer = TRANSLATOR.response(body, WHOLE)
    reasoning = answer["output"][0]
    request = {"model": "x", "input": [{"role": "user", "content": "hi"}, reasoning,
                                       {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-openai"},
                                       {"type": "reasoning", "summary": [],
                                        "encrypted_content": seal.sealed("gemini", "abc")},
                                       *[item for item in answer["output"][1:]],
                                       {"role": "user", "content": "again"}]}
    messages = TRANSLATOR.request(request, {}, WHOLE).body["messages"]
    thinking = [block for block in messages[1]["content"] if block["type"] == "thinking"]
    assert len(thinking) == 1
    assert thinking[0]["signature"] == body["content"][0]["signature"]
    assert messages[1]["content"][0]["type"] == "thinking"


@pytest.mark.parametrize(("field", "value"), [
    ("previous_response_id", "resp_1"), ("background", True), ("truncation", "auto"), ("service_tier", "flex"),
    ("include", ["message.output_text.logprobs"]), ("text", {"format": {"type": "json_object"}}),
    ("tools", [{"type": "file_search"}]), ("frobnicate", 1), ("input", [{"type": "item_reference", "id": "x"}])])
def test_refused_fields_are_named(field: str, value: Any) -> None:
    body = {"model": "x", "input": "hi", field: value}
    with pytest.raises(InvalidRequest) as caught:
        TRANSLATOR.request(body, {}, WHOLE)
    name = value[0]["type"] if field in ("tools", "input") else field
    assert name in caught.value.message


def test_stream_error_becomes_failed_turn() -> None:
    converter = TRANSLATOR.stream(TARGET)
    out = converter.feed(events_of(response_text("anthropic", "messages-stream-text.yaml"))[0])
    out += converter.feed(SSEEvent(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                                   b'"message":"Overloaded"}}\n\n'))
    assert out[-2].name == "error" and orjson.loads(out[-2].data)["message"] == "Overloaded"
    failed = orjson.loads(out[-1].data)
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["message"] == "Overloaded"
    assert converter.finish() == []


@pytest.mark.parametrize("name", ["error-400-invalid_request_error.yaml", "error-404-not_found_error.yaml",
                                  "error-401-authentication_error.yaml"])
def test_errors_keep_status_and_message(name: str) -> None:
    interaction = recording("anthropic", name)
    status = interaction["response"]["status"]["code"]
    payload = interaction["response"]["body"]["string"].encode()
    converted = orjson.loads(TRANSLATOR.error(status, payload))
    assert converted["error"]["message"] == orjson.loads(payload)["error"]["message"]
    assert set(converted["error"]) >= {"message", "type", "code"}
    assert TRANSLATOR.client is ClientFormat.RESPONSES and TRANSLATOR.upstream is ClientFormat.ANTHROPIC


_text = st.text(min_size=1, max_size=20)
_schema = st.just({"type": "object", "properties": {"q": {"type": "string"}}})
_function = st.builds(lambda n, d: {"type": "function", "name": n, "description": d, "parameters":
                                    {"type": "object", "properties": {"q": {"type": "string"}}}, "strict": True},
                      st.from_regex(r"[a-z_]{1,12}", fullmatch=True), _text)
_custom = st.builds(lambda n: {"type": "custom", "name": n, "description": "patch",
                               "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
                    st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
_image = st.just({"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"})
_user_part = st.one_of(st.builds(lambda t: {"type": "input_text", "text": t}, _text), _image)
_message = st.one_of(
    st.builds(lambda t: {"role": "user", "content": t}, _text),
    st.builds(lambda p: {"type": "message", "role": "user", "content": p}, st.lists(_user_part, min_size=1,
                                                                                     max_size=3)),
    st.builds(lambda t: {"type": "message", "role": "assistant",
                         "content": [{"type": "output_text", "text": t, "annotations": []}]}, _text),
    st.builds(lambda t: {"role": "developer", "content": t}, _text))


@st.composite
def _turn(draw: st.DrawFn) -> list[dict[str, Any]]:
    call = draw(st.from_regex(r"call_[a-z0-9]{4}", fullmatch=True))
    if draw(st.booleans()):
        return [{"type": "function_call", "call_id": call, "name": "f", "arguments": '{"q":"x"}'},
                {"type": "function_call_output", "call_id": call, "output": draw(_text)}]
    return [{"type": "custom_tool_call", "call_id": call, "name": "apply_patch", "input": draw(_text)},
            {"type": "custom_tool_call_output", "call_id": call, "output": draw(_text)}]


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    items: list[dict[str, Any]] = [{"role": "user", "content": draw(_text)}]
    for _ in range(draw(st.integers(0, 4))):
        items += draw(st.one_of(_turn(), st.lists(_message, min_size=1, max_size=2)))
    body: dict[str, Any] = {"model": "gpt-5-codex", "input": items, "store": False, "stream": True,
                            "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
                            "tools": draw(st.lists(st.one_of(_function, _custom), max_size=3)),
                            "tool_choice": draw(st.sampled_from(["auto", "required", "none"])),
                            "parallel_tool_calls": draw(st.booleans())}
    if draw(st.booleans()):
        body["instructions"] = draw(_text)
    if draw(st.booleans()):
        body["reasoning"] = {"effort": draw(st.sampled_from(["minimal", "low", "medium", "high"])),
                             "summary": "auto"}
    if draw(st.booleans()):
        body["max_output_tokens"] = draw(st.integers(16, 64000))
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 2))
    return body


@settings(max_examples=100, deadline=None)
@given(_requests())
def test_generated_requests_convert(body: dict[str, Any]) -> None:
    before = orjson.dumps(body)
    converted = TRANSLATOR.request(body, {}, TARGET).body
    assert orjson.dumps(body) == before  # the client's body is not modified
    assert anthropic_vendor.validate(converted) is None
    roles = [message["role"] for message in converted["messages"]]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
    assert converted["stream"] is True and converted["model"] == TARGET.model
    if "thinking" in converted:
        assert converted["max_tokens"] > converted["thinking"]["budget_tokens"]
        assert "temperature" not in converted


def test_empty_text_and_reasoning_only_turns_are_left_out() -> None:
    body = {"model": "x", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": ""}, {"type": "input_text", "text": "hi"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": seal.sealed(WHOLE.platform, "sig")},
        {"role": "user", "content": "more"}]}
    messages = TRANSLATOR.request(body, {}, WHOLE).body["messages"]
    assert [m["role"] for m in messages] == ["user"]
    assert [b["text"] for b in messages[0]["content"]] == ["hi", "more"]
    assert anthropic_vendor.validate(TRANSLATOR.request(body, {}, WHOLE).body) is None


def test_json_schema_becomes_claude_output_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    body = {"model": "x", "input": "hi", "text": {"format": {"type": "json_schema", "name": "r", "schema": schema,
                                                             "strict": True}, "verbosity": "low"}}
    converted = TRANSLATOR.request(body, {}, WHOLE).body
    assert converted["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert converted["output_config"]["format"]["schema"] is schema  # reused, not copied


def test_thinking_off_when_tool_loop_has_no_claude_reasoning() -> None:
    body = {"model": "x", "reasoning": {"effort": "high"}, "input": [
        {"role": "user", "content": "go"},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-from-openai"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}], "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object"}}]}
    assert "thinking" not in TRANSLATOR.request(body, {}, WHOLE).body
    signed = {**body, "input": [body["input"][0], {"type": "reasoning", "summary": [], "encrypted_content":
                                                   seal.sealed(WHOLE.platform, "sig")}, *body["input"][2:]]}
    assert TRANSLATOR.request(signed, {}, WHOLE).body["thinking"]["type"] == "enabled"


@st.composite
def _anthropic_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude",
        "usage": {"input_tokens": draw(st.integers(1, 9)), "cache_read_input_tokens": draw(st.integers(0, 9)),
                  "output_tokens": 1}}}]
    kinds = draw(st.lists(st.sampled_from(["thinking", "redacted_thinking", "text", "tool_use", "custom"]),
                          max_size=5))
    for index, kind in enumerate(kinds):
        pieces = draw(st.lists(st.text(max_size=5), min_size=1, max_size=3))
        if kind == "thinking":
            block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [*({"type": "thinking_delta", "thinking": p} for p in pieces),
                      {"type": "signature_delta", "signature": "sig"}]
        elif kind == "redacted_thinking":
            block, deltas = {"type": "redacted_thinking", "data": "opaque"}, []
        elif kind == "text":
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        else:
            payload = {"input": "".join(pieces)} if kind == "custom" else {"q": "".join(pieces), "n": index}
            text = orjson.dumps(payload).decode()
            block = {"type": "tool_use", "id": f"toolu_{index}", "name": "f", "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": text[:3]},
                      {"type": "input_json_delta", "partial_json": text[3:]}]
        events += [{"type": "content_block_start", "index": index, "content_block": block},
                   *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
                   {"type": "content_block_stop", "index": index}]
    stop = draw(st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal", "stop_sequence"]))
    return [*events, {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 7}},
            {"type": "message_stop"}]


@settings(max_examples=100, deadline=None)
@given(_anthropic_stream())
def test_generated_anthropic_streams_make_valid_responses_streams(events: list[dict[str, Any]]) -> None:
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for event in events:
        out += converter.feed(SSEEvent(f"event: {event['type']}\ndata: {orjson.dumps(event).decode()}\n\n".encode()))
    out += converter.finish()
    datas = check_responses_stream(out)
    final = datas[-1]["response"]
    blocks = [e for e in events if e["type"] == "content_block_start"]
    assert len(final["output"]) == len(blocks)
    stop = events[-2]["delta"]["stop_reason"]
    assert final["status"] == ("incomplete" if stop in ("max_tokens", "refusal") else "completed")
    for item in final["output"]:
        if item["type"] == "reasoning":
            assert seal.opened(item["encrypted_content"], TARGET.platform) is not None
        if item["type"] == "function_call":
            assert set(orjson.loads(item["arguments"])) == {"q", "n"}
    # The answer goes back as a valid request whose Claude reasoning is restored.
    follow = {"model": "x", "input": [{"role": "user", "content": "go"}, *final["output"],
                                      {"role": "user", "content": "next"}]}
    assert anthropic_vendor.validate(TRANSLATOR.request(follow, {}, WHOLE).body) is None
