"""Anthropic Messages upstreams (claude-console, claude-ccr): x-api-key auth, SSE passthrough."""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.base import StreamTap, forwardable, with_query
from switchboard_edge.usage import Usage, merge_anthropic

_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "x-app", "x-claude-code-session-id"})
_HEADER_PREFIXES = ("anthropic-", "x-stainless-")


_DELTA_TEXT_FIELDS = ("text", "partial_json", "thinking")


def _object(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class AnthropicStreamTap(StreamTap):
    """Input from message_start, final usage from message_delta, complete on message_stop. Hides nothing."""

    def observe(self, event: SSEEvent) -> bool:
        name = event.name
        if name == "content_block_delta":
            delta = _object(event.data).get("delta")
            if isinstance(delta, dict):
                self.output_deltas += 1
                for field in _DELTA_TEXT_FIELDS:
                    value = delta.get(field)
                    if isinstance(value, str):
                        self.output_chars += len(value)
        elif name == "message_start":
            message = _object(event.data).get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            merge_anthropic(self.usage, usage)
            self.input_reported = isinstance(usage, dict) and "input_tokens" in usage
        elif name == "message_delta":
            usage = _object(event.data).get("usage")
            merge_anthropic(self.usage, usage)
            self.final_usage = isinstance(usage, dict) and "output_tokens" in usage
        elif name == "message_stop":
            self.complete = True
        elif name == "error":
            self.errored = True
        return True


class AnthropicAdapter:
    def url(self, account: router_pb2.Account, query: str) -> str:
        return with_query(f"{account.base_url}/v1/messages", query)

    def headers(self, account: router_pb2.Account, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = forwardable(client_headers, _HEADER_NAMES, _HEADER_PREFIXES)
        headers["content-type"] = "application/json"
        headers.update(account.headers)
        headers["x-api-key"] = account.credential.api_key
        return headers

    def prepare(self, body: Mapping[str, Any], upstream_model: str) -> dict[str, Any] | None:
        if body.get("model") == upstream_model:
            return None
        return {**body, "model": upstream_model}

    def usage(self, body: Any) -> Usage:
        usage = Usage()
        if isinstance(body, dict):
            merge_anthropic(usage, body.get("usage"))
        return usage

    def tap(self, body: Mapping[str, Any]) -> AnthropicStreamTap:
        return AnthropicStreamTap()

    def stream_error(self, error_payload: dict[str, Any]) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error_payload) + b"\n\n"
