"""Token usage as the vendors report it, read out of bodies and streams.

`input_tokens` is always the uncached input (Anthropic's meaning); OpenAI's
prompt_tokens is split into cached and uncached to match.
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

    def is_empty(self) -> bool:
        return not (self.input_tokens or self.output_tokens or self.cache_read_input_tokens
                    or self.cache_creation_input_tokens or self.reasoning_tokens)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def merge_anthropic(usage: Usage, reported: Any) -> None:
    """Applies an Anthropic `usage` object; later reports (message_delta) override earlier ones."""
    if not isinstance(reported, dict):
        return
    for field in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        value = reported.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(usage, field, value)


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
