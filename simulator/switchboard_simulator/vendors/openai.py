"""The OpenAI Chat Completions API as the vendor speaks it: ``POST /v1/chat/completions``.

Everything OpenAI-chat-specific lives here: Bearer authentication, validation with the vendor's error
codes, the ``chat.completion`` object, ``chat.completion.chunk`` streaming and response headers.
Shapes follow vendor-recordings/openai-chat:

- completion: id, object, created, model, choices[{index, message{role, content, refusal, annotations},
  logprobs, finish_reason}], usage{… prompt_tokens_details, completion_tokens_details}, service_tier,
  system_fingerprint; printed with 2-space indentation and a trailing newline, as the vendor does;
- stream: ``data: {chunk}`` lines (keys id, object, created, model, service_tier, system_fingerprint,
  choices, usage, obfuscation): a first chunk with the role, one per text delta, one with the
  finish_reason, then with ``stream_options.include_usage`` a usage chunk with empty choices (and
  ``"usage":null`` on every earlier chunk), then ``data: [DONE]``. An in-stream failure is a
  ``data: {"error":{…}}`` line, then the connection ends;
- errors: the envelope and its two print styles are `openai_errors`; which error a request earns is
  decided here (auth, validation, model). Reasoning models (``max_tokens_unsupported``) refuse
  ``max_tokens`` with 400 ``unsupported_parameter``;
- tool calls: with ``tool_choice`` ``"required"`` (the first function tool), ``{"type": "function",
  "function": {"name": …}}`` (that one), or ``auto`` when the last user message's last text starts
  "call <function>" or "use the <function>" (a turn answering with a ``tool`` message gets text), the answer is
  ``message.tool_calls`` (one ``call_…`` call, ``arguments`` a JSON string from the function's
  ``parameters`` by `schema_values`), ``content: null`` and ``finish_reason: "tool_calls"``; streamed as
  a first delta with the role, id, type, name and ``arguments: ""``, then argument fragments;
- reasoning models (o1*, o3*, o4*, gpt-5*) report ``completion_tokens_details.reasoning_tokens``
  (`REASONING_TOKENS`, counted in ``completion_tokens``).
"""

from __future__ import annotations

import random
import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, faults, ids, ratelimit, textgen
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..schema_values import arguments_for
from ..settings import Field, Section, VendorConfig, common_fields, model_matcher, string_tuple
from ..sse import OPENAI_DONE, Frame, openai_frame
from .openai_errors import (
    BAD_JSON,
    NO_KEY,
    SERVER_ERROR,
    OpenAIError,
    fault_error,
    model_not_found,
    wrong_key,
)
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "openai_chat"
SSE_TYPE = "text/event-stream; charset=utf-8"
ORGANIZATION = "user-simulator"
PROJECT = "proj_simulator"
ROLES = ("system", "assistant", "user", "function", "tool", "developer")

_STREAM_ERROR = orjson.dumps(
    {"error": {"message": SERVER_ERROR, "type": "server_error", "param": None, "code": None}}
)
_ROLE_CHOICE = (
    b'{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}'
)
_DELTA_HEAD = b'{"index":0,"delta":{"content":'
_DELTA_TAIL = b'},"logprobs":null,"finish_reason":null}'
#: Reasoning models refuse ``max_tokens`` (400 unsupported_parameter) and want ``max_completion_tokens``.
REASONING_MODELS = ["o1*", "o3*", "o4*", "gpt-5*"]
#: Reasoning tokens a reasoning model's reply reports (part of ``completion_tokens``).
REASONING_TOKENS = 16
_REASONING = model_matcher(REASONING_MODELS)
_ALNUM = string.ascii_letters + string.digits
_rng = random.Random()


@dataclass(frozen=True, slots=True)
class OpenAIConfig(VendorConfig):
    """The ``openai`` section: the common keys plus the models that refuse ``max_tokens``."""

    max_tokens_unsupported: tuple[str, ...] = ()
    _no_max_tokens: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super(OpenAIConfig, self).__post_init__()
        object.__setattr__(self, "_no_max_tokens", model_matcher(self.max_tokens_unsupported))

    def rejects_max_tokens(self, model: str) -> bool:
        return self._no_max_tokens.match(model) is not None


SECTION = Section("openai", OpenAIConfig, (
    *common_fields("openai", [defaults.OPENAI_KEY], ["gpt-*", "o*"]),
    Field("max_tokens_unsupported", string_tuple, REASONING_MODELS),
))


def _a(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _invalid_type(param: str, expected: str, value: Any) -> OpenAIError:
    return OpenAIError(400, f"Invalid type for '{param}': expected {expected}, but got {_a(value)} instead.",
                       param=param, code="invalid_type")


def _check_limit(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid_type(name, "an integer", value)
    if value < 1:
        message = (
            f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value} instead."
        )
        raise OpenAIError(400, message, param=name, code="integer_below_min_value")


def validate(
    body: Any,
    parse_error: str | None,
    rejects_max_tokens: Callable[[str], bool],
    *,
    model: str | None = None,
) -> int | None:
    """Raises the vendor's 400 for the first problem; returns the token limit asked for, if any.

    `model` is the model the route already names (Azure deployments); else the body must name one.
    """
    if parse_error is not None or not isinstance(body, dict):
        raise OpenAIError(400, BAD_JSON, legacy=True)
    if model is None:
        if "model" not in body or body["model"] in ("", None):
            raise OpenAIError(400, "you must provide a model parameter", legacy=True)
        if not isinstance(body["model"], str):
            raise _invalid_type("model", "a string", body["model"])
        model = body["model"]
    if "messages" not in body:
        raise OpenAIError(400, "Missing required parameter: 'messages'.", param="messages",
                          code="missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        message = (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead."
        )
        raise OpenAIError(400, message, param="messages", code="empty_array")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        if "role" not in message:
            raise OpenAIError(400, f"Missing required parameter: '{where}.role'.", param=f"{where}.role",
                              code="missing_required_parameter")
        if message["role"] not in ROLES:
            supported = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'"
            text = f"Invalid value: '{message['role']}'. Supported values are: {supported}."
            raise OpenAIError(400, text, param=f"{where}.role", code="invalid_value")
    if "max_tokens" in body and body["max_tokens"] is not None and rejects_max_tokens(model):
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
        raise OpenAIError(400, message, param="max_tokens", code="unsupported_parameter")
    limit = None
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None:
            _check_limit(name, body[name])
            limit = body[name] if limit is None else min(limit, body[name])
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    return limit


def reasons(model: str) -> bool:
    return _REASONING.match(model) is not None


def call_id() -> str:
    return "call_" + "".join(_rng.choices(_ALNUM, k=24))


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def entry(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    @property
    def tokens(self) -> int:
        return textgen.estimate_tokens(self.name, self.arguments) + 8

    def pieces(self) -> list[str]:
        """The arguments as streamed: fragments of about 4 characters."""
        text = self.arguments
        return [text[i:i + 4] for i in range(0, len(text), 4)] or [""]


def _last_user_text(messages: list[Any]) -> str | None:
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part]
        return texts[-1] if texts else ""
    return None


def choose_call(body: dict[str, Any]) -> ToolCall | None:
    """The function call the model makes (see the module docstring), or None for a text answer."""
    functions = [t["function"] for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"
                 and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)]
    choice = body.get("tool_choice") or "auto"
    if not functions or choice == "none":
        return None
    chosen = None
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        chosen = next((f for f in functions if f["name"] == name), None)
    elif choice == "required":
        chosen = functions[0]
    else:
        text = _last_user_text(body["messages"])
        if text:
            chosen = next((f for f in functions if textgen.asks_to_call(text, f["name"])), None)
    if chosen is None:
        return None
    return ToolCall(call_id(), chosen["name"], orjson.dumps(arguments_for(chosen.get("parameters"))).decode())


def usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(
    completion_id: str,
    created: int,
    model: str,
    fingerprint: str,
    text: str | None,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    call: ToolCall | None = None,
    reasoning_tokens: int = 0,
) -> bytes:
    """The non-stream ``chat.completion`` object, formatted as the vendor prints it."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [call.entry()], "refusal": None,
                   "annotations": []}
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens, reasoning_tokens),
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }
    return orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"


def stream_frames(
    completion_id: str,
    created: int,
    model: str,
    fingerprint: str,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str,
    *,
    chunk_tokens: int = 1,
    include_usage: bool = False,
    obfuscate: bool = True,
    error_after: int | None = None,
    call: ToolCall | None = None,
    reasoning_tokens: int = 0,
) -> list[Frame]:
    """The ``data:`` lines of one streamed reply; with `error_after`, that many deltas then an error line.
    With `call`, the deltas are the call's: its head in the first chunk, then argument fragments."""
    head = orjson.dumps({
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    })[:-1] + b',"choices":['
    tail = b'],"usage":null' if include_usage else b"]"

    frames: list[Frame] = []

    def chunk(choice: bytes, end: bytes = tail) -> bytes:
        data = head + choice + end
        if obfuscate:
            data += b',"obfuscation":"' + ids.obfuscation(len(frames)) + b'"'
        return openai_frame(data + b"}")

    if call is None:
        frames.append((chunk(_ROLE_CHOICE), 0))
        deltas = [(_DELTA_HEAD + text_json + _DELTA_TAIL, count)
                  for text_json, count in textgen.chunks(completion_tokens - reasoning_tokens, chunk_tokens)]
    else:
        head_call = {"index": 0, **call.entry()}
        head_call["function"] = {"name": call.name, "arguments": ""}
        first = {"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [head_call],
                                       "refusal": None}, "logprobs": None, "finish_reason": None}
        frames.append((chunk(orjson.dumps(first)), 0))
        deltas = [(orjson.dumps({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                                 "logprobs": None, "finish_reason": None}), 1) for piece in call.pieces()]
    if error_after is not None:
        deltas = deltas[:error_after]
    for choice, count in deltas:
        frames.append((chunk(choice), count))
    if error_after is not None:
        frames.append((openai_frame(_STREAM_ERROR), 0))
        return frames
    finish = b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"' + finish_reason.encode() + b'"}'
    frames.append((chunk(finish), 0))
    if include_usage:
        counts = orjson.dumps(usage(prompt_tokens, completion_tokens, reasoning_tokens))
        frames.append((chunk(b"", b'],"usage":' + counts), 0))
    frames.append((OPENAI_DONE, 0))
    return frames


class ChatCompletions(Endpoint):
    """``POST /v1/chat/completions``. Order: auth, faults, JSON, validation, model."""

    api = API
    section = SECTION.name
    vendor: OpenAIConfig

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(config)
        self.fingerprint = ids.system_fingerprint()

    def admit(self, ex: Exchange) -> str:
        authorization = ex.request.headers.get("authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        if not token:
            raise OpenAIError(401, NO_KEY, legacy=True)
        if not self.vendor.key_ok(token):
            raise wrong_key(token)
        return token

    def bad_request(self, message: str) -> Refusal:
        return OpenAIError(400, message, param=faults.FAULT_HEADER)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        body = ex.json_object
        return fault_error(fault, str(body.get("model")) if body is not None else "unknown")

    def validate(self, ex: Exchange) -> tuple[dict[str, Any], int | None]:
        limit = validate(ex.body, ex.bad_json, self.vendor.rejects_max_tokens)
        body: dict[str, Any] = ex.body
        if not self.vendor.serves(body["model"]):
            raise model_not_found(body["model"])
        return body, limit

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, request = self.config, ex.request
        body, limit = plan
        stream = body.get("stream") is True
        model = body["model"]
        call = choose_call(body)
        reasoning_tokens = REASONING_TOKENS if reasons(model) else 0
        if call is not None:
            completion_tokens, finish_reason = call.tokens, "tool_calls"
        else:
            completion_tokens = config.reply_tokens if limit is None else min(config.reply_tokens, limit)
            finish_reason = "length" if limit is not None and limit < config.reply_tokens else "stop"
        completion_tokens += reasoning_tokens
        prompt_tokens = textgen.estimate_tokens(body["messages"], body.get("tools"))
        completion_id = ids.openai_completion_id()
        created = int(time.time())
        delay = config.first_byte_delay + faults.extra_delay(fault)
        generation = 0.0 if stream else completion_tokens * config.seconds_per_token
        headers = {
            "Content-Type": SSE_TYPE if stream else "application/json",
            "x-request-id": ids.openai_request_id(),
            "openai-organization": ORGANIZATION,
            "openai-project": PROJECT,
            "openai-processing-ms": str(int((delay + generation) * 1000)),
            "openai-version": "2020-10-01",
            "access-control-expose-headers": "X-Request-ID",
            "X-Content-Type-Options": "nosniff",
        }
        ratelimit.openai(headers, prompt_tokens)
        if stream:
            options = stream_options(body)
            frames = stream_frames(
                completion_id, created, model, self.fingerprint, prompt_tokens, completion_tokens,
                finish_reason,
                chunk_tokens=config.chunk_tokens,
                include_usage=options.get("include_usage") is True,
                obfuscate=options.get("include_obfuscation", True) is not False,
                error_after=faults.count(fault, "stream_error"),
                call=call,
                reasoning_tokens=reasoning_tokens,
            )
            return await delivery.send_stream(
                request, headers, frames,
                delay=delay,
                seconds_per_token=config.seconds_per_token,
                disconnect_after=faults.count(fault, "disconnect"),
            )
        text = None if call is not None else textgen.reply(completion_tokens - reasoning_tokens).text
        payload = completion_body(
            completion_id, created, model, self.fingerprint, text, finish_reason, prompt_tokens,
            completion_tokens, call=call, reasoning_tokens=reasoning_tokens,
        )
        return await delivery.send_body(
            request, 200, headers, payload,
            delay=delay + generation,
            disconnect=faults.count(fault, "disconnect") is not None,
        )


def stream_options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("stream_options") or {}
    return options if isinstance(options, dict) else {}


def routes(config: SimulatorConfig) -> list[Route]:
    return [Route("POST", "/v1/chat/completions", ChatCompletions(config))]
