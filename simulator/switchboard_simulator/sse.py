"""Server-sent-event framing for each vendor, byte for byte as recorded. Pure functions, no I/O.

Anthropic: ``event: <name>\\ndata: <json>\\n\\n``. The vendor pads most ``data`` objects with a few
spaces before the closing brace (``{"type":"message_stop"   }``), varying per event; `anthropic_frame`
does the same with widths from a fixed table, indexed by the event's position in the stream. The ping
is always ``data: {"type": "ping"}`` (with a space after the colon) and is never padded.

OpenAI: ``data: <json>\\n\\n`` per chunk, ending with ``data: [DONE]\\n\\n``.

A stream is a list of frames, ``(bytes, tokens)``: `tokens` is how many output tokens the frame
carries, so the sender can pace token-bearing frames and send the rest at once.
"""

from __future__ import annotations

Frame = tuple[bytes, int]

ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
OPENAI_DONE = b"data: [DONE]\n\n"

# Widths seen in the recordings run from 0 to about 16 spaces. The width depends only on the event's
# position in its stream, so two streams of the same shape have the same length.
_PAD_WIDTHS = (3, 0, 13, 5, 9, 1, 15, 7, 0, 11, 4, 12, 2, 8, 14, 6, 0, 10)


def pad_width(position: int) -> int:
    """Spaces before the closing brace of the event at `position` (0-based) in its stream."""
    return _PAD_WIDTHS[position % len(_PAD_WIDTHS)]


def anthropic_frame(event: bytes, data: bytes, pad: int = 0) -> bytes:
    """One Anthropic event; `data` is compact JSON, padded with `pad` spaces before its last brace."""
    if pad:
        data = data[:-1] + b" " * pad + b"}"
    return b"event: " + event + b"\ndata: " + data + b"\n\n"


def openai_frame(data: bytes) -> bytes:
    """One OpenAI ``data:`` line; `data` is a compact JSON object."""
    return b"data: " + data + b"\n\n"
