"""OpenAI chat client ⇄ Gemini upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import seal
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.openai_to_gemini import TRANSLATOR, GeminiToChatStream

from .gemini_support import (
    as_json,
    cases,
    check_chat_stream,
    data,
    events_of,
    gemini_problem,
    golden,
    request_body,
    response_text,
)

MODULE = "openai_to_gemini"
WHOLE = Target(platform="gemini", model="gemini-2.5-flash", stream=False)
STREAM = Target(platform="gemini", model="gemini-2.5-flash", stream=True)


def _stable(values: list[Any]) -> list[Any]:
    for value in values:
        if isinstance(value, dict) and "created" in value:
            value["created"] = 0
    return values


@pytest.mark.parametrize("case", cases(MODULE, "request"))
def test_golden_requests(case: str) -> None:
    case_data = golden(MODULE, case)
    target = STREAM if case_data["target"]["stream"] else WHOLE
    conversion = TRANSLATOR.request(case_data["client"], case_data["headers"], target)
    assert conversion.body == case_data["upstream"]
    assert conversion.headers == case_data["upstream_headers"]
    assert gemini_problem(conversion.body) is None


@pytest.mark.parametrize("case", cases(MODULE, "response"))
def test_golden_responses(case: str) -> None:
    case_data = golden(MODULE, case)
    answer = TRANSLATOR.response(case_data["upstream"], WHOLE)
    answer["created"] = 0
    assert answer == case_data["client"]


@pytest.mark.parametrize("case", cases(MODULE, "stream"))
def test_golden_streams(case: str) -> None:
    case_data = golden(MODULE, case)
    converter = GeminiToChatStream(STREAM, include_usage=case_data["include_usage"])
    out: list[SSEEvent] = []
    for chunk in case_data["upstream"]:
        out += converter.feed(data(chunk))
    out += converter.finish()
    assert _stable(as_json(out)) == case_data["client"]
    if "error" not in case_data["upstream"][-1]:
        check_chat_stream(out, usage=case_data["include_usage"])
    assert converter.finish() == []


def test_request_does_not_modify_or_copy_the_client_body() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    image = "data:image/png;base64," + "A" * 1000
    part = {"type": "image_url", "image_url": {"url": image}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    before = orjson.dumps(body)
    out = TRANSLATOR.request(body, {}, WHOLE).body
    assert orjson.dumps(body) == before
    assert out["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] is schema
    assert out["generationConfig"]["responseJsonSchema"] is schema
    assert out["contents"][0]["parts"][0]["inlineData"]["data"] == "A" * 1000


@pytest.mark.parametrize(("body", "field"), [
    ({"logprobs": True}, "logprobs"),
    ({"logit_bias": {"1": 2}}, "logit_bias"),
    ({"audio": {"voice": "x"}}, "audio"),
    ({"functions": []}, "functions"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"service_tier": "flex"}, "service_tier"),
    ({"reasoning_effort": "huge"}, "reasoning_effort"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "tool_call_id"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y"}}]}]},
     "image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]}, "file"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "function"),
])
def test_refusals_name_the_field(body: dict[str, Any], field: str) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(request, {}, WHOLE)
    assert field in raised.value.message


def test_foreign_or_unsealed_signatures_are_dropped() -> None:
    calls = [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"},
              "extra_content": {"google": {"thought_signature": signature}}}
             for signature in (seal.sealed("claude-console", "x"), "raw-token", seal.sealed("gemini", "mine"))]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": calls}]}
    parts = TRANSLATOR.request(body, {}, WHOLE).body["contents"][1]["parts"]
    assert [part.get("thoughtSignature") for part in parts] == [None, None, "mine"]


# --- recordings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["generateContent.yaml", "generateContent-function-call.yaml"])
def test_recorded_answers_become_chat_completions(name: str) -> None:
    upstream = orjson.loads(response_text("gemini", name))
    answer = TRANSLATOR.response(upstream, WHOLE)
    reference = orjson.loads(response_text("openai-chat", "nonstream-tool-calls.yaml"))
    assert set(reference) - {"system_fingerprint"} <= set(answer)
    assert set(reference["choices"][0]) == set(answer["choices"][0])
    assert set(reference["usage"]) == set(answer["usage"])
    assert set(reference["usage"]["completion_tokens_details"]) == set(answer["usage"]["completion_tokens_details"])
    choice = answer["choices"][0]
    metadata = upstream["usageMetadata"]
    assert answer["usage"]["prompt_tokens"] == metadata["promptTokenCount"]
    assert answer["usage"]["completion_tokens"] == metadata["candidatesTokenCount"] + metadata.get(
        "thoughtsTokenCount", 0)
    if "function-call" in name:
        assert choice["finish_reason"] == "tool_calls"
        assert [orjson.loads(call["function"]["arguments"]) for call in choice["message"]["tool_calls"]] == [
            {"password": "mellon"}, {"password": "radiance"}]
        signature = choice["message"]["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
        original = upstream["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
        assert seal.opened(signature, "gemini") == original
    else:
        assert choice["finish_reason"] == "stop" and "4242" in choice["message"]["content"]


@pytest.mark.parametrize("name", ["streamGenerateContent-sse.yaml", "streamGenerateContent-sse-thinking.yaml",
                                  "streamGenerateContent-sse-function-call.yaml",
                                  "vertex-streamGenerateContent-sse.yaml"])
@pytest.mark.parametrize("usage", [True, False])
def test_recorded_streams_become_chat_streams(name: str, usage: bool) -> None:
    converter = GeminiToChatStream(STREAM, include_usage=usage)
    out: list[SSEEvent] = []
    for event in events_of(response_text("gemini", name)):
        out += converter.feed(event)
    out += converter.finish()
    chunks = check_chat_stream(out, usage=usage)
    recorded = events_of(response_text("openai-chat", "stream-include-usage.yaml"))
    reference = [orjson.loads(event.data) for event in recorded if event.data != b"[DONE]"]
    assert set(reference[0]) - {"system_fingerprint", "service_tier", "usage", "obfuscation"} <= set(chunks[0])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_recorded_round_trip_is_accepted_by_the_simulator() -> None:
    """The model's function calls (a recorded answer) then the client's tool results, translated back."""
    upstream = orjson.loads(response_text("gemini", "generateContent-function-call.yaml"))
    answer = TRANSLATOR.response(upstream, WHOLE)
    message = answer["choices"][0]["message"]
    results = [{"role": "tool", "tool_call_id": call["id"], "content": f"secret {n}"}
               for n, call in enumerate(message["tool_calls"])]
    tools = [{"type": "function", "function": {"name": "secret_retrieval_tool", "description": "A tool",
                                               "parameters": {"type": "object",
                                                              "properties": {"password": {"type": "string"}}}}}]
    body = {"model": "gemini-2.5-flash", "tools": tools,
            "messages": [{"role": "user", "content": "Retrieve the secrets: mellon,radiance"}, message, *results]}
    out = TRANSLATOR.request(body, {}, WHOLE).body
    assert gemini_problem(out) is None
    recorded = request_body("gemini", "generateContent-function-call.yaml", 1)["contents"][1]["parts"]
    sent = out["contents"][1]["parts"]
    assert [part["functionCall"] for part in sent] == [part["functionCall"] for part in recorded]
    assert sent[0]["thoughtSignature"] == upstream["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert [part["functionResponse"]["name"] for part in out["contents"][2]["parts"]] == ["secret_retrieval_tool"] * 2


# --- generated requests ---------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20)
_schema = st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
    st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.sampled_from([{"type": "string"}, {"type": "integer"}]),
    max_size=3)}, optional={"additionalProperties": st.booleans(), "$schema": st.just("https://json-schema.org/draft/2020-12/schema")})
_tool_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
_user_part = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _text),
    st.builds(lambda d: {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{d}"}},
              st.from_regex(r"[A-Za-z0-9+/]{4,16}", fullmatch=True)),
    st.builds(lambda n: {"type": "image_url", "image_url": {"url": f"https://example.com/{n}.png", "detail": "low"}},
              _tool_names),
)


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_tool_names, min_size=0, max_size=3, unique=True))
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(_text)})
    for turn in range(draw(st.integers(1, 3))):
        content = draw(st.one_of(_text, st.lists(_user_part, min_size=1, max_size=3)))
        messages.append({"role": "user", "content": content})
        if names and draw(st.booleans()):
            calls = [{"id": f"call_{turn}_{n}", "type": "function",
                      "function": {"name": draw(st.sampled_from(names)), "arguments": orjson.dumps(
                          draw(st.dictionaries(_tool_names, _text, max_size=2))).decode()}}
                     for n in range(draw(st.integers(1, 2)))]
            messages.append({"role": "assistant", "content": draw(st.one_of(st.none(), _text)), "tool_calls": calls})
            messages += [{"role": "tool", "tool_call_id": call["id"], "content": draw(_text)} for call in calls]
        elif draw(st.booleans()):
            messages.append({"role": "assistant", "content": draw(_text)})
    body: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": messages}
    if names:
        body["tools"] = [{"type": "function", "function": {"name": name, "description": draw(_text),
                                                           "parameters": draw(_schema)}} for name in names]
        body["tool_choice"] = draw(st.one_of(st.sampled_from(["auto", "none", "required"]), st.builds(
            lambda n: {"type": "function", "function": {"name": n}}, st.sampled_from(names))))
    optional = {"temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "max_tokens": st.integers(1, 10000),
                "stop": st.one_of(_text, st.lists(_text, max_size=3)), "seed": st.integers(0, 100),
                "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high"]),
                "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
                "n": st.integers(1, 3), "user": _text, "stream": st.booleans()}
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(chat_requests())
def test_generated_requests_convert_to_valid_gemini_requests(body: dict[str, Any]) -> None:
    before = orjson.dumps(body)
    conversion = TRANSLATOR.request(body, {"authorization": "Bearer x"}, STREAM if body.get("stream") else WHOLE)
    assert gemini_problem(conversion.body) is None
    assert conversion.headers == {}
    assert orjson.dumps(body) == before


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status"), [("error-429-RESOURCE_EXHAUSTED.yaml", 429),
                                              ("error-404-NOT_FOUND.yaml", 404)])
def test_errors_become_openai_errors(name: str, status: int) -> None:
    payload = response_text("gemini", name).encode()
    message = orjson.loads(payload)["error"]["message"]
    body = orjson.loads(TRANSLATOR.error(status, payload))
    assert body["error"]["message"] == message
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert TRANSLATOR.client is ClientFormat.OPENAI and TRANSLATOR.upstream is ClientFormat.GEMINI


def test_gemini_3_function_calls_without_a_signature_get_googles_skip_token() -> None:
    calls = [{"id": f"c{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for n in range(2)]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": calls},
                                       *({"role": "tool", "tool_call_id": f"c{n}", "content": "ok"} for n in range(2))]}
    gemini_3 = Target(platform="gemini", model="gemini-3-pro-preview", stream=False)
    parts = TRANSLATOR.request(body, {}, gemini_3).body["contents"][1]["parts"]
    assert [part.get("thoughtSignature") for part in parts] == ["skip_thought_signature_validator", None]
    earlier = TRANSLATOR.request(body, {}, WHOLE).body["contents"][1]["parts"]
    assert all("thoughtSignature" not in part for part in earlier)
    calls[0] = {**calls[0], "extra_content": {"google": {"thought_signature": seal.sealed("gemini", "real")}}}
    parts = TRANSLATOR.request(body, {}, gemini_3).body["contents"][1]["parts"]
    assert [part.get("thoughtSignature") for part in parts] == ["real", None]


def test_several_candidates_stream_as_several_choices() -> None:
    def chunk(texts: list[str], finish: list[bool]) -> SSEEvent:
        return data({"responseId": "n2", "candidates": [
            {"index": i, "content": {"role": "model", "parts": [{"text": text}]},
             **({"finishReason": "STOP"} if done else {})}
            for i, (text, done) in enumerate(zip(texts, finish, strict=True))],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}})

    converter = GeminiToChatStream(STREAM, include_usage=True)
    out = converter.feed(chunk(["a"], [False]))
    out += converter.feed(chunk(["b", "x"], [True, False]))
    assert out[-1].data != b"[DONE]"
    out += converter.feed(chunk(["", "y"], [False, True]))
    assert out[-1].data == b"[DONE]" and converter.finish() == []
    chunks = check_chat_stream(out, usage=True)
    text: dict[int, str] = {}
    for value in chunks:
        for choice in value["choices"]:
            text[choice["index"]] = text.get(choice["index"], "") + (choice["delta"].get("content") or "")
    assert text == {0: "ab", 1: "xy"}
