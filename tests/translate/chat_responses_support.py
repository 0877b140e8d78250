"""Helpers for the Responses ⇄ OpenAI chat translator tests: recordings, golden files, both formats' grammar checks
and request-shape checks (what the vendors document each request must look like)."""

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from switchboard_edge.sse import SSEDecoder, SSEEvent
from switchboard_edge.translate.base import Target

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
GOLDEN = Path(__file__).resolve().parent / "golden"
# Set to rewrite the golden files from the translators' current output (then read the diff before committing).
UPDATE = os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1"


def interaction(vendor: str, name: str, index: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((RECORDINGS / vendor / name).read_text())
    return data["interactions"][index]  # type: ignore[no-any-return]


def response_text(vendor: str, name: str, index: int = 0) -> str:
    response = interaction(vendor, name, index)["response"]
    if "parsed_body" in response:  # some cassettes keep the parsed JSON instead of the bytes
        return orjson.dumps(response["parsed_body"]).decode()
    body = response["body"]
    body = body["string"] if isinstance(body, dict) else body
    if isinstance(body, bytes):
        return (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode()
    return str(body)


def status_of(vendor: str, name: str, index: int = 0) -> int:
    """The recorded status (vcrpy's `status.code` or go-vcr's `code`)."""
    response = interaction(vendor, name, index)["response"]
    status = response.get("status")
    return int(status["code"] if isinstance(status, dict) else response.get("code", status))


def request_body(vendor: str, name: str, index: int = 0) -> Any:
    return orjson.loads(interaction(vendor, name, index)["request"]["body"])


def events_of(text: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(text.encode())
    rest = decoder.flush()
    if rest.strip():
        events += decoder.feed(rest + b"\n\n")
    return events


def as_json(events: list[SSEEvent]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        data = event.data
        out.append({"event": event.name, "data": data.decode() if data == b"[DONE]" else orjson.loads(data)})
    return out


def normalized(value: Any) -> Any:
    """`completed_at` is the gateway's clock: zeroed for comparisons."""
    if isinstance(value, dict):
        return {key: (0 if key == "completed_at" and isinstance(item, int) else normalized(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [normalized(item) for item in value]
    return value


def golden(module: str, name: str, actual: Any) -> Any:
    """The golden file's `expected`, or (when updating) `actual` written as the new expectation."""
    path = GOLDEN / module / name
    data = orjson.loads(path.read_bytes())
    if UPDATE:
        data["expected"] = normalized(actual)
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    return data["expected"]


def golden_input(module: str, name: str) -> Any:
    return orjson.loads((GOLDEN / module / name).read_bytes())


# ---------------------------------------------------------------------------------------------------------------
# Grammars


def check_responses_stream(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """The Responses stream grammar: created, in_progress, items added then done in output order (one open at a
    time) with their parts, sequence numbers from 0, exactly one terminal event, last."""
    datas = [orjson.loads(event.data) for event in events]
    assert [event.name for event in events] == [data["type"] for data in datas]
    assert [data["sequence_number"] for data in datas] == list(range(len(datas)))
    assert datas[0]["type"] == "response.created" and datas[1]["type"] == "response.in_progress"
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert datas[-1]["type"] in terminal
    assert sum(data["type"] in terminal for data in datas) == 1
    open_item: dict[str, Any] | None = None
    done: list[dict[str, Any]] = []
    for data in datas[2:-1]:
        kind = data["type"]
        if kind == "response.output_item.added":
            assert open_item is None and data["output_index"] == len(done)
            open_item = data["item"]
        elif kind == "response.output_item.done":
            assert open_item is not None and data["item"]["id"] == open_item["id"]
            assert data["output_index"] == len(done)
            done.append(data["item"])
            open_item = None
        elif kind == "error":
            assert datas[-1]["type"] == "response.failed"
        else:
            assert open_item is not None, kind
            assert data["output_index"] == len(done)
            assert data.get("item_id", open_item["id"]) == open_item["id"]
    final = datas[-1]["response"]
    assert open_item is None or final["status"] == "failed"  # a failure may cut an item, as the vendor's does
    if final["status"] != "failed":
        assert final["output"] == done
        usage = final["usage"]
        assert usage is None or set(usage) == {"input_tokens", "input_tokens_details", "output_tokens",
                                               "output_tokens_details", "total_tokens"}
    return datas


def check_response_object(response: dict[str, Any]) -> None:
    """A whole Responses answer with what the openai SDK reads."""
    assert response["object"] == "response" and response["id"].startswith("resp_")
    for field in ("created_at", "status", "model", "output", "usage", "tools", "tool_choice", "parallel_tool_calls",
                  "text", "reasoning", "instructions", "temperature", "top_p", "incomplete_details", "error",
                  "metadata"):
        assert field in response, field
    for item in response["output"]:
        assert item["type"] in ("message", "function_call", "custom_tool_call", "reasoning")
        if item["type"] == "message":
            assert item["id"].startswith("msg_") and item["role"] == "assistant"
            for part in item["content"]:
                assert part["type"] in ("output_text", "refusal")
                if part["type"] == "output_text":
                    assert part["annotations"] == [] or isinstance(part["annotations"], list)
        elif item["type"] == "function_call":
            assert item["id"].startswith("fc_") and isinstance(item["arguments"], str) and item["call_id"]
        elif item["type"] == "custom_tool_call":
            assert item["id"].startswith("ctc_") and isinstance(item["input"], str) and item["call_id"]


def check_chat_stream(events: list[SSEEvent], include_usage: bool) -> list[dict[str, Any]]:
    """The chat chunk stream: chunk shape, one id, exactly one finish_reason, the usage chunk (only when asked)
    after it, `[DONE]` last."""
    assert events[-1].data == b"[DONE]"
    chunks = [orjson.loads(event.data) for event in events[:-1]]
    assert all(event.name == "" for event in events)
    assert len({chunk["id"] for chunk in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    finishes = [choice["finish_reason"] for chunk in chunks for choice in chunk["choices"]
                if choice["finish_reason"] is not None]
    assert len(finishes) == 1
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert ("usage" in chunk) is include_usage
        for choice in chunk["choices"]:
            assert choice["index"] == 0 and isinstance(choice["delta"], dict)
    usage_chunks = [chunk for chunk in chunks if not chunk["choices"]]
    if include_usage:
        assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0] and chunks[-1]["usage"]["total_tokens"] >= 0
        assert chunks[-2]["choices"][0]["finish_reason"] is not None
    else:
        assert not usage_chunks and chunks[-1]["choices"][0]["finish_reason"] is not None
    return chunks


def assemble_chat(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a client builds from the chunks (content, tool calls by index)."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("content"):
                content.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                entry = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                if call.get("id"):
                    entry["id"] = call["id"]
                function = call.get("function") or call.get("custom") or {}
                entry["name"] += function.get("name") or ""
                entry["arguments"] += function.get("arguments") or function.get("input") or ""
            finish = choice["finish_reason"] or finish
    return {"content": "".join(content), "calls": [calls[index] for index in sorted(calls)], "finish": finish}


def check_chat_completion(body: dict[str, Any]) -> None:
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] in ("stop", "length", "tool_calls", "content_filter")
    message = choice["message"]
    assert message["role"] == "assistant" and "content" in message and "refusal" in message
    for call in message.get("tool_calls") or ():
        assert call["id"] and call["type"] in ("function", "custom")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


# ---------------------------------------------------------------------------------------------------------------
# Request shapes (the vendors' documented request schemas, as far as the translators produce them)


def check_chat_request(body: dict[str, Any]) -> None:
    """A chat completions request: message roles and content shapes, tool calls answered by tool messages right
    after their assistant message, nested function tools."""
    allowed = {"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_completion_tokens",
               "temperature", "top_p", "frequency_penalty", "presence_penalty", "reasoning_effort", "response_format",
               "verbosity", "store", "metadata", "user", "safety_identifier", "prompt_cache_key",
               "prompt_cache_retention", "service_tier", "stream", "stream_options"}
    assert set(body) <= allowed, set(body) - allowed
    pending: set[str] = set()
    for message in body["messages"]:
        role = message["role"]
        if role == "tool":
            assert message["tool_call_id"] in pending
            pending.discard(message["tool_call_id"])
            assert isinstance(message["content"], str) or all(p["type"] == "text" for p in message["content"])
            continue
        assert not pending, f"tool calls {pending} not answered before a {role} message"
        if role in ("system", "developer"):
            assert isinstance(message["content"], str) or all(p["type"] == "text" for p in message["content"])
        elif role == "user":
            content = message["content"]
            assert isinstance(content, str) or all(p["type"] in ("text", "image_url", "file") for p in content)
        else:
            assert role == "assistant"
            assert message["content"] is None or isinstance(message["content"], str)
            calls = message.get("tool_calls")
            if calls is not None:
                assert calls
                for call in calls:
                    assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)
                    pending.add(call["id"])
            else:
                assert message["content"] is not None or message.get("refusal") is not None
    for tool in body.get("tools") or ():
        assert tool["type"] == "function" and isinstance(tool["function"]["name"], str)
        assert set(tool["function"]) <= {"name", "description", "parameters", "strict"}
    if body.get("stream"):
        assert body["stream_options"] == {"include_usage": True}


def check_responses_request(body: dict[str, Any]) -> None:
    """A Responses request: input items and their content parts, flat function tools, text/reasoning objects."""
    allowed = {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
               "temperature", "top_p", "frequency_penalty", "presence_penalty", "reasoning", "text", "store",
               "metadata", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier",
               "stream", "include", "top_logprobs"}
    assert set(body) <= allowed, set(body) - allowed
    assert isinstance(body["input"], list)
    assert body.get("include", ["message.output_text.logprobs"]) == ["message.output_text.logprobs"]
    for item in body["input"]:
        kind = item["type"]
        if kind == "message":
            parts = {"user": ("input_text", "input_image", "input_file"), "assistant": ("output_text", "refusal"),
                     "system": ("input_text",), "developer": ("input_text",)}[item["role"]]
            assert item["content"] and all(part["type"] in parts for part in item["content"])
            for part in item["content"]:
                if part["type"] == "output_text":
                    assert part["annotations"] == []
                if part["type"] == "input_image":
                    assert isinstance(part["image_url"], str) and part["detail"] in ("auto", "low", "high")
        elif kind == "function_call":
            assert isinstance(item["call_id"], str) and isinstance(item["name"], str)
            assert isinstance(item["arguments"], str)
        elif kind == "custom_tool_call":
            assert isinstance(item["input"], str)
        else:
            assert kind == "function_call_output" and isinstance(item["call_id"], str)
    for tool in body.get("tools") or ():
        assert tool["type"] in ("function", "custom") and isinstance(tool["name"], str)
        if tool["type"] == "function":
            assert isinstance(tool["strict"], bool)
    if "instructions" in body:
        assert isinstance(body["instructions"], str)


@dataclass(frozen=True)
class UsageTarget(Target):
    """A target that says whether the chat client asked `stream_options.include_usage` (read by the converter
    through `getattr`, until the relay's Target carries it)."""

    include_usage: bool = False


def target_of(data: dict[str, Any]) -> Target:
    return UsageTarget(**data) if "include_usage" in data else Target(**data)
