"""OpenAI chat completions upstreams (openai): Bearer auth, SSE passthrough.

Streams always ask the upstream for a usage chunk so every token is accounted
for; when the client did not ask for it, that chunk is held back.
"""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.base import Call, Platform, StreamTap, UpstreamRequest, forwardable, with_query
from switchboard_edge.usage import Usage, from_openai

_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "openai-beta"})
_HEADER_PREFIXES = ("x-stainless-",)


def wants_usage(body: Mapping[str, Any]) -> bool:
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
    """Output from the content deltas, usage from the usage chunk; complete on `data: [DONE]`; a chunk with an
    `error` is the vendor's in-stream error."""

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
        if chunk.get("error"):
            self.failed(chunk)
            return True
        if not isinstance(chunk.get("usage"), dict):
            return True
        self.usage = from_openai(chunk["usage"])
        self.final_usage = True
        return self._client_wants_usage or bool(choices)


class OpenAIChat(Platform):
    """OpenAI's chat completions with a Bearer key (openai)."""

    id = platforms.OPENAI
    client_format = ClientFormat.OPENAI

    def build(self, call: Call) -> UpstreamRequest:
        headers = openai_headers(call)
        headers["authorization"] = f"Bearer {call.account.credential.api_key}"
        if call.account.organization:
            headers["openai-organization"] = call.account.organization
        if call.account.project:
            headers["openai-project"] = call.account.project
        return UpstreamRequest(with_query(f"{call.account.base_url}/v1/chat/completions", call.query), headers,
                               openai_body(call, call.upstream_model))

    def usage(self, body: Any) -> Usage:
        return from_openai(body.get("usage")) if isinstance(body, dict) else Usage()

    def tap(self, body: Mapping[str, Any]) -> OpenAIStreamTap:
        return OpenAIStreamTap(client_wants_usage=wants_usage(body))


def openai_headers(call: Call) -> dict[str, str]:
    headers = forwardable(call.client_headers, _HEADER_NAMES, _HEADER_PREFIXES)
    headers["content-type"] = "application/json"
    headers.update(call.account.headers)
    return headers


def openai_body(call: Call, model: str) -> bytes:
    """The client's bytes unless something must change: the model, or a stream's `include_usage` so every
    token is accounted for."""
    body = call.body
    changes: dict[str, Any] = {}
    if body.get("model") != model:
        changes["model"] = model
    if body.get("stream") is True and not wants_usage(body):
        options = body.get("stream_options")
        changes["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return orjson.dumps({**body, **changes}) if changes else call.raw
