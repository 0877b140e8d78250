"""Incremental Server-Sent Events splitter that keeps every event's bytes as received.

The edge relays events untouched, so an event is its raw bytes (terminating
blank line included) plus the parsed `event:` name and `data:` payload for the
few events the edge must read. Line endings may be LF, CRLF or CR.
"""

from dataclasses import dataclass

_SEPARATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")


@dataclass(slots=True)
class SSEEvent:
    raw: bytes
    _name: str | None = None
    _data: bytes | None = None

    def _parse(self) -> None:
        name, data = "", []
        for line in self.raw.splitlines():
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        self._name, self._data = name, b"\n".join(data)

    @property
    def name(self) -> str:
        if self._name is None:
            self._parse()
        return self._name or ""

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._parse()
        return self._data or b""


def _next_boundary(buffer: bytes | bytearray, start: int) -> tuple[int, int]:
    """(index, separator length) of the first event end at or after `start`, or (-1, 0)."""
    best, size = -1, 0
    for separator in _SEPARATORS:
        index = buffer.find(separator, start)
        if index != -1 and (best == -1 or index < best):
            best, size = index, len(separator)
    return best, size


class SSEDecoder:
    """Feed it chunks as they arrive; it returns the events each chunk completes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            index, size = _next_boundary(self._buffer, start)
            if index == -1:
                break
            end = index + size
            events.append(SSEEvent(bytes(self._buffer[start:end])))
            start = end
        if start:
            del self._buffer[:start]
        return events

    def flush(self) -> bytes:
        """Whatever is left over (an unterminated final event)."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return rest
