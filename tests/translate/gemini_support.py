"""Shared helpers of the Gemini-direction tests: recordings, golden files, format checkers."""

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import yaml

from switchboard_edge.sse import SSEDecoder, SSEEvent
from switchboard_simulator.vendors import gemini as gemini_vendor
from switchboard_simulator.vendors.gemini_errors import GeminiError

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
GOLDEN = Path(__file__).resolve().parent / "golden"


def recording(vendor: str, name: str, interaction: int = 0) -> dict[str, Any]:
    data: Any = yaml.safe_load((RECORDINGS / vendor / name).read_text())
    return dict(data["interactions"][interaction])


def response_text(vendor: str, name: str, interaction: int = 0) -> str:
    body = recording(vendor, name, interaction)["response"]["body"]
    return str(body["string"] if isinstance(body, dict) else body)


def request_body(vendor: str, name: str, interaction: int = 0) -> Any:
    body = recording(vendor, name, interaction)["request"]["body"]
    return orjson.loads(body["string"] if isinstance(body, dict) else body)


def events_of(text: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(text.encode())
    rest = decoder.flush()
    if rest.strip():
        events += decoder.feed(rest + b"\n\n")
    return events


def golden(module: str, name: str) -> Any:
    return orjson.loads((GOLDEN / module / f"{name}.json").read_bytes())


def cases(module: str, prefix: str) -> list[str]:
    return sorted(path.stem for path in (GOLDEN / module).glob(f"{prefix}-*.json"))


def data(payload: Any) -> SSEEvent:
    raw = orjson.dumps(payload)
    return SSEEvent(b"data: " + raw + b"\r\n\r\n")


def named(payload: dict[str, Any]) -> SSEEvent:
    raw = orjson.dumps(payload)
    return SSEEvent(b"event: " + payload["type"].encode() + b"\ndata: " + raw + b"\n\n")


def as_json(events: list[SSEEvent]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        if event.data == b"[DONE]":
            out.append("[DONE]")
        else:
            value = orjson.loads(event.data)
            out.append({"event": event.name, "data": value} if event.name else value)
    return out


# ---------------------------------------------------------------------------------------------------------
# A generateContent request as Google documents it (the simulator checks only part of it).

_PART_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought", "thoughtSignature",
                "executableCode", "codeExecutionResult", "videoMetadata"}
_DATA_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_GENERATION_FIELDS = {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "candidateCount",
                      "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
                      "frequencyPenalty", "responseLogprobs", "logprobs", "thinkingConfig", "responseModalities"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


def gemini_problem(body: Any) -> str | None:
    """The first way `body` breaks Gemini's documented GenerateContentRequest, or None."""
    if not isinstance(body, dict):
        return "not an object"
    exchange = SimpleNamespace(raw=orjson.dumps(body), body=body, bad_json=None)
    try:
        gemini_vendor.parse_body(exchange, "json", gemini_vendor.GENERATE_FIELDS)  # type: ignore[arg-type]
        contents = gemini_vendor.check_contents(body.get("contents"), "v1beta", "json")
        gemini_vendor.thinking(body.get("generationConfig") or {}, 24, "json")
    except GeminiError as error:
        return str(error)
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"contents[{index}] without a role"
        for part in content["parts"]:
            if not isinstance(part, dict) or set(part) - _PART_FIELDS:
                return f"contents[{index}] part {part!r} has unknown fields"
            if len(set(part) & _DATA_FIELDS) != 1:
                return f"contents[{index}] part {part!r} must hold exactly one kind of data"
            if "text" in part and not isinstance(part["text"], str):
                return "text must be a string"
            if "inlineData" in part and set(part["inlineData"]) != {"mimeType", "data"}:
                return "inlineData needs mimeType and data"
            if "fileData" in part and not isinstance(part["fileData"].get("fileUri"), str):
                return "fileData needs fileUri"
            call = part.get("functionCall")
            if call is not None and (not isinstance(call.get("name"), str) or not isinstance(call.get("args", {}), dict)
                                     or set(call) - {"name", "args", "id"}):
                return "functionCall needs a name and object args"
            answer = part.get("functionResponse")
            if answer is not None and (not isinstance(answer.get("name"), str)
                                       or not isinstance(answer.get("response"), dict)):
                return "functionResponse needs a name and an object response"
            if "thoughtSignature" in part and not isinstance(part["thoughtSignature"], str):
                return "thoughtSignature must be a string"
    system = body.get("systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not parts or not all(isinstance(p, dict) and set(p) == {"text"} for p in parts):
            return "systemInstruction must hold text parts"
    for tool in body.get("tools") or ():
        for declaration in tool.get("functionDeclarations") or ():
            if not _NAME.match(declaration.get("name", "")):
                return f"bad function name {declaration.get('name')!r}"
            if set(declaration) - {"name", "description", "parameters", "parametersJsonSchema", "response",
                                   "responseJsonSchema", "behavior"}:
                return "unknown FunctionDeclaration field"
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return "parameters and parametersJsonSchema both set"
    config = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if config is not None:
        if config.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            return "bad functionCallingConfig.mode"
        if config.get("allowedFunctionNames") and config["mode"] != "ANY":
            return "allowedFunctionNames only with mode ANY"
    generation = body.get("generationConfig") or {}
    if set(generation) - _GENERATION_FIELDS:
        return f"unknown generationConfig fields {set(generation) - _GENERATION_FIELDS}"
    if "responseJsonSchema" in generation and generation.get("responseMimeType") != "application/json":
        return "responseJsonSchema needs responseMimeType application/json"
    return None


# ---------------------------------------------------------------------------------------------------------
# Client stream grammars


def check_chat_stream(events: list[SSEEvent], *, usage: bool) -> list[dict[str, Any]]:
    """A valid chat.completion.chunk stream: shapes, one finish_reason per choice, usage chunk, [DONE] last."""
    assert events and events[-1].data == b"[DONE]"
    assert sum(event.data == b"[DONE]" for event in events) == 1
    chunks = [orjson.loads(event.data) for event in events[:-1]]
    finished: dict[int, int] = {}
    ids = {chunk["id"] for chunk in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-")
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert isinstance(chunk["created"], int) and isinstance(chunk["model"], str)
        for choice in chunk["choices"]:
            assert choice["index"] not in finished, "content after finish_reason"
            assert set(choice["delta"]) <= {"role", "content", "reasoning_content", "tool_calls", "refusal"}
            for call in choice["delta"].get("tool_calls", ()):
                assert isinstance(call["index"], int)
                assert isinstance(call["function"]["arguments"], str)
            if choice["finish_reason"] is not None:
                finished[choice["index"]] = 1
    assert finished, "no finish_reason"
    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    if usage:
        assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and chunks[-1]["choices"] == []
        assert usage_chunks[0]["usage"]["total_tokens"] >= usage_chunks[0]["usage"]["prompt_tokens"]
    else:
        assert not usage_chunks
    return chunks


def check_anthropic_stream(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """Claude Code's stream rules: one message_start first, blocks one at a time in index order,
    message_delta then exactly one message_stop last."""
    payloads = [orjson.loads(event.data) for event in events]
    names = [event.name for event in events]
    assert names == [payload["type"] for payload in payloads]
    body = [n for n in names if n != "ping"]
    assert body[0] == "message_start" and names.count("message_start") == 1
    assert body[-1] == "message_stop" and names.count("message_stop") == 1
    assert body[-2] == "message_delta" and names.count("message_delta") == 1
    start = payloads[names.index("message_start")]["message"]
    assert start["usage"]["input_tokens"] > 0 and start["usage"]["output_tokens"] >= 1
    assert start["id"].startswith("msg_") and start["content"] == [] and start["role"] == "assistant"
    open_index: int | None = None
    next_index = 0
    kinds: dict[int, str] = {}
    tool_json: dict[int, str] = {}
    for payload in payloads:
        kind = payload["type"]
        if kind == "content_block_start":
            assert open_index is None and payload["index"] == next_index
            open_index = next_index
            next_index += 1
            block = payload["content_block"]
            kinds[open_index] = block["type"]
            if block["type"] == "tool_use":
                assert block["input"] == {} and block["id"].startswith("toolu_")
                tool_json[open_index] = ""
            if block["type"] == "text":
                assert block["text"] == ""
            if block["type"] == "thinking":
                assert block["thinking"] == "" and block.get("signature", "") == ""
        elif kind == "content_block_delta":
            assert payload["index"] == open_index
            delta = payload["delta"]
            expected = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking",
                        "input_json_delta": "tool_use"}[delta["type"]]
            assert kinds[payload["index"]] == expected
            if delta["type"] == "input_json_delta":
                tool_json[payload["index"]] += delta["partial_json"]
        elif kind == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
        elif kind == "message_delta":
            assert open_index is None
            assert payload["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use", "stop_sequence",
                                                       "refusal", "pause_turn")
            assert payload["usage"]["output_tokens"] >= 0
    for text in tool_json.values():
        assert isinstance(orjson.loads(text), dict)
    return payloads


def check_gemini_stream(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """A valid Gemini SSE stream: `data:` GenerateContentResponse chunks, the last with finishReason and usage."""
    assert events
    chunks = []
    for event in events:
        assert event.name == "" and event.raw.startswith(b"data: ")
        chunks.append(orjson.loads(event.data))
    for chunk in chunks[:-1]:
        for candidate in chunk.get("candidates", ()):
            assert "finishReason" not in candidate
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"]
    usage = last["usageMetadata"]
    assert usage["totalTokenCount"] >= usage["promptTokenCount"]
    for chunk in chunks:
        assert isinstance(chunk["responseId"], str) and isinstance(chunk["modelVersion"], str)
        for candidate in chunk.get("candidates", ()):
            assert candidate["content"]["role"] == "model"
            for part in candidate["content"]["parts"]:
                assert set(part) & {"text", "functionCall"}
    return chunks
