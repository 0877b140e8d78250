"""The translators' own cost, in-process: one long agent conversation (about 60 KB, the size Claude Code and
Codex send) converted for each direction in the registry, and a 200-event upstream stream converted event
by event. Printed by `make bench` before the HTTP scenarios; numbers only, never asserted."""

import time
from collections.abc import Callable
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate.base import Target, Translator
from switchboard_edge.translate.registry import TRANSLATORS

TURNS = 40
DELTAS = 200
_SCHEMA = {"type": "object", "properties": {"path": {"type": "string", "description": "x" * 400},
                                            "limit": {"type": "integer"}}, "required": ["path"]}
_TEXT = "The quick brown fox jumps over the lazy dog. " * 20


def _anthropic() -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for turn in range(TURNS):
        messages.append({"role": "user", "content": [{"type": "text", "text": _TEXT}] if turn % 2 else [
            {"type": "tool_result", "tool_use_id": f"toolu_{turn - 1}", "content": _TEXT}] if turn else _TEXT})
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": _TEXT[:200]},
            {"type": "tool_use", "id": f"toolu_{turn}", "name": "read", "input": {"path": "/a", "limit": 5}}]})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{TURNS - 1}",
                                                  "content": _TEXT}]})
    return {"model": "m", "max_tokens": 4096, "stream": True, "system": [{"type": "text", "text": _TEXT * 4}],
            "tools": [{"name": f"tool_{n}", "description": _TEXT[:300], "input_schema": _SCHEMA} for n in range(12)],
            "messages": messages}


def _openai() -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": _TEXT * 4}]
    for turn in range(TURNS):
        messages.append({"role": "user", "content": _TEXT})
        messages.append({"role": "assistant", "content": _TEXT[:200], "tool_calls": [
            {"id": f"call_{turn}", "type": "function", "function": {"name": "read", "arguments": '{"path":"/a"}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{turn}", "content": _TEXT})
    return {"model": "m", "stream": True, "messages": messages,
            "tools": [{"type": "function", "function": {"name": f"tool_{n}", "description": _TEXT[:300],
                                                        "parameters": _SCHEMA}} for n in range(12)]}


def _responses() -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for turn in range(TURNS):
        items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": _TEXT}]})
        items.append({"type": "function_call", "call_id": f"call_{turn}", "name": "read",
                      "arguments": '{"path":"/a"}'})
        items.append({"type": "function_call_output", "call_id": f"call_{turn}", "output": _TEXT})
    return {"model": "m", "stream": True, "instructions": _TEXT * 4, "input": items,
            "tools": [{"type": "function", "name": f"tool_{n}", "description": _TEXT[:300], "parameters": _SCHEMA}
                      for n in range(12)]}


def _gemini() -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    for _ in range(TURNS):
        contents.append({"role": "user", "parts": [{"text": _TEXT}]})
        contents.append({"role": "model", "parts": [{"functionCall": {"name": "read", "args": {"path": "/a"}}}]})
        contents.append({"role": "user", "parts": [{"functionResponse": {"name": "read",
                                                                         "response": {"output": _TEXT}}}]})
    return {"systemInstruction": {"parts": [{"text": _TEXT * 4}]}, "contents": contents,
            "tools": [{"functionDeclarations": [{"name": f"tool_{n}", "description": _TEXT[:300],
                                                 "parameters": _SCHEMA} for n in range(12)]}]}


REQUESTS: dict[ClientFormat, Callable[[], dict[str, Any]]] = {
    ClientFormat.ANTHROPIC: _anthropic, ClientFormat.OPENAI: _openai,
    ClientFormat.RESPONSES: _responses, ClientFormat.GEMINI: _gemini,
}


def _named(name: str, payload: dict[str, Any]) -> SSEEvent:
    return SSEEvent(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n")


def _data(payload: Any) -> SSEEvent:
    return SSEEvent(b"data: " + (payload if isinstance(payload, bytes) else orjson.dumps(payload)) + b"\n\n")


def _anthropic_stream() -> list[SSEEvent]:
    usage = {"input_tokens": 1000, "output_tokens": 1}
    return [_named("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": usage}}),
        _named("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
        *[_named("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": "word "}}) for _ in range(DELTAS)],
        _named("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _named("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": DELTAS}}),
        _named("message_stop", {"type": "message_stop"})]


def _openai_stream() -> list[SSEEvent]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return [_data({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]}),
            *[_data({**base, "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]})
              for _ in range(DELTAS)],
            _data({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            _data({**base, "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": DELTAS,
                                                    "total_tokens": 1000 + DELTAS}}),
            _data(b"[DONE]")]


def _gemini_stream() -> list[SSEEvent]:
    usage = {"promptTokenCount": 1000, "candidatesTokenCount": 1, "totalTokenCount": 1001}
    chunks = [_data({"candidates": [{"content": {"role": "model", "parts": [{"text": "word "}]}, "index": 0}],
                     "usageMetadata": usage, "modelVersion": "m", "responseId": "r1"}) for _ in range(DELTAS)]
    chunks.append(_data({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                         "finishReason": "STOP", "index": 0}],
                         "usageMetadata": {**usage, "candidatesTokenCount": DELTAS}, "modelVersion": "m",
                         "responseId": "r1"}))
    return chunks


def _responses_stream() -> list[SSEEvent]:
    response = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "m",
                "output": [], "usage": None}
    item = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    events: list[tuple[str, dict[str, Any]]] = [
              ("response.created", {"response": response}), ("response.in_progress", {"response": response}),
              ("response.output_item.added", {"output_index": 0, "item": item}),
              ("response.content_part.added", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                               "part": part}),
              *[("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                                "delta": "word "}) for _ in range(DELTAS)],
              ("response.output_text.done", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                             "text": "word " * DELTAS}),
              ("response.content_part.done", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                              "part": {**part, "text": "word " * DELTAS}}),
              ("response.output_item.done", {"output_index": 0, "item": {**item, "status": "completed", "content": [
                  {**part, "text": "word " * DELTAS}]}}),
              ("response.completed", {"response": {**response, "status": "completed", "usage": {
                  "input_tokens": 1000, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": DELTAS,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 1000 + DELTAS}}})]
    return [_named(name, {"type": name, "sequence_number": n, **payload}) for n, (name, payload) in enumerate(events)]


STREAMS: dict[ClientFormat, Callable[[], list[SSEEvent]]] = {
    ClientFormat.ANTHROPIC: _anthropic_stream, ClientFormat.OPENAI: _openai_stream,
    ClientFormat.GEMINI: _gemini_stream, ClientFormat.RESPONSES: _responses_stream,
}


def _best(runs: int, work: Callable[[], object]) -> float:
    """The best of `runs` timings of `work`, in seconds (the least disturbed by this shared machine)."""
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best


def _request_seconds(translator: Translator, body: dict[str, Any], target: Target, runs: int) -> float:
    # What the relay does: convert, then serialise once for the upstream.
    return _best(runs, lambda: orjson.dumps(translator.request(body, {}, target).body))


def _seconds_per_event(translator: Translator, raw: list[bytes], target: Target, runs: int) -> float:
    def stream() -> None:
        converter = translator.stream(target)
        for data in raw:
            converter.feed(SSEEvent(data))
        converter.finish()

    return _best(runs, stream) / len(raw)


def report(runs: int = 30) -> None:
    print(f"{'conversion (in-process)':36} {'request':>12} {'body KB':>8} {'stream/event':>13}")
    target = Target("bench", "m", True, 1000)
    for (client, upstream), translator in sorted(TRANSLATORS.items()):
        body = REQUESTS[client]()
        size = len(orjson.dumps(body)) / 1024
        request_seconds = _request_seconds(translator, body, target, runs)
        per_event = _seconds_per_event(translator, [event.raw for event in STREAMS[upstream]()], target, runs)
        print(f"{client.value + ' → ' + upstream.value:36} {request_seconds * 1e6:9.0f} µs {size:8.0f} "
              f"{per_event * 1e6:10.1f} µs")
    print()
