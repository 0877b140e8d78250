"""The translator contract: request, whole answer, stream and errors, for one (client, upstream) format pair.

The relay hands a translator the client's parsed body and gets the upstream body back; it hands each
upstream answer (one JSON body, or the stream event by event, or an error body) back to be turned into the
client's format. A translator is stateless and shared; a stream's state lives in its `StreamConverter`, one
per attempt.

What a target cannot express is either mapped (the module's docstring says how) or refused with an
`InvalidRequest` (400, in the client's format) naming the field; nothing is dropped silently.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import error_bodies


@dataclass(frozen=True, slots=True)
class ClientTool:
    """A tool as the client declared it, found by the name the upstream knows it by (`responses_tools`)."""

    name: str
    namespace: str | None = None
    custom: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """Where a translated request goes, and what the client asked for."""

    # The upstream platform id (`switchboard_common.platforms`): reasoning signatures are sealed with it.
    platform: str
    # The model as the client named it (platform prefix removed); translated answers carry this name.
    model: str
    stream: bool
    # The gateway's estimate of the prompt's tokens, for a client format that says input tokens before the
    # upstream does (Anthropic's `message_start`); the upstream's own count replaces it when it comes.
    input_estimate: int = 0
    # An OpenAI chat client's `stream_options.include_usage`: its stream ends with a usage chunk.
    include_usage: bool = False
    # The client's tools by upstream name, for answers that must say which kind of tool was called; None when
    # the translator does not need them (`Translator.answer_target`).
    tools: Mapping[str, ClientTool] | None = None


@dataclass(frozen=True, slots=True)
class Conversion:
    """A translated request: the body in the upstream's format and the client headers it may still see
    (the platform's own allowlist applies on top)."""

    body: dict[str, Any]
    headers: dict[str, str]


class StreamConverter(ABC):
    """Turns one upstream stream into the client's stream, event by event. Owns the stream's state: open
    blocks and their indexes, tool calls being assembled, usage seen so far, whether the end was sent."""

    @abstractmethod
    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        """One upstream event (in the upstream's format) in; the client's events it completes out (maybe none).
        An upstream in-stream error becomes the client format's error event."""

    def finish(self) -> list[SSEEvent]:
        """The upstream stream ended where its format says it ends: whatever the client still needs to see
        its own proper end (called once, only then; a cut stream gets the relay's error event instead)."""
        return []


class Translator(ABC):
    client: ClientFormat
    upstream: ClientFormat

    @abstractmethod
    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        """The client's request body (already parsed; not modified) as the upstream's; `InvalidRequest`
        naming the field for what the upstream cannot express."""

    @abstractmethod
    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        """A successful whole upstream answer as the client's."""

    @abstractmethod
    def stream(self, target: Target) -> StreamConverter:
        """A fresh converter for one streamed answer."""

    def answer_target(self, body: Mapping[str, Any], target: Target) -> Target:
        """The target with what this direction's answers need to know from the client's request."""
        return target

    def error(self, status: int, payload: bytes) -> bytes:
        """An upstream error body (already in the upstream platform's client format) in the client's format."""
        return error_bodies.convert(payload, status, self.upstream, self.client)


def data_event(payload: Any) -> SSEEvent:
    """An SSE event with only a `data:` line (OpenAI chat, Gemini)."""
    data = orjson.dumps(payload)
    return SSEEvent(b"data: " + data + b"\n\n", "", data)


def named_event(name: str, payload: Any) -> SSEEvent:
    """An SSE event with `event:` and `data:` lines (Anthropic, Responses)."""
    data = orjson.dumps(payload)
    return SSEEvent(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n", name, data)


def parsed(event: SSEEvent) -> Any:
    """An upstream event's JSON data, or None when it is not JSON (OpenAI's `[DONE]`)."""
    try:
        return orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None


OPENAI_DONE = SSEEvent(b"data: [DONE]\n\n", "", b"[DONE]")
