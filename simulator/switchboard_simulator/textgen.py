"""What the simulated model "says" and how many tokens everything counts as.

Reply text is deterministic and costs nothing per request: a fixed cycle of pangrams, cut into word
pieces (a word with its leading space, or one punctuation mark). One piece is one output token, so a
reply of N tokens is exactly N pieces (about 4.6 characters each), ``max_tokens`` truncates at a piece
boundary, and every streamed delta carries whole tokens.

Request text is estimated at 4 characters per token: every string value found under the request's
``messages`` (roles included, which stands in for per-message overhead), ``system`` and ``tools`` is
counted, rounded up, with a minimum of 1.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump!",
    "Sphinx of black quartz, judge my vow.",
)
CHARS_PER_TOKEN = 4

_PIECE = re.compile(r" ?[A-Za-z0-9']+| ?[^A-Za-z0-9' ]")
# One pass over SENTENCES is 35 pieces, the default reply length (config.reply_tokens).
_CYCLE = tuple(_PIECE.findall(" " + " ".join(SENTENCES)))


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply of exactly `tokens` output tokens."""

    text: str
    tokens: int


def _pieces(tokens: int) -> list[str]:
    pieces = list(itertools.islice(itertools.cycle(_CYCLE), tokens))
    if pieces:
        pieces[0] = pieces[0].lstrip(" ")
    return pieces


@lru_cache(maxsize=512)
def reply(tokens: int) -> Reply:
    """The reply of exactly `tokens` output tokens (cached: only a few lengths occur)."""
    return Reply("".join(_pieces(tokens)), tokens)


@lru_cache(maxsize=512)
def chunks(tokens: int, per_chunk: int) -> tuple[tuple[bytes, int], ...]:
    """The reply cut into stream deltas of `per_chunk` tokens: (JSON string bytes, token count) pairs."""
    pieces = _pieces(tokens)
    step = max(1, per_chunk)
    out = []
    for start in range(0, len(pieces), step):
        group = pieces[start : start + step]
        out.append((orjson.dumps("".join(group)), len(group)))
    return tuple(out)


def text_chars(value: Any) -> int:
    """Characters in every string value nested in `value` (dict keys and numbers do not count)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_chars(item) for item in value.values())
    if isinstance(value, list):
        return sum(text_chars(item) for item in value)
    return 0


def estimate_tokens(*parts: Any) -> int:
    """Input tokens for the given request parts: ceil(chars / 4), at least 1."""
    chars = sum(text_chars(part) for part in parts)
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def asks_to_call(text: str, name: str) -> bool:
    """Whether a user turn's last text asks for this tool: it starts "call <name>" or "use the <name>".

    Deliberately narrow: real clients (Claude Code's reminders, say) mention tool names all the time, and
    a simulated model that called every tool it saw named would send them into tool loops."""
    lowered, wanted = text.strip().lower(), name.lower()
    return lowered.startswith((f"call {wanted}", f"use the {wanted}", f"use {wanted}"))
