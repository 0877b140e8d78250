"""OpenAI chat completions upstreams (openai): Bearer auth, SSE passthrough.

Streams always ask the upstream for a usage chunk so every token is accounted
for; when the client did not ask for it, that chunk is held back.
"""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.base import StreamTap, forwardable, with_query
from switchboard_edge.usage import Usage, from_openai

_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "openai-beta"})
_HEADER_PREFIXES = ("x-stainless-",)


def _wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _delta_chars(delta: Any) -> int:
    """Generated characters in one choice delta: content, refusal, reasoning, tool-call arguments."""
    if not isinstance(delta, dict):
        return 0
    chars = sum(len(value) for field in ("content", "refusal", "reasoning_content")
                if isinstance(value := delta.get(field), str))
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str):
                chars += len(arguments)
    return chars


class OpenAIStreamTap(StreamTap):
    """Output from the content deltas, usage from the usage chunk; complete on `data: [DONE]`."""

    def __init__(self, client_wants_usage: bool) -> None:
        super().__init__()
        self._client_wants_usage = client_wants_usage

    def observe(self, event: SSEEvent) -> bool:
        data = event.data
        if data == b"[DONE]":
            self.complete = True
            return True
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(chunk, dict):
            return True
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                chars = _delta_chars(choice.get("delta")) if isinstance(choice, dict) else 0
                if chars:
                    self.output_chars += chars
                    self.output_deltas += 1
        if "error" in chunk:
            self.errored = True
            return True
        if not isinstance(chunk.get("usage"), dict):
            return True
        self.usage = from_openai(chunk["usage"])
        self.final_usage = True
        return self._client_wants_usage or bool(choices)


class OpenAIAdapter:
    def url(self, account: router_pb2.Account, query: str) -> str:
        return with_query(f"{account.base_url}/v1/chat/completions", query)

    def headers(self, account: router_pb2.Account, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = forwardable(client_headers, _HEADER_NAMES, _HEADER_PREFIXES)
        headers["content-type"] = "application/json"
        headers.update(account.headers)
        headers["authorization"] = f"Bearer {account.credential.api_key}"
        return headers

    def prepare(self, body: Mapping[str, Any], upstream_model: str) -> dict[str, Any] | None:
        changes: dict[str, Any] = {}
        if body.get("model") != upstream_model:
            changes["model"] = upstream_model
        if body.get("stream") is True and not _wants_usage(body):
            options = body.get("stream_options")
            changes["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return {**body, **changes} if changes else None

    def usage(self, body: Any) -> Usage:
        return from_openai(body.get("usage")) if isinstance(body, dict) else Usage()

    def tap(self, body: Mapping[str, Any]) -> OpenAIStreamTap:
        return OpenAIStreamTap(client_wants_usage=_wants_usage(body))

    def stream_error(self, error_payload: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(error_payload) + b"\n\n"
