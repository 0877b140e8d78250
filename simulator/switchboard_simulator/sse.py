"""Server-sent-event framing for each vendor, byte for byte as recorded. Pure functions, no I/O.

Anthropic: ``event: <name>\\ndata: <json>\\n\\n``. The vendor pads most ``data`` objects with a few
spaces before the closing brace (``{"type":"message_stop"   }``), varying per event; `anthropic_frame`
does the same from a fixed cycle of widths when padding is on. The ping is always
``data: {"type": "ping"}`` (with a space after the colon) and is never padded.

OpenAI: ``data: <json>\\n\\n`` per chunk, ending with ``data: [DONE]\\n\\n``.

A stream is a list of frames, ``(bytes, tokens)``: `tokens` is how many output tokens the frame
carries, so the sender can pace token-bearing frames and send the rest at once.
"""

from __future__ import annotations

import itertools

Frame = tuple[bytes, int]

ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
OPENAI_DONE = b"data: [DONE]\n\n"

# Widths seen in the recordings run from 0 to about 16 spaces.
_PAD_WIDTHS = (3, 0, 13, 5, 9, 1, 15, 7, 0, 11, 4, 12, 2, 8, 14, 6, 0, 10)
_pads = itertools.cycle(tuple(b" " * width for width in _PAD_WIDTHS))


def anthropic_frame(event: bytes, data: bytes, *, pad: bool) -> bytes:
    """One Anthropic event; `data` is a compact JSON object."""
    if pad:
        data = data[:-1] + next(_pads) + b"}"
    return b"event: " + event + b"\ndata: " + data + b"\n\n"


def openai_frame(data: bytes) -> bytes:
    """One OpenAI ``data:`` line; `data` is a compact JSON object."""
    return b"data: " + data + b"\n\n"
