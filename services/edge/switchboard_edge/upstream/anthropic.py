"""Anthropic Messages upstreams (claude-console, claude-ccr): x-api-key auth, SSE passthrough."""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.base import (
    Call,
    Platform,
    StreamTap,
    UpstreamRequest,
    event_object,
    forwardable,
    with_query,
)
from switchboard_edge.usage import Usage, merge_anthropic

_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "x-app", "x-claude-code-session-id"})
_HEADER_PREFIXES = ("anthropic-", "x-stainless-")


_DELTA_TEXT_FIELDS = ("text", "partial_json", "thinking")


class AnthropicStreamTap(StreamTap):
    """Input from message_start, final usage from message_delta, complete on message_stop, the vendor's
    `event: error` (Bedrock's exception frames arrive as one too). Hides nothing."""

    def observe(self, event: SSEEvent) -> bool:
        name = event.name
        if name == "content_block_delta":
            delta = event_object(event.data).get("delta")
            if isinstance(delta, dict):
                self.output_deltas += 1
                for field in _DELTA_TEXT_FIELDS:
                    value = delta.get(field)
                    if isinstance(value, str):
                        self.output_chars += len(value)
        elif name == "message_start":
            message = event_object(event.data).get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            merge_anthropic(self.usage, usage)
            self.input_reported = isinstance(usage, dict) and "input_tokens" in usage
        elif name == "message_delta":
            usage = event_object(event.data).get("usage")
            merge_anthropic(self.usage, usage)
            self.final_usage = isinstance(usage, dict) and "output_tokens" in usage
        elif name == "message_stop":
            self.complete = True
        elif name == "error":
            self.failed(event_object(event.data))
        return True


ANTHROPIC_VERSION = "2023-06-01"
# How Anthropic (and Bedrock, for Claude) refuses a thinking block signed by another organisation.
REFUSED_SIGNATURE = b"Invalid `signature` in `thinking` block"
_PATHS = {"chat": "/v1/messages", "count_tokens": "/v1/messages/count_tokens"}


def anthropic_url(call: Call) -> str:
    return with_query(f"{call.account.base_url}{_PATHS[call.operation]}", call.query)


def anthropic_body(call: Call) -> bytes:
    """The client's bytes, unless the model must change."""
    if call.body.get("model") == call.upstream_model:
        return call.raw
    return orjson.dumps({**call.body, "model": call.upstream_model})


def anthropic_headers(call: Call) -> dict[str, str]:
    """The client's Anthropic headers, the account's extra headers, and a default `anthropic-version`."""
    headers = forwardable(call.client_headers, _HEADER_NAMES, _HEADER_PREFIXES)
    headers["content-type"] = "application/json"
    # The contract's own example sends none; Anthropic requires one.
    headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
    headers.update(call.account.headers)
    return headers


class AnthropicMessages(Platform):
    """Anthropic's Messages API with an API key (claude-console; claude-ccr, Anthropic-compatible)."""

    client_format = ClientFormat.ANTHROPIC
    operations = frozenset(_PATHS)

    def __init__(self, platform_id: str) -> None:
        self.id = platform_id

    def build(self, call: Call) -> UpstreamRequest:
        headers = anthropic_headers(call)
        headers["x-api-key"] = call.account.credential.api_key
        return UpstreamRequest(anthropic_url(call), headers, anthropic_body(call))

    def usage(self, body: Any) -> Usage:
        usage = Usage()
        if isinstance(body, dict):
            merge_anthropic(usage, body.get("usage"))
        return usage

    def refuses_reasoning(self, status: int, payload: bytes) -> bool:
        return status == 400 and REFUSED_SIGNATURE in payload

    def tap(self, body: Mapping[str, Any]) -> AnthropicStreamTap:
        return AnthropicStreamTap()
