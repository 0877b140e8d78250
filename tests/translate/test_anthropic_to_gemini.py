"""Anthropic client (Claude Code) ⇄ Gemini upstream: golden files, recordings, generated requests, errors."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import seal
from switchboard_edge.translate.anthropic_to_gemini import TRANSLATOR, GeminiToAnthropicStream
from switchboard_edge.translate.base import Target

from .gemini_support import (
    cases,
    check_anthropic_stream,
    data,
    events_of,
    gemini_problem,
    golden,
    request_body,
    response_text,
)

MODULE = "anthropic_to_gemini"
WHOLE = Target(platform="gemini", model="gemini-2.5-flash", stream=False)
STREAM = Target(platform="gemini", model="gemini-2.5-flash", stream=True, input_estimate=50)


def _run(chunks: list[SSEEvent]) -> list[SSEEvent]:
    converter = GeminiToAnthropicStream(STREAM)
    out: list[SSEEvent] = []
    for chunk in chunks:
        out += converter.feed(chunk)
    out += converter.finish()
    assert converter.finish() == []
    return out


@pytest.mark.parametrize("case", cases(MODULE, "request"))
def test_golden_requests(case: str) -> None:
    case_data = golden(MODULE, case)
    target = STREAM if case_data["target"]["stream"] else WHOLE
    conversion = TRANSLATOR.request(case_data["client"], case_data["headers"], target)
    assert conversion.body == case_data["upstream"]
    assert conversion.headers == case_data["upstream_headers"] == {}
    assert gemini_problem(conversion.body) is None


@pytest.mark.parametrize("case", cases(MODULE, "response"))
def test_golden_responses(case: str) -> None:
    case_data = golden(MODULE, case)
    assert TRANSLATOR.response(case_data["upstream"], WHOLE) == case_data["client"]


@pytest.mark.parametrize("case", cases(MODULE, "stream"))
def test_golden_streams(case: str) -> None:
    case_data = golden(MODULE, case)
    out = _run([data(chunk) for chunk in case_data["upstream"]])
    assert [{"event": event.name, "data": orjson.loads(event.data)} for event in out] == case_data["client"]
    if "error" not in case_data["upstream"][-1]:
        check_anthropic_stream(out)


def test_signatures_round_trip_onto_the_part_they_came_with() -> None:
    """A Gemini answer → Claude Code's message → back: each thoughtSignature lands on its own part again."""
    upstream = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "hmm", "thought": True}, {"text": "Let me look.", "thoughtSignature": "AAA"},
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "BBB"},
        {"functionCall": {"name": "f", "args": {"a": 2}}}]}, "finishReason": "STOP"}], "responseId": "r"}
    message = TRANSLATOR.response(upstream, WHOLE)
    results = [{"type": "tool_result", "tool_use_id": block["id"], "content": "ok"}
               for block in message["content"] if block["type"] == "tool_use"]
    body = {"model": "m", "max_tokens": 100, "messages": [
        {"role": "user", "content": "go"}, {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": results}]}
    parts = TRANSLATOR.request(body, {}, WHOLE).body["contents"][1]["parts"]
    assert parts == [{"text": "Let me look.", "thoughtSignature": "AAA"},
                     {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "BBB"},
                     {"functionCall": {"name": "f", "args": {"a": 2}}}]
    # Streamed, the same answer gives the same blocks.
    streamed = _run([data(upstream)])
    payloads = check_anthropic_stream(streamed)
    starts = [p["content_block"]["type"] for p in payloads if p["type"] == "content_block_start"]
    assert starts == [block["type"] for block in message["content"]]


def test_other_platforms_signatures_are_dropped() -> None:
    blocks = [{"type": "thinking", "thinking": "x", "signature": seal.sealed("vertex", "V")},
              {"type": "text", "text": "a"},
              {"type": "thinking", "thinking": "y", "signature": "native-anthropic-signature"},
              {"type": "redacted_thinking", "data": "zzz"},
              {"type": "text", "text": "b"}]
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "q"},
                                                          {"role": "assistant", "content": blocks}]}
    assert TRANSLATOR.request(body, {}, WHOLE).body["contents"][1]["parts"] == [{"text": "a"}, {"text": "b"}]


def test_request_does_not_modify_or_copy_the_client_body() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 1000}}
    body = {"model": "m", "max_tokens": 5, "tools": [{"name": "f", "input_schema": schema}],
            "messages": [{"role": "user", "content": [image]}]}
    before = orjson.dumps(body)
    out = TRANSLATOR.request(body, {}, WHOLE).body
    assert orjson.dumps(body) == before
    assert out["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] is schema


@pytest.mark.parametrize(("extra", "field"), [
    ({"mcp_servers": [{"type": "url"}]}, "mcp_servers"),
    ({"container": "c1"}, "container"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"thinking": {"type": "sometimes"}}, "thinking"),
    ({"output_config": {"task_budget": 3}}, "output_config.task_budget"),
    ({"tool_choice": {"type": "any"}}, "tool_choice"),
    ({"whatever": 1}, "whatever"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope"}]}]}, "tool_use_id"),
    ({"messages": [{"role": "user", "content": [{"type": "search_result", "source": "x"}]}]}, "search_result"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x.test/img"}}]}]}, "source.url"),
])
def test_refusals_name_the_field(extra: dict[str, Any], field: str) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(InvalidRequest) as raised:
        TRANSLATOR.request(body, {}, WHOLE)
    assert field in raised.value.message


# --- recordings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["streamGenerateContent-sse.yaml", "streamGenerateContent-sse-thinking.yaml",
                                  "streamGenerateContent-sse-function-call.yaml",
                                  "vertex-streamGenerateContent-sse.yaml"])
def test_recorded_streams_meet_claude_codes_rules(name: str) -> None:
    out = _run(events_of(response_text("gemini", name)))
    payloads = check_anthropic_stream(out)
    text = response_text("anthropic", "messages-stream-thinking-tool-use.yaml")
    recorded = [orjson.loads(e.data) for e in events_of(text) if e.name and e.name != "ping"]
    newer = {"stop_details", "container", "context_management"}
    assert set(recorded[0]["message"]) - newer <= set(payloads[0]["message"])
    assert set(recorded[-2]["delta"]) - newer <= set(payloads[-2]["delta"])
    if "function-call" in name:
        tools = [p["content_block"]["name"] for p in payloads if p["type"] == "content_block_start"
                 and p["content_block"]["type"] == "tool_use"]
        assert tools == ["secret_retrieval_tool"] * 2 and payloads[-2]["delta"]["stop_reason"] == "tool_use"
    if "thinking" in name:
        assert payloads[1]["content_block"]["type"] == "thinking"
        assert payloads[0]["message"]["usage"]["input_tokens"] == 30


@pytest.mark.parametrize("name", ["generateContent.yaml", "generateContent-function-call.yaml"])
def test_recorded_answers_become_messages(name: str) -> None:
    upstream = orjson.loads(response_text("gemini", name))
    message = TRANSLATOR.response(upstream, WHOLE)
    reference = orjson.loads(response_text("anthropic", "messages-nonstream-tool-use.yaml"))
    assert set(reference) - {"container", "context_management"} <= set(message)
    assert set(message["usage"]) <= set(reference["usage"]) | {"cache_creation_input_tokens"}
    assert message["id"].startswith("msg_")
    if "function-call" in name:
        assert message["stop_reason"] == "tool_use"
        assert [b["type"] for b in message["content"]] == ["thinking", "tool_use", "tool_use"]


def test_recorded_round_trip_is_accepted_by_the_simulator() -> None:
    upstream = orjson.loads(response_text("gemini", "generateContent-function-call.yaml"))
    message = TRANSLATOR.response(upstream, WHOLE)
    results = [{"type": "tool_result", "tool_use_id": block["id"], "content": [{"type": "text", "text": "s"}]}
               for block in message["content"] if block["type"] == "tool_use"]
    body = {"model": "m", "max_tokens": 1000, "system": [{"type": "text", "text": "Use parallel tool calling."}],
            "tools": [{"name": "secret_retrieval_tool", "description": "A tool",
                       "input_schema": {"type": "object", "properties": {"password": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "Retrieve the secrets: mellon,radiance"},
                         {"role": "assistant", "content": message["content"]},
                         {"role": "user", "content": results}]}
    out = TRANSLATOR.request(body, {"anthropic-beta": "x"}, WHOLE).body
    assert gemini_problem(out) is None
    recorded = request_body("gemini", "generateContent-function-call.yaml", 1)["contents"][1]["parts"]
    assert [p["functionCall"] for p in out["contents"][1]["parts"]] == [p["functionCall"] for p in recorded]
    assert out["contents"][1]["parts"][0]["thoughtSignature"] == (
        upstream["candidates"][0]["content"]["parts"][0]["thoughtSignature"])


# --- generated requests and streams ---------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20)
_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
_cache = st.one_of(st.just({}), st.just({"cache_control": {"type": "ephemeral"}}))
_user_block = st.one_of(
    st.builds(lambda t, c: {"type": "text", "text": t, **c}, _text, _cache),
    st.builds(lambda d: {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": d}},
              st.from_regex(r"[A-Za-z0-9+/]{4,12}", fullmatch=True)),
    st.builds(lambda n: {"type": "image", "source": {"type": "url", "url": f"https://e.test/{n}.webp"}}, _names),
)


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, max_size=3, unique=True))
    messages: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(st.one_of(_text, st.lists(_user_block, min_size=1,
                                                                                       max_size=3)))})
        blocks: list[dict[str, Any]] = []
        if draw(st.booleans()):
            signature = draw(st.sampled_from([seal.sealed("gemini", "sig"), seal.sealed("claude-console", "c"),
                                              "native"]))
            blocks.append({"type": "thinking", "thinking": draw(st.text(max_size=10)), "signature": signature})
        if draw(st.booleans()):
            blocks.append({"type": "text", "text": draw(_text)})
        calls = [{"type": "tool_use", "id": f"toolu_{turn}_{n}", "name": draw(st.sampled_from(names)),
                  "input": draw(st.dictionaries(_names, _text, max_size=2))}
                 for n in range(draw(st.integers(0, 2) if names else st.just(0)))]
        blocks += calls
        if not blocks:
            continue
        messages.append({"role": "assistant", "content": blocks})
        if calls:
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call["id"], "is_error": draw(st.booleans()),
                 "content": draw(st.one_of(_text, st.lists(st.builds(lambda t: {"type": "text", "text": t}, _text),
                                                           max_size=2)))} for call in calls]})
    body: dict[str, Any] = {"model": "gemini-2.5-pro", "max_tokens": draw(st.integers(1, 64000)),
                            "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(st.one_of(_text, st.lists(st.builds(lambda t, c: {"type": "text", "text": t, **c},
                                                                  _text, _cache), min_size=1, max_size=3)))
    if names:
        body["tools"] = [{"name": name, "description": draw(_text), "input_schema": {
            "type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": False}}
            for name in names]
        body["tool_choice"] = draw(st.one_of(st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]),
                                             st.builds(lambda n: {"type": "tool", "name": n}, st.sampled_from(names))))
    thinking = draw(st.sampled_from([None, {"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"},
                                     {"type": "disabled"}]))
    if thinking is not None:
        body["thinking"] = thinking
    for name, strategy in {"temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "top_k": st.integers(1, 40),
                           "stop_sequences": st.lists(_text, max_size=2), "stream": st.booleans(),
                           "metadata": st.just({"user_id": "u"})}.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(anthropic_requests())
def test_generated_requests_convert_to_valid_gemini_requests(body: dict[str, Any]) -> None:
    before = orjson.dumps(body)
    conversion = TRANSLATOR.request(body, {"anthropic-beta": "a,b"}, WHOLE)
    assert gemini_problem(conversion.body) is None
    assert conversion.headers == {}
    assert orjson.dumps(body) == before


_stream_part = st.one_of(
    st.builds(lambda t: {"text": t, "thought": True}, _text),
    st.builds(lambda t: {"text": t}, st.text(max_size=10)),
    st.builds(lambda t, s: {"text": t, "thoughtSignature": s}, _text, st.sampled_from(["S1", "S2"])),
    st.builds(lambda n, a: {"functionCall": {"name": n, "args": a}}, _names,
              st.dictionaries(_names, _text, max_size=2)),
    st.builds(lambda n: {"functionCall": {"name": n, "args": {}}, "thoughtSignature": "FC"}, _names),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(_stream_part, max_size=3), min_size=1, max_size=6),
       st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", None]), st.booleans())
def test_generated_streams_meet_claude_codes_rules(chunks: list[list[dict[str, Any]]], reason: str | None,
                                                   usage_first: bool) -> None:
    events = []
    for number, parts in enumerate(chunks):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if reason and number == len(chunks) - 1:
            candidate["finishReason"] = reason
        chunk: dict[str, Any] = {"candidates": [candidate], "responseId": "gen", "modelVersion": "m"}
        if usage_first or number == len(chunks) - 1:
            chunk["usageMetadata"] = {"promptTokenCount": 40, "candidatesTokenCount": number,
                                      "totalTokenCount": 40 + number}
        events.append(data(chunk))
    payloads = check_anthropic_stream(_run(events))
    assert payloads[0]["message"]["usage"]["input_tokens"] == (40 if usage_first or len(chunks) == 1 else 50)


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status", "kind"), [("error-429-RESOURCE_EXHAUSTED.yaml", 429, "rate_limit_error"),
                                                      ("error-404-NOT_FOUND.yaml", 404, "not_found_error")])
def test_errors_become_anthropic_errors(name: str, status: int, kind: str) -> None:
    payload = response_text("gemini", name).encode()
    body = orjson.loads(TRANSLATOR.error(status, payload))
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert body["error"]["message"] == orjson.loads(payload)["error"]["message"]
    assert TRANSLATOR.client is ClientFormat.ANTHROPIC and TRANSLATOR.upstream is ClientFormat.GEMINI


def test_gemini_3_function_calls_without_a_signature_get_googles_skip_token() -> None:
    blocks = [{"type": "thinking", "thinking": "t", "signature": "anthropic-native"},
              {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}},
              {"type": "tool_use", "id": "toolu_b", "name": "f", "input": {}}]
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": blocks},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "ok"}
                                     for i in ("toolu_a", "toolu_b")]}]}
    gemini_3 = Target(platform="gemini", model="gemini-3-flash-preview", stream=False)
    out = TRANSLATOR.request(body, {}, gemini_3).body
    assert [part.get("thoughtSignature") for part in out["contents"][1]["parts"]] == [
        "skip_thought_signature_validator", None]
    assert gemini_problem(out) is None


def test_limits_beyond_geminis_are_lowered() -> None:
    body = {"model": "m", "max_tokens": 128000, "thinking": {"type": "enabled", "budget_tokens": 63999},
            "messages": [{"role": "user", "content": "hi"}]}
    config = TRANSLATOR.request(body, {}, WHOLE).body["generationConfig"]
    assert config == {"maxOutputTokens": 65536, "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True}}


def test_tool_search_results_name_the_tools() -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "find"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_s", "name": "search", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_s",
                                      "content": [{"type": "tool_reference", "tool_name": "Grep"}]}]}]}
    part = TRANSLATOR.request(body, {}, WHOLE).body["contents"][2]["parts"][0]
    assert part == {"functionResponse": {"name": "search", "response": {"output": "Tool Grep is available."}}}
