"""Shared helpers for the Responses ⇄ Anthropic translator tests: recordings, golden files, stream grammar checks."""

import gzip
from pathlib import Path
from typing import Any

import orjson
import yaml

from switchboard_edge.sse import SSEDecoder, SSEEvent

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
GOLDEN = Path(__file__).resolve().parent / "golden"


def recording(vendor: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((RECORDINGS / vendor / name).read_text())
    return data["interactions"][0]  # type: ignore[no-any-return]


def response_text(vendor: str, name: str) -> str:
    body = recording(vendor, name)["response"]["body"]["string"]
    if isinstance(body, bytes):
        body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        return body.decode()
    return str(body)


def events_of(text: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(text.encode())
    rest = decoder.flush()
    if rest.strip():
        events += decoder.feed(rest + b"\n\n")
    return events


def golden(module: str, name: str) -> Any:
    return orjson.loads((GOLDEN / module / name).read_bytes())


def as_json(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [{"event": event.name, "data": orjson.loads(event.data)} for event in events]


def check_responses_stream(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """The Responses stream grammar: created, in_progress, items added/done in output order with matching
    indexes, sequence numbers from 0, one terminal event last."""
    datas = [orjson.loads(event.data) for event in events]
    assert [event.name for event in events] == [data["type"] for data in datas]
    assert [data["sequence_number"] for data in datas] == list(range(len(datas)))
    assert datas[0]["type"] == "response.created" and datas[1]["type"] == "response.in_progress"
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert datas[-1]["type"] in terminal
    assert sum(data["type"] in terminal for data in datas) == 1
    open_index: int | None = None
    done: list[dict[str, Any]] = []
    for data in datas[2:-1]:
        if data["type"] == "response.output_item.added":
            assert open_index is None and data["output_index"] == len(done)
            open_index = data["output_index"]
        elif data["type"] == "response.output_item.done":
            assert data["output_index"] == open_index
            done.append(data["item"])
            open_index = None
        else:
            assert data["output_index"] == open_index
    assert open_index is None
    if datas[-1]["type"] != "response.failed":
        assert datas[-1]["response"]["output"] == done
        usage = datas[-1]["response"]["usage"]
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    return datas


def check_anthropic_stream(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """Claude Code's stream rules: one message_start first, blocks opened and closed in index order one at a
    time, message_delta with a stop_reason then exactly one message_stop last."""
    datas = [orjson.loads(event.data) for event in events if event.name != "ping"]
    names = [event.name for event in events if event.name != "ping"]
    assert names == [data["type"] for data in datas]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert datas[0]["message"]["usage"]["input_tokens"] > 0
    assert datas[0]["message"]["usage"]["output_tokens"] >= 1
    assert names[-1] == "message_stop" and names.count("message_stop") == 1
    assert names[-2] == "message_delta" and names.count("message_delta") == 1
    assert datas[-2]["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal")
    open_index: int | None = None
    next_index = 0
    arguments: dict[int, str] = {}
    for data in datas[1:-2]:
        if data["type"] == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index = next_index
            next_index += 1
            if data["content_block"]["type"] == "tool_use":
                assert data["content_block"]["input"] == {}
                arguments[data["index"]] = ""
        elif data["type"] == "content_block_delta":
            assert data["index"] == open_index
            if data["delta"]["type"] == "input_json_delta":
                arguments[data["index"]] += data["delta"]["partial_json"]
        elif data["type"] == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        else:
            raise AssertionError(f"unexpected {data['type']}")
    assert open_index is None
    for text in arguments.values():
        assert isinstance(orjson.loads(text or "{}"), dict)
    return datas
