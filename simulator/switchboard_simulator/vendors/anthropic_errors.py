"""The Anthropic error envelope, ``{"type":"error","error":{"type","message"},"request_id"}``, and its texts.

Headers as recorded in vendor-recordings/anthropic: ``request-id`` (the body's ``request_id`` too) and
``x-should-retry`` on every error; a 429 adds ``retry-after`` and the rate-limit headers with an empty
requests bucket; a 529 uses the current body form with ``"details":null`` and ``Cache-Control``.
Shared by every endpoint of the Anthropic vendor (messages, count_tokens, the OAuth token endpoint).
"""

from __future__ import annotations

from typing import Any

import orjson

from .. import ids, ratelimit
from ..faults import Fault
from ..pipeline import Refusal

JSON_TYPE = "application/json"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_FAULT_MESSAGES = {
    400: "Invalid request",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of requests has exceeded your per-minute rate limit "
    "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. "
    "Please try again later or contact sales at https://www.anthropic.com/contact-sales to discuss "
    "your options for a rate limit increase.",
    500: "Internal server error",
    529: "Overloaded",
}


class AnthropicError(Refusal):
    """The vendor's error envelope for one status and message."""

    def __init__(self, status: int, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after

    def parts(self) -> tuple[dict[str, str], bytes]:
        return error_parts(self.status, self.message, retry_after=self.retry_after)


def error_type(status: int) -> str:
    """The vendor's error ``type`` for an HTTP status (other 4xx are invalid_request_error, 5xx api_error)."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_parts(status: int, message: str, *, retry_after: int = 1) -> tuple[dict[str, str], bytes]:
    """Headers and body of an error answer."""
    request_id = ids.anthropic_request_id()
    kind = error_type(status)
    error: dict[str, Any] = {"type": kind, "message": message}
    if status == 529:
        error = {"details": None, **error}
    body = orjson.dumps({"type": "error", "error": error, "request_id": request_id})
    headers = {
        "Content-Type": JSON_TYPE,
        "request-id": request_id,
        "x-should-retry": "true" if status == 429 or status >= 500 else "false",
        "x-robots-tag": "none",
    }
    if status == 429:
        headers["retry-after"] = str(retry_after)
        ratelimit.anthropic(headers, 0, exhausted=True)
    elif status == 529:
        headers["Cache-Control"] = "no-store, no-cache"
    return headers, body


def fault_error(fault: Fault) -> AnthropicError:
    """The vendor's answer for an injected status or overloaded fault."""
    status = fault.status if fault.kind == "status" and fault.status else 529
    message = _FAULT_MESSAGES.get(status) or _FAULT_MESSAGES[500 if status >= 500 else 400]
    return AnthropicError(status, message, retry_after=fault.retry_after)
