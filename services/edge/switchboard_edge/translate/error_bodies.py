"""Upstream error bodies read in one format and written in another.

The shapes themselves live in `switchboard_edge.errors` (one home for how each format writes an error);
this module reads the vendor's message and kind out of a body and picks the target format's type names
for the status. OpenAI chat and Responses share one error body, so between them a body passes unchanged.
"""

from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, SwitchboardError, error_payload, stream_error_event
from switchboard_edge.sse import SSEEvent

_OPENAI_BODIES = frozenset({ClientFormat.OPENAI, ClientFormat.RESPONSES})
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                 404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}
_OPENAI_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
# Shown when an upstream error body says nothing readable.
_LONGEST_TEXT = 500


def _message(payload: bytes) -> tuple[str, str | None, str | None]:
    """The vendor's message, its own type/status name and its string code (OpenAI's `insufficient_quota`),
    from any of the formats' error bodies."""
    try:
        body: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        text = payload.decode("utf-8", "replace").strip()
        return text[:_LONGEST_TEXT], None, None
    if isinstance(body, list) and body:  # Gemini's JSON-array stream may carry the error as its element
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type") or error.get("status") or error.get("code")
        code = error.get("code")
        return ((message if isinstance(message, str) else ""), (kind if isinstance(kind, str) else None),
                (code if isinstance(code, str) else None))
    if isinstance(body, dict) and isinstance(body.get("message"), str):  # Bedrock's {"message": …}
        return body["message"], None, None
    return "", None, None


def as_error(status: int, payload: bytes) -> SwitchboardError:
    """The upstream's error as one the edge can render in any format (status and message kept).

    Where the status alone names the Anthropic type (401, 403, 404, 429, …) it decides, since OpenAI calls
    most of those `invalid_request_error`; otherwise a vendor kind that is an Anthropic type is kept."""
    message, kind, code = _message(payload)
    error = SwitchboardError(message or f"The upstream API answered HTTP {status}.")
    error.status = status
    if status != 400 and status in _ANTHROPIC_TYPES:
        error.anthropic_type = _ANTHROPIC_TYPES[status]
    elif kind is not None and kind in _ANTHROPIC_TYPES.values():
        error.anthropic_type = kind
    else:
        error.anthropic_type = _ANTHROPIC_TYPES.get(status, "api_error")
    error.openai_type = _OPENAI_TYPES.get(status, "server_error")
    error.openai_code = code or _OPENAI_CODES.get(status)
    return error


def convert(payload: bytes, status: int, source: ClientFormat, target: ClientFormat) -> bytes:
    """An error body of the `source` format in the `target` format."""
    if source is target or (source in _OPENAI_BODIES and target in _OPENAI_BODIES):
        return payload
    return orjson.dumps(error_payload(as_error(status, payload), target))


def stream_error(status: int, message: str, kind: str | None, target: ClientFormat) -> SSEEvent:
    """An upstream's in-stream error (its message, its own kind, the status it stands for) as the target
    format's final error event."""
    error = as_error(status, orjson.dumps({"error": {"message": message, "type": kind}}))
    return SSEEvent(stream_error_event(error, target))
