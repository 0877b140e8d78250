"""Every error the edge itself produces, and how each one looks on the wire.

```
SwitchboardError
├── ClientError
│   ├── InvalidRequest        400
│   ├── AuthenticationFailed  401
│   ├── PermissionDenied      403
│   ├── NotFound              404
│   │   └── ModelNotFound     404  (no account serves the model)
│   ├── MethodNotAllowed      405  (with an Allow header)
│   ├── RequestTimeout        408  (headers or body not received in time)
│   ├── RequestTooLarge       413
│   ├── URITooLong            414
│   ├── UnsupportedMediaType  415
│   ├── RateLimited           429
│   └── RequestHeaderFieldsTooLarge 431
└── UpstreamError
    ├── UpstreamUnavailable   502  (upstream 5xx, connection failure, broken stream)
    ├── NoAvailableAccount    503
    ├── ServiceUnavailable    503  (auth or router unreachable, body buffer full, edge stopping)
    └── UpstreamTimeout       504
```
The status lives on the class; the body is rendered in the receiving endpoint's
own format by `render` (Anthropic on /claude, OpenAI on /openai), here and only here.
"""

from enum import StrEnum

import orjson


class ClientFormat(StrEnum):
    """The API dialect a client speaks, decided by the route it called."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GEMINI = "gemini"
    # OpenAI's Responses API: OpenAI's error bodies, its own stream events.
    RESPONSES = "responses"


class SwitchboardError(Exception):
    status = 500
    anthropic_type = "api_error"
    openai_type = "server_error"
    openai_code: str | None = None

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        # More response headers (a limited key's x-ratelimit-*).
        self.headers: dict[str, str] = {}


class ClientError(SwitchboardError):
    status = 400
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class InvalidRequest(ClientError):
    openai_code = "invalid_request"


class AuthenticationFailed(ClientError):
    status = 401
    anthropic_type = "authentication_error"
    openai_type = "invalid_request_error"
    openai_code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    anthropic_type = "permission_error"
    openai_type = "permission_error"
    openai_code = "permission_denied"


class NotFound(ClientError):
    status = 404
    anthropic_type = "not_found_error"
    openai_type = "invalid_request_error"
    openai_code = "not_found"


class ModelNotFound(NotFound):
    """No account serves the model at all (not a passing shortage: retrying will not help)."""

    openai_code = "model_not_found"


class MethodNotAllowed(ClientError):
    """The route exists but not for this method; `allow` lists the methods it takes."""

    status = 405
    anthropic_type = "method_not_allowed_error"
    openai_code = "method_not_allowed"

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class RequestTimeout(ClientError):
    """The client did not send its request headers or body within the edge's deadline."""

    status = 408
    openai_code = "request_timeout"


class RequestTooLarge(ClientError):
    status = 413
    anthropic_type = "request_too_large"
    openai_code = "request_too_large"


class URITooLong(ClientError):
    status = 414
    openai_code = "uri_too_long"


class UnsupportedMediaType(ClientError):
    status = 415
    openai_code = "unsupported_media_type"


class RateLimited(ClientError):
    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "rate_limit_error"
    openai_code = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    """A key's budget is spent: waiting a moment does not help (OpenAI's `insufficient_quota`)."""

    openai_type = "insufficient_quota"
    openai_code = "insufficient_quota"


class RequestHeaderFieldsTooLarge(ClientError):
    """Too many request headers, one too long, or all of them together too large."""

    status = 431
    openai_code = "request_header_fields_too_large"


class UpstreamError(SwitchboardError):
    status = 502
    anthropic_type = "api_error"
    openai_type = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    openai_code = "upstream_unavailable"


class NoAvailableAccount(UpstreamError):
    status = 503
    anthropic_type = "overloaded_error"
    openai_type = "service_unavailable"
    openai_code = "no_available_account"


class ServiceUnavailable(UpstreamError):
    """Auth or router could not be reached: the gateway cannot decide, so it refuses for now."""

    status = 503
    anthropic_type = "api_error"
    openai_type = "service_unavailable"
    openai_code = "service_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    anthropic_type = "timeout_error"
    openai_code = "upstream_timeout"


def format_for_path(path: str) -> ClientFormat:
    """The dialect of the endpoint a path belongs to: Anthropic under /claude, Gemini under /gemini, else OpenAI."""
    if path.startswith("/claude"):
        return ClientFormat.ANTHROPIC
    return ClientFormat.GEMINI if path.startswith("/gemini") else ClientFormat.OPENAI


# Google's error statuses (google.rpc.Code names) by HTTP status, for Gemini-format errors.
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  405: "INVALID_ARGUMENT", 408: "DEADLINE_EXCEEDED", 413: "INVALID_ARGUMENT",
                  414: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 431: "INVALID_ARGUMENT",
                  500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def error_payload(error: SwitchboardError, client_format: ClientFormat) -> dict[str, object]:
    """The error as the endpoint's vendor would shape it."""
    if client_format is ClientFormat.ANTHROPIC:
        return {"type": "error", "error": {"type": error.anthropic_type, "message": error.message}}
    if client_format is ClientFormat.GEMINI:
        return {"error": {"code": error.status, "message": error.message,
                          "status": _GOOGLE_STATUS.get(error.status, "UNKNOWN")}}
    return {
        "error": {
            "message": error.message,
            "type": error.openai_type,
            "param": None,
            "code": error.openai_code,
        }
    }


def render(error: SwitchboardError, client_format: ClientFormat) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers for an error response."""
    headers = {"content-type": "application/json", **error.headers}
    retry_after = error.retry_after
    hopeless = isinstance(error, QuotaExceeded) and retry_after is None  # a spent total budget
    if retry_after is None and error.status in (429, 503) and not hopeless:
        retry_after = 1.0
    if retry_after is not None:
        headers["retry-after"] = str(max(1, round(retry_after)))
    if error.status in (429, 502, 503, 504):
        headers["x-should-retry"] = "false" if hopeless else "true"
    if isinstance(error, MethodNotAllowed):
        headers["allow"] = ", ".join(error.allow)
    return error.status, orjson.dumps(error_payload(error, client_format)), headers



def stream_error_event(error: SwitchboardError, client_format: ClientFormat) -> bytes:
    """A final SSE event carrying the error, framed the way the client's own API frames one."""
    data = orjson.dumps(error_payload(error, client_format))
    if client_format is ClientFormat.ANTHROPIC:
        return b"event: error\ndata: " + data + b"\n\n"
    if client_format is ClientFormat.RESPONSES:
        failure = {"type": "error", "code": error.openai_code, "message": error.message, "param": None}
        return b"event: error\ndata: " + orjson.dumps(failure) + b"\n\n"
    return b"data: " + data + b"\n\n"
