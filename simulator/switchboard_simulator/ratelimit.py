"""Rate-limit headers as the vendors send them. The simulator never limits: it reports a nearly full bucket.

Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
with RFC 3339 reset times. OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` with
duration resets (``12ms``, ``0s``). Azure OpenAI: ``x-ratelimit-{limit,remaining}-{requests,tokens}``,
and on streams also ``-renewalperiod-`` and ``-reset-`` in plain seconds. Bedrock sends none.
A 429 fault reports the requests bucket as empty.
"""

from __future__ import annotations

import time

ANTHROPIC_REQUESTS = 4000
ANTHROPIC_INPUT_TOKENS = 2_000_000
ANTHROPIC_OUTPUT_TOKENS = 400_000
OPENAI_REQUESTS = 5000
OPENAI_TOKENS = 800_000
AZURE_REQUESTS = 2500
AZURE_TOKENS = 250_000

_stamp_second = -1
_stamp = ""


def rfc3339_now() -> str:
    """The current UTC time as ``2026-02-17T23:44:11Z``, formatted at most once per second."""
    global _stamp_second, _stamp
    now = int(time.time())
    if now != _stamp_second:
        _stamp_second = now
        _stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return _stamp


def anthropic(headers: dict[str, str], input_tokens: int, *, exhausted: bool = False) -> None:
    """Adds the anthropic-ratelimit-* headers to `headers`."""
    reset = rfc3339_now()
    tokens_limit = ANTHROPIC_INPUT_TOKENS + ANTHROPIC_OUTPUT_TOKENS
    headers["anthropic-ratelimit-input-tokens-limit"] = str(ANTHROPIC_INPUT_TOKENS)
    headers["anthropic-ratelimit-input-tokens-remaining"] = str(max(0, ANTHROPIC_INPUT_TOKENS - input_tokens))
    headers["anthropic-ratelimit-input-tokens-reset"] = reset
    headers["anthropic-ratelimit-output-tokens-limit"] = str(ANTHROPIC_OUTPUT_TOKENS)
    headers["anthropic-ratelimit-output-tokens-remaining"] = str(ANTHROPIC_OUTPUT_TOKENS)
    headers["anthropic-ratelimit-output-tokens-reset"] = reset
    headers["anthropic-ratelimit-requests-limit"] = str(ANTHROPIC_REQUESTS)
    headers["anthropic-ratelimit-requests-remaining"] = "0" if exhausted else str(ANTHROPIC_REQUESTS - 1)
    headers["anthropic-ratelimit-requests-reset"] = reset
    headers["anthropic-ratelimit-tokens-limit"] = str(tokens_limit)
    headers["anthropic-ratelimit-tokens-remaining"] = str(max(0, tokens_limit - input_tokens))
    headers["anthropic-ratelimit-tokens-reset"] = reset


def openai(headers: dict[str, str], prompt_tokens: int, *, retry_after: int | None = None) -> None:
    """Adds the x-ratelimit-* headers; with `retry_after` the requests bucket is empty until then."""
    headers["x-ratelimit-limit-requests"] = str(OPENAI_REQUESTS)
    headers["x-ratelimit-limit-tokens"] = str(OPENAI_TOKENS)
    headers["x-ratelimit-remaining-requests"] = "0" if retry_after is not None else str(OPENAI_REQUESTS - 1)
    headers["x-ratelimit-remaining-tokens"] = str(max(0, OPENAI_TOKENS - prompt_tokens))
    headers["x-ratelimit-reset-requests"] = f"{retry_after}s" if retry_after is not None else "12ms"
    headers["x-ratelimit-reset-tokens"] = "0s"


def azure(headers: dict[str, str], prompt_tokens: int, *, stream: bool = False, retry_after: int | None = None) -> None:
    """Adds Azure's x-ratelimit-* headers (the stream form has renewal periods and resets too)."""
    headers["x-ratelimit-limit-requests"] = str(AZURE_REQUESTS)
    headers["x-ratelimit-limit-tokens"] = str(AZURE_TOKENS)
    headers["x-ratelimit-remaining-requests"] = "0" if retry_after is not None else str(AZURE_REQUESTS - 1)
    headers["x-ratelimit-remaining-tokens"] = str(max(0, AZURE_TOKENS - prompt_tokens))
    if stream or retry_after is not None:
        headers["x-ratelimit-renewalperiod-requests"] = "60"
        headers["x-ratelimit-renewalperiod-tokens"] = "60"
        headers["x-ratelimit-reset-requests"] = str(retry_after or 0)
        headers["x-ratelimit-reset-tokens"] = "0"
