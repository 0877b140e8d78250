"""OpenAI chat client ⇄ Anthropic upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import seal
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.openai_to_anthropic import TRANSLATOR, AnthropicToChatStream
from switchboard_simulator.vendors import anthropic as anthropic_vendor

from .chat_anthropic_support import (
    anthropic_event,
    anthropic_problem,
    as_json,
    cases,
    check_chat_stream,
    events_of,
    golden,
    response_text,
)

MODULE = "openai_to_anthropic"
WHOLE = Target(platform="claude-console", model="claude-sonnet-4-5", stream=False)
STREAM = Target(platform="claude-console", model="claude-sonnet-4-5", stream=True, input_estimate=50)


def _accepted(body: dict[str, Any]) -> None:
    assert anthropic_vendor.validate(body) is None
    assert anthropic_problem(body) is None


def _stable(values: list[Any]) -> list[Any]:
    for value in values:
        if isinstance(value, dict) and "created" in value:
            value["created"] = 0
    return values


@pytest.mark.parametrize("case", cases(MODULE, "request"))
def test_golden_requests(case: str) -> None:
    data = golden(MODULE, case)
    target = STREAM if data["target"]["stream"] else WHOLE
    conversion = TRANSLATOR.request(data["client"], data["headers"], target)
    assert conversion.body == data["upstream"]
    assert conversion.headers == data["upstream_headers"]
    _accepted(conversion.body)


@pytest.mark.parametrize("case", cases(MODULE, "response"))
def test_golden_responses(case: str) -> None:
    data = golden(MODULE, case)
    answer = TRANSLATOR.response(data["upstream"], WHOLE)
    answer["created"] = 0
    assert answer == data["client"]


@pytest.mark.parametrize("case", cases(MODULE, "stream"))
def test_golden_streams(case: str) -> None:
    data = golden(MODULE, case)
    converter = AnthropicToChatStream(STREAM, include_usage=data["include_usage"])
    out: list[SSEEvent] = []
    for event in data["upstream"]:
        out += converter.feed(anthropic_event(event))
    out += converter.finish()
    assert _stable(as_json(out)) == data["client"]
    if data["upstream"][-1]["type"] != "error":
        check_chat_stream(out, usage=data["include_usage"])


def test_request_does_not_modify_or_copy_the_client_body() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    image = "data:image/png;base64," + "A" * 1000
    part = {"type": "image_url", "image_url": {"url": image}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]}
    before = orjson.dumps(body)
    out = TRANSLATOR.request(body, {}, WHOLE).body
    assert orjson.dumps(body) == before
    assert out["tools"][0]["input_schema"] is schema


STREAMS = ["messages-stream-text.yaml", "messages-stream-thinking.yaml", "messages-stream-tool-use.yaml",
           "messages-stream-thinking-tool-use.yaml"]


@pytest.mark.parametrize("usage", [True, False])
@pytest.mark.parametrize("name", STREAMS)
def test_recorded_anthropic_streams(name: str, usage: bool) -> None:
    upstream = events_of(response_text("anthropic", name))
    converter = AnthropicToChatStream(STREAM, include_usage=usage)
    out: list[SSEEvent] = []
    for event in upstream:
        out += converter.feed(event)
    out += converter.finish()
    chunks = check_chat_stream(out, usage=usage)
    # Compared with a real OpenAI stream's chunks: the same fields.
    real = [orjson.loads(event.data) for event in events_of(response_text("openai-chat", "stream-tool-calls.yaml"))
            if event.data != b"[DONE]"]
    assert set(chunks[0]) <= set(real[0]) and set(chunks[1]["choices"][0]) == set(real[1]["choices"][0])
    upstream_data = [orjson.loads(event.data) for event in upstream]
    text = "".join(d["delta"].get("text", "") for d in upstream_data if d["type"] == "content_block_delta")
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == text
    finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    stop = next(d["delta"]["stop_reason"] for d in upstream_data if d["type"] == "message_delta")
    assert finish == {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}[stop]
    if usage:
        start = upstream_data[0]["message"]["usage"]
        assert chunks[-1]["usage"]["prompt_tokens"] == start["input_tokens"] + start.get(
            "cache_read_input_tokens", 0) + start.get("cache_creation_input_tokens", 0)


@pytest.mark.parametrize("name", ["messages-nonstream-text.yaml", "messages-nonstream-thinking.yaml",
                                  "messages-nonstream-tool-use.yaml"])
def test_recorded_anthropic_answers(name: str) -> None:
    body = orjson.loads(response_text("anthropic", name))
    answer = TRANSLATOR.response(body, WHOLE)
    real = orjson.loads(response_text("openai-chat", "nonstream-tool-calls.yaml"))
    assert set(answer) <= set(real) and answer["object"] == "chat.completion"
    assert set(answer["choices"][0]) == set(real["choices"][0])
    message = answer["choices"][0]["message"]
    assert set(real["choices"][0]["message"]) - set(message) <= {"tool_calls"}
    for call, block in zip(message.get("tool_calls", ()),
                           [b for b in body["content"] if b["type"] == "tool_use"], strict=True):
        assert set(call) == set(real["choices"][0]["message"]["tool_calls"][0])
        assert call["id"] == block["id"] and orjson.loads(call["function"]["arguments"]) == block["input"]
    assert set(answer["usage"]) <= set(real["usage"])
    assert answer["usage"]["completion_tokens"] == body["usage"]["output_tokens"]


def test_thinking_round_trip_and_foreign_signatures_dropped() -> None:
    body = orjson.loads(response_text("anthropic", "messages-nonstream-thinking.yaml"))
    message = TRANSLATOR.response(body, WHOLE)["choices"][0]["message"]
    assert message["thinking_blocks"][0]["signature"].startswith("sbx1.claude-console.")
    foreign = {**message, "thinking_blocks": [{"type": "thinking", "thinking": "x",
                                               "signature": seal.sealed("gemini", "abc")},
                                              {"type": "thinking", "thinking": "y", "signature": "EqRaw"}]}
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}, message,
                                          {"role": "user", "content": "more"}, foreign,
                                          {"role": "user", "content": "again"}]}
    messages = TRANSLATOR.request(request, {}, WHOLE).body["messages"]
    assert messages[1]["content"][0] == {"type": "thinking", "thinking": body["content"][0]["thinking"],
                                         "signature": body["content"][0]["signature"]}
    assert isinstance(messages[3]["content"], str) or all(
        block["type"] != "thinking" for block in messages[3]["content"])
    # Also for another Claude platform the seal does not open.
    other = Target(platform="bedrock", model="claude-sonnet-4-5", stream=False)
    assert "thinking" not in orjson.dumps(TRANSLATOR.request(request, {}, other).body["messages"][1]).decode()


def test_thinking_left_off_when_the_tool_loop_has_no_signed_thinking() -> None:
    request = {"model": "m", "reasoning_effort": "high", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                              "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
        "tools": [{"type": "function", "function": {"name": "w"}}]}
    body = TRANSLATOR.request(request, {}, WHOLE).body
    assert "thinking" not in body
    _accepted(body)
    body = TRANSLATOR.request({**request, "messages": request["messages"][:1]}, {}, WHOLE).body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 24576} and body["max_tokens"] > 24576
    forced = TRANSLATOR.request({**request, "messages": request["messages"][:1], "tool_choice": "required"}, {}, WHOLE)
    assert "thinking" not in forced.body


@pytest.mark.parametrize(("field", "value"), [
    ("n", 2), ("logprobs", True), ("top_logprobs", 3), ("logit_bias", {"50256": -100}), ("frequency_penalty", 0.5),
    ("presence_penalty", 1), ("modalities", ["text", "audio"]), ("audio", {"voice": "alloy"}),
    ("service_tier", "flex"), ("functions", [{"name": "f"}]), ("web_search_options", {}), ("temperature", 1.5),
    ("response_format", {"type": "xml"}), ("tool_choice", {"type": "allowed_tools"}), ("surprise", 1),
    ("tools", [{"type": "custom", "custom": {"name": "x"}}]), ("tool_choice", "required"),
    ("reasoning_effort", "extreme"),
])
def test_refused_fields_name_the_field(field: str, value: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], field: value}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, WHOLE)
    assert field.split("_")[0] in raised.value.message or field in raised.value.message


@pytest.mark.parametrize("message", [
    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                          "function": {"name": "f", "arguments": "{"}}]},
    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                          "function": {"name": "f", "arguments": "[1]"}}]},
    {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]},
    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAA"}}]},
    {"role": "function", "name": "f", "content": "x"},
])
def test_refused_messages(message: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        TRANSLATOR.request({"model": "m", "messages": [{"role": "user", "content": "hi"}, message]}, {}, WHOLE)


def test_consumed_fields_and_mid_conversation_system() -> None:
    body = {"model": "m", "seed": 1, "store": True, "metadata": {"a": "b"}, "prediction": {"type": "content"},
            "prompt_cache_key": "k", "verbosity": "low", "n": 1, "logprobs": False, "presence_penalty": 0,
            "modalities": ["text"], "stream_options": {"include_usage": True}, "safety_identifier": "s1",
            "messages": [{"role": "user", "content": "a", "name": "bob"}, {"role": "system", "content": "late"},
                         {"role": "user", "content": "b"}]}
    out = TRANSLATOR.request(body, {}, WHOLE).body
    assert out == {"model": "claude-sonnet-4-5", "max_tokens": 8192, "system": [{"type": "text", "text": "late"}],
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                              {"type": "text", "text": "b"}]}],
                   "metadata": {"user_id": "s1"}, "stream": False}


@pytest.mark.parametrize(("status", "vendor_file"), [(400, "error-400-invalid_request_error.yaml"),
                                                     (401, "error-401-authentication_error.yaml"),
                                                     (404, "error-404-not_found_error.yaml")])
def test_errors_keep_status_and_message(status: int, vendor_file: str) -> None:
    payload = response_text("anthropic", vendor_file).encode()
    converted = orjson.loads(TRANSLATOR.error(status, payload))
    original = orjson.loads(payload)["error"]["message"]
    assert converted["error"]["message"] == original
    assert set(converted["error"]) == {"message", "type", "param", "code"}
    overloaded = orjson.loads(TRANSLATOR.error(529, b'{"type":"error","error":{"type":"overloaded_error",'
                                                    b'"message":"Overloaded"}}'))
    assert overloaded["error"]["message"] == "Overloaded" and overloaded["error"]["type"] == "server_error"


def test_stream_error_and_nothing_after_it() -> None:
    converter = TRANSLATOR.stream(STREAM)
    out = converter.feed(anthropic_event({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}))
    assert len(out) == 1 and orjson.loads(out[0].data)["error"]["type"] == "rate_limit_error"
    assert out[0].raw.startswith(b"data: ")
    assert converter.feed(anthropic_event({"type": "message_stop"})) == [] and converter.finish() == []


# Generated OpenAI chat requests: each converts into a body Anthropic accepts.
_text = st.text(min_size=0, max_size=12)
_name = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
_image = st.sampled_from([{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                          {"type": "image_url", "image_url": {"url": "https://example.com/x.png", "detail": "high"}}])
_user_part = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, _text), _image)
_user = st.builds(lambda c: {"role": "user", "content": c}, st.one_of(_text, st.lists(_user_part, max_size=4)))
_system = st.builds(lambda r, t: {"role": r, "content": t}, st.sampled_from(["system", "developer"]), _text)
_arguments = st.dictionaries(_name, st.one_of(st.integers(-1000, 1000), _text), max_size=3)


@st.composite
def _tool_turn(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    ids = [f"call_{draw(_name)}{n}" for n in range(count)]
    assistant = {"role": "assistant", "content": draw(st.one_of(st.none(), _text)),
                 "tool_calls": [{"id": i, "type": "function",
                                 "function": {"name": draw(_name),
                                              "arguments": orjson.dumps(draw(_arguments)).decode()}}
                                for i in ids]}
    results = [{"role": "tool", "tool_call_id": i,
                "content": draw(st.one_of(_text, st.lists(st.builds(lambda t: {"type": "text", "text": t}, _text),
                                                          max_size=2)))} for i in ids]
    return [assistant, *results]


_assistant = st.builds(lambda t: [{"role": "assistant", "content": t}], _text)


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = draw(st.lists(_system, max_size=2))
    messages.append(draw(_user))
    for _ in range(draw(st.integers(0, 4))):
        messages += draw(st.one_of(_tool_turn(), _assistant, st.builds(lambda u: [u], _user),
                                   st.builds(lambda s: [s], _system)))
    body: dict[str, Any] = {"model": "gpt-4o", "messages": messages}
    if draw(st.booleans()):
        body["tools"] = [{"type": "function", "function": {"name": n, "description": "d",
                                                           "parameters": {"type": "object", "properties": {}}}}
                         for n in draw(st.lists(_name, min_size=1, max_size=3, unique=True))]
        body["tool_choice"] = draw(st.sampled_from(["auto", "none", "required", None]))
        body["parallel_tool_calls"] = draw(st.booleans())
    optional = {"temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "max_tokens": st.integers(1, 9000),
                "max_completion_tokens": st.integers(1, 9000), "stop": st.one_of(_text.filter(bool), st.lists(
                    _text.filter(bool), max_size=4)), "user": _name, "reasoning_effort": st.sampled_from(
                    ["minimal", "low", "medium", "high"]), "response_format": st.sampled_from(
                    [{"type": "text"}, {"type": "json_object"}]), "seed": st.integers(0, 2**31),
                "stream": st.booleans()}
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return {name: value for name, value in body.items() if value is not None}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_requests(), st.booleans())
def test_generated_requests_convert_to_accepted_bodies(body: dict[str, Any], stream: bool) -> None:
    before = orjson.dumps(body)
    target = STREAM if stream else WHOLE
    try:
        out = TRANSLATOR.request(body, {}, target).body
    except InvalidRequest as refused:  # only a conversation without any content is refused
        assert "no user or assistant message has any content" in refused.message
        assert all(not m.get("tool_calls") for m in body["messages"])
        return
    assert orjson.dumps(body) == before
    assert out["stream"] is stream and out["model"] == target.model
    problem = anthropic_vendor.validate(out) or anthropic_problem(out)
    assert problem is None, (problem, out)
    assert ClientFormat.OPENAI is TRANSLATOR.client
