"""The Anthropic Messages API as the vendor speaks it: ``POST /v1/messages`` and ``…/count_tokens``.

Everything Anthropic-specific lives here: authentication (``x-api-key``, or ``Authorization: Bearer`` for
OAuth-style accounts), the ``anthropic-version`` requirement, request validation with the vendor's
messages, the ``message`` object, the SSE event sequence, error envelopes and response headers.
Shapes, key order, id formats and header names follow vendor-recordings/anthropic (2025-2026 traffic):

- message: model, id, type, role, content, stop_reason, stop_sequence, stop_details, usage
  (input_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation{…}, output_tokens,
  service_tier, inference_geo);
- stream: message_start, content_block_start, ping, content_block_delta…, content_block_stop,
  message_delta (stop_reason + usage), message_stop; an in-stream failure is ``event: error``;
- error: ``{"type":"error","error":{"type":…,"message":…},"request_id":"req_…"}`` with ``request-id``
  and ``x-should-retry`` headers; 429 adds ``retry-after`` and an empty requests bucket; 529 uses the
  current body form with ``"details":null``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from . import delivery, faults, ids, ratelimit, textgen
from .config import SimulatorConfig
from .faults import Fault
from .recorder import APPLIED_FAULT
from .sse import ANTHROPIC_PING, Frame, anthropic_frame, pad_width

API = "anthropic"
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
ORGANIZATION_ID = "5e1a7c3b-0000-4000-8000-5eed51a70000"

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
_BLOCK_START = b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
_DELTA_HEAD = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
_BLOCK_STOP = b'{"type":"content_block_stop","index":0}'
_MESSAGE_STOP = b'{"type":"message_stop"}'
_STREAM_OVERLOADED = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'


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


def error_response(status: int, message: str) -> web.Response:
    headers, body = error_parts(status, message)
    return web.Response(status=status, headers=headers, body=body)


def _content_problem(index: int, message: Any) -> str | None:
    if not isinstance(message, dict):
        return f"messages.{index}: Input does not match the expected shape."
    role = message.get("role")
    if role is None:
        return f"messages.{index}.role: Field required"
    if role not in ("user", "assistant"):
        return f"messages.{index}.role: Input should be 'user' or 'assistant'"
    content = message.get("content")
    if content is None:
        return f"messages.{index}.content: Field required"
    if not isinstance(content, str | list):
        return f"messages.{index}.content: Input should be a valid list"
    return None


def validate(body: Any, *, needs_max_tokens: bool = True) -> str | None:
    """The vendor's 400 message for the first problem in a Messages request body, or None."""
    if not isinstance(body, dict):
        return "Input should be a valid dictionary"
    if needs_max_tokens:
        if "max_tokens" not in body:
            return "max_tokens: Field required"
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            return "max_tokens: Input should be a valid integer"
        if max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    if "messages" not in body:
        return "messages: Field required"
    messages = body["messages"]
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    for index, message in enumerate(messages):
        problem = _content_problem(index, message)
        if problem:
            return problem
    if "model" not in body:
        return "model: Field required"
    if not isinstance(body["model"], str):
        return "model: Input should be a valid string"
    if not isinstance(body.get("stream", False), bool):
        return "stream: Input should be a valid boolean"
    return None


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def message_body(
    model: str, message_id: str, text: str, stop_reason: str, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    """The non-stream ``message`` object."""
    return {
        "model": model,
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": None,
        "usage": _usage(input_tokens, output_tokens),
    }


def stream_frames(
    model: str,
    message_id: str,
    input_tokens: int,
    output_tokens: int,
    stop_reason: str,
    *,
    chunk_tokens: int = 1,
    pad: bool = True,
    error_after: int | None = None,
) -> list[Frame]:
    """The SSE events of one streamed reply; with `error_after`, that many deltas then ``event: error``."""
    start = {
        "type": "message_start",
        "message": {
            "model": model,
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "usage": _usage(input_tokens, 1),
        },
    }
    frames: list[Frame] = []

    def add(event: bytes, data: bytes, tokens: int = 0) -> None:
        frames.append((anthropic_frame(event, data, pad_width(len(frames)) if pad else 0), tokens))

    add(b"message_start", orjson.dumps(start))
    add(b"content_block_start", _BLOCK_START)
    frames.append((ANTHROPIC_PING, 0))
    deltas = textgen.chunks(output_tokens, chunk_tokens)
    if error_after is not None:
        deltas = deltas[:error_after]
    for text_json, count in deltas:
        add(b"content_block_delta", _DELTA_HEAD + text_json + b"}}", count)
    if error_after is not None:
        frames.append((anthropic_frame(b"error", _STREAM_OVERLOADED), 0))
        return frames
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None, "stop_details": None},
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        },
    }
    add(b"content_block_stop", _BLOCK_STOP)
    add(b"message_delta", orjson.dumps(delta))
    add(b"message_stop", _MESSAGE_STOP)
    return frames


class AnthropicMessages:
    """Request handlers for the Anthropic endpoints, bound to one configuration."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.vendor = config.anthropic

    def _authenticate(self, request: web.Request) -> tuple[str, str | None]:
        """(key, None) when the caller is known, else (key, the vendor's 401 message)."""
        key = request.headers.get("x-api-key", "").strip()
        if key:
            return key, None if self.vendor.key_ok(key) else "invalid x-api-key"
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and authorization[7:].strip():
            token = authorization[7:].strip()
            return token, None if self.vendor.key_ok(token) else "Invalid bearer token"
        return "", "x-api-key header is required"

    def _gate(self, request: web.Request) -> tuple[str, web.Response | None]:
        key, problem = self._authenticate(request)
        if problem is not None:
            return key, error_response(401, problem)
        if not request.headers.get("anthropic-version"):
            return key, error_response(400, "anthropic-version: header is required")
        return key, None

    async def _fault_answer(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        status = fault.status if fault.kind == "status" and fault.status else 529
        message = _FAULT_MESSAGES.get(status) or _FAULT_MESSAGES[500 if status >= 500 else 400]
        headers, body = error_parts(status, message, retry_after=fault.retry_after)
        return await delivery.send_body(request, status, headers, body, delay=self.config.first_byte_delay)

    async def messages(self, request: web.Request, body: Any, bad_json: str | None) -> web.StreamResponse:
        """POST /v1/messages. Order: auth, version header, faults, JSON, validation, model."""
        config = self.config
        key, refusal = self._gate(request)
        if refusal is not None:
            return refusal
        try:
            header = request.headers.get(faults.FAULT_HEADER) if config.fault_header else None
            fault = faults.choose(header, key, self.vendor.key_faults, config.faults)
        except faults.FaultSpecError as exc:
            return error_response(400, f"{faults.FAULT_HEADER}: {exc}")
        stream = isinstance(body, dict) and body.get("stream") is True
        if fault is not None:
            request[APPLIED_FAULT] = fault.spec
            if fault.kind == "hang":
                await delivery.hang()
            if fault.answers_early(stream):
                return await self._fault_answer(request, fault)
        if bad_json is not None:
            return error_response(400, f"The request body is not valid JSON: {bad_json}")
        problem = validate(body)
        if problem is not None:
            return error_response(400, problem)
        model = body["model"]
        if not self.vendor.serves(model):
            return error_response(404, f"model: {model}")

        max_tokens = body["max_tokens"]
        output_tokens = min(config.reply_tokens, max_tokens)
        stop_reason = "max_tokens" if max_tokens < config.reply_tokens else "end_turn"
        input_tokens = textgen.estimate_tokens(body["messages"], body.get("system"), body.get("tools"))
        message_id = ids.anthropic_message_id()
        delay = config.first_byte_delay + faults.extra_delay(fault)
        headers = {
            "Content-Type": SSE_TYPE if stream else JSON_TYPE,
            "request-id": ids.anthropic_request_id(),
            "anthropic-organization-id": ORGANIZATION_ID,
            "x-robots-tag": "none",
        }
        ratelimit.anthropic(headers, input_tokens)
        if stream:
            headers["Cache-Control"] = "no-cache"
            frames = stream_frames(
                model, message_id, input_tokens, output_tokens, stop_reason,
                chunk_tokens=config.chunk_tokens,
                pad=self.vendor.sse_padding,
                error_after=faults.count(fault, "stream_error"),
            )
            return await delivery.send_stream(
                request, headers, frames,
                delay=delay,
                seconds_per_token=config.seconds_per_token,
                disconnect_after=faults.count(fault, "disconnect"),
            )
        text = textgen.reply(output_tokens).text
        message = message_body(model, message_id, text, stop_reason, input_tokens, output_tokens)
        payload = orjson.dumps(message)
        return await delivery.send_body(
            request, 200, headers, payload,
            delay=delay + output_tokens * config.seconds_per_token,
            disconnect=faults.count(fault, "disconnect") is not None,
        )

    async def count_tokens(self, request: web.Request, body: Any, bad_json: str | None) -> web.StreamResponse:
        """POST /v1/messages/count_tokens: ``{"input_tokens": N}`` by the same estimate; no faults."""
        _, refusal = self._gate(request)
        if refusal is not None:
            return refusal
        if bad_json is not None:
            return error_response(400, f"The request body is not valid JSON: {bad_json}")
        problem = validate(body, needs_max_tokens=False)
        if problem is not None:
            return error_response(400, problem)
        if not self.vendor.serves(body["model"]):
            return error_response(404, f"model: {body['model']}")
        tokens = textgen.estimate_tokens(body["messages"], body.get("system"), body.get("tools"))
        headers = {"Content-Type": JSON_TYPE, "request-id": ids.anthropic_request_id()}
        return web.Response(headers=headers, body=orjson.dumps({"input_tokens": tokens}))
