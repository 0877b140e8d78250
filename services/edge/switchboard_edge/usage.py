"""Token usage as the vendors report it, read out of bodies and streams, and estimated when they could not.

`input_tokens` is always the uncached input (Anthropic's meaning); OpenAI's
prompt_tokens is split into cached and uncached to match.

Cache writes are billed by how long they last: `cache_creation_input_tokens` is
the total, and the 5-minute and 1-hour fields say how it splits (Anthropic's
`usage.cache_creation`). A vendor that gives the total without the split leaves
both at 0; a split that does not fit inside the total is no split at all, so it
is dropped rather than sent on (auth refuses such a record, and with it every
token in it). `reasoning_tokens` is the part of `output_tokens` spent thinking
(OpenAI's `completion_tokens_details.reasoning_tokens`, Anthropic's
`output_tokens_details.thinking_tokens`); it is never billed on top of output.

When a stream ends before the vendor's final usage (the client left, the
upstream broke, the edge stopped), the vendor still bills the account for what
it produced, so the ledger records an estimate rather than nothing: input from
what the vendor already said (Anthropic's message_start) or else from the
request's text, output from the deltas already relayed. The estimate is about
four characters a token, the rule of thumb the vendors publish; the record is
marked as estimated.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0  # of cache_creation_input_tokens
    cache_creation_1h_input_tokens: int = 0  # of cache_creation_input_tokens

    def is_empty(self) -> bool:
        return not (self.input_tokens or self.output_tokens or self.cache_read_input_tokens
                    or self.cache_creation_input_tokens or self.reasoning_tokens)


CHARS_PER_TOKEN = 4
# Request fields that hold opaque data or structure, not text the model reads as tokens.
_OPAQUE_FIELDS = frozenset({"data", "url", "image_url", "file_data", "signature", "type", "role"})


def tokens_for_chars(chars: int) -> int:
    """Estimated tokens for `chars` characters of text (rounded up)."""
    return -(-chars // CHARS_PER_TOKEN)


def _text_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_chars(item) for key, item in value.items() if key not in _OPAQUE_FIELDS)
    if isinstance(value, list):
        return sum(_text_chars(item) for item in value)
    return 0


def estimate_input(body: Any) -> int:
    """Estimated input tokens of a chat request: the text of its system prompt, messages and tools."""
    if not isinstance(body, dict):
        return 0
    chars = sum(_text_chars(body.get(field)) for field in ("system", "messages", "tools", "instructions", "input"))
    return tokens_for_chars(chars)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_ANTHROPIC_COUNTS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_ANTHROPIC_CACHE_SPLIT = (
    ("ephemeral_5m_input_tokens", "cache_creation_5m_input_tokens"),
    ("ephemeral_1h_input_tokens", "cache_creation_1h_input_tokens"),
)


def _set_reported(usage: Usage, field: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        setattr(usage, field, value)


def merge_anthropic(usage: Usage, reported: Any) -> None:
    """Applies an Anthropic `usage` object; later reports (message_delta) override earlier ones,
    field by field: what a report leaves out keeps its earlier value."""
    if not isinstance(reported, dict):
        return
    for field in _ANTHROPIC_COUNTS:
        _set_reported(usage, field, reported.get(field))
    cache_creation = reported.get("cache_creation")
    if isinstance(cache_creation, dict):
        for vendor_field, field in _ANTHROPIC_CACHE_SPLIT:
            _set_reported(usage, field, cache_creation.get(vendor_field))
    output_details = reported.get("output_tokens_details")
    if isinstance(output_details, dict):
        _set_reported(usage, "reasoning_tokens", output_details.get("thinking_tokens"))
    if usage.cache_creation_5m_input_tokens + usage.cache_creation_1h_input_tokens > usage.cache_creation_input_tokens:
        usage.cache_creation_5m_input_tokens = usage.cache_creation_1h_input_tokens = 0


def from_openai(reported: Any) -> Usage:
    """Usage from an OpenAI chat `usage` object."""
    if not isinstance(reported, dict):
        return Usage()
    prompt_details = reported.get("prompt_tokens_details") or {}
    completion_details = reported.get("completion_tokens_details") or {}
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    return Usage(
        input_tokens=max(0, _int(reported.get("prompt_tokens")) - cached),
        output_tokens=_int(reported.get("completion_tokens")),
        cache_read_input_tokens=cached,
        reasoning_tokens=reasoning,
    )
