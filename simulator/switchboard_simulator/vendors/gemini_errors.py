"""Google's error envelope for the Gemini API, ``{"error":{"code","message","status","details"?}}``, and its texts.

As recorded in vendor-recordings/gemini: printed with 2-space indentation and a trailing newline,
``application/json; charset=UTF-8`` and Google's front-end headers (``Vary``, ``Server-Timing``,
``X-Frame-Options``…). On a ``streamGenerateContent?alt=sse`` request the same JSON body is sent with
``Content-Type: text/event-stream`` (error-400-API_KEY_INVALID-stream-request.yaml); on a stream request
without ``alt=sse`` (a JSON-array stream) the error object is the array's only element. Texts:

- no key: 403 PERMISSION_DENIED ``Method doesn't allow unregistered callers …``;
- a wrong key: 400 INVALID_ARGUMENT ``API key not valid. Please pass a valid API key.`` with ErrorInfo
  ``API_KEY_INVALID`` and LocalizedMessage details, byte for byte as recorded;
- an unknown model: 404 NOT_FOUND ``models/X is not found for API version v1beta, or is not supported for
  generateContent. …`` as recorded;
- 429: RESOURCE_EXHAUSTED with Help, QuotaFailure and RetryInfo (``retryDelay: "Ns"``) details, the
  quota form of error-429-RESOURCE_EXHAUSTED-quota.sdk-message.txt (the vendor sends no Retry-After);
- 500 INTERNAL, 503 UNAVAILABLE ``The model is overloaded. Please try again later.``, 504
  DEADLINE_EXCEEDED; malformed JSON and unknown fields are 400 ``Invalid JSON payload received. …`` with a
  ``google.rpc.BadRequest`` field violation.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from ..faults import Fault
from ..pipeline import Refusal

#: How an answer is framed: a JSON document, an SSE stream (``alt=sse``) or a JSON-array stream.
Framing = Literal["json", "sse", "array"]

JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"

NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
KEY_INVALID = "API key not valid. Please pass a valid API key."
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INTERNAL = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
OVERLOADED = "The model is overloaded. Please try again later."
DEADLINE = "Deadline expired before operation could complete."
PERMISSION = "The caller does not have permission"
INVALID = "Request contains an invalid argument."
RATE_LIMITS_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"
#: The quota a 429 reports as exceeded (paid tier, requests per minute per model).
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"
QUOTA_ID = "GenerateRequestsPerMinutePerProjectPerModel"
QUOTA_VALUE = "1000"

#: HTTP status → the canonical google.rpc status name the vendor prints with it.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FAULT_MESSAGES = {
    400: INVALID,
    401: UNAUTHENTICATED,
    403: PERMISSION,
    409: "The operation was aborted.",
    499: "The operation was cancelled.",
    500: INTERNAL,
    501: "Operation is not implemented, or supported, or enabled.",
    503: OVERLOADED,
    504: DEADLINE,
}


def escape(data: bytes) -> bytes:
    """Google's JSON printer escapes ``<``, ``>`` and ``&`` inside strings (they occur nowhere else)."""
    if b"<" in data or b">" in data or b"&" in data:
        data = data.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
    return data


def pretty(value: Any) -> bytes:
    """A JSON document as the vendor prints it: 2-space indentation, ``": "``, no trailing newline."""
    return escape(orjson.dumps(value, option=orjson.OPT_INDENT_2))


def array_of_one(value: Any) -> bytes:
    """``[{…}]`` as the vendor prints a one-element JSON array: the object indented one more level."""
    lines = pretty(value).split(b"\n")
    return b"[" + lines[0] + b"\n" + b"\n".join(b"  " + line for line in lines[1:]) + b"\n]"


def google_headers(content_type: str, *, duration_ms: int = 0, attachment: bool = False) -> dict[str, str]:
    """The headers Google's front end puts on every answer (``Alt-Svc`` and ``Date`` aside)."""
    headers = {"Content-Type": content_type}
    if attachment:
        headers["Content-Disposition"] = "attachment"
    headers.update({
        "Vary": "Origin, X-Origin, Referer",
        "Server": "scaffolding on HTTPServer2",
        "Server-Timing": f"gfet4t7; dur={duration_ms}",
        "X-XSS-Protection": "0",
        "X-Frame-Options": "SAMEORIGIN",
        "X-Content-Type-Options": "nosniff",
    })
    return headers


def status_name(status: int) -> str:
    if status in STATUS_NAMES:
        return STATUS_NAMES[status]
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


class GeminiError(Refusal):
    """One error answer: HTTP status, message, google.rpc status name and optional details."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        framing: Framing = "json",
        rpc_status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.details, self.framing = status, message, details, framing
        self.rpc_status = rpc_status or status_name(status)

    def error_object(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message, "status": self.rpc_status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def parts(self) -> tuple[dict[str, str], bytes]:
        if self.framing == "array":
            return google_headers(JSON_TYPE), array_of_one(self.error_object())
        body = pretty(self.error_object()) + b"\n"
        return google_headers(SSE_TYPE if self.framing == "sse" else JSON_TYPE), body


def no_key(framing: Framing) -> GeminiError:
    return GeminiError(403, NO_KEY, framing=framing)


def key_invalid(framing: Framing) -> GeminiError:
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": KEY_INVALID},
    ]
    return GeminiError(400, KEY_INVALID, details, framing=framing)


def unauthenticated(framing: Framing) -> GeminiError:
    return GeminiError(401, UNAUTHENTICATED, framing=framing)


def model_not_found(model: str, version: str, method: str, framing: Framing) -> GeminiError:
    message = (
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    return GeminiError(404, message, framing=framing)


def invalid_argument(message: str, framing: Framing, *, field: str | None = None,
                     violation: bool = False) -> GeminiError:
    """A 400; with `violation` (or a `field`) it carries a google.rpc.BadRequest field violation."""
    details = None
    if violation or field is not None:
        entry = {"field": field, "description": message} if field is not None else {"description": message}
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [entry]}]
    return GeminiError(400, message, details, framing=framing)


def quota_exceeded(model: str, retry_seconds: int, framing: Framing) -> GeminiError:
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        f"this error, head to: {RATE_LIMITS_URL}. To monitor your current usage, head to: "
        f"https://ai.dev/rate-limit. \n* Quota exceeded for metric: {QUOTA_METRIC}, limit: {QUOTA_VALUE}, "
        f"model: {model}\nPlease retry in {retry_seconds}s."
    )
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_URL}],
        },
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": QUOTA_METRIC,
                "quotaId": QUOTA_ID,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": QUOTA_VALUE,
            }],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_seconds}s"},
    ]
    return GeminiError(429, message, details, framing=framing)


def fault_error(fault: Fault, model: str, version: str, method: str, framing: Framing) -> GeminiError:
    """The vendor's answer for an injected status fault; ``overloaded`` (and ``stream_error`` on a
    non-stream request) is 503 UNAVAILABLE."""
    status = fault.status if fault.kind == "status" and fault.status else 503
    if status == 404:
        return model_not_found(model, version, method, framing)
    if status == 429:
        return quota_exceeded(model, fault.retry_after, framing)
    message = _FAULT_MESSAGES.get(status) or (INTERNAL if status >= 500 else INVALID)
    return GeminiError(status, message, framing=framing)


def stream_error_object() -> dict[str, Any]:
    """What a stream carries when it fails after its first chunks: a 500 INTERNAL error object."""
    return GeminiError(500, INTERNAL).error_object()
