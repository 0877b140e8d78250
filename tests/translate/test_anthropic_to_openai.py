"""Anthropic client (Claude Code, the anthropic SDK) ⇄ OpenAI chat upstream: golden files, recordings, generated
requests, errors, and a tool call's round trip through both directions."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import openai_to_anthropic
from switchboard_edge.translate.anthropic_to_openai import TRANSLATOR
from switchboard_edge.translate.base import Target
from switchboard_simulator.vendors import openai as openai_vendor

from .chat_anthropic_support import (
    anthropic_event,
    as_json,
    cases,
    chat_event,
    chat_problem,
    check_anthropic_stream,
    check_chat_stream,
    events_of,
    golden,
    response_text,
)

MODULE = "anthropic_to_openai"
STREAM = Target(platform="openai", model="gpt-5", stream=True, input_estimate=300)


def _accepted(body: dict[str, Any]) -> None:
    openai_vendor.validate(body, None, lambda model: False)
    assert chat_problem(body) is None, chat_problem(body)


def _converted(events: list[SSEEvent], target: Target = STREAM) -> list[SSEEvent]:
    converter = TRANSLATOR.stream(target)
    out: list[SSEEvent] = []
    for event in events:
        out += converter.feed(event)
    return out + converter.finish()


@pytest.mark.parametrize("case", cases(MODULE, "request"))
def test_golden_requests(case: str) -> None:
    data = golden(MODULE, case)
    target = Target(platform="openai", model=data["target"]["model"], stream=data["target"]["stream"])
    before = orjson.dumps(data["client"])
    conversion = TRANSLATOR.request(data["client"], data["headers"], target)
    assert orjson.dumps(data["client"]) == before
    assert conversion.body == data["upstream"]
    assert conversion.headers == data["upstream_headers"] == {}
    _accepted(conversion.body)


@pytest.mark.parametrize("case", cases(MODULE, "response"))
def test_golden_responses(case: str) -> None:
    data = golden(MODULE, case)
    assert TRANSLATOR.response(data["upstream"], STREAM) == data["client"]


@pytest.mark.parametrize("case", cases(MODULE, "stream"))
def test_golden_streams(case: str) -> None:
    data = golden(MODULE, case)
    out = _converted([chat_event(event) for event in data["upstream"]])
    assert as_json(out) == data["client"]
    if data["client"][-1]["event"] != "error":
        check_anthropic_stream(out)


def test_long_user_ids_are_hashed_to_openais_limit() -> None:
    body = {"model": "x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    session = '{"device_id":"' + "d" * 64 + '","account_uuid":"a","session_id":"s"}'
    long_user = TRANSLATOR.request({**body, "metadata": {"user_id": session}}, {}, STREAM).body["user"]
    assert len(long_user) == 64 and long_user == TRANSLATOR.request(
        {**body, "metadata": {"user_id": session}}, {}, STREAM).body["user"]
    assert TRANSLATOR.request({**body, "metadata": {"user_id": "u1"}}, {}, STREAM).body["user"] == "u1"


def test_thinking_only_for_reasoning_models() -> None:
    body = {"model": "x", "max_tokens": 50000, "thinking": {"type": "enabled", "budget_tokens": 2000},
            "messages": [{"role": "user", "content": "hi"}]}
    assert TRANSLATOR.request(body, {}, STREAM).body["reasoning_effort"] == "low"
    other = Target(platform="openai", model="gpt-4o", stream=False)
    assert "reasoning_effort" not in TRANSLATOR.request(body, {}, other).body
    adaptive = {**body, "thinking": {"type": "adaptive"}}
    assert TRANSLATOR.request(adaptive, {}, STREAM).body["reasoning_effort"] == "medium"


@pytest.mark.parametrize(("field", "value"), [
    ("top_k", 5), ("stop_sequences", ["a", "b", "c", "d", "e"]), ("container", "cntr_1"),
    ("mcp_servers", [{"type": "url", "url": "https://x", "name": "x"}]), ("metadata", {"other": 1}),
    ("tools", [{"type": "web_search_20250305", "name": "web_search"}]), ("service_tier", "priority"),
    ("surprise", True), ("thinking", {"type": "sometimes"}), ("tool_choice", {"type": "any"}),
])
def test_refused_fields_name_the_field(field: str, value: Any) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], field: value}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, STREAM)
    assert field in raised.value.message


@pytest.mark.parametrize("block", [
    {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
    {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
    {"type": "search_result", "source": "s", "title": "t", "content": []},
    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "search_result"}]},
])
def test_refused_blocks(block: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [block]}]}
    with pytest.raises(InvalidRequest):
        TRANSLATOR.request(body, {}, STREAM)


# Recordings: real OpenAI / Azure streams and answers, turned into what Claude Code reads.
RECORDED_STREAMS = [("openai-chat", "stream-tool-calls.yaml"), ("openai-chat", "stream-include-usage.yaml"),
                    ("azure-openai", "chat-stream-include-usage.yaml")]


@pytest.mark.parametrize(("vendor", "name"), RECORDED_STREAMS)
def test_recorded_openai_streams(vendor: str, name: str) -> None:
    upstream = events_of(response_text(vendor, name))
    out = _converted(upstream)
    blocks = check_anthropic_stream(out)
    chunks = [orjson.loads(event.data) for event in upstream if event.data != b"[DONE]"]
    text = "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"])
    assert "".join(block.get("text", "") for block in blocks if block["type"] == "text") == text
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                entry = calls.setdefault(call["index"], {"id": call.get("id"), "arguments": ""})
                entry["arguments"] += call["function"].get("arguments", "")
    tools = [block for block in blocks if block["type"] == "tool_use"]
    assert [(tool["id"], tool["input"]) for tool in tools] == [
        (call["id"], orjson.loads(call["arguments"])) for _, call in sorted(calls.items())]
    usage = next(chunk["usage"] for chunk in chunks if chunk.get("usage"))
    final = orjson.loads(out[-2].data)
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert final["usage"]["input_tokens"] == usage["prompt_tokens"] - cached
    assert final["usage"]["output_tokens"] == usage["completion_tokens"]
    # Compared with a real Anthropic stream: the same events' fields.
    real = {event.name: orjson.loads(event.data)
            for event in events_of(response_text("anthropic", "messages-stream-tool-use.yaml"))}
    start = orjson.loads(out[0].data)["message"]
    assert set(start) <= set(real["message_start"]["message"])
    assert set(final["delta"]) <= set(real["message_delta"]["delta"])


@pytest.mark.parametrize(("vendor", "name"), [("openai-chat", "nonstream.yaml"),
                                              ("openai-chat", "nonstream-tool-calls.yaml"),
                                              ("azure-openai", "chat-nonstream.yaml")])
def test_recorded_openai_answers(vendor: str, name: str) -> None:
    body = orjson.loads(response_text(vendor, name))
    answer = TRANSLATOR.response(body, STREAM)
    real = orjson.loads(response_text("anthropic", "messages-nonstream-tool-use.yaml"))
    assert set(answer) <= set(real) and answer["id"].startswith("msg_")
    for block in answer["content"]:
        same = next(b for b in real["content"] if b["type"] == block["type"])
        assert set(same) == set(block)
    assert set(answer["usage"]) <= set(real["usage"])
    message = body["choices"][0]["message"]
    assert [b["id"] for b in answer["content"] if b["type"] == "tool_use"] == [
        c["id"] for c in message.get("tool_calls") or ()]
    assert answer["stop_reason"] == ("tool_use" if message.get("tool_calls") else "end_turn")


@pytest.mark.parametrize(("vendor", "name", "status"), [
    ("openai-chat", "error-400-unsupported_parameter.yaml", 400),
    ("openai-chat", "error-401-invalid_api_key.yaml", 401),
    ("openai-chat", "error-429-rate_limit_exceeded.yaml", 429),
    ("azure-openai", "error-404-DeploymentNotFound.yaml", 404),
])
def test_errors_keep_status_and_message(vendor: str, name: str, status: int) -> None:
    payload = response_text(vendor, name).encode()
    converted = orjson.loads(TRANSLATOR.error(status, payload))
    assert converted["type"] == "error"
    assert converted["error"]["message"] == orjson.loads(payload)["error"]["message"]
    # error_bodies keeps the vendor's own kind when Anthropic has a type of that name (OpenAI's 401/404 bodies say
    # invalid_request_error); the status itself is kept by the relay.
    assert converted["error"]["type"] in ({"rate_limit_error"} if status == 429 else {
        "invalid_request_error", {401: "authentication_error", 404: "not_found_error"}.get(status)})


def test_stream_error_chunk_and_nothing_after_it() -> None:
    converter = TRANSLATOR.stream(STREAM)
    out = converter.feed(chat_event({"error": {"message": "boom", "type": "server_error", "code": None}}))
    assert [event.name for event in out] == ["error"]
    assert orjson.loads(out[0].data) == {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    assert converter.feed(chat_event("[DONE]")) == [] and converter.finish() == []


def test_finish_completes_a_stream_that_ended_without_done() -> None:
    converter = TRANSLATOR.stream(STREAM)
    out = converter.feed(chat_event({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "hi"},
                                                                      "finish_reason": None}]}))
    out += converter.finish()
    check_anthropic_stream(out)
    assert converter.finish() == []


def test_tool_call_round_trip_keeps_ids_both_ways() -> None:
    """A Claude Code turn served by OpenAI: the streamed call becomes tool_use, the client's tool_result goes back
    as a tool message with the same id; and an OpenAI client served by Claude the same way round."""
    upstream = events_of(response_text("openai-chat", "stream-tool-calls.yaml"))
    blocks = check_anthropic_stream(_converted(upstream))
    tool_uses = [{k: block[k] for k in ("type", "id", "name", "input")} for block in blocks
                 if block["type"] == "tool_use"]
    request = {"model": "gpt-5", "max_tokens": 1000, "messages": [
        {"role": "user", "content": "weather?"}, {"role": "assistant", "content": tool_uses},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "sunny"}
                                     for use in tool_uses]}]}
    body = TRANSLATOR.request(request, {}, STREAM).body
    _accepted(body)
    sent_calls = body["messages"][1]["tool_calls"]
    assert [call["id"] for call in sent_calls] == [use["id"] for use in tool_uses]
    assert [orjson.loads(call["function"]["arguments"]) for call in sent_calls] == [use["input"] for use in tool_uses]
    assert [m["tool_call_id"] for m in body["messages"][2:]] == [use["id"] for use in tool_uses]
    assert all(use["id"].startswith("call_") for use in tool_uses)

    claude = Target(platform="claude-console", model="claude-sonnet-4-5", stream=True, input_estimate=10)
    converter = openai_to_anthropic.AnthropicToChatStream(claude, include_usage=True)
    chunks: list[SSEEvent] = []
    for event in events_of(response_text("anthropic", "messages-stream-tool-use.yaml")):
        chunks += converter.feed(event)
    parsed_chunks = check_chat_stream(chunks + converter.finish(), usage=True)
    calls: dict[int, dict[str, Any]] = {}
    for chunk in parsed_chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", ()):
                entry = calls.setdefault(call["index"], {"id": call.get("id"), "type": "function",
                                                         "function": {"name": call["function"].get("name"),
                                                                      "arguments": ""}})
                entry["function"]["arguments"] += call["function"].get("arguments", "")
    chat_request = {"model": "claude-sonnet-4-5", "messages": [
        {"role": "user", "content": "go"}, {"role": "assistant", "content": None, "tool_calls": list(calls.values())},
        *[{"role": "tool", "tool_call_id": call["id"], "content": "done"} for call in calls.values()]]}
    messages = openai_to_anthropic.TRANSLATOR.request(chat_request, {}, claude).body["messages"]
    assert [b["id"] for b in messages[1]["content"]] == [call["id"] for call in calls.values()]
    assert [b["tool_use_id"] for b in messages[2]["content"]] == [call["id"] for call in calls.values()]
    assert all(call["id"].startswith("toolu_") for call in calls.values())


def test_anthropic_stream_round_trip_through_both_converters() -> None:
    """Anthropic events → chat chunks (OpenAI client of Claude) → Anthropic events (Claude client of that): the
    text and tool inputs survive."""
    claude = Target(platform="claude-console", model="claude-sonnet-4-5", stream=True, input_estimate=10)
    first = openai_to_anthropic.AnthropicToChatStream(claude, include_usage=True)
    chunks: list[SSEEvent] = []
    original = events_of(response_text("anthropic", "messages-stream-thinking-tool-use.yaml"))
    for event in original:
        chunks += first.feed(event)
    chunks += first.finish()
    blocks = check_anthropic_stream(_converted(chunks))
    source = check_anthropic_stream([event for event in original if event.name != "ping"])
    assert [(b["type"], b.get("text"), b.get("input"), b.get("thinking")) for b in blocks] == [
        (b["type"], b.get("text"), b.get("input"), b.get("thinking")) for b in source]


# Generated Anthropic requests (Claude Code's shapes): each converts into a body OpenAI accepts.
_text = st.text(min_size=0, max_size=12)
_name = st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True)
_cache = st.sampled_from([{}, {"cache_control": {"type": "ephemeral"}}, {"cache_control": {"type": "ephemeral",
                                                                                           "ttl": "1h"}}])
_text_block = st.builds(lambda t, c: {"type": "text", "text": t, **c}, _text, _cache)
_image = st.sampled_from([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                          {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}])
_user_blocks = st.lists(st.one_of(_text_block, _image), max_size=3)
_input = st.dictionaries(_name, st.one_of(st.integers(-1000, 1000), _text), max_size=3)


@st.composite
def _tool_turn(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    ids = [f"toolu_{draw(_name)}{n}" for n in range(count)]
    assistant: list[dict[str, Any]] = []
    if draw(st.booleans()):
        assistant.append({"type": "thinking", "thinking": draw(_text), "signature": "EqSig"})
    if draw(st.booleans()):
        assistant.append(draw(_text_block))
    assistant += [{"type": "tool_use", "id": i, "name": draw(_name), "input": draw(_input)} for i in ids]
    results = [{"type": "tool_result", "tool_use_id": i, "is_error": draw(st.booleans()),
                "content": draw(st.one_of(_text, st.lists(st.one_of(_text_block, _image), max_size=2)))}
               for i in ids]
    return [{"role": "assistant", "content": assistant},
            {"role": "user", "content": results + draw(st.lists(_text_block, max_size=1))}]


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(st.one_of(_text, _user_blocks))}]
    for _ in range(draw(st.integers(0, 3))):
        messages += draw(st.one_of(_tool_turn(), st.builds(
            lambda a, u: [{"role": "assistant", "content": a}, {"role": "user", "content": u}],
            st.one_of(_text, st.lists(_text_block, max_size=2)), st.one_of(_text, _user_blocks))))
    body: dict[str, Any] = {"model": "claude-x", "max_tokens": draw(st.integers(1, 128000)), "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(st.one_of(_text, st.lists(_text_block, max_size=3)))
    if draw(st.booleans()):
        body["tools"] = [{"name": n, "description": "d", "input_schema": {"type": "object", "properties": {}},
                          **draw(_cache)} for n in draw(st.lists(_name, min_size=1, max_size=3, unique=True))]
        body["tool_choice"] = draw(st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"},
                                                    {"type": "auto", "disable_parallel_tool_use": True}]))
    optional = {"temperature": st.floats(0, 1), "top_p": st.floats(0, 1),
                "stop_sequences": st.lists(_text.filter(bool), max_size=4), "metadata": st.builds(
                    lambda u: {"user_id": u}, _name), "thinking": st.sampled_from(
                    [{"type": "enabled", "budget_tokens": 1024}, {"type": "enabled", "budget_tokens": 31999},
                     {"type": "adaptive"}, {"type": "disabled"}]),
                "context_management": st.just({"edits": [{"type": "clear_thinking_20251015"}]}),
                "service_tier": st.sampled_from(["auto", "standard_only"])}
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests(), st.booleans(), st.sampled_from(["gpt-5", "gpt-4o", "o3"]))
def test_generated_requests_convert_to_accepted_bodies(body: dict[str, Any], stream: bool, model: str) -> None:
    before = orjson.dumps(body)
    target = Target(platform="openai", model=model, stream=stream, input_estimate=1)
    out = TRANSLATOR.request(body, {"anthropic-beta": "context-management-2025-06-27"}, target)
    assert orjson.dumps(body) == before and out.headers == {}
    assert out.body["model"] == model and out.body["stream"] is stream
    if not out.body["messages"]:
        return  # nothing but empty text: OpenAI answers its own 400 for an empty conversation
    _accepted(out.body)


def test_recorded_stream_with_ping_and_events_parse_once() -> None:
    """Each upstream event is read once: a chunk with several tool call pieces in one delta still converts."""
    chunk = {"id": "chatcmpl-9", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{\"x\":1}"}}]},
        "finish_reason": "tool_calls"}]}
    blocks = check_anthropic_stream(_converted([chat_event(chunk), chat_event("[DONE]")]))
    assert [(b["id"], b["input"]) for b in blocks] == [("call_1", {}), ("call_2", {"x": 1})]
    assert anthropic_event({"type": "ping"}).name == "ping"
