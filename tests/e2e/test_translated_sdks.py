"""Any client format to any platform, through the whole stack with the official SDKs as clients: a model
of another vendor is reached through a translator and answers in the client's own format, tool calls and
streams included. The stack is `make run`'s own (one demo account per platform, all on the simulator)."""

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from switchboard_simulator import defaults
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

WEATHER = {"name": "get_weather", "description": "Current weather of a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                           "unit": {"type": "string", "enum": ["c", "f"]}},
                          "required": ["city", "unit"]}}
ANTHROPIC_WEATHER = {"name": WEATHER["name"], "description": WEATHER["description"],
                     "input_schema": WEATHER["parameters"]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    stack = Stack(tmp_path_factory.mktemp("translated"), Ports.free(),
                  env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.1"})
    with stack:
        yield stack, create_demo_key(stack.db_path)


def _weather_arguments(arguments: dict[str, Any]) -> None:
    """Arguments the simulator made from the tool's schema: every required property, of the right type."""
    assert isinstance(arguments["city"], str) and arguments["unit"] in ("c", "f")


# -- OpenAI chat client → Claude ----------------------------------------------------------------------------

def test_openai_sdk_reaches_a_claude_model(demo: tuple[Stack, str]) -> None:
    """The contract's first example: an OpenAI chat.completion answered by Claude."""
    stack, key = demo
    with openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=key, max_retries=0) as client:
        completion = client.chat.completions.create(model="claude-sonnet-4-20250514",
                                                    messages=[{"role": "system", "content": "Be brief."},
                                                              {"role": "user", "content": "Hello!"}])
        assert completion.object == "chat.completion" and completion.model == "claude-sonnet-4-20250514"
        assert completion.choices[0].message.content and completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.completion_tokens > 0
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
        chunks = list(client.chat.completions.create(model="claude-sonnet-4-20250514", stream=True,
                                                     stream_options={"include_usage": True},
                                                     messages=[{"role": "user", "content": "Hello!"}]))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason] \
        == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices


def test_openai_sdk_tool_call_round_trip_with_a_claude_model(demo: tuple[Stack, str]) -> None:
    stack, key = demo
    tools: list[Any] = [{"type": "function", "function": WEATHER}]
    forced: Any = {"type": "function", "function": {"name": "get_weather"}}
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    with openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=key, max_retries=0) as client:
        first = client.chat.completions.create(model="claude-sonnet-4-5", messages=messages, tools=tools,
                                               tool_choice=forced)
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
        call = choice.message.tool_calls[0]
        assert call.function.name == "get_weather"
        _weather_arguments(json.loads(call.function.arguments))
        # The same call, streamed: the arguments arrive in pieces and assemble to valid JSON.
        pieces: dict[int, dict[str, str]] = {}
        for chunk in client.chat.completions.create(model="claude-sonnet-4-5", messages=messages, tools=tools,
                                                    tool_choice=forced, stream=True):
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = pieces.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                entry["name"] += (delta.function.name or "") if delta.function else ""
                entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
        assert [entry["name"] for entry in pieces.values()] == ["get_weather"]
        assert pieces[0]["id"].startswith("toolu_")
        _weather_arguments(json.loads(pieces[0]["arguments"]))
        # The result goes back; Claude answers in text.
        messages += [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "18 degrees, sunny"}]
        final = client.chat.completions.create(model="claude-sonnet-4-5", messages=messages, tools=tools)
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content


# -- Anthropic client → GPT and Gemini ----------------------------------------------------------------------

@pytest.mark.parametrize("model", ["gpt-4o", "gemini-2.5-flash"])
def test_anthropic_sdk_reaches_gpt_and_gemini_models(demo: tuple[Stack, str], model: str) -> None:
    stack, key = demo
    with anthropic.Anthropic(base_url=f"{stack.base_url}/claude", api_key=key, max_retries=0) as client:
        message = client.messages.create(model=model, max_tokens=64, system="Be brief.",
                                         messages=[{"role": "user", "content": "Hello"}])
        assert message.type == "message" and message.model == model and message.stop_reason == "end_turn"
        assert message.content[0].type == "text" and message.content[0].text
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
        with client.messages.stream(model=model, max_tokens=64,
                                    messages=[{"role": "user", "content": "Hello"}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text and text == final.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["gpt-4o", "gemini-2.5-flash"])
def test_anthropic_sdk_tool_call_round_trip_with_gpt_and_gemini(demo: tuple[Stack, str], model: str) -> None:
    stack, key = demo
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    with anthropic.Anthropic(base_url=f"{stack.base_url}/claude", api_key=key, max_retries=0) as client:
        with client.messages.stream(model=model, max_tokens=256, messages=messages, tools=[ANTHROPIC_WEATHER],
                                    tool_choice={"type": "tool", "name": "get_weather"}) as stream:
            events = [event.type for event in stream]
            first = stream.get_final_message()
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert first.stop_reason == "tool_use"
        uses = [block for block in first.content if block.type == "tool_use"]
        assert [use.name for use in uses] == ["get_weather"]
        _weather_arguments(uses[0].input)  # type: ignore[arg-type]  # streamed as input_json_delta, never {}
        messages += [{"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id,
                                                   "content": "18 degrees, sunny"}]}]
        final = client.messages.create(model=model, max_tokens=256, messages=messages, tools=[ANTHROPIC_WEATHER])
    assert final.stop_reason == "end_turn" and final.content[0].type == "text"


# -- Responses client → Claude -------------------------------------------------------------------------------

def test_openai_responses_client_reaches_a_claude_model(demo: tuple[Stack, str]) -> None:
    stack, key = demo
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0) as client:
        response = client.responses.create(model="claude-sonnet-4-5", input="Hello", instructions="Be brief.")
        assert response.status == "completed" and response.output_text
        assert response.usage is not None and response.usage.output_tokens > 0
        with client.responses.stream(model="claude-sonnet-4-5", input="Hello") as stream:
            deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == final.output_text and final.status == "completed"
        tools: list[Any] = [{"type": "function", **WEATHER}]
        called = client.responses.create(model="claude-sonnet-4-5", input="What is the weather in Paris?",
                                         tools=tools, tool_choice={"type": "function", "name": "get_weather"})
        calls = [item for item in called.output if item.type == "function_call"]
        assert [call.name for call in calls] == ["get_weather"]  # type: ignore[union-attr]
        _weather_arguments(json.loads(calls[0].arguments))  # type: ignore[union-attr]
        answered = client.responses.create(
            model="claude-sonnet-4-5", tools=tools,
            input=[{"role": "user", "content": "What is the weather in Paris?"},
                   *[item.model_dump(exclude_none=True) for item in called.output],
                   {"type": "function_call_output", "call_id": calls[0].call_id,  # type: ignore[union-attr]
                    "output": "18 degrees, sunny"}])
    assert answered.status == "completed" and answered.output_text


# -- The contract's /gemini/v1/chat, and discovery ------------------------------------------------------------

@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gpt-4o"])
def test_gemini_chat_takes_openai_messages_and_answers_in_geminis_format(demo: tuple[Stack, str],
                                                                         model: str) -> None:
    stack, key = demo
    body = {"model": model, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hello!"}]}
    reply = httpx.post(f"{stack.base_url}/gemini/v1/chat", json=body, headers={"x-goog-api-key": key}, timeout=30)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["candidates"][0]["content"]["role"] == "model"
    assert answer["candidates"][0]["content"]["parts"][0]["text"]
    assert answer["candidates"][0]["finishReason"] == "STOP"
    assert answer["usageMetadata"]["candidatesTokenCount"] > 0
    with httpx.stream("POST", f"{stack.base_url}/gemini/v1/chat", json={**body, "stream": True},
                      headers={"authorization": f"Bearer {key}"}, timeout=30) as streamed:
        assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
        chunks = [json.loads(line[5:]) for line in streamed.iter_lines() if line.startswith("data:")]
    assert "".join(part.get("text", "") for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    refused = httpx.post(f"{stack.base_url}/gemini/v1/chat", json={**body, "model": "no-such-model"},
                         headers={"x-goog-api-key": key}, timeout=30)
    assert refused.status_code == 404 and refused.json()["error"]["status"] == "NOT_FOUND"


def test_model_lists_hold_every_model_reachable_through_a_translator(demo: tuple[Stack, str]) -> None:
    """The demo pool's exact model names are Azure's deployments (the rest are patterns): every route lists
    them, each in its own format."""
    stack, key = demo
    deployments = set(defaults.AZURE_OPENAI_DEPLOYMENTS)
    claude = httpx.get(f"{stack.base_url}/claude/v1/models", headers={"x-api-key": key}).json()
    assert {model["id"] for model in claude["data"]} >= deployments and claude["data"][0]["type"] == "model"
    with openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=key, max_retries=0) as client:
        assert {model.id for model in client.models.list()} >= deployments
    gemini = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=f"{stack.base_url}/gemini"))
    try:
        assert {model.name for model in gemini.models.list()} >= {f"models/{name}" for name in deployments}
    finally:
        gemini.close()


def test_key_permissions_apply_to_the_platform_the_model_resolved_to(demo: tuple[Stack, str]) -> None:
    stack, _ = demo
    openai_only = create_demo_key(stack.db_path, "translated-openai-only", platforms=["openai"])
    with openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=openai_only, max_retries=0) as client:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
        assert "claude" in str(refused.value)
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        assert missing.value.code == "model_not_found"
    with anthropic.Anthropic(base_url=f"{stack.base_url}/claude", api_key=openai_only, max_retries=0) as claude:
        # The same key may use a GPT model from the Anthropic route: its permissions name platforms, not routes.
        message = claude.messages.create(model="openai,gpt-4o", max_tokens=16,
                                         messages=[{"role": "user", "content": "Hello"}])
    assert message.content[0].type == "text"
