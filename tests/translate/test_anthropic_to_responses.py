"""Anthropic client ⇄ Responses upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import seal
from switchboard_edge.translate.anthropic_to_responses import TRANSLATOR
from switchboard_edge.translate.base import Target
from switchboard_simulator.config import from_mapping
from switchboard_simulator.vendors import openai_responses

from .responses_anthropic_support import (
    GOLDEN,
    as_json,
    check_anthropic_stream,
    events_of,
    golden,
    recording,
    response_text,
)

MODULE = "anthropic_to_responses"
PLATFORM = "openai-responses"
TARGET = Target(platform=PLATFORM, model="gpt-5-codex", stream=True, input_estimate=120)
WHOLE = Target(platform=PLATFORM, model="gpt-5-codex", stream=False)
VENDOR = from_mapping({}).openai_responses


def _accepted(body: dict[str, Any]) -> None:
    openai_responses.check(body, None, VENDOR)


@pytest.mark.parametrize("case", sorted(p.name for p in (GOLDEN / MODULE).glob("request-*.json")))
def test_golden_requests(case: str) -> None:
    data = golden(MODULE, case)
    conversion = TRANSLATOR.request(data["client"], data.get("headers", {}), WHOLE)
    assert conversion.body == data["upstream"]
    assert conversion.headers == {}
    _accepted(conversion.body)


@pytest.mark.parametrize("case", sorted(p.name for p in (GOLDEN / MODULE).glob("response-*.json")))
def test_golden_responses(case: str) -> None:
    data = golden(MODULE, case)
    assert TRANSLATOR.response(data["upstream"], WHOLE) == data["client"]


@pytest.mark.parametrize("case", sorted(p.name for p in (GOLDEN / MODULE).glob("stream-*.json")))
def test_golden_streams(case: str) -> None:
    data = golden(MODULE, case)
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for event in data["upstream"]:
        out += converter.feed(SSEEvent(f"event: {event['type']}\ndata: {orjson.dumps(event).decode()}\n\n".encode()))
    out += converter.finish()
    check_anthropic_stream(out)
    assert as_json(out) == data["client"]


@pytest.mark.parametrize("name", ["stream-text.yaml", "stream-function-call.yaml", "stream-reasoning-summary.yaml"])
def test_recorded_responses_streams(name: str) -> None:
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for event in events_of(response_text("openai-responses", name)):
        out += converter.feed(event)
    out += converter.finish()
    datas = check_anthropic_stream(out)
    starts = [d["content_block"] for d in datas if d["type"] == "content_block_start"]
    reference = {"stream-text.yaml": "messages-stream-text.yaml", "stream-function-call.yaml":
                 "messages-stream-tool-use.yaml", "stream-reasoning-summary.yaml": "messages-stream-thinking.yaml"}
    real = [orjson.loads(e.data) for e in events_of(response_text("anthropic", reference[name]))]
    assert set(datas[0]["message"]) == set(real[0]["message"]) - {"stop_details", "container"}
    assert set(datas[-2]["delta"]) <= set(real[-2]["delta"])
    if name == "stream-function-call.yaml":
        assert starts[0]["type"] == "tool_use" and starts[0]["id"].startswith("call_")
        assert datas[-2]["delta"]["stop_reason"] == "tool_use"
        pieces = "".join(d["delta"]["partial_json"] for d in datas if d["type"] == "content_block_delta")
        assert orjson.loads(pieces) == {"a": 1231, "b": 2331}
    if name == "stream-reasoning-summary.yaml":
        assert starts[0]["type"] == "thinking"
        signatures = [d for d in datas if d["type"] == "content_block_delta" and d["delta"]["type"] ==
                      "signature_delta"]
        assert all(s["delta"]["signature"].startswith("sbx1.openai-responses.") for s in signatures)
    final = [orjson.loads(e.data) for e in events_of(response_text("openai-responses", name))][-1]
    usage = final["response"]["usage"]
    assert datas[-2]["usage"]["output_tokens"] == usage["output_tokens"]
    assert datas[-2]["usage"]["input_tokens"] + datas[-2]["usage"]["cache_read_input_tokens"] == \
        usage["input_tokens"]


@pytest.mark.parametrize("name", ["nonstream.yaml", "nonstream-reasoning-function-calls.yaml"])
def test_recorded_responses_answers(name: str) -> None:
    body = orjson.loads(response_text("openai-responses", name))
    answer = TRANSLATOR.response(body, WHOLE)
    real = orjson.loads(response_text("anthropic", "messages-nonstream-tool-use.yaml"))
    assert set(answer) == set(real) - {"stop_details", "container"}
    assert set(answer["usage"]) <= set(real["usage"])
    for block in answer["content"]:
        same = next((b for b in real["content"] if b["type"] == block["type"]), None)
        if same is not None and block["type"] != "tool_use":
            assert set(same) <= set(block) | {"citations"}
    if "function" in name:
        assert answer["stop_reason"] == "tool_use"
        assert answer["content"][0]["type"] == "thinking"
        # The sealed reasoning goes back byte-exact to this platform, and is dropped for another.
        follow = {"model": "claude", "max_tokens": 100, "messages": [
            {"role": "user", "content": "go"}, {"role": "assistant", "content": answer["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": answer["content"][1]["id"],
                                          "content": "42"}]}]}
        items = TRANSLATOR.request(follow, {}, WHOLE).body["input"]
        assert items[1] == {"type": "reasoning", "summary": [],
                            "encrypted_content": body["output"][0]["encrypted_content"]}
        other = TRANSLATOR.request(follow, {}, Target(platform="azure-openai", model="m", stream=False))
        assert all(item["type"] != "reasoning" for item in other.body["input"])


@pytest.mark.parametrize(("field", "value"), [
    ("stop_sequences", ["END"]), ("top_k", 5), ("mcp_servers", [{"type": "url"}]), ("container", "c1"),
    ("tools", [{"type": "web_search_20250305", "name": "web_search"}]), ("frobnicate", 1),
    ("service_tier", "priority")])
def test_refused_fields_are_named(field: str, value: Any) -> None:
    body = {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], field: value}
    with pytest.raises(InvalidRequest) as caught:
        TRANSLATOR.request(body, {}, WHOLE)
    name = "web_search_20250305" if field == "tools" else field
    assert name in caught.value.message


@pytest.mark.parametrize("failure", [
    b'event: response.failed\ndata: {"type":"response.failed","sequence_number":2,"response":{"id":"resp_1",'
    b'"status":"failed","error":{"code":"server_error","message":"boom"}}}\n\n',
    b'event: error\ndata: {"type":"error","code":"server_error","message":"boom","param":null}\n\n'])
def test_stream_failure_becomes_anthropic_error(failure: bytes) -> None:
    converter = TRANSLATOR.stream(TARGET)
    out = converter.feed(events_of(response_text("openai-responses", "stream-text.yaml"))[0])
    out += converter.feed(SSEEvent(failure))
    assert out[0].name == "message_start" and out[-1].name == "error"
    error = orjson.loads(out[-1].data)
    assert error["type"] == "error" and error["error"]["message"] == "boom"
    assert converter.finish() == []


def test_recorded_stream_error_chunks() -> None:
    text = (GOLDEN.parent.parent / "fixtures" / "vendor-recordings" / "openai-responses" /
            "stream-error-insufficient_quota.chunks.txt").read_text()
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for line in text.splitlines():
        if line.strip():
            kind = orjson.loads(line)["type"]
            out += converter.feed(SSEEvent(f"event: {kind}\ndata: {line}\n\n".encode()))
    assert out[-1].name == "error" and "quota" in orjson.loads(out[-1].data)["error"]["message"]


@pytest.mark.parametrize("name", ["error-400-invalid_request_error.yaml", "error-400-model_not_found.yaml"])
def test_errors_keep_status_and_message(name: str) -> None:
    interaction = recording("openai-responses", name)
    status = interaction["response"]["status"]["code"]
    response = interaction["response"]
    payload = (orjson.dumps(response["parsed_body"]) if "parsed_body" in response else
               response_text("openai-responses", name).encode())
    converted = orjson.loads(TRANSLATOR.error(status, payload))
    assert converted["type"] == "error"
    assert converted["error"]["message"] == orjson.loads(payload)["error"]["message"]
    assert converted["error"]["type"] == "invalid_request_error"
    assert TRANSLATOR.client is ClientFormat.ANTHROPIC and TRANSLATOR.upstream is ClientFormat.RESPONSES


_text = st.text(min_size=1, max_size=20)
_name = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
_tool = st.builds(lambda n, d: {"name": n, "description": d, "cache_control": {"type": "ephemeral"},
                                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
                  _name, _text)
_image = st.just({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
_user_block = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, _text), _image)


@st.composite
def _exchange(draw: st.DrawFn) -> list[dict[str, Any]]:
    call = draw(st.from_regex(r"toolu_[a-zA-Z0-9]{6}", fullmatch=True))
    thinking = {"type": "thinking", "thinking": draw(_text),
                "signature": draw(st.sampled_from([seal.sealed(PLATFORM, "gAAAA"), "EqQBnative",
                                                   seal.sealed("gemini", "x")]))}
    assistant = [thinking, {"type": "text", "text": draw(_text)},
                 {"type": "tool_use", "id": call, "name": "f", "input": {"q": draw(_text)}}]
    result: Any = draw(st.one_of(_text, st.lists(_user_block, min_size=1, max_size=2)))
    return [{"role": "assistant", "content": assistant},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call, "content": result,
                                          "is_error": draw(st.booleans())},
                                         {"type": "text", "text": draw(_text)}]}]


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(st.one_of(
        _text, st.lists(_user_block, min_size=1, max_size=3)))}]
    for _ in range(draw(st.integers(0, 3))):
        messages += draw(_exchange())
    body: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": draw(st.integers(1, 128000)),
                            "messages": messages, "stream": True,
                            "metadata": {"user_id": '{"device_id":"d","account_uuid":"a","session_id":"s-1"}'}}
    if draw(st.booleans()):
        body["system"] = [{"type": "text", "text": draw(_text), "cache_control": {"type": "ephemeral"}}]
    if draw(st.booleans()):
        body["tools"] = draw(st.lists(_tool, min_size=1, max_size=3))
        body["tool_choice"] = draw(st.sampled_from([{"type": "auto"}, {"type": "any"},
                                                    {"type": "auto", "disable_parallel_tool_use": True}]))
    body["thinking"] = draw(st.sampled_from([{"type": "adaptive"}, {"type": "disabled"},
                                             {"type": "enabled", "budget_tokens": 4096}]))
    if draw(st.booleans()):
        body["context_management"] = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    if draw(st.booleans()):
        body["temperature"] = 1.0
    return body


@settings(max_examples=100, deadline=None)
@given(_requests())
def test_generated_requests_convert(body: dict[str, Any]) -> None:
    before = orjson.dumps(body)
    converted = TRANSLATOR.request(body, {}, TARGET).body
    assert orjson.dumps(body) == before
    _accepted(converted)
    assert converted["stream"] is True and converted["store"] is False
    assert converted["prompt_cache_key"] == "s-1" and len(converted["safety_identifier"]) == 64
    for item in converted["input"]:
        if item["type"] == "reasoning":
            assert item["encrypted_content"] == "gAAAA"
    calls = {item["call_id"] for item in converted["input"] if item["type"] == "function_call"}
    outputs = {item["call_id"] for item in converted["input"] if item["type"] == "function_call_output"}
    assert calls == outputs


def test_hidden_reasoning_gives_no_block() -> None:
    converter = TRANSLATOR.stream(TARGET)
    response = {"id": "resp_1", "status": "in_progress", "output": [], "usage": None}
    items = [{"type": "response.created", "response": response},
             {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning",
                                                                               "summary": []}},
             {"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning",
                                                                              "summary": []}},
             {"type": "response.output_item.added", "output_index": 1, "item": {"id": "m", "type": "message",
                                                                               "content": []}},
             {"type": "response.output_text.delta", "output_index": 1, "delta": "hi"},
             {"type": "response.output_item.done", "output_index": 1, "item": {"id": "m", "type": "message"}},
             {"type": "response.completed", "response": {**response, "status": "completed", "usage": {
                 "input_tokens": 5, "output_tokens": 2}}}]
    out: list[SSEEvent] = []
    for item in items:
        out += converter.feed(SSEEvent(f"event: {item['type']}\ndata: {orjson.dumps(item).decode()}\n\n".encode()))
    datas = check_anthropic_stream(out)
    assert [d["content_block"]["type"] for d in datas if d["type"] == "content_block_start"] == ["text"]
    assert datas[0]["message"]["usage"]["input_tokens"] == TARGET.input_estimate
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"


@st.composite
def _item_events(draw: st.DrawFn, index: int) -> tuple[list[dict[str, Any]], Any]:
    kind = draw(st.sampled_from(["reasoning", "message", "function_call"]))
    pieces = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4))
    if kind == "reasoning":
        item = {"id": f"rs_{index}", "type": "reasoning", "summary": []}
        events = [{"type": "response.reasoning_summary_part.added", "summary_index": 0},
                  *[{"type": "response.reasoning_summary_text.delta", "delta": p} for p in pieces]]
        done = {**item, "summary": [{"type": "summary_text", "text": "".join(pieces)}], "encrypted_content": "enc"}
        expected: Any = ("thinking", "".join(pieces))
    elif kind == "message":
        item = {"id": f"msg_{index}", "type": "message", "role": "assistant", "content": []}
        events = [{"type": "response.output_text.delta", "delta": p} for p in pieces]
        done = {**item, "content": [{"type": "output_text", "text": "".join(pieces)}]}
        expected = ("text", "".join(pieces))
    else:
        arguments = orjson.dumps({"k": "".join(pieces)}).decode()
        cut = draw(st.integers(0, len(arguments)))
        item = {"id": f"fc_{index}", "type": "function_call", "call_id": f"call_{index}", "name": "f",
                "arguments": ""}
        events = [{"type": "response.function_call_arguments.delta", "delta": part}
                  for part in (arguments[:cut], arguments[cut:]) if part]
        done = {**item, "arguments": arguments}
        expected = ("tool_use", {"k": "".join(pieces)})
    events = [{"type": "response.output_item.added", "item": item}, *events,
              {"type": "response.output_item.done", "item": done}]
    return [{**event, "output_index": index} for event in events], expected


@st.composite
def _interleaved(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Any]]:
    items = [draw(_item_events(index)) for index in range(draw(st.integers(1, 4)))]
    queues = [list(events) for events, _ in items]
    merged: list[dict[str, Any]] = []
    while any(queues):
        choice = draw(st.sampled_from([n for n, queue in enumerate(queues) if queue]))
        merged.append(queues[choice].pop(0))
    return merged, [expected for _, expected in items]


@settings(max_examples=100, deadline=None)
@given(_interleaved())
def test_interleaved_items_make_a_valid_claude_stream(case: tuple[list[dict[str, Any]], list[Any]]) -> None:
    merged, expected = case
    response = {"id": "resp_1", "status": "in_progress", "output": [], "usage": None}
    upstream = [{"type": "response.created", "response": response}, *merged,
                {"type": "response.completed", "response": {**response, "status": "completed",
                                                            "usage": {"input_tokens": 3, "output_tokens": 4}}}]
    converter = TRANSLATOR.stream(TARGET)
    out: list[SSEEvent] = []
    for event in upstream:
        out += converter.feed(SSEEvent(f"event: {event['type']}\ndata: {orjson.dumps(event).decode()}\n\n".encode()))
    out += converter.finish()
    datas = check_anthropic_stream(out)
    blocks: list[Any] = []
    for data in datas:
        if data["type"] == "content_block_start":
            blocks.append([data["content_block"]["type"], ""])
        elif data["type"] == "content_block_delta":
            delta = data["delta"]
            blocks[-1][1] += delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""
    seen = [(kind, orjson.loads(text) if kind == "tool_use" else text) for kind, text in blocks]
    assert sorted(map(repr, seen)) == sorted(map(repr, expected))
    tools = any(kind == "tool_use" for kind, _ in expected)
    assert datas[-2]["delta"]["stop_reason"] == ("tool_use" if tools else "end_turn")


def test_tool_search_tool_is_consumed_and_deferred_tools_sent() -> None:
    body = {"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "tools": [
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
        {"name": "Grep", "defer_loading": True, "input_schema": {"type": "object"}}]}
    tools = TRANSLATOR.request(body, {}, WHOLE).body["tools"]
    assert tools == [{"type": "function", "name": "Grep", "parameters": {"type": "object"}, "strict": False}]
