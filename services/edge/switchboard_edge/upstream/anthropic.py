"""Anthropic Messages upstreams (claude-console, claude-ccr): x-api-key auth, SSE passthrough."""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.base import forwardable, with_query
from switchboard_edge.usage import Usage, merge_anthropic

_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "x-app", "x-claude-code-session-id"})
_HEADER_PREFIXES = ("anthropic-", "x-stainless-")


class AnthropicStreamTap:
    """Usage from message_start and message_delta; complete on message_stop. Hides nothing."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.complete = False

    def observe(self, event: SSEEvent) -> bool:
        name = event.name
        if name == "message_start":
            message = orjson.loads(event.data).get("message") or {}
            merge_anthropic(self.usage, message.get("usage"))
        elif name == "message_delta":
            merge_anthropic(self.usage, orjson.loads(event.data).get("usage"))
        elif name == "message_stop":
            self.complete = True
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
