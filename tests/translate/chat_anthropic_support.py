"""Shared helpers for the OpenAI chat ⇄ Anthropic translator tests: recordings, golden files, stream grammars
and request checks that encode each vendor's documented request rules."""

from pathlib import Path
from typing import Any

import orjson
import yaml

from switchboard_edge.sse import SSEDecoder, SSEEvent

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
GOLDEN = Path(__file__).resolve().parent / "golden"


def response_text(vendor: str, name: str) -> str:
    data: Any = yaml.safe_load((RECORDINGS / vendor / name).read_text())
    body = data["interactions"][0]["response"]["body"]
    return str(body["string"] if isinstance(body, dict) else body)


def events_of(text: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(text.encode())
    rest = decoder.flush()
    if rest.strip():
        events += decoder.feed(rest + b"\n\n")
    return events


def golden(module: str, name: str) -> Any:
    return orjson.loads((GOLDEN / module / name).read_bytes())


def cases(module: str, prefix: str) -> list[str]:
    return sorted(path.name for path in (GOLDEN / module).glob(f"{prefix}-*.json"))


def anthropic_event(payload: dict[str, Any]) -> SSEEvent:
    return SSEEvent(f"event: {payload['type']}\ndata: {orjson.dumps(payload).decode()}\n\n".encode())


def chat_event(payload: Any) -> SSEEvent:
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return SSEEvent(f"data: {data}\n\n".encode())


def as_json(events: list[SSEEvent]) -> list[Any]:
    """Events as comparable values: Anthropic {event, data}; chat chunks as their data ("[DONE]" as a string)."""
    out: list[Any] = []
    for event in events:
        data: Any = event.data.decode() if event.data == b"[DONE]" else orjson.loads(event.data)
        out.append({"event": event.name, "data": data} if event.name else data)
    return out


def check_chat_stream(events: list[SSEEvent], *, usage: bool) -> list[dict[str, Any]]:
    """OpenAI chat stream grammar: chunks of one id, the first with role assistant, one finish_reason, then the
    usage chunk with empty choices only when asked, then [DONE] last."""
    assert events[-1].data == b"[DONE]" and events[-1].raw == b"data: [DONE]\n\n"
    assert all(event.name == "" and event.raw.startswith(b"data: ") for event in events)
    chunks = [orjson.loads(event.data) for event in events[:-1]]
    assert len({chunk["id"] for chunk in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [choice["finish_reason"] for chunk in chunks for choice in chunk["choices"]
                if choice["finish_reason"] is not None]
    assert len(finishes) == 1 and finishes[0] in ("stop", "length", "tool_calls", "content_filter")
    if usage:
        assert chunks[-1]["choices"] == [] and set(chunks[-1]["usage"]) >= {"prompt_tokens", "completion_tokens",
                                                                              "total_tokens"}
        assert chunks[-2]["choices"][0]["finish_reason"] is not None
    else:
        assert "usage" not in chunks[-1] and chunks[-1]["choices"][0]["finish_reason"] is not None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            assert choice["index"] == 0 and set(choice) == {"index", "delta", "logprobs", "finish_reason"}
            for call in choice["delta"].get("tool_calls", ()):
                if "id" in call:
                    assert call["index"] == len(calls) and call["type"] == "function"
                    calls[call["index"]] = {"id": call["id"], "name": call["function"]["name"], "arguments": ""}
                calls[call["index"]]["arguments"] += call["function"].get("arguments", "")
    for call in calls.values():
        assert isinstance(orjson.loads(call["arguments"] or "{}"), dict)
    return chunks


def check_anthropic_stream(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """Everything Claude Code needs: one message_start (input tokens > 0, output ≥ 1), blocks opened and closed
    in index order, one at a time, tool_use starting with input {} and its arguments as JSON deltas, one
    message_delta with a stop reason and usage, then one message_stop last."""
    datas = [orjson.loads(event.data) for event in events]
    names = [event.name for event in events]
    assert names == [data["type"] for data in datas]
    assert names[0] == "message_start" and names.count("message_start") == 1
    start = datas[0]["message"]
    assert start["id"].startswith("msg_") and start["role"] == "assistant" and start["content"] == []
    assert start["usage"]["input_tokens"] > 0 and start["usage"]["output_tokens"] >= 1
    assert names[-1] == "message_stop" and names.count("message_stop") == 1
    assert names[-2] == "message_delta" and names.count("message_delta") == 1
    final = datas[-2]
    assert final["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal")
    assert isinstance(final["usage"]["output_tokens"], int)
    open_index: int | None = None
    next_index = 0
    blocks: list[dict[str, Any]] = []
    for data in datas[1:-2]:
        kind = data["type"]
        if kind == "ping":
            continue
        if kind == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index = data["index"]
            block = dict(data["content_block"])
            if block["type"] == "tool_use":
                assert block["input"] == {} and block["id"] and block["name"]
                block["json"] = ""
            blocks.append(block)
        elif kind == "content_block_delta":
            assert data["index"] == open_index
            delta = data["delta"]
            block = blocks[-1]
            if delta["type"] == "text_delta":
                assert block["type"] == "text"
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                assert block["type"] == "tool_use"
                block["json"] += delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                assert block["type"] == "thinking"
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                assert block["type"] == "thinking"
                block["signature"] = delta["signature"]
            else:
                raise AssertionError(f"unexpected delta {delta['type']}")
        elif kind == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
            next_index += 1
        else:
            raise AssertionError(f"unexpected event {kind}")
    assert open_index is None
    for block in blocks:
        if block["type"] == "tool_use":
            block["input"] = orjson.loads(block.pop("json") or "{}")
            assert isinstance(block["input"], dict)
    if final["delta"]["stop_reason"] == "tool_use":
        assert any(block["type"] == "tool_use" for block in blocks)
    return blocks


_ANTHROPIC_BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
_ANTHROPIC_FIELDS = {"model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p",
                     "top_k", "tools", "tool_choice", "metadata", "thinking", "service_tier"}


def anthropic_problem(body: dict[str, Any]) -> str | None:
    """Anthropic Messages' documented request rules that the simulator's shallow check leaves out."""
    if set(body) - _ANTHROPIC_FIELDS:
        return f"unknown fields {set(body) - _ANTHROPIC_FIELDS}"
    messages = body["messages"]
    for before, after in zip(messages, messages[1:], strict=False):
        if before["role"] == after["role"]:
            return "roles must alternate"
    called: set[str] = set()
    for number, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            if not content and not (message["role"] == "assistant" and number == len(messages) - 1):
                return f"messages.{number}: empty content"
            continue
        if not content:
            return f"messages.{number}: empty content"
        for block in content:
            if block["type"] not in _ANTHROPIC_BLOCKS:
                return f"block type {block['type']}"
            if block["type"] == "text" and not block["text"]:
                return "text content blocks must be non-empty"
            if block["type"] == "tool_use":
                if message["role"] != "assistant" or not isinstance(block["input"], dict):
                    return "tool_use"
                called.add(block["id"])
            if block["type"] == "tool_result" and message["role"] != "user":
                return "tool_result"
            if block["type"] == "image" and block["source"]["type"] not in ("base64", "url"):
                return "image source"
    for tool in body.get("tools", ()):
        if set(tool) - {"name", "description", "input_schema"} or not isinstance(tool["input_schema"], dict):
            return "tool shape"
    choice = body.get("tool_choice")
    if choice is not None and choice["type"] not in ("auto", "any", "tool", "none"):
        return "tool_choice"
    if choice is not None and "tools" not in body:
        return "tool_choice without tools"
    if "temperature" in body and not 0 <= body["temperature"] <= 1:
        return "temperature"
    thinking = body.get("thinking")
    if thinking is not None:
        if thinking["budget_tokens"] < 1024 or body["max_tokens"] <= thinking["budget_tokens"]:
            return "thinking budget"
        if "temperature" in body or "top_p" in body or "top_k" in body:
            return "sampling with thinking"
    return None


_CHAT_FIELDS = {"model", "messages", "max_completion_tokens", "stream", "stream_options", "temperature", "top_p",
                "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "reasoning_effort", "service_tier",
                "response_format"}


def chat_problem(body: dict[str, Any]) -> str | None:
    """OpenAI chat's documented request rules that the simulator's shallow check leaves out."""
    if set(body) - _CHAT_FIELDS:
        return f"unknown fields {set(body) - _CHAT_FIELDS}"
    if body.get("stream") and body.get("stream_options") != {"include_usage": True}:
        return "stream without include_usage"
    if isinstance(body.get("stop"), list) and len(body["stop"]) > 4:
        return "more than 4 stop sequences"
    if "parallel_tool_calls" in body and "tools" not in body:
        return "parallel_tool_calls without tools"
    pending: set[str] = set()
    for number, message in enumerate(body["messages"]):
        role = message["role"]
        if pending and role != "tool":
            return f"messages[{number}]: tool results missing for {pending}"
        if role == "tool":
            if message["tool_call_id"] not in pending:
                return f"messages[{number}]: tool result without a call"
            pending.discard(message["tool_call_id"])
            if not isinstance(message["content"], str | list):
                return "tool content"
        elif role == "assistant":
            for call in message.get("tool_calls", ()):
                if call["type"] != "function" or not isinstance(call["function"]["arguments"], str):
                    return "tool call shape"
                pending.add(call["id"])
            if message.get("content") is None and not message.get("tool_calls"):
                return "empty assistant message"
        elif role in ("user", "system"):
            content = message["content"]
            if isinstance(content, list):
                for part in content:
                    if part["type"] not in ("text", "image_url", "file"):
                        return f"part type {part['type']}"
        else:
            return f"role {role}"
    for tool in body.get("tools", ()):
        if tool["type"] != "function" or not isinstance(tool["function"].get("parameters", {}), dict):
            return "tool shape"
    return None
