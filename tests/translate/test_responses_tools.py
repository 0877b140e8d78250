"""Responses tools on chat-style upstreams: namespaces flattened and restored, calls named as the client declared."""

from typing import Any

import orjson
import pytest

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate.base import Target, Translator, data_event, named_event
from switchboard_edge.translate.bridge import bridge

SPAWN = {"type": "function", "name": "spawn_agent", "description": "Start one.",
         "parameters": {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]}}
# A plain function whose only argument happens to be a string called `input`: it must stay a function call.
ECHO = {"type": "function", "name": "echo",
        "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Patch files."}
BODY: dict[str, Any] = {
    "model": "m", "stream": False,
    "tools": [ECHO, PATCH, {"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [SPAWN]}],
    "input": [{"type": "message", "role": "user", "content": "go"},
              {"type": "function_call", "call_id": "call_1", "name": "spawn_agent", "namespace": "agents",
               "arguments": '{"task":"a"}'},
              {"type": "function_call_output", "call_id": "call_1", "output": "started"}],
    "tool_choice": {"type": "function", "name": "spawn_agent", "namespace": "agents"},
}
UPSTREAMS = [ClientFormat.ANTHROPIC, ClientFormat.OPENAI]


def _crossing(upstream: ClientFormat, stream: bool = False) -> Any:
    crossing = bridge(ClientFormat.RESPONSES, ClientFormat.RESPONSES, upstream, Target("p", "m", stream), BODY)
    assert crossing is not None
    return crossing


def _upstream_tools(upstream: ClientFormat, body: dict[str, Any]) -> dict[str, str]:
    if upstream is ClientFormat.ANTHROPIC:
        return {tool["name"]: tool.get("description", "") for tool in body["tools"]}
    return {tool["function"]["name"]: tool["function"].get("description", "") for tool in body["tools"]}


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_a_namespace_becomes_prefixed_functions_and_its_history_and_choice_follow(upstream: ClientFormat) -> None:
    body = _crossing(upstream).request(BODY, {}).body
    tools = _upstream_tools(upstream, body)
    assert list(tools) == ["echo", "apply_patch", "agents__spawn_agent"]
    assert tools["agents__spawn_agent"] == "Sub-agents.\n\nStart one."
    if upstream is ClientFormat.ANTHROPIC:
        assert body["tool_choice"]["name"] == "agents__spawn_agent"
        call = next(block for message in body["messages"] for block in message["content"]
                    if isinstance(block, dict) and block.get("type") == "tool_use")
        assert call["name"] == "agents__spawn_agent"
    else:
        assert body["tool_choice"] == {"type": "function", "function": {"name": "agents__spawn_agent"}}
        call = next(message for message in body["messages"] if message.get("tool_calls"))["tool_calls"][0]
        assert call["function"]["name"] == "agents__spawn_agent"


def _answer(upstream: ClientFormat, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    if upstream is ClientFormat.ANTHROPIC:
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": args}
                            for n, (name, args) in enumerate(calls)],
                "usage": {"input_tokens": 3, "output_tokens": 4}}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": f"call_{n}", "type": "function",
                                "function": {"name": name, "arguments": orjson.dumps(args).decode()}}
                               for n, (name, args) in enumerate(calls)]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}


CALLS = [("agents__spawn_agent", {"task": "b"}), ("echo", {"input": "hi"}), ("apply_patch", {"input": "*** Begin"})]


def _check_items(items: list[dict[str, Any]]) -> None:
    spawn, echo, patch = items
    assert (spawn["type"], spawn["name"], spawn["namespace"]) == ("function_call", "spawn_agent", "agents")
    assert orjson.loads(spawn["arguments"]) == {"task": "b"}
    assert echo["type"] == "function_call" and echo["name"] == "echo" and "namespace" not in echo
    assert (patch["type"], patch["name"], patch["input"]) == ("custom_tool_call", "apply_patch", "*** Begin")


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_calls_come_back_as_the_client_declared_the_tools(upstream: ClientFormat) -> None:
    answer = _crossing(upstream).response(_answer(upstream, CALLS))
    _check_items([item for item in answer["output"] if item["type"] != "reasoning"])


def _upstream_stream(upstream: ClientFormat) -> list[SSEEvent]:
    if upstream is ClientFormat.ANTHROPIC:
        events = [named_event("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
            "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}})]
        for n, (name, args) in enumerate(CALLS):
            events += [named_event("content_block_start", {"type": "content_block_start", "index": n, "content_block": {
                           "type": "tool_use", "id": f"toolu_{n}", "name": name, "input": {}}}),
                       named_event("content_block_delta", {"type": "content_block_delta", "index": n, "delta": {
                           "type": "input_json_delta", "partial_json": orjson.dumps(args).decode()}}),
                       named_event("content_block_stop", {"type": "content_block_stop", "index": n})]
        return [*events,
                named_event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                              "usage": {"output_tokens": 9}}),
                named_event("message_stop", {"type": "message_stop"})]
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"tool_calls": [{
        "index": n, "id": f"call_{n}", "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(args).decode()}}]}, "finish_reason": None}]}
        for n, (name, args) in enumerate(CALLS)]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
    return [data_event(chunk) for chunk in chunks]


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_streamed_calls_come_back_as_the_client_declared_the_tools(upstream: ClientFormat) -> None:
    converter = _crossing(upstream, stream=True).stream()
    out = [event for upstream_event in _upstream_stream(upstream) for event in converter.feed(upstream_event)]
    out += converter.finish()
    done = [orjson.loads(event.data)["item"] for event in out if event.name == "response.output_item.done"]
    _check_items(done)
    completed = orjson.loads(next(event.data for event in out if event.name == "response.completed"))
    _check_items(completed["response"]["output"])


def test_without_the_request_table_an_input_only_call_is_taken_for_a_custom_one() -> None:
    # A translator used on its own (no `answer_target`) falls back to the shape of the arguments.
    translator: Translator | None = _crossing(ClientFormat.OPENAI).outbound
    assert translator is not None
    answer = translator.response(_answer(ClientFormat.OPENAI, [("echo", {"input": "hi"})]), Target("p", "m", False))
    assert answer["output"][0]["type"] == "custom_tool_call"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_hosted_web_search_is_left_out_and_other_hosted_tools_are_refused(upstream: ClientFormat) -> None:
    # Codex offers `web_search` on every turn: the turn goes on without it.
    body = {**BODY, "tools": [*BODY["tools"], {"type": "web_search", "external_web_access": False}]}
    converted = _crossing(upstream).request(body, {}).body
    assert list(_upstream_tools(upstream, converted)) == ["echo", "apply_patch", "agents__spawn_agent"]
    with pytest.raises(InvalidRequest) as refused:
        _crossing(upstream).request({**BODY, "tools": [{"type": "code_interpreter"}]}, {})
    assert "code_interpreter" in refused.value.message
