"""OpenAI's Responses API (openai-responses): with an API key, `{base}/v1/responses` with Bearer auth; with a
ChatGPT sign-in, the Codex backend (`codex_backend`: its own URL, headers and body rules).

The compact operation (`…/responses/compact`, what Codex asks for when its context fills up) is one JSON
answer: `{base}/v1/responses/compact` with a key, `{base_url}/responses/compact` on the Codex backend.

Streams are typed SSE events (`response.created` … `response.output_text.delta` … `response.completed`);
the stream is complete on `response.completed` (or `response.incomplete`, a finished answer cut by a limit),
whose `response.usage` is the final usage; `response.failed` and `error` are the vendor's own failure
events. Input items and `include` values the gateway does not know pass through untouched.
"""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream import codex_backend
from switchboard_edge.upstream.base import (
    CHATGPT_SIGN_IN,
    Call,
    Platform,
    StreamTap,
    UpstreamRequest,
    event_object,
    forwardable,
    with_query,
)
from switchboard_edge.usage import Usage

# Codex's own headers pass through too (session, originator, version, its x-codex-* and subagent headers).
_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "openai-beta", "session_id", "session-id",
                           "originator", "version", "x-openai-subagent", "thread-id", "x-client-request-id"})
_HEADER_PREFIXES = ("x-stainless-", "x-codex-")
_FINISHED = frozenset({"response.completed", "response.incomplete"})
_DELTAS = frozenset({"response.output_text.delta", "response.reasoning_summary_text.delta",
                     "response.function_call_arguments.delta", "response.refusal.delta"})


def from_responses(reported: Any) -> Usage:
    """Usage from a Responses `usage` object (cached input split out, reasoning part of output)."""
    if not isinstance(reported, dict):
        return Usage()

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    input_details = reported.get("input_tokens_details") or {}
    output_details = reported.get("output_tokens_details") or {}
    cached = count(input_details.get("cached_tokens")) if isinstance(input_details, dict) else 0
    return Usage(
        input_tokens=max(0, count(reported.get("input_tokens")) - cached),
        output_tokens=count(reported.get("output_tokens")),
        cache_read_input_tokens=cached,
        reasoning_tokens=count(output_details.get("reasoning_tokens")) if isinstance(output_details, dict) else 0,
    )


class ResponsesStreamTap(StreamTap):
    def observe(self, event: SSEEvent) -> bool:
        name = event.name
        if name in _DELTAS:
            try:
                delta = orjson.loads(event.data).get("delta")
            except (orjson.JSONDecodeError, AttributeError):
                return True
            if isinstance(delta, str):
                self.output_chars += len(delta)
                self.output_deltas += 1
        elif name in _FINISHED:
            self.complete = True
            try:
                response = orjson.loads(event.data).get("response")
            except (orjson.JSONDecodeError, AttributeError):
                return True
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.usage = from_responses(response["usage"])
                self.final_usage = self.input_reported = True
        elif name == "error":
            # `{"type": "error", "error": {...}}` as recorded, or the error's fields on the event itself.
            self.failed(event_object(event.data))
        elif name == "response.failed":
            response = event_object(event.data).get("response")
            error = response.get("error") if isinstance(response, dict) else None
            self.failed({"error": error} if isinstance(error, dict) else None)
        return True


class OpenAIResponses(Platform):
    id = platforms.OPENAI_RESPONSES
    client_format = ClientFormat.RESPONSES
    operations = frozenset({"chat", "compact"})

    def sign_in(self, account: router_pb2.Account) -> str | None:
        return CHATGPT_SIGN_IN if codex_backend.signs_in_with_chatgpt(account) else None

    def build(self, call: Call) -> UpstreamRequest:
        headers = forwardable(call.client_headers, _HEADER_NAMES, _HEADER_PREFIXES)
        headers["content-type"] = "application/json"
        headers.update(call.account.headers)
        if codex_backend.signs_in_with_chatgpt(call.account):
            return UpstreamRequest(codex_backend.url(call), codex_backend.headers(call, headers),
                                   codex_backend.body(call))
        headers["authorization"] = f"Bearer {call.account.credential.api_key}"
        if call.account.organization:
            headers["openai-organization"] = call.account.organization
        if call.account.project:
            headers["openai-project"] = call.account.project
        body = call.raw if call.body.get("model") == call.upstream_model else orjson.dumps(
            {**call.body, "model": call.upstream_model})
        path = "/v1/responses/compact" if call.operation == "compact" else "/v1/responses"
        return UpstreamRequest(with_query(f"{call.account.base_url}{path}", call.query), headers, body)

    def usage(self, body: Any) -> Usage:
        return from_responses(body.get("usage")) if isinstance(body, dict) else Usage()

    def whole_body(self, payload: bytes, content_type: str) -> tuple[bytes, str]:
        """A stream (the Codex backend always streams) collected into its final `response` object."""
        if content_type.startswith(self.stream_content_type):
            return codex_backend.collect(payload), "application/json"
        return payload, content_type

    def refuses_reasoning(self, status: int, payload: bytes) -> bool:
        # Reasoning and compaction blobs are encrypted for the organisation (or ChatGPT account) that made them.
        return status == 400 and b'"invalid_encrypted_content"' in payload

    def tap(self, body: Mapping[str, Any]) -> ResponsesStreamTap:
        return ResponsesStreamTap()
