"""The OpenAI error envelope, ``{"error":{"message","type","param","code"}}``, and its vendor texts.

The vendor prints errors in two styles (both recorded in vendor-recordings/openai-chat): gateway-layer
errors (401, 404, 429, 5xx, unparsable JSON, no model) are indented by 4 spaces with a trailing newline,
``application/json; charset=utf-8`` and ``vary: Origin``; parameter validation errors (those with codes
such as ``unsupported_parameter``) are indented by 2 spaces, no newline, ``application/json``. Every
error carries ``x-request-id``; a 429 adds ``retry-after``, ``retry-after-ms`` and an empty requests bucket.
Shared by every OpenAI-format API the simulator speaks (OpenAI, and Azure OpenAI's model-level errors).
"""

from __future__ import annotations

import json

import orjson

from .. import ids, ratelimit
from ..faults import Fault
from ..pipeline import Refusal

BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
    "key from https://platform.openai.com/account/api-keys."
)
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_OVERLOADED = (
    "That model is currently overloaded with other requests. You can retry your request, or contact us "
    "through our help center at help.openai.com if the error persists. (Please include the request ID {} "
    "in your message.)"
)
_KEY_HINT = "You can find your API key at https://platform.openai.com/account/api-keys."


class OpenAIError(Refusal):
    """One vendor error answer; `legacy` selects the gateway-layer print style."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        *,
        legacy: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.legacy, self.retry_after = legacy, retry_after

    def parts(self) -> tuple[dict[str, str], bytes]:
        fields = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        error = {"error": fields}
        headers = {"x-request-id": ids.openai_request_id()}
        if self.legacy:
            headers["Content-Type"] = "application/json; charset=utf-8"
            headers["vary"] = "Origin"
            body = (json.dumps(error, indent=4, ensure_ascii=False) + "\n").encode()
        else:
            headers["Content-Type"] = "application/json"
            body = orjson.dumps(error, option=orjson.OPT_INDENT_2)
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
            headers["retry-after-ms"] = str(self.retry_after * 1000)
            ratelimit.openai(headers, 0, retry_after=self.retry_after)
        return headers, body


def mask_key(key: str) -> str:
    """The vendor's echo of a wrong key: first 8 and last 4 characters, stars between."""
    if len(key) > 12:
        return key[:8] + "*" * (len(key) - 12) + key[-4:]
    return key[:2] + "*" * max(0, len(key) - 2)


def fault_error(fault: Fault, model: str) -> OpenAIError:
    """The vendor's answer for an injected status fault."""
    status = fault.status if fault.kind == "status" and fault.status else 503
    if status == 401:
        return wrong_key("sk-sim-revoked-key")
    if status == 403:
        return OpenAIError(403, "Country, region, or territory not supported", "request_forbidden",
                           code="unsupported_country_region_territory", legacy=True)
    if status == 404:
        return model_not_found(model)
    if status == 429:
        seconds = fault.retry_after
        message = (
            f"Rate limit reached for {model} in organization org-simulator on requests per min (RPM): "
            f"Limit 3, Used 3, Requested 1. Please try again in {seconds}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        return OpenAIError(
            429, message, "requests", code="rate_limit_exceeded", legacy=True, retry_after=seconds
        )
    if status == 503:
        return OpenAIError(503, _OVERLOADED.format(ids.openai_request_id()[4:]), "server_error", legacy=True)
    if status >= 500:
        return OpenAIError(status, SERVER_ERROR, "server_error", legacy=True)
    return OpenAIError(status, "Invalid request.", legacy=True)


def wrong_key(key: str) -> OpenAIError:
    message = f"Incorrect API key provided: {mask_key(key)}. {_KEY_HINT}"
    return OpenAIError(401, message, code="invalid_api_key", legacy=True)


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(404, f"The model `{model}` does not exist or you do not have access to it.",
                       code="model_not_found", legacy=True)
