"""How a relayed stream reaches the client: SSE events as the upstream sent them, or Gemini's JSON array.

Upstream streams are always SSE (the platforms ask for it). Gemini's `streamGenerateContent` without
`alt=sse` answers one JSON array instead, each element a GenerateContentResponse sent as it is made:
`[{…}` then `,\r\n{…}` per chunk and a closing `]`. A framing turns each upstream event into the
client's bytes, frames a gateway error the same way, and closes the stream.
"""

from collections.abc import Mapping

import orjson

from switchboard_edge.errors import ClientFormat, SwitchboardError, error_payload, stream_error_event
from switchboard_edge.sse import SSEEvent


class StreamFraming:
    """Events relayed byte for byte (the SSE framing every route uses by default)."""

    # The client's content type; None keeps the upstream's (SSE).
    content_type: str | None = None

    def event(self, event: SSEEvent) -> bytes:
        return event.raw

    def error(self, error: SwitchboardError, client_format: ClientFormat) -> bytes:
        return stream_error_event(error, client_format)

    def end(self) -> bytes:
        return b""


class JSONArrayFraming(StreamFraming):
    """Each event's JSON payload as one element of a JSON array sent incrementally."""

    content_type = "application/json; charset=UTF-8"

    def __init__(self) -> None:
        self._started = False

    def _element(self, data: bytes) -> bytes:
        prefix = b",\r\n" if self._started else b"["
        self._started = True
        return prefix + data

    def event(self, event: SSEEvent) -> bytes:
        data = event.data.strip()
        return self._element(data) if data else b""

    def error(self, error: SwitchboardError, client_format: ClientFormat) -> bytes:
        return self._element(orjson.dumps(error_payload(error, client_format)))

    def end(self) -> bytes:
        return b"]" if self._started else b"[]"


def sse(query: Mapping[str, str]) -> StreamFraming:
    return StreamFraming()


def gemini_stream(query: Mapping[str, str]) -> StreamFraming:
    """`alt=sse` asks for SSE; without it Gemini streams a JSON array."""
    return StreamFraming() if query.get("alt") == "sse" else JSONArrayFraming()
