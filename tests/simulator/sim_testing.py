"""Helpers shared by the simulator tests: recorded traffic, SSE splitting, common request bits."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.eventstream import EventStreamBuffer

from switchboard_simulator import defaults

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"

ANTHROPIC_KEY = defaults.ANTHROPIC_KEY
OPENAI_KEY = defaults.OPENAI_KEY
AZURE_KEY = defaults.AZURE_OPENAI_KEY
BEDROCK_API_KEY = defaults.BEDROCK_API_KEY
ANTHROPIC_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": f"Bearer {OPENAI_KEY}"}
CLAUDE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Two names for a pet pelican, be brief"}],
}
CLAUDE_STREAM: dict[str, Any] = {**CLAUDE_BODY, "stream": True}
OPENAI_BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "What is 4200 + 42?"}],
}
OPENAI_STREAM: dict[str, Any] = {**OPENAI_BODY, "stream": True, "stream_options": {"include_usage": True}}

# Formats read off the recordings (the tests check the recorded values match them too).
ANTHROPIC_REQUEST_ID = re.compile(r"^req_011C[1-9A-HJ-NP-Za-km-z]{20}$")
ANTHROPIC_MESSAGE_ID = re.compile(r"^msg_01[1-9A-HJ-NP-Za-km-z]{22}$")
OPENAI_REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")
OPENAI_COMPLETION_ID = re.compile(r"^chatcmpl-[A-Za-z0-9]{29}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass(frozen=True)
class Recorded:
    """One recorded exchange, whichever cassette layout it came from (binary bodies stay bytes)."""

    request_body: str
    status: int
    headers: dict[str, Any]  # lower-cased names, first value
    body: Any
    uri: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def recording(path: str) -> list[Recorded]:
    """The interactions of a copied cassette (vcrpy or go-vcr layout)."""
    data = yaml.safe_load((RECORDINGS / path).read_text())
    out = []
    for interaction in data["interactions"]:
        request, response = interaction["request"], interaction["response"]
        if isinstance(response.get("status"), dict):  # vcrpy
            status = response["status"]["code"]
            body = response["body"]["string"]
        else:  # go-vcr
            status = response["code"]
            body = response["body"]
        raw_headers = response.get("headers") or {}
        headers = {name.lower(): values[0] for name, values in raw_headers.items() if values}
        uri = request.get("uri") or request.get("url") or ""
        out.append(Recorded(request.get("body") or "", status, headers, body, uri))
    return out


def sse_frames(text: str) -> list[str]:
    """A stream cut at its blank-line separators (the trailing empty piece dropped)."""
    assert text.endswith("\n\n"), "an SSE stream ends with a blank line"
    return text[:-2].split("\n\n")


def anthropic_events(text: str) -> list[tuple[str, Any]]:
    """(event name, parsed data) for each ``event:``/``data:`` frame."""
    events = []
    for frame in sse_frames(text):
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((event_line[len("event: "):], json.loads(data_line[len("data: "):])))
    return events


def openai_chunks(text: str) -> list[str]:
    """The payload of every ``data:`` line, in order (``[DONE]`` included)."""
    payloads = []
    for frame in sse_frames(text):
        assert frame.startswith("data: ") and "\n" not in frame
        payloads.append(frame[len("data: "):])
    return payloads


def collapse(names: list[str]) -> list[str]:
    """Runs of the same event name folded into one, to compare shapes of streams of different lengths."""
    return [name for index, name in enumerate(names) if index == 0 or names[index - 1] != name]


@dataclass(frozen=True)
class EventFrame:
    """One AWS event-stream message, decoded by botocore."""

    headers: dict[str, Any]
    header_names: list[str]
    payload: bytes
    headers_length: int

    def chunk(self) -> Any:
        """The Anthropic event inside a Bedrock ``chunk`` payload."""
        return json.loads(base64.b64decode(json.loads(self.payload)["bytes"]))


def event_frames(data: bytes) -> list[EventFrame]:
    """An event-stream body cut into messages with botocore's own decoder (CRCs checked); the raw
    header names are read from the bytes too, since botocore's dict does not keep their order."""
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    frames, offset = [], 0
    for message in buffer:
        headers_length = message.prelude.headers_length
        raw = data[offset + 12: offset + 12 + headers_length]
        names, at = [], 0
        while at < len(raw):
            size = raw[at]
            names.append(raw[at + 1: at + 1 + size].decode())
            value_length = int.from_bytes(raw[at + 2 + size: at + 4 + size], "big")
            at += 4 + size + value_length
        frames.append(EventFrame(message.headers, names, message.payload, headers_length))
        offset += message.prelude.total_length
    assert offset == len(data), "no bytes after the last message"
    return frames


def recorded_frame_headers(path: str) -> list[list[tuple[str, str]]]:
    """The header lines of every frame in a ``.frames.txt`` decode, in their recorded order."""
    frames: list[list[tuple[str, str]]] = []
    for line in (RECORDINGS / path).read_text().splitlines():
        if line.startswith("frame "):
            frames.append([])
        elif line.startswith("  :"):
            name, _, value = line.strip().partition(": ")
            frames[-1].append((name, value))
    return frames
