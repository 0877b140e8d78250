"""Google's Gemini API (gemini): the API key in `x-goog-api-key`, the model and action in the path.

`{base}/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` (SSE whose events are
GenerateContentResponse chunks) and `:countTokens`. Usage comes from `usageMetadata` (prompt, candidates,
cached content, thoughts); a stream is complete when a candidate carries `finishReason`. Thought parts and
`thoughtSignature` are relayed untouched: the body is the client's own bytes.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_common import platforms
from switchboard_edge import failover
from switchboard_edge.errors import ClientFormat
from switchboard_edge.failover import Verdict
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.base import Call, Platform, StreamTap, UpstreamRequest, forwardable
from switchboard_edge.usage import Usage

_HEADER_NAMES = frozenset({"content-type", "accept", "user-agent", "x-goog-api-client"})
_ACTIONS = {"chat": "generateContent", "count_tokens": "countTokens"}


def from_gemini(metadata: Any) -> Usage:
    """Usage from `usageMetadata`: cached prompt tokens split out of the prompt, thoughts billed as output."""
    if not isinstance(metadata, dict):
        return Usage()

    def count(name: str) -> int:
        value = metadata.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    cached = count("cachedContentTokenCount")
    thoughts = count("thoughtsTokenCount")
    return Usage(
        input_tokens=max(0, count("promptTokenCount") - cached),
        output_tokens=count("candidatesTokenCount") + thoughts,
        cache_read_input_tokens=cached,
        reasoning_tokens=thoughts,
    )


def _finished(chunk: dict[str, Any]) -> bool:
    candidates = chunk.get("candidates")
    return isinstance(candidates, list) and any(
        isinstance(candidate, dict) and candidate.get("finishReason") for candidate in candidates)


def _text_chars(chunk: dict[str, Any]) -> int:
    chars = 0
    for candidate in chunk.get("candidates") or ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        for part in (content or {}).get("parts") or () if isinstance(content, dict) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                chars += len(part["text"])
    return chars


class GeminiStreamTap(StreamTap):
    """Usage from each chunk's `usageMetadata` (cumulative); complete on a candidate's `finishReason`."""

    def observe(self, event: SSEEvent) -> bool:
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(chunk, dict):
            return True
        if chunk.get("error"):
            self.failed(chunk)  # Google's error envelope, `{"error": {"code", "message", "status"}}`
            return True
        chars = _text_chars(chunk)
        if chars:
            self.output_chars += chars
            self.output_deltas += 1
        if isinstance(chunk.get("usageMetadata"), dict):
            self.usage = from_gemini(chunk["usageMetadata"])
            self.input_reported = True
        if _finished(chunk):
            self.complete = True
            self.final_usage = "usageMetadata" in chunk
        return True


class Gemini(Platform):
    id = platforms.GEMINI
    client_format = ClientFormat.GEMINI
    operations = frozenset(_ACTIONS)

    def build(self, call: Call) -> UpstreamRequest:
        action = _ACTIONS[call.operation]
        if call.operation == "chat" and call.stream:
            action, query = "streamGenerateContent", "?alt=sse"
        else:
            query = ""
        url = f"{call.account.base_url}/v1beta/models/{quote(call.upstream_model, safe='')}:{action}{query}"
        headers = forwardable(call.client_headers, _HEADER_NAMES, ())
        headers["content-type"] = "application/json"
        headers.update(call.account.headers)
        headers["x-goog-api-key"] = call.account.credential.api_key
        return UpstreamRequest(url, headers, call.raw)

    def usage(self, body: Any) -> Usage:
        return from_gemini(body.get("usageMetadata")) if isinstance(body, dict) else Usage()

    def tap(self, body: Mapping[str, Any]) -> GeminiStreamTap:
        return GeminiStreamTap()

    def classify(self, status: int, payload: bytes) -> Verdict:
        """Google's error body says more than its status: a 400 `API_KEY_INVALID` is the account's key refused
        (another account may serve), a 429 carries its wait in `RetryInfo`, a 404 `NOT_FOUND` is this account's
        answer about the model (another may serve it; with none left the client gets the 404)."""
        error = _google_error(payload)
        if error is None:
            return failover.classify(status)
        details = [detail for detail in error.get("details") or () if isinstance(detail, dict)]
        if status == 400 and any(detail.get("reason") == "API_KEY_INVALID" for detail in details):
            return Verdict(router_pb2.OUTCOME_AUTH_FAILED, True, False, "api_key_invalid",
                           "The upstream API refused the gateway's account (its API key is not valid).")
        if status == 429:
            delays = [_seconds(detail.get("retryDelay")) for detail in details
                      if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo")]
            return replace(failover.classify(status), retry_after=next((d for d in delays if d is not None), None))
        if status == 404 and error.get("status") == "NOT_FOUND":
            return Verdict(router_pb2.OUTCOME_CLIENT_ERROR, True, True, "not_found")
        return failover.classify(status)


def _google_error(payload: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _seconds(duration: Any) -> float | None:
    """A google.protobuf.Duration in JSON ("7s", "0.5s")."""
    if not isinstance(duration, str) or not duration.endswith("s"):
        return None
    try:
        return max(0.0, float(duration[:-1]))
    except ValueError:
        return None
