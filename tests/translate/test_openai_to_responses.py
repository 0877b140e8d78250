"""OpenAI chat client → Responses upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.openai_to_responses import TRANSLATOR
from switchboard_simulator.vendors import openai_responses as sim_responses
from tests.translate.chat_responses_support import (
    GOLDEN,
    UsageTarget,
    as_json,
    assemble_chat,
    check_chat_completion,
    check_chat_stream,
    check_responses_request,
    events_of,
    golden,
    golden_input,
    request_body,
    response_text,
    status_of,
    target_of,
)

MODULE = "openai_to_responses"
TARGET = Target("openai-responses", "gpt-5.5", stream=False)
STREAM = Target("openai-responses", "gpt-5.5", stream=True)
SIMULATOR = sim_responses.ResponsesConfig(keys=frozenset({"k"}), models=tuple(sim_responses.MODELS),
                                          reasoning_models=tuple(sim_responses.REASONING_MODELS))


def _stream(target: Target, raw: list[str]) -> list[Any]:
    converter = TRANSLATOR.stream(target)
    out = []
    for text in raw:
        for event in events_of(text):
            out += converter.feed(event)
    return out + converter.finish()


def _goldens(prefix: str) -> list[str]:
    return sorted(path.name for path in (GOLDEN / MODULE).glob(f"{prefix}-*.json"))


def _recorded(name: str, index: int = 0) -> list[str]:
    return [event.raw.decode() for event in events_of(response_text("openai-responses", name, index))]


def test_class_attributes() -> None:
    assert TRANSLATOR.client is ClientFormat.OPENAI and TRANSLATOR.upstream is ClientFormat.RESPONSES


@pytest.mark.parametrize("name", _goldens("request"))
def test_request_golden(name: str) -> None:
    case = golden_input(MODULE, name)
    before = orjson.dumps(case["request"])
    conversion = TRANSLATOR.request(case["request"], case["headers"], target_of(case["target"]))
    actual = {"body": conversion.body, "headers": conversion.headers}
    assert actual == golden(MODULE, name, actual)
    assert orjson.dumps(case["request"]) == before
    check_responses_request(conversion.body)
    sim_responses.check(orjson.loads(orjson.dumps(conversion.body)), None, SIMULATOR)


@pytest.mark.parametrize("name", _goldens("response"))
def test_response_golden(name: str) -> None:
    case = golden_input(MODULE, name)
    actual = TRANSLATOR.response(case["upstream"], target_of(case["target"]))
    assert actual == golden(MODULE, name, actual)
    check_chat_completion(actual)


@pytest.mark.parametrize("name", _goldens("stream"))
def test_stream_golden(name: str) -> None:
    case = golden_input(MODULE, name)
    target = target_of(case["target"])
    events = _stream(target, case["upstream"])
    actual = as_json(events)
    assert actual == golden(MODULE, name, actual)
    if events[-1].data == b"[DONE]":
        check_chat_stream(events, include_usage=getattr(target, "include_usage", False))


def test_schemas_are_reused_by_reference() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {"messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}}
    out = TRANSLATOR.request(body, {}, TARGET).body
    assert out["tools"][0]["parameters"] is schema and out["tools"][0]["strict"] is False
    assert out["text"]["format"]["schema"] is schema


def test_recorded_chat_requests_convert() -> None:
    for name in ("nonstream.yaml", "nonstream-tool-calls.yaml", "stream-include-usage.yaml",
                 "stream-tool-calls.yaml"):
        out = TRANSLATOR.request(request_body("openai-chat", name), {}, STREAM).body
        check_responses_request(out)
        sim_responses.check(orjson.loads(orjson.dumps(out)), None, SIMULATOR)
        assert out["store"] is False


# ---------------------------------------------------------------------------------------------------------------
# Recordings


def test_recorded_whole_answer_matches_chat_recording() -> None:
    ours = TRANSLATOR.response(orjson.loads(response_text("openai-responses", "nonstream.yaml")), TARGET)
    theirs = orjson.loads(response_text("openai-chat", "nonstream.yaml"))
    check_chat_completion(ours)
    assert set(ours) == set(theirs)
    assert set(ours["choices"][0]) == set(theirs["choices"][0])
    assert set(ours["choices"][0]["message"]) == set(theirs["choices"][0]["message"])
    assert set(ours["usage"]) == set(theirs["usage"])
    assert set(ours["usage"]["completion_tokens_details"]) == set(theirs["usage"]["completion_tokens_details"])
    assert ours["choices"][0]["message"]["content"] == "pong"


def test_recorded_function_calls_answer() -> None:
    ours = TRANSLATOR.response(orjson.loads(response_text("openai-responses",
                                                          "nonstream-reasoning-function-calls.yaml")), TARGET)
    theirs = orjson.loads(response_text("openai-chat", "nonstream-tool-calls.yaml"))
    assert ours["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = ours["choices"][0]["message"]["tool_calls"]
    assert set(call) == set(theirs["choices"][0]["message"]["tool_calls"][0])
    assert call["id"] == "call_I670mAzR6AYszdoqaI96qg0k"


@pytest.mark.parametrize(("name", "index"), [("stream-text.yaml", 0), ("stream-function-call.yaml", 0),
                                             ("stream-function-call.yaml", 1), ("stream-reasoning-summary.yaml", 0)])
@pytest.mark.parametrize("include_usage", [True, False])
def test_recorded_streams_follow_the_grammar(name: str, index: int, include_usage: bool) -> None:
    events = _stream(UsageTarget("openai-responses", "gpt-5.5", True, include_usage=include_usage),
                     _recorded(name, index))
    chunks = check_chat_stream(events, include_usage)
    message = assemble_chat(chunks)
    final = orjson.loads(events_of(response_text("openai-responses", name, index))[-1].data)["response"]
    texts = "".join(part["text"] for item in final["output"] if item["type"] == "message"
                    for part in item["content"] if part["type"] == "output_text")
    calls = [item for item in final["output"] if item["type"] == "function_call"]
    assert message["content"] == texts
    assert [(call["id"], call["name"], call["arguments"]) for call in message["calls"]] == [
        (call["call_id"], call["name"], call["arguments"]) for call in calls]
    assert message["finish"] == ("tool_calls" if calls else "stop")
    if include_usage:
        assert chunks[-1]["usage"]["prompt_tokens"] == final["usage"]["input_tokens"]
    # The recorded chat stream's chunk fields.
    recorded = orjson.loads(events_of(response_text("openai-chat", "stream-include-usage.yaml"))[1].data)
    assert set(chunks[1]) <= set(recorded) | {"usage"}


def test_arguments_only_in_item_done_are_sent() -> None:
    raw = ['event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","created_at":5}}\n\n',
           'event: response.output_item.done\ndata: {"type":"response.output_item.done","output_index":0,'
           '"item":{"id":"fc_1","type":"function_call","call_id":"call_1","name":"f","arguments":"{\\"a\\":1}"}}\n\n',
           'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1","status":'
           '"completed","output":[]}}\n\n']
    chunks = check_chat_stream(_stream(STREAM, raw), include_usage=False)
    assert assemble_chat(chunks)["calls"] == [{"id": "call_1", "name": "f", "arguments": '{"a":1}'}]


def test_incomplete_stream_finishes_with_length() -> None:
    raw = ['event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Once"}\n\n',
           'event: response.incomplete\ndata: {"type":"response.incomplete","response":{"id":"resp_2","status":'
           '"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}}\n\n']
    chunks = check_chat_stream(_stream(STREAM, raw), include_usage=False)
    assert assemble_chat(chunks) == {"content": "Once", "calls": [], "finish": "length"}


# ---------------------------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(("extra", "field"), [
    ({"stop": ["\n"]}, "stop"), ({"n": 2}, "n"), ({"seed": 1}, "seed"), ({"top_logprobs": 2}, "logprobs"),
    ({"logit_bias": {"1": 2}}, "logit_bias"), ({"prediction": {}}, "prediction"),
    ({"audio": {"voice": "x"}}, "audio"), ({"modalities": ["text", "audio"]}, "modalities"),
    ({"functions": [{"name": "f"}]}, "functions"), ({"bogus": 1}, "bogus"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "function"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file_1"}}]}]}, "file_id"),
])
def test_refused_fields_are_named(extra: dict[str, Any], field: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, TARGET)
    assert field in raised.value.message


# ---------------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("name", ["error-400-invalid_request_error.yaml", "error-400-model_not_found.yaml",
                                  "error-401-invalid_api_key-stream-request.yaml"])
def test_error_bodies_keep_status_and_message(name: str) -> None:
    status = status_of("openai-responses", name)
    payload = response_text("openai-responses", name).encode()
    converted = orjson.loads(TRANSLATOR.error(status, payload))
    assert converted["error"]["message"] == orjson.loads(payload)["error"]["message"] and status >= 400


def test_quota_error_body() -> None:
    payload = (GOLDEN.parents[1] / "fixtures" / "vendor-recordings" / "openai-responses" /
               "error-429-insufficient_quota.body.json").read_bytes()
    converted = orjson.loads(TRANSLATOR.error(429, payload))
    assert converted["error"]["message"] == orjson.loads(payload)["error"]["message"]


def test_stream_failure_becomes_openai_stream_error() -> None:
    events = _stream(STREAM, _recorded_failure())
    data = orjson.loads(events[-1].data)
    assert events[-1].name == "" and data["error"]["message"].startswith("You exceeded your current quota")
    assert data["error"]["type"] == "rate_limit_error"
    assert all(event.data != b"[DONE]" for event in events)


def _recorded_failure() -> list[str]:
    path = GOLDEN.parents[1] / "fixtures" / "vendor-recordings" / "openai-responses" / \
        "stream-error-insufficient_quota.chunks.txt"
    return [f"event: {orjson.loads(line)['type']}\ndata: {line}\n\n"
            for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------------
# Generated requests: every valid chat request converts into a Responses request the vendor accepts.

_text = st.text(min_size=1, max_size=20)
_schema = st.fixed_dictionaries({"type": st.just("object"),
                                 "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                                               st.just({"type": "string"}), max_size=3)})
_GRAMMAR = {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: x"}}
_tool = st.one_of(
    st.builds(lambda function: {"type": "function", "function": function},
              st.fixed_dictionaries({"name": st.sampled_from(["f", "g"])},
                                    optional={"description": _text, "parameters": _schema, "strict": st.booleans()})),
    st.builds(lambda custom: {"type": "custom", "custom": custom},
              st.fixed_dictionaries({"name": st.just("apply_patch")},
                                    optional={"description": _text, "format": st.just(_GRAMMAR)})))
_image = st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries(
    {"url": st.sampled_from(["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="])},
    optional={"detail": st.sampled_from(["auto", "low", "high"])})})
_user_part = st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": _text}), _image,
                       st.just({"type": "file", "file": {"filename": "a.pdf",
                                                         "file_data": "data:application/pdf;base64,JVBERi0="}}))
_user = st.fixed_dictionaries({"role": st.just("user"),
                               "content": st.one_of(_text, st.lists(_user_part, min_size=1, max_size=3))},
                              optional={"name": st.just("alice")})
_system = st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]), "content": st.one_of(
    _text, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _text}), min_size=1, max_size=2))})


@st.composite
def _turn(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An assistant turn: text, or tool calls answered by tool messages."""
    if draw(st.booleans()):
        return [{"role": "assistant", "content": draw(_text)}]
    ids = [f"call_{draw(st.integers(0, 10**6))}_{index}" for index in range(draw(st.integers(1, 3)))]
    calls = [{"id": call_id, "type": "function", "function": {"name": "f", "arguments": '{"a":"1"}'}}
             for call_id in ids]
    outputs = [{"role": "tool", "tool_call_id": call_id, "content": draw(st.one_of(_text, st.lists(
        st.fixed_dictionaries({"type": st.just("text"), "text": _text}), min_size=1, max_size=2)))}
        for call_id in ids]
    return [{"role": "assistant", "content": draw(st.one_of(st.none(), _text)), "tool_calls": calls}, *outputs]


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = draw(st.lists(_system, max_size=2)) + [draw(_user)]
    for _ in range(draw(st.integers(0, 3))):
        messages += draw(_turn()) + draw(st.lists(_system, max_size=1)) + [draw(_user)]
    body: dict[str, Any] = {"model": "gpt-5.5", "messages": messages}
    optional = {
        "tools": st.lists(_tool, max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required", {"type": "function", "function": {"name": "f"}}]),
        "parallel_tool_calls": st.booleans(), "max_tokens": st.integers(16, 4096),
        "max_completion_tokens": st.integers(16, 4096), "temperature": st.floats(0, 2), "top_p": st.floats(0, 1),
        "reasoning_effort": st.sampled_from(["low", "medium", "high"]), "store": st.booleans(),
        "response_format": st.one_of(st.just({"type": "text"}), st.just({"type": "json_object"}), st.builds(
            lambda s: {"type": "json_schema", "json_schema": {"name": "n", "schema": s, "strict": False}}, _schema)),
        "verbosity": st.sampled_from(["low", "medium", "high"]), "user": _text, "n": st.just(1),
        "metadata": st.dictionaries(st.sampled_from(["a", "b"]), _text, max_size=2), "stream": st.booleans(),
        "stream_options": st.just({"include_usage": True}), "service_tier": st.sampled_from(["auto", "default"]),
        "prompt_cache_key": _text, "logprobs": st.booleans(), "seed": st.none(), "stop": st.none(),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests(), st.booleans())
def test_generated_requests_convert_into_valid_responses_requests(body: dict[str, Any], stream: bool) -> None:
    before = orjson.dumps(body)
    out = TRANSLATOR.request(body, {}, Target("openai-responses", "gpt-5.5", stream=stream)).body
    assert orjson.dumps(body) == before
    check_responses_request(out)
    sim_responses.check(orjson.loads(orjson.dumps(out)), None, SIMULATOR)
    assert out["model"] == "gpt-5.5" and out["stream"] is stream
    calls = {item["call_id"] for item in out["input"] if item["type"] == "function_call"}
    outputs = {item["call_id"] for item in out["input"] if item["type"] == "function_call_output"}
    assert calls == outputs


def _events(*datas: dict[str, Any]) -> list[str]:
    return [f"event: {data['type']}\ndata: {orjson.dumps(data).decode()}\n\n" for data in datas]


def test_two_message_items_are_apart_in_stream_and_whole() -> None:
    message = {"type": "message", "role": "assistant", "content": []}
    final = {"id": "resp_m", "created_at": 3, "status": "completed", "output": [
        {**message, "id": "msg_a", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
        {**message, "id": "msg_b", "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}],
        "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}
    raw = _events({"type": "response.created", "response": {"id": "resp_m", "created_at": 3}},
                  {"type": "response.output_item.added", "item": {**message, "id": "msg_a"}},
                  {"type": "response.output_text.delta", "item_id": "msg_a", "delta": "Checking."},
                  {"type": "response.output_item.added", "item": {**message, "id": "msg_b"}},
                  {"type": "response.output_text.delta", "item_id": "msg_b", "delta": "Done."},
                  {"type": "response.completed", "response": final})
    chunks = check_chat_stream(_stream(STREAM, raw), include_usage=False)
    whole = TRANSLATOR.response(final, TARGET)
    assert assemble_chat(chunks)["content"] == whole["choices"][0]["message"]["content"] == "Checking.\n\nDone."


def test_refusal_stream_and_custom_tool_call() -> None:
    raw = _events({"type": "response.created", "response": {"id": "resp_r", "created_at": 3}},
                  {"type": "response.refusal.delta", "item_id": "msg_r", "delta": "No."},
                  {"type": "response.output_item.added", "item": {"id": "ctc_1", "type": "custom_tool_call",
                                                                  "call_id": "call_c", "name": "apply_patch",
                                                                  "input": ""}},
                  {"type": "response.custom_tool_call_input.delta", "item_id": "ctc_1", "delta": "*** Begin"},
                  {"type": "response.output_item.done", "item": {"id": "ctc_1", "type": "custom_tool_call",
                                                                 "call_id": "call_c", "name": "apply_patch",
                                                                 "input": "*** Begin Patch"}},
                  {"type": "response.completed", "response": {"id": "resp_r", "status": "completed", "output": []}})
    chunks = check_chat_stream(_stream(STREAM, raw), include_usage=False)
    assert chunks[1]["choices"][0]["delta"] == {"refusal": "No."}
    assert assemble_chat(chunks)["calls"] == [{"id": "call_c", "name": "apply_patch", "arguments": "*** Begin Patch"}]
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["type"] == "custom"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_small_token_limits_are_refused_clearly() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, TARGET)
    assert "max_tokens" in raised.value.message and "16" in raised.value.message


def test_logprobs_round_trip() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 2}
    out = TRANSLATOR.request(body, {}, TARGET).body
    assert out["include"] == ["message.output_text.logprobs"] and out["top_logprobs"] == 2
    entry = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": [
        {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
        {"token": "Hey", "logprob": -2.5, "bytes": [72, 101, 121]}]}
    answer = {"id": "resp_l", "created_at": 1, "status": "completed", "output": [
        {"type": "message", "id": "msg_l", "role": "assistant", "content": [
            {"type": "output_text", "text": "Hi", "annotations": [], "logprobs": [entry]}]}]}
    whole = TRANSLATOR.response(answer, TARGET)
    assert whole["choices"][0]["logprobs"] == {"content": [entry], "refusal": None}
    raw = _events({"type": "response.created", "response": {"id": "resp_l", "created_at": 1}},
                  {"type": "response.output_text.delta", "item_id": "msg_l", "delta": "Hi", "logprobs": [entry]},
                  {"type": "response.completed", "response": answer})
    chunks = check_chat_stream(_stream(STREAM, raw), include_usage=False)
    assert chunks[1]["choices"][0]["logprobs"] == {"content": [entry], "refusal": None}
    plain = TRANSLATOR.response(orjson.loads(response_text("openai-responses", "nonstream.yaml")), TARGET)
    assert plain["choices"][0]["logprobs"] is None  # the API's empty logprobs lists mean none were asked
