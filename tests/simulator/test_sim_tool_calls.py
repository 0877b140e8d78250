"""Tool calls and thinking in Anthropic's and OpenAI chat's own formats, raw and through the official SDKs;
and `schema_values`, which fills the arguments for every vendor."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from switchboard_simulator.schema_values import arguments_for, value_for

from .conftest import Start
from .sim_testing import (
    ANTHROPIC_HEADERS,
    ANTHROPIC_KEY,
    OPENAI_HEADERS,
    OPENAI_KEY,
    anthropic_events,
    collapse,
    openai_chunks,
    recording,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 3, "maximum": 10},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "hourly": {"type": "boolean"},
        "spots": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 5}, "minItems": 2},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
        "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        "optional": {"type": "string"},
    },
    "required": ["city", "days", "unit", "hourly", "spots", "where", "note"],
}
TOOL_USE_ID = re.compile(r"^toolu_01[1-9A-HJ-NP-Za-km-z]{22}$")
CALL_ID = re.compile(r"^call_[A-Za-z0-9]{24}$")
CLAUDE_TOOLS = [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA},
                {"name": "get_time", "description": "Time", "input_schema": {"type": "object", "properties": {}}}]
GPT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}},
             {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
ASK = [{"role": "user", "content": "What should I pack?"}]


def assert_weather_arguments(args: dict[str, Any]) -> None:
    """Every required property, each of the right type and within its bounds."""
    assert set(args) == set(SCHEMA["required"])
    assert isinstance(args["city"], str) and args["city"]
    assert isinstance(args["days"], int) and 3 <= args["days"] <= 10
    assert args["unit"] == "celsius" and args["hourly"] is True
    assert len(args["spots"]) == 2 and all(isinstance(v, (int, float)) and v > 5 for v in args["spots"])
    assert isinstance(args["where"]["lat"], (int, float))
    assert isinstance(args["note"], str)


# schema_values -----------------------------------------------------------------------------------------


def test_value_for_reads_json_schema_and_the_openapi_subset() -> None:
    assert_weather_arguments(arguments_for(SCHEMA))
    assert value_for({"type": "STRING", "enum": ["b", "a"]}) == "b"
    assert value_for({"const": 7}) == 7
    assert value_for({"type": "INTEGER", "minimum": "12"}) == 12
    assert value_for({"type": "number", "maximum": 0}) == -1
    assert value_for({"oneOf": [{"type": "boolean"}, {"type": "string"}]}) is True
    assert value_for({"type": ["null", "integer"]}) == 1
    assert value_for({"type": "ARRAY", "items": {"type": "STRING"}}) == ["sim"]
    assert arguments_for({"type": "object", "properties": {"a": {"type": "string"}}}) == {"a": "sim"}
    deep: dict[str, Any] = {"type": "object", "properties": {}}
    node = deep
    for _ in range(20):
        child: dict[str, Any] = {"type": "object", "properties": {}}
        node["properties"]["x"] = child
        node = child
    value = value_for(deep)
    depth = 0
    while value:
        value, depth = value["x"], depth + 1
    assert depth <= 8


# Anthropic ---------------------------------------------------------------------------------------------


def claude_body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 2048, "messages": ASK, "tools": CLAUDE_TOOLS, **extra}


async def test_anthropic_forced_tool_nonstream(client: httpx.AsyncClient) -> None:
    body = claude_body(tool_choice={"type": "tool", "name": "get_weather"})
    reply = (await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)).json()
    assert reply["stop_reason"] == "tool_use"
    [block] = reply["content"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather" and TOOL_USE_ID.match(block["id"])
    assert_weather_arguments(block["input"])
    assert reply["usage"]["output_tokens"] > 0


async def test_anthropic_any_picks_the_first_tool_and_auto_the_named_one(client: httpx.AsyncClient) -> None:
    reply = (await client.post("/v1/messages", json=claude_body(tool_choice={"type": "any"}),
                               headers=ANTHROPIC_HEADERS)).json()
    assert reply["content"][0]["name"] == "get_weather"
    named = [{"role": "user", "content": [{"type": "text", "text": "Use the get_time tool please"}]}]
    reply = (await client.post("/v1/messages", json=claude_body(messages=named), headers=ANTHROPIC_HEADERS)).json()
    assert reply["content"][0] == {"type": "tool_use", "id": reply["content"][0]["id"], "name": "get_time",
                                   "input": {}}
    # Without a name in the turn, or answering with a tool_result, or with choice none: text.
    for body in (claude_body(), claude_body(messages=named, tool_choice={"type": "none"}),
                 claude_body(messages=[*named, {"role": "assistant", "content": [reply["content"][0]]},
                                       {"role": "user", "content": [{"type": "tool_result",
                                                                     "tool_use_id": reply["content"][0]["id"],
                                                                     "content": "12:00"}]}])):
        text = (await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)).json()
        assert text["content"][0]["type"] == "text" and text["stop_reason"] == "end_turn"


async def test_anthropic_forced_tool_stream_events(client: httpx.AsyncClient) -> None:
    body = claude_body(tool_choice={"type": "tool", "name": "get_weather"}, stream=True)
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    events = anthropic_events(response.text)
    names = [name for name, _ in events]
    assert collapse(names) == ["message_start", "content_block_start", "ping", "content_block_delta",
                               "content_block_stop", "message_delta", "message_stop"]
    start = events[1][1]
    assert start["index"] == 0 and start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["input"] == {} and TOOL_USE_ID.match(start["content_block"]["id"])
    pieces = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert len(pieces) >= 2 and all(piece["type"] == "input_json_delta" for piece in pieces)
    assert_weather_arguments(json.loads("".join(piece["partial_json"] for piece in pieces)))
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_tool_stream_matches_the_recording(client: httpx.AsyncClient) -> None:
    recorded = recording("anthropic/messages-stream-tool-use.yaml")[0]
    request = json.loads(recorded.request_body)
    response = await client.post("/v1/messages", json=request, headers=ANTHROPIC_HEADERS)
    ours, theirs = anthropic_events(response.text), anthropic_events(recorded.body)
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (_, mine), (_, vendor) in zip(ours, theirs, strict=True):
        assert list(mine) == list(vendor)
    assert list(ours[1][1]["content_block"]) == list(theirs[1][1]["content_block"])
    assert ours[3][1]["delta"] == {"type": "input_json_delta", "partial_json": ""}


@pytest.mark.parametrize("thinking", [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}])
async def test_anthropic_thinking_block_comes_first(client: httpx.AsyncClient, thinking: dict[str, Any]) -> None:
    plain = (await client.post("/v1/messages", json=claude_body(tools=[]), headers=ANTHROPIC_HEADERS)).json()
    reply = (await client.post("/v1/messages", json=claude_body(tools=[], thinking=thinking),
                               headers=ANTHROPIC_HEADERS)).json()
    first, second = reply["content"]
    assert first["type"] == "thinking" and first["thinking"] and first["signature"]
    assert second["type"] == "text" and second["text"] == plain["content"][0]["text"]
    assert reply["usage"]["output_tokens"] > plain["usage"]["output_tokens"]

    response = await client.post("/v1/messages", json=claude_body(tools=[], thinking=thinking, stream=True),
                                 headers=ANTHROPIC_HEADERS)
    events = anthropic_events(response.text)
    assert collapse([name for name, _ in events]) == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    blocks = [data for name, data in events if name == "content_block_start"]
    assert [b["index"] for b in blocks] == [0, 1]
    assert blocks[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [data for name, data in events if name == "content_block_delta"]
    kinds = collapse([d["delta"]["type"] for d in deltas])
    assert kinds == ["thinking_delta", "signature_delta", "text_delta"]
    assert all(d["index"] == (1 if d["delta"]["type"] == "text_delta" else 0) for d in deltas)
    assert events[-2][1]["usage"]["output_tokens"] == reply["usage"]["output_tokens"]


async def test_anthropic_thinking_then_tool_use(client: httpx.AsyncClient) -> None:
    body = claude_body(thinking={"type": "enabled", "budget_tokens": 2000}, tool_choice={"type": "any"})
    reply = (await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)).json()
    assert [b["type"] for b in reply["content"]] == ["thinking", "tool_use"] and reply["stop_reason"] == "tool_use"


async def test_thinking_signatures_are_bound_to_the_organisation_that_made_them(start: Start) -> None:
    url = await start(anthropic={"keys": [ANTHROPIC_KEY, "sk-sim-other-org"],
                                 "organizations": {"sk-sim-other-org": "org-2"}})
    other = {**ANTHROPIC_HEADERS, "x-api-key": "sk-sim-other-org"}
    body = claude_body(thinking={"type": "enabled", "budget_tokens": 2000}, tool_choice={"type": "any"})
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        first = await http.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
        assert first.headers["anthropic-organization-id"] != (
            await http.post("/v1/messages", json=claude_body(), headers=other)).headers["anthropic-organization-id"]
        thinking, call = first.json()["content"]
        history = [*ASK, {"role": "assistant", "content": [thinking, call]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}]}]
        follow_up = claude_body(thinking={"type": "enabled", "budget_tokens": 2000}, messages=history)
        same = await http.post("/v1/messages", json=follow_up, headers=ANTHROPIC_HEADERS)
        assert same.status_code == 200, same.text
        refused = await http.post("/v1/messages", json=follow_up, headers=other)
        assert refused.status_code == 400
        assert refused.json()["error"] == {"type": "invalid_request_error",
                                           "message": "messages.1.content.0: Invalid `signature` in `thinking` block"}
        forged = [*ASK, {"role": "assistant", "content": [{**thinking, "signature": "c2lnbmVk"}, call]}, history[2]]
        assert (await http.post("/v1/messages", json={**follow_up, "messages": forged},
                                headers=ANTHROPIC_HEADERS)).status_code == 400


@pytest.fixture
async def claude(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, base_url=base_url, max_retries=0) as sdk:
        yield sdk


async def test_anthropic_sdk_parses_tool_use_and_thinking(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(model="claude-sonnet-4-6", max_tokens=2048, messages=ASK,  # type: ignore[arg-type]
                                           tools=CLAUDE_TOOLS, tool_choice={"type": "any"})  # type: ignore[arg-type]
    block = message.content[0]
    assert block.type == "tool_use" and isinstance(block.input, dict)
    assert_weather_arguments(block.input)  # type: ignore[arg-type]

    async with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=2048, messages=ASK,  # type: ignore[arg-type]
                                      tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                      tool_choice={"type": "tool", "name": "get_weather"},
                                      thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    thinking, tool = final.content
    assert thinking.type == "thinking" and thinking.signature and thinking.thinking
    assert tool.type == "tool_use" and isinstance(tool.input, dict) and final.stop_reason == "tool_use"
    assert_weather_arguments(tool.input)  # type: ignore[arg-type]


# OpenAI chat -------------------------------------------------------------------------------------------


def gpt_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": ASK, "tools": GPT_TOOLS, **extra}


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
async def test_openai_forced_tool_nonstream(client: httpx.AsyncClient, choice: Any) -> None:
    reply = (await client.post("/v1/chat/completions", json=gpt_body(tool_choice=choice),
                               headers=OPENAI_HEADERS)).json()
    [out] = reply["choices"]
    assert out["finish_reason"] == "tool_calls" and out["message"]["content"] is None
    [call] = out["message"]["tool_calls"]
    assert CALL_ID.match(call["id"]) and call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    assert_weather_arguments(json.loads(call["function"]["arguments"]))


async def test_openai_auto_calls_the_named_tool_until_it_answers(client: httpx.AsyncClient) -> None:
    named = [{"role": "user", "content": "call GET_TIME now"}]
    reply = (await client.post("/v1/chat/completions", json=gpt_body(messages=named), headers=OPENAI_HEADERS)).json()
    call = reply["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_time", "arguments": "{}"}
    answered = [*named, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "12:00"}]
    for body in (gpt_body(), gpt_body(messages=answered), gpt_body(messages=named, tool_choice="none")):
        text = (await client.post("/v1/chat/completions", json=body, headers=OPENAI_HEADERS)).json()
        assert text["choices"][0]["finish_reason"] == "stop" and isinstance(text["choices"][0]["message"]["content"],
                                                                            str)


async def test_openai_forced_tool_stream(client: httpx.AsyncClient) -> None:
    body = gpt_body(tool_choice="required", stream=True, stream_options={"include_usage": True})
    response = await client.post("/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    payloads = openai_chunks(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    [head] = first["tool_calls"]
    assert head["index"] == 0 and CALL_ID.match(head["id"]) and head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-2]]
    assert len(fragments) >= 2 and all(set(f) == {"index", "function"} for f in fragments)
    assert_weather_arguments(json.loads("".join(f["function"]["arguments"] for f in fragments)))
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(("model", "reasoning"), [("o3-mini", True), ("gpt-5", True), ("gpt-4o", False)])
async def test_openai_reasoning_models_report_reasoning_tokens(client: httpx.AsyncClient, model: str,
                                                               reasoning: bool) -> None:
    reply = (await client.post("/v1/chat/completions", json={"model": model, "messages": ASK},
                               headers=OPENAI_HEADERS)).json()
    usage = reply["usage"]
    tokens = usage["completion_tokens_details"]["reasoning_tokens"]
    assert (tokens > 0) is reasoning and usage["completion_tokens"] > tokens
    body = {"model": model, "messages": ASK, "stream": True, "stream_options": {"include_usage": True}}
    streamed = json.loads(openai_chunks((await client.post("/v1/chat/completions", json=body,
                                                           headers=OPENAI_HEADERS)).text)[-2])
    assert streamed["usage"] == usage


@pytest.fixture
async def gpt(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=f"{base_url}/v1", max_retries=0) as sdk:
        yield sdk


async def test_openai_sdk_parses_tool_calls(gpt: openai.AsyncOpenAI) -> None:
    completion = await gpt.chat.completions.create(model="gpt-4o", messages=ASK,  # type: ignore[arg-type]
                                                   tools=GPT_TOOLS, tool_choice="required")  # type: ignore[arg-type]
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert_weather_arguments(json.loads(call.function.arguments))

    stream = await gpt.chat.completions.create(model="gpt-4o", messages=ASK, tools=GPT_TOOLS,  # type: ignore[arg-type]
                                               tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                               stream=True)
    name, arguments, finish = "", "", None
    async for chunk in stream:
        choice = chunk.choices[0]
        for delta in choice.delta.tool_calls or ():
            name += delta.function.name or "" if delta.function else ""
            arguments += delta.function.arguments or "" if delta.function else ""
        finish = choice.finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls"
    assert_weather_arguments(json.loads(arguments))

    async with gpt.chat.completions.stream(model="gpt-4o", messages=ASK, tools=GPT_TOOLS,  # type: ignore[arg-type]
                                           tool_choice="required") as helper:
        final = await helper.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert_weather_arguments(json.loads(call.function.arguments))
