"""Incremental Server-Sent Events splitter that keeps every event's bytes as received.

The edge relays events untouched, so an event is its raw bytes (terminating
blank line included) plus the parsed `event:` name and `data:` payload for the
few events the edge must read. Line endings may be LF, CRLF or CR.
"""

from dataclasses import dataclass

_SEPARATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")
_LF_ONLY = (b"\n\n",)


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


class SSEDecoder:
    """Feed it chunks as they arrive; it returns the events each chunk completes.

    Linear in the chunk: each separator is searched for from where its last match was, never from the start
    of every event again (a chunk of many events would cost its length once per event), and a stream without
    a CR in it is searched for LF-LF alone.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        buffer = self._buffer
        separators = _SEPARATORS if b"\r" in buffer else _LF_ONLY
        # The next match of each separator at or after `start`, found lazily (-1: none in the buffer).
        found = [buffer.find(separator) for separator in separators]
        events: list[SSEEvent] = []
        start = 0
        while True:
            best, size = -1, 0
            for position, separator in enumerate(separators):
                index = found[position]
                if index != -1 and index < start:
                    index = found[position] = buffer.find(separator, start)
                if index != -1 and (best == -1 or index < best):
                    best, size = index, len(separator)
            if best == -1:
                break
            end = best + size
            events.append(SSEEvent(bytes(buffer[start:end])))
            start = end
        if start:
            del buffer[:start]
        return events

    def flush(self) -> bytes:
        """Whatever is left over (an unterminated final event)."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return rest
