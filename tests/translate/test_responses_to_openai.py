"""Responses client → OpenAI chat completions upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.responses_to_openai import TRANSLATOR
from switchboard_simulator.vendors import openai as sim_openai
from tests.translate.chat_responses_support import (
    GOLDEN,
    as_json,
    check_chat_request,
    check_response_object,
    check_responses_stream,
    events_of,
    golden,
    golden_input,
    normalized,
    request_body,
    response_text,
    status_of,
    target_of,
)

MODULE = "responses_to_openai"
TARGET = Target("openai", "gpt-5.5", stream=False)
STREAM = Target("openai", "gpt-5.5", stream=True)


def _stream(target: Target, raw: list[str]) -> list[Any]:
    converter = TRANSLATOR.stream(target)
    out = []
    for text in raw:
        for event in events_of(text):
            out += converter.feed(event)
    return out + converter.finish()


def _goldens(prefix: str) -> list[str]:
    return sorted(path.name for path in (GOLDEN / MODULE).glob(f"{prefix}-*.json"))


def test_class_attributes() -> None:
    assert TRANSLATOR.client is ClientFormat.RESPONSES and TRANSLATOR.upstream is ClientFormat.OPENAI


@pytest.mark.parametrize("name", _goldens("request"))
def test_request_golden(name: str) -> None:
    case = golden_input(MODULE, name)
    before = orjson.dumps(case["request"])
    conversion = TRANSLATOR.request(case["request"], case["headers"], target_of(case["target"]))
    actual = {"body": conversion.body, "headers": conversion.headers}
    assert actual == golden(MODULE, name, actual)
    assert orjson.dumps(case["request"]) == before  # the client's body is not modified
    check_chat_request(conversion.body)


@pytest.mark.parametrize("name", _goldens("response"))
def test_response_golden(name: str) -> None:
    case = golden_input(MODULE, name)
    actual = normalized(TRANSLATOR.response(case["upstream"], target_of(case["target"])))
    assert actual == golden(MODULE, name, actual)
    check_response_object(actual)


@pytest.mark.parametrize("name", _goldens("stream"))
def test_stream_golden(name: str) -> None:
    case = golden_input(MODULE, name)
    events = _stream(target_of(case["target"]), case["upstream"])
    actual = normalized(as_json(events))
    assert actual == golden(MODULE, name, actual)
    check_responses_stream(events)


def test_schemas_are_reused_by_reference() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": schema}],
            "text": {"format": {"type": "json_schema", "name": "n", "schema": schema}}}
    out = TRANSLATOR.request(body, {}, TARGET).body
    assert out["tools"][0]["function"]["parameters"] is schema
    assert out["response_format"]["json_schema"]["schema"] is schema


def test_recorded_responses_requests_convert() -> None:
    for name in ("nonstream.yaml", "stream-function-call.yaml", "stream-reasoning-summary.yaml"):
        body = request_body("openai-responses", name)
        out = TRANSLATOR.request(body, {}, STREAM).body
        check_chat_request(out)
        sim_openai.validate(out, None, lambda model: False)


def test_recorded_follow_up_with_reasoning_and_outputs() -> None:
    body = request_body("openai-responses", "nonstream-reasoning-function-calls.yaml", 1)
    out = TRANSLATOR.request(body, {}, TARGET).body
    check_chat_request(out)
    roles = [message["role"] for message in out["messages"]]
    assert roles == ["user", "assistant", "tool"]  # the reasoning item is dropped, the call kept


# ---------------------------------------------------------------------------------------------------------------
# Recordings: a recorded chat answer through the converter is a valid Responses answer, and matches the recorded
# Responses answer of the same kind field by field where they are comparable.


def test_recorded_whole_answer_matches_responses_recording() -> None:
    chat = orjson.loads(response_text("openai-chat", "nonstream.yaml"))
    ours = TRANSLATOR.response(chat, TARGET)
    theirs = orjson.loads(response_text("openai-responses", "nonstream.yaml"))
    check_response_object(ours)
    assert set(theirs) - set(ours) <= {"billing", "moderation", "prompt_cache_retention"}
    assert [item["type"] for item in ours["output"]] == [item["type"] for item in theirs["output"]]
    assert set(ours["output"][0]) == set(theirs["output"][0]) - {"phase"}
    assert set(ours["output"][0]["content"][0]) == set(theirs["output"][0]["content"][0])
    assert set(ours["usage"]) == set(theirs["usage"])
    assert ours["usage"]["input_tokens"] == chat["usage"]["prompt_tokens"]


def test_recorded_tool_calls_answer() -> None:
    chat = orjson.loads(response_text("openai-chat", "nonstream-tool-calls.yaml"))
    ours = TRANSLATOR.response(chat, TARGET)
    theirs = orjson.loads(response_text("openai-responses", "nonstream-reasoning-function-calls.yaml"))
    calls = [item for item in ours["output"] if item["type"] == "function_call"]
    assert [call["call_id"] for call in calls] == [call["id"] for call in chat["choices"][0]["message"]["tool_calls"]]
    recorded = next(item for item in theirs["output"] if item["type"] == "function_call")
    assert all(set(call) == set(recorded) for call in calls)
    assert ours["status"] == "completed"


@pytest.mark.parametrize(("vendor", "name"), [("openai-chat", "stream-include-usage.yaml"),
                                              ("openai-chat", "stream-tool-calls.yaml"),
                                              ("azure-openai", "chat-stream-include-usage.yaml")])
def test_recorded_streams_follow_the_grammar(vendor: str, name: str) -> None:
    raw = [event.raw.decode() for event in events_of(response_text(vendor, name))]
    events = _stream(STREAM, raw)
    datas = check_responses_stream(events)
    final = datas[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["total_tokens"] > 0
    recorded = {data["type"] for data in (orjson.loads(e.data) for e in events_of(
        response_text("openai-responses", "stream-text.yaml" if "tool" not in name else "stream-function-call.yaml")))}
    assert {data["type"] for data in datas} == recorded
    # The recorded Responses stream's event fields, event by event kind.
    theirs = {}
    for event in events_of(response_text("openai-responses", "stream-function-call.yaml", 1)):
        data = orjson.loads(event.data)
        theirs.setdefault(data["type"], set(data) - {"obfuscation"})
    for data in datas:
        if data["type"] in theirs and data["type"] not in ("response.created", "response.in_progress",
                                                           "response.completed"):
            assert set(data) == theirs[data["type"]], data["type"]


def test_tool_call_arguments_reassembled() -> None:
    raw = [event.raw.decode() for event in events_of(response_text("openai-chat", "stream-tool-calls.yaml"))]
    datas = check_responses_stream(_stream(STREAM, raw))
    calls = [item for item in datas[-1]["response"]["output"] if item["type"] == "function_call"]
    assert len(calls) == 2 and all(orjson.loads(call["arguments"])["location"] for call in calls)


def test_finish_emits_the_terminal_once() -> None:
    converter = TRANSLATOR.stream(STREAM)
    chunk = {"id": "chatcmpl-x", "created": 1, "choices": [{"index": 0, "delta": {"content": "hi"},
                                                             "finish_reason": "length"}]}
    events = converter.feed(events_of("data: " + orjson.dumps(chunk).decode() + "\n\n")[0])
    events += converter.finish()
    assert converter.finish() == []
    datas = check_responses_stream(events)
    assert datas[-1]["type"] == "response.incomplete"
    assert datas[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_interleaved_tool_calls_are_buffered() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {"id": "chatcmpl-i", "created": 1, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return "data: " + orjson.dumps(body).decode() + "\n\n"

    raw = [chunk({"tool_calls": [{"index": 0, "id": "call_0", "function": {"name": "a", "arguments": "{\"x\""}}]}),
           chunk({"tool_calls": [{"index": 1, "id": "call_1", "function": {"name": "b", "arguments": "{\"y\""}}]}),
           chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
           chunk({"tool_calls": [{"index": 1, "function": {"arguments": ":2}"}}]}),
           chunk({}, "tool_calls"), "data: [DONE]\n\n"]
    datas = check_responses_stream(_stream(STREAM, raw))
    output = datas[-1]["response"]["output"]
    assert [(item["name"], item["arguments"]) for item in output] == [("a", '{"x":1}'), ("b", '{"y":2}')]


# ---------------------------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(("body", "field"), [
    ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": "x", "background": True}, "background"),
    ({"input": "x", "tools": [{"type": "file_search"}]}, "file_search"),
    ({"input": "x", "tools": [{"type": "local_shell"}]}, "local_shell"),
    ({"input": "x", "truncation": "auto"}, "truncation"),
    ({"input": "x", "include": ["message.output_text.logprobs"]}, "message.output_text.logprobs"),
    ({"input": "x", "bogus": 1}, "bogus"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ({"input": [{"type": "local_shell_call", "call_id": "c"}]}, "local_shell_call"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "file_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]}, "input_file"),
    ({"input": "x", "max_tool_calls": 3}, "max_tool_calls"),
    ({"input": "x", "top_logprobs": 5}, "top_logprobs"),
])
def test_refused_fields_are_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, TARGET)
    assert field in raised.value.message


# ---------------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("name", ["error-400-unsupported_parameter.yaml", "error-401-invalid_api_key.yaml",
                                  "error-404-model_not_found.yaml", "error-429-rate_limit_exceeded.yaml"])
def test_error_bodies_keep_status_and_message(name: str) -> None:
    status = status_of("openai-chat", name)
    payload = response_text("openai-chat", name).encode()
    converted = orjson.loads(TRANSLATOR.error(status, payload))
    original = orjson.loads(payload)
    assert converted["error"]["message"] == original["error"]["message"]
    assert set(converted["error"]) >= {"message", "type", "code"} and status >= 400


def test_stream_error_becomes_error_then_failed() -> None:
    raw = ['data: {"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}'
           "\n\n"]
    datas = check_responses_stream(_stream(STREAM, raw))
    assert [data["type"] for data in datas[-2:]] == ["error", "response.failed"]
    assert datas[-2]["message"] == "Rate limit reached" and datas[-2]["code"] == "rate_limit_exceeded"
    assert datas[-1]["response"]["error"]["message"] == "Rate limit reached"


# ---------------------------------------------------------------------------------------------------------------
# Generated requests: every valid Responses request converts into a chat request the vendor accepts.

_text = st.text(min_size=1, max_size=20)
_schema = st.fixed_dictionaries({"type": st.just("object"),
                                 "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                                               st.just({"type": "string"}), max_size=3)})
_function_tool = st.fixed_dictionaries({"type": st.just("function"), "name": st.sampled_from(["f", "g", "h"])},
                                       optional={"description": _text, "parameters": _schema,
                                                 "strict": st.booleans()})
_custom_tool = st.fixed_dictionaries({"type": st.just("custom"), "name": st.sampled_from(["apply_patch", "p"])},
                                     optional={"description": _text,
                                               "format": st.just({"type": "grammar", "syntax": "lark",
                                                                  "definition": "start: /.+/"})})
_image = st.fixed_dictionaries({"type": st.just("input_image"),
                                "image_url": st.sampled_from(["https://example.com/a.png",
                                                              "data:image/png;base64,iVBORw0KGgo="])},
                               optional={"detail": st.sampled_from(["auto", "low", "high"])})
_user_part = st.one_of(st.fixed_dictionaries({"type": st.just("input_text"), "text": _text}), _image,
                       st.fixed_dictionaries({"type": st.just("input_file"), "filename": st.just("a.pdf"),
                                              "file_data": st.just("data:application/pdf;base64,JVBERi0=")}))
_user = st.fixed_dictionaries({"role": st.just("user"),
                               "content": st.one_of(_text, st.lists(_user_part, min_size=1, max_size=3))},
                              optional={"type": st.just("message")})
_system = st.fixed_dictionaries({"type": st.just("message"), "role": st.sampled_from(["system", "developer"]),
                                 "content": st.one_of(_text, st.lists(st.fixed_dictionaries(
                                     {"type": st.just("input_text"), "text": _text}), min_size=1, max_size=2))})
_assistant = st.fixed_dictionaries({"type": st.just("message"), "role": st.just("assistant"),
                                    "content": st.lists(st.fixed_dictionaries(
                                        {"type": st.just("output_text"), "text": _text,
                                         "annotations": st.just([])}), min_size=1, max_size=2)},
                                   optional={"id": st.just("msg_1"), "status": st.just("completed")})
_reasoning = st.fixed_dictionaries({"type": st.just("reasoning"), "summary": st.just([])},
                                   optional={"encrypted_content": st.sampled_from(["gAAAA", "sbx1.anthropic.x"])})


@st.composite
def _calls(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One turn of tool calls and their outputs, ids paired."""
    count = draw(st.integers(1, 3))
    calls: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for index in range(count):
        call_id = f"call_{draw(st.integers(0, 10**6))}_{index}"
        if draw(st.booleans()):
            calls.append({"type": "function_call", "call_id": call_id, "name": "f", "arguments": '{"a": "1"}'})
            outputs.append({"type": "function_call_output", "call_id": call_id,
                            "output": draw(st.one_of(_text, st.lists(st.one_of(
                                st.fixed_dictionaries({"type": st.just("input_text"), "text": _text}), _image),
                                min_size=1, max_size=2)))})
        else:
            calls.append({"type": "custom_tool_call", "call_id": call_id, "name": "apply_patch", "input": draw(_text)})
            outputs.append({"type": "custom_tool_call_output", "call_id": call_id, "output": draw(_text)})
    return calls + outputs


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    items: list[dict[str, Any]] = draw(st.lists(_system, max_size=1)) + [draw(_user)]
    for _ in range(draw(st.integers(0, 3))):
        turn = draw(st.lists(st.one_of(_assistant, _reasoning), max_size=2))
        items += turn + draw(st.one_of(_calls(), st.just([]))) + [draw(_user)]
    body: dict[str, Any] = {"model": "gpt-5.5", "input": draw(st.one_of(st.just(items), _text))}
    optional = {
        "instructions": _text, "tools": st.lists(st.one_of(_function_tool, _custom_tool), max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required", {"type": "function", "name": "f"}]),
        "parallel_tool_calls": st.booleans(), "max_output_tokens": st.integers(16, 4096),
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "store": st.booleans(),
        "reasoning": st.fixed_dictionaries({}, optional={"effort": st.sampled_from(["low", "medium", "high"]),
                                                         "summary": st.sampled_from(["auto", "detailed"])}),
        "text": st.fixed_dictionaries({}, optional={
            "verbosity": st.sampled_from(["low", "medium", "high"]),
            "format": st.one_of(st.just({"type": "text"}), st.just({"type": "json_object"}),
                                st.builds(lambda s: {"type": "json_schema", "name": "n", "schema": s}, _schema))}),
        "include": st.just(["reasoning.encrypted_content"]), "prompt_cache_key": _text, "user": _text,
        "metadata": st.dictionaries(st.sampled_from(["a", "b"]), _text, max_size=2), "stream": st.booleans(),
        "client_metadata": st.just({"k": "v"}), "service_tier": st.sampled_from(["auto", "default", "flex"]),
        "truncation": st.just("disabled"), "safety_identifier": _text,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests(), st.booleans())
def test_generated_requests_convert_into_valid_chat_requests(body: dict[str, Any], stream: bool) -> None:
    before = orjson.dumps(body)
    out = TRANSLATOR.request(body, {}, Target("openai", "gpt-5.5", stream=stream)).body
    assert orjson.dumps(body) == before
    check_chat_request(out)
    sim_openai.validate(orjson.loads(orjson.dumps(out)), None, lambda model: False)
    assert out["model"] == "gpt-5.5" and out["stream"] is stream


def _chunks(*deltas: dict[str, Any], finish: str = "stop", usage: bool = True) -> list[str]:
    def line(body: dict[str, Any]) -> str:
        return "data: " + orjson.dumps(body).decode() + "\n\n"

    base = {"id": "chatcmpl-r", "object": "chat.completion.chunk", "created": 7, "model": "m"}
    raw = [line({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}) for delta in deltas]
    raw.append(line({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
    if usage:
        raw.append(line({**base, "choices": [], "usage": {
            "prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}}))
    return [*raw, "data: [DONE]\n\n"]


def test_refusal_and_reasoning_stream_items() -> None:
    raw = _chunks({"role": "assistant", "reasoning_content": "Hmm"}, {"reasoning_content": "."},
                  {"refusal": "I can't"}, {"refusal": " help."})
    datas = check_responses_stream(_stream(STREAM, raw))
    final = datas[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "Hmm."}]
    assert final["output"][1]["content"] == [{"type": "refusal", "refusal": "I can't help."}]
    assert "response.refusal.delta" in {data["type"] for data in datas}
    assert final["usage"] == {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 3}, "output_tokens": 4,
                              "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 13}


def test_stream_and_whole_answer_agree() -> None:
    """The stream's final response equals the whole answer built from the same completion."""
    raw = _chunks({"role": "assistant", "content": "Hi"}, {"content": " there"},
                  {"tool_calls": [{"index": 0, "id": "call_z", "type": "function",
                                   "function": {"name": "f", "arguments": "{\"a\":"}}]},
                  {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, finish="tool_calls")
    streamed = check_responses_stream(_stream(STREAM, raw))[-1]["response"]
    whole = TRANSLATOR.response({
        "id": "chatcmpl-r", "created": 7, "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Hi there", "tool_calls": [
                {"id": "call_z", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                  "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}},
    }, STREAM)
    assert normalized(streamed) == normalized(whole)


def test_tool_settings_without_tools_are_consumed() -> None:
    out = TRANSLATOR.request({"input": "x", "tool_choice": "auto", "parallel_tool_calls": True}, {}, TARGET).body
    assert "tool_choice" not in out and "parallel_tool_calls" not in out
    sim_openai.validate(out, None, lambda model: False)
