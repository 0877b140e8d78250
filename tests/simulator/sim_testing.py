"""Helpers shared by the simulator tests: recorded traffic, SSE splitting, common request bits."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"

ANTHROPIC_KEY = "sk-sim-anthropic"
OPENAI_KEY = "sk-sim-openai"
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
    """One recorded exchange, whichever cassette layout it came from."""

    request_body: str
    status: int
    headers: dict[str, str]  # lower-cased names, first value
    body: str

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
        out.append(Recorded(request.get("body") or "", status, headers, body))
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
