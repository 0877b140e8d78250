"""What the edge reads from a client request: the key, the JSON body, the model string (the session hint is
`switchboard_edge.sessions`).

All of it is sans-I/O: plain headers, bytes and dicts in, values or ClientErrors out.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from switchboard_common.platforms import ALL as PLATFORMS
from switchboard_common.platforms import is_platform
from switchboard_edge.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    RequestTooLarge,
    UnsupportedMediaType,
)

_NO_KEY = (
    "Missing API key: send it as 'Authorization: Bearer <key>', 'X-API-Key: <key>' or 'x-api-key: <key>'."
)


def extract_key(headers: Mapping[str, str], query_key: str = "") -> str:
    """The Switchboard key from Authorization: Bearer, X-API-Key or x-goog-api-key (any case), else
    `query_key` (Gemini's `?key=`, only on /gemini routes). Raises 401 if absent."""
    authorization = headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = headers.get("x-api-key", "").strip() or headers.get("x-goog-api-key", "").strip()
    if api_key:
        return api_key
    if query_key.strip():
        return query_key.strip()
    raise AuthenticationFailed(_NO_KEY)


def check_content_type(content_type: str) -> None:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json":
        shown = media_type or "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {shown}.")


def check_declared_length(content_length: str | None, limit: int) -> None:
    declared = content_length or ""
    # isascii: "²".isdigit() is true too, and int() refuses it (httptools never passes one, an ASGI caller might).
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request body exceeds the limit of {limit} bytes.")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object. Raises 400 on anything else."""
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return body


_SHOWN_CHARS = 100


def shown(value: str) -> str:
    """A client-supplied string as an error message may quote it: at most 100 characters."""
    return value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"


def parse_stream(body: Mapping[str, Any], nullable: bool) -> bool:
    """`stream` is a boolean or absent; `nullable` lets null mean absent (OpenAI's rule, not Anthropic's)."""
    value = body.get("stream")
    if isinstance(value, bool):
        return value
    if value is None and ("stream" not in body or nullable):
        return False
    raise InvalidRequest(f"stream: expected a boolean, got {shown(orjson.dumps(value).decode())}.")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model string: `model` or `platform,model`."""

    platform: str | None
    model: str


# Longer than any vendor's model id by far: no account serves a longer one, and it would only travel to auth
# and the router for nothing (and there cost every other request on the same stream its message).
MAX_MODEL_CHARS = 256


def unknown_model(model: str) -> ModelNotFound:
    return ModelNotFound(f"The model '{shown(model)}' does not exist or no account here serves it.")


def parse_model(body: Mapping[str, Any]) -> ModelRef:
    """The model string, `model` or `platform,model`; 400 when malformed, 404 when longer than any model."""
    value = body.get("model")
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("model: field required (a model name, or 'platform,model').")
    platform, sep, model = value.partition(",")
    if not sep:
        if len(value) > MAX_MODEL_CHARS:
            raise unknown_model(value)
        return ModelRef(None, value.strip())
    platform, model = platform.strip(), model.strip()
    if not is_platform(platform):
        raise InvalidRequest(f"model: unknown platform '{shown(platform)}' in '{shown(value)}'; "
                             f"platforms are: {', '.join(PLATFORMS)}.")
    if not model:
        raise InvalidRequest(f"model: missing model name after '{platform},'.")
    if "," in model:
        raise InvalidRequest(f"model: expected 'platform,model' with one comma, got '{shown(value)}'.")
    if len(model) > MAX_MODEL_CHARS:
        raise unknown_model(model)
    return ModelRef(platform, model)
