"""Gemini client (Gemini CLI, google-genai) ⇄ OpenAI chat upstream: golden files, recordings, generated
requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.gemini_to_openai import TRANSLATOR, ChatToGeminiStream
from switchboard_simulator.vendors import openai as openai_vendor

from .gemini_support import (
    cases,
    check_gemini_stream,
    events_of,
    golden,
    request_body,
    response_text,
)

MODULE = "gemini_to_openai"
WHOLE = Target(platform="openai", model="gpt-5-mini", stream=False)
STREAM = Target(platform="openai", model="gpt-5-mini", stream=True)
_ROLES = {"system", "developer", "user", "assistant", "tool"}


def chat_problem(body: dict[str, Any]) -> str | None:
    """OpenAI chat's request rules the simulator's shallow check leaves out: tool messages answer the calls
    of the assistant message right before them, each call once; tool_choice names a declared function."""
    try:
        openai_vendor.validate(body, None, lambda model: True)
    except openai_vendor.OpenAIError as error:
        return str(error)
    if "max_tokens" in body:
        return "max_tokens instead of max_completion_tokens"
    open_calls: set[str] = set()
    for message in body["messages"]:
        if message["role"] not in _ROLES:
            return f"bad role {message['role']}"
        if message["role"] == "tool":
            if message["tool_call_id"] not in open_calls:
                return f"tool message {message['tool_call_id']} answers no open call"
            open_calls.discard(message["tool_call_id"])
            if not isinstance(message["content"], str):
                return "tool content must be a string"
            continue
        if open_calls:
            return f"calls {open_calls} left unanswered before a {message['role']} message"
        if message["role"] == "assistant":
            calls = message.get("tool_calls") or []
            open_calls = {call["id"] for call in calls}
            if len(open_calls) != len(calls):
                return "duplicate tool call ids"
            for call in calls:
                if not isinstance(orjson.loads(call["function"]["arguments"]), dict):
                    return "arguments must be a JSON object"
            if message.get("content") is None and not calls:
                return "empty assistant message"
    names = {tool["function"]["name"] for tool in body.get("tools", ())}
    choice = body.get("tool_choice")
    if choice is not None and not names:
        return "tool_choice without tools"
    if isinstance(choice, dict) and choice.get("type") == "function" and choice["function"]["name"] not in names:
        return "tool_choice names an undeclared function"
    if body.get("stream") and body.get("stream_options") != {"include_usage": True}:
        return "stream without include_usage"
    return None


def _run(events: list[SSEEvent]) -> list[SSEEvent]:
    converter = ChatToGeminiStream(STREAM)
    out: list[SSEEvent] = []
    for event in events:
        out += converter.feed(event)
    out += converter.finish()
    assert converter.finish() == []
    return out


def _chat_event(payload: Any) -> SSEEvent:
    raw = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return SSEEvent(b"data: " + raw + b"\n\n")


@pytest.mark.parametrize("case", cases(MODULE, "request"))
def test_golden_requests(case: str) -> None:
    case_data = golden(MODULE, case)
    target = Target(platform="openai", model=case_data["target"]["model"], stream=case_data["target"]["stream"])
    conversion = TRANSLATOR.request(case_data["client"], case_data["headers"], target)
    assert conversion.body == case_data["upstream"]
    assert conversion.headers == case_data["upstream_headers"] == {}
    assert chat_problem(conversion.body) is None


@pytest.mark.parametrize("case", cases(MODULE, "response"))
def test_golden_responses(case: str) -> None:
    case_data = golden(MODULE, case)
    assert TRANSLATOR.response(case_data["upstream"], WHOLE) == case_data["client"]


@pytest.mark.parametrize("case", cases(MODULE, "stream"))
def test_golden_streams(case: str) -> None:
    case_data = golden(MODULE, case)
    out = _run([_chat_event(chunk) for chunk in case_data["upstream"]])
    assert [orjson.loads(event.data) for event in out] == case_data["client"]
    last = case_data["upstream"][-1]
    if not (isinstance(last, dict) and "error" in last):
        check_gemini_stream(out)


def test_request_does_not_modify_or_copy_the_client_body() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": schema}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema}}
    before = orjson.dumps(body)
    out = TRANSLATOR.request(body, {}, WHOLE).body
    assert orjson.dumps(body) == before
    assert out["tools"][0]["function"]["parameters"] is schema
    assert out["response_format"]["json_schema"]["schema"] is schema


@pytest.mark.parametrize(("extra", "field"), [
    ({"cachedContent": "cachedContents/abc"}, "cachedContent"),
    ({"tools": [{"googleSearch": {}}]}, "googleSearch"),
    ({"tools": [{"codeExecution": {}}]}, "codeExecution"),
    ({"generationConfig": {"responseLogprobs": True}}, "responseLogprobs"),
    ({"generationConfig": {"speechConfig": {}}}, "speechConfig"),
    ({"generationConfig": {"responseModalities": ["AUDIO"]}}, "responseModalities"),
    ({"generationConfig": {"responseMimeType": "text/x.enum"}}, "responseMimeType"),
    ({"generationConfig": {"thinkingConfig": {"thinkingLevel": "extreme"}}}, "thinkingLevel"),
    ({"labels": {"a": "b"}}, "labels"),
    ({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
     "functionResponse"),
    ({"contents": [{"role": "user", "parts": [
        {"fileData": {"fileUri": "gs://b/x.pdf", "mimeType": "application/pdf"}}]}]}, "fileData"),
    ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "video/mp4", "data": "AA=="}}]}]},
     "mimeType"),
    ({"contents": [{"role": "model", "parts": [{"executableCode": {"code": "1"}}]}]}, "executableCode"),
    ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "role"),
])
def test_refusals_name_the_field(extra: dict[str, Any], field: str) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **extra}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, WHOLE)
    assert field in raised.value.message


def test_thinking_and_tool_modes() -> None:
    def body(generation: dict[str, Any], mode: str, names: list[str] | None = None) -> dict[str, Any]:
        calling: dict[str, Any] = {"mode": mode}
        if names:
            calling["allowedFunctionNames"] = names
        return TRANSLATOR.request({
            "contents": [{"parts": [{"text": "x"}]}], "generationConfig": generation,
            "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}],
            "toolConfig": {"functionCallingConfig": calling}}, {}, WHOLE).body

    assert body({"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}}, "AUTO").get(
        "reasoning_effort") is None
    assert body({"thinkingConfig": {"thinkingBudget": 0}}, "NONE")["reasoning_effort"] == "minimal"
    assert body({"thinkingConfig": {"thinkingBudget": 30000}}, "ANY")["reasoning_effort"] == "high"
    older = Target(platform="azure-openai", model="gpt-4o", stream=False)
    request = {"contents": [{"parts": [{"text": "x"}]}],
               "generationConfig": {"temperature": 0.5, "thinkingConfig": {"thinkingBudget": 1000}}}
    converted = TRANSLATOR.request(request, {}, older).body
    assert converted["temperature"] == 0.5 and "reasoning_effort" not in converted
    assert "temperature" not in TRANSLATOR.request(request, {}, WHOLE).body
    assert body({}, "NONE")["tool_choice"] == "none"
    assert body({}, "ANY")["tool_choice"] == "required"
    assert body({}, "AUTO", ["a", "b"])["tool_choice"] == {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "a"}},
                                  {"type": "function", "function": {"name": "b"}}]}}


# --- recordings -----------------------------------------------------------------------------------------


def test_recorded_gemini_requests_become_valid_chat_requests() -> None:
    """The google-genai SDK's recorded requests (a function call round trip) as chat requests."""
    for name, interaction in (("generateContent.yaml", 0), ("generateContent-function-call.yaml", 0),
                              ("generateContent-function-call.yaml", 1),
                              ("streamGenerateContent-sse-thinking.yaml", 0)):
        body = request_body("gemini", name, interaction)
        out = TRANSLATOR.request(body, {}, WHOLE).body
        assert chat_problem(out) is None, name
    round_trip = TRANSLATOR.request(request_body("gemini", "generateContent-function-call.yaml", 1), {}, WHOLE).body
    assert [m["role"] for m in round_trip["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["content"] for m in round_trip["messages"][3:]] == ["Welcome to Moria!", "Life before Death"]
    assert round_trip["tools"][0]["function"]["parameters"]["properties"]["password"]["type"] == "string"


@pytest.mark.parametrize("name", ["nonstream.yaml", "nonstream-tool-calls.yaml"])
def test_recorded_answers_become_gemini_answers(name: str) -> None:
    upstream = orjson.loads(response_text("openai-chat", name))
    answer = TRANSLATOR.response(upstream, WHOLE)
    reference = orjson.loads(response_text("gemini", "generateContent-function-call.yaml"))
    assert set(answer) == set(reference) - {"promptFeedback"}
    assert set(answer["candidates"][0]) <= set(reference["candidates"][0])
    assert set(answer["usageMetadata"]) <= set(reference["usageMetadata"]) | {"cachedContentTokenCount"}
    usage = upstream["usage"]
    assert answer["usageMetadata"]["promptTokenCount"] == usage["prompt_tokens"]
    assert answer["usageMetadata"]["totalTokenCount"] == usage["total_tokens"]
    if "tool" in name:
        calls = [part["functionCall"] for part in answer["candidates"][0]["content"]["parts"]]
        recorded = upstream["choices"][0]["message"]["tool_calls"]
        assert [call["id"] for call in calls] == [call["id"] for call in recorded]
        assert answer["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("name", ["stream-include-usage.yaml", "stream-tool-calls.yaml"])
def test_recorded_streams_become_gemini_streams(name: str) -> None:
    out = _run(events_of(response_text("openai-chat", name)))
    chunks = check_gemini_stream(out)
    recorded = [orjson.loads(e.data) for e in events_of(response_text("gemini", "streamGenerateContent-sse.yaml"))]
    assert set(chunks[-1]) == set(recorded[-1])
    assert set(chunks[-1]["candidates"][0]) <= set(recorded[-1]["candidates"][0]) | {"finishMessage"}
    if "tool" in name:
        parts = chunks[-1]["candidates"][0]["content"]["parts"]
        assert parts and all(isinstance(part["functionCall"]["args"], dict) for part in parts)


def test_round_trip_pairs_calls_and_responses() -> None:
    """An OpenAI answer with calls → Gemini client → its functionResponses → tool messages with those ids."""
    upstream = orjson.loads(response_text("openai-chat", "nonstream-tool-calls.yaml"))
    answer = TRANSLATOR.response(upstream, WHOLE)
    model_turn = answer["candidates"][0]["content"]
    responses = [{"functionResponse": {"id": part["functionCall"]["id"], "name": part["functionCall"]["name"],
                                       "response": {"output": "sunny"}}} for part in model_turn["parts"]]
    body = {"contents": [{"role": "user", "parts": [{"text": "Weather?"}]}, model_turn,
                         {"role": "user", "parts": list(reversed(responses))}]}
    out = TRANSLATOR.request(body, {}, STREAM).body
    assert chat_problem(out) is None
    ids = [call["id"] for call in upstream["choices"][0]["message"]["tool_calls"]]
    assert [m["tool_call_id"] for m in out["messages"] if m["role"] == "tool"] == list(reversed(ids))


# --- generated requests ---------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20)
_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
_user_part = st.one_of(
    st.builds(lambda t: {"text": t}, _text),
    st.builds(lambda d, m: {"inlineData": {"mimeType": m, "data": d}},
              st.from_regex(r"[A-Za-z0-9+/]{4,12}", fullmatch=True),
              st.sampled_from(["image/png", "image/jpeg", "audio/wav", "application/pdf"])),
    st.builds(lambda n: {"fileData": {"fileUri": f"https://e.test/{n}.png", "mimeType": "image/png"}}, _names),
)
_google_schema = st.fixed_dictionaries({"type": st.just("OBJECT"), "properties": st.dictionaries(
    _names, st.sampled_from([{"type": "STRING"}, {"type": "INTEGER", "nullable": True},
                             {"type": "ARRAY", "items": {"type": "STRING"}}]), max_size=3)})


@st.composite
def gemini_requests(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, max_size=3, unique=True))
    contents: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        contents.append({"role": draw(st.sampled_from(["user", None])) or "user",
                         "parts": draw(st.lists(_user_part, min_size=1, max_size=3))})
        parts: list[dict[str, Any]] = []
        if draw(st.booleans()):
            parts.append({"text": draw(_text), "thought": True})
        if draw(st.booleans()):
            parts.append({"text": draw(_text)})
        calls = [draw(st.sampled_from(names)) for _ in range(draw(st.integers(0, 2) if names else st.just(0)))]
        with_ids = draw(st.booleans())
        parts += [{"functionCall": {"name": name, "args": draw(st.dictionaries(_names, _text, max_size=2)),
                                    **({"id": f"id{len(contents)}_{n}"} if with_ids else {})},
                   **({"thoughtSignature": "c2ln"} if n == 0 else {})} for n, name in enumerate(calls)]
        if not parts:
            continue
        contents.append({"role": "model", "parts": parts})
        if calls:
            answers = [{"functionResponse": {"name": name, "response": {"output": draw(_text)},
                                             **({"id": f"id{len(contents) - 1}_{n}"} if with_ids else {})}}
                       for n, name in enumerate(calls)]
            contents.append({"role": "user", "parts": draw(st.permutations(answers)) if with_ids else answers})
    body: dict[str, Any] = {"contents": contents}
    if draw(st.booleans()):
        body["systemInstruction"] = {"parts": [{"text": draw(_text)}]}
    if names:
        body["tools"] = [{"functionDeclarations": [
            {"name": name, "description": draw(_text),
             **({"parameters": draw(_google_schema)} if draw(st.booleans()) else
                {"parametersJsonSchema": {"type": "object", "properties": {}}})} for name in names]}]
        body["toolConfig"] = {"functionCallingConfig": draw(st.one_of(
            st.builds(lambda m: {"mode": m}, st.sampled_from(["AUTO", "ANY", "NONE"])),
            st.builds(lambda n: {"mode": "ANY", "allowedFunctionNames": [n]}, st.sampled_from(names))))}
    generation: dict[str, Any] = {}
    for name, strategy in {"temperature": st.floats(0, 2), "topP": st.floats(0, 1), "topK": st.integers(1, 40),
                           "maxOutputTokens": st.integers(1, 60000), "stopSequences": st.lists(_text, max_size=3),
                           "thinkingConfig": st.builds(lambda b, i: {"thinkingBudget": b, "includeThoughts": i},
                                                       st.integers(-1, 30000), st.booleans()),
                           "responseMimeType": st.sampled_from(["text/plain", "application/json"])}.items():
        if draw(st.booleans()):
            generation[name] = draw(strategy)
    if generation:
        body["generationConfig"] = generation
    if draw(st.booleans()):
        body["safetySettings"] = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
    return body


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(gemini_requests(), st.booleans())
def test_generated_requests_convert_to_valid_chat_requests(body: dict[str, Any], stream: bool) -> None:
    before = orjson.dumps(body)
    conversion = TRANSLATOR.request(body, {"x-goog-api-key": "k"}, STREAM if stream else WHOLE)
    assert chat_problem(conversion.body) is None
    assert conversion.headers == {}
    assert orjson.dumps(body) == before


_delta = st.one_of(
    st.builds(lambda t: {"content": t}, _text),
    st.builds(lambda t: {"reasoning_content": t}, _text),
    st.builds(lambda i, n: {"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                            "function": {"name": n, "arguments": ""}}]}, st.integers(0, 2), _names),
    st.builds(lambda i, a: {"tool_calls": [{"index": i, "function": {"arguments": a}}]}, st.integers(0, 2),
              st.sampled_from(["{", "\"a\":", "1", "}", ""])),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_delta, max_size=8), st.sampled_from(["stop", "length", "tool_calls", "content_filter"]),
       st.booleans(), st.booleans())
def test_generated_chat_streams_become_valid_gemini_streams(deltas: list[dict[str, Any]], reason: str,
                                                            usage: bool, done: bool) -> None:
    base = {"id": "chatcmpl-g", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks: list[Any] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                               "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    if usage:
        totals = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
        chunks.append({**base, "choices": [], "usage": totals})
    if done:
        chunks.append("[DONE]")
    chunks_out = check_gemini_stream(_run([_chat_event(chunk) for chunk in chunks]))
    texts = "".join(part.get("text", "") for chunk in chunks_out for part in chunk["candidates"][0]["content"]["parts"]
                    if not part.get("thought"))
    assert texts == "".join(delta.get("content", "") for delta in deltas)


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status", "google"), [
    ("error-429-rate_limit_exceeded.yaml", 429, "RESOURCE_EXHAUSTED"),
    ("error-401-invalid_api_key.yaml", 401, "UNAUTHENTICATED"),
    ("error-404-model_not_found.yaml", 404, "NOT_FOUND")])
def test_errors_become_gemini_errors(name: str, status: int, google: str) -> None:
    payload = response_text("openai-chat", name).encode()
    body = orjson.loads(TRANSLATOR.error(status, payload))
    assert body["error"]["code"] == status and body["error"]["status"] == google
    assert body["error"]["message"] == orjson.loads(payload)["error"]["message"]
    assert TRANSLATOR.client is ClientFormat.GEMINI and TRANSLATOR.upstream is ClientFormat.OPENAI
