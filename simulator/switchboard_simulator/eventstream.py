"""AWS event-stream framing (``application/vnd.amazon.eventstream``), encoding only. Pure, no I/O.

botocore ships the decoder (``botocore.eventstream.EventStreamBuffer``) but no encoder, so this is the
small other half. A message is::

    total length (uint32) | headers length (uint32) | prelude CRC32 | headers | payload | message CRC32

all big-endian; each header is name length (uint8), name, value type (7 = string), value length
(uint16), value. Header order is kept as given: Bedrock sends ``:event-type``, ``:content-type``,
``:message-type`` for events and ``:exception-type``, ``:content-type``, ``:message-type`` for
exceptions (vendor-recordings/bedrock/*.frames.txt).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

_STRING = 7
_PRELUDE = struct.Struct(">II")


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value


def encode(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string `headers` (in this order) and `payload`."""
    encoded = b"".join(_header(name, value) for name, value in headers)
    total = _PRELUDE.size + 4 + len(encoded) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """An ``event`` message, e.g. Bedrock's ``chunk``."""
    return encode(
        ((":event-type", event_type), (":content-type", content_type), (":message-type", "event")), payload
    )


def exception(exception_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """An ``exception`` message, e.g. ``modelStreamErrorException`` or ``throttlingException``."""
    return encode(
        ((":exception-type", exception_type), (":content-type", content_type), (":message-type", "exception")),
        payload,
    )
