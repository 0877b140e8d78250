"""The Anthropic Messages API as the vendor speaks it: ``POST /v1/messages``, ``…/count_tokens`` and the
OAuth token endpoint ``POST /v1/oauth/token`` (in `anthropic_oauth`).

Everything Anthropic-specific lives here: authentication (``x-api-key``; ``Authorization: Bearer`` with
an API key, or with an OAuth access token when ``anthropic-beta`` carries ``oauth-2025-04-20``), the
``anthropic-version`` requirement, request validation with the vendor's messages, the ``message``
object, the SSE event sequence, error envelopes and response headers. Shapes, key order, id formats
and header names follow vendor-recordings/anthropic (2025-2026 traffic):

- message: model, id, type, role, content, stop_reason, stop_sequence, stop_details, usage
  (input_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation{…}, output_tokens,
  service_tier, inference_geo);
- stream: message_start, content_block_start, ping, content_block_delta…, content_block_stop,
  message_delta (stop_reason + usage), message_stop; an in-stream failure is ``event: error``;
- error: ``{"type":"error","error":{"type":…,"message":…},"request_id":"req_…"}`` with ``request-id``
  and ``x-should-retry`` headers; 429 adds ``retry-after`` and an empty requests bucket; 529 uses the
  current body form with ``"details":null``.

Tool use: with ``tool_choice`` ``{"type": "tool", "name": …}`` (that tool), ``{"type": "any"}`` (the first
tool), or ``auto`` when the last user message's last text starts "call <tool>" or "use the <tool>" (a turn
answering with ``tool_result`` gets text), the answer is one ``tool_use`` block (``toolu_01…`` id, ``input``
from the tool's ``input_schema`` by `schema_values`) and ``stop_reason: "tool_use"``; streamed as
content_block_start (``input: {}``, ``caller``), ``input_json_delta`` pieces, content_block_stop.
Thinking: with ``thinking`` ``{"type": "enabled", "budget_tokens": N}`` or ``{"type": "adaptive"}`` a
``thinking`` block (text and ``signature``) comes first, streamed as ``thinking_delta``s and one
``signature_delta``; its tokens count as output tokens. Signatures are bound to the organisation that made
them (``organizations`` maps API keys to organisations; OAuth and unlisted keys share ``ORGANIZATION_ID``):
a history whose ``thinking`` block carries another organisation's signature (or none) is refused as the
vendor does, ``messages.N.content.M: Invalid `signature` in `thinking` block`` (400).

OAuth bearer tokens: an unknown one is ``Invalid bearer token``; a known one without the OAuth beta is
``OAuth authentication is currently not supported.``; an expired one is ``OAuth token has expired.
Please obtain a new token or refresh your existing token.`` (all 401 authentication_error).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, faults, ids, ratelimit, textgen
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..schema_values import arguments_for
from ..settings import (
    Field,
    Section,
    common_fields,
    frozen_strings,
    optional_fault,
    positive,
    scalar,
    string_map,
)
from ..sse import ANTHROPIC_PING, Frame, anthropic_frame, pad_width
from .anthropic_errors import AnthropicError, fault_error
from .anthropic_oauth import OAUTH_BETA, OAuthTokens, TokenEndpoint
from .oauth_grant import GrantConfig
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "anthropic"
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
ORGANIZATION_ID = "5e1a7c3b-0000-4000-8000-5eed51a70000"

OAUTH_UNSUPPORTED = "OAuth authentication is currently not supported."
OAUTH_EXPIRED = "OAuth token has expired. Please obtain a new token or refresh your existing token."
_TEXT_BLOCK = b'{"type":"text","text":""}'
_THINKING_BLOCK = b'{"type":"thinking","thinking":"","signature":""}'
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: Thinking tokens a reply with thinking carries (at most the budget).
THINKING_TOKENS = 24
_rng = random.Random()
_MESSAGE_STOP = b'{"type":"message_stop"}'
_STREAM_OVERLOADED = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'


@dataclass(frozen=True, slots=True)
class AnthropicConfig(GrantConfig):
    """The ``anthropic`` section: the common keys plus SSE padding and the OAuth token store."""

    sse_padding: bool = True
    oauth_refresh_tokens: frozenset[str] = frozenset()
    oauth_access_tokens: frozenset[str] = frozenset()
    oauth_token_lifetime_seconds: float = float(defaults.ANTHROPIC_OAUTH_TOKEN_LIFETIME_SECONDS)
    organizations: Mapping[str, str] = field(default_factory=dict)

    def organization(self, key: str) -> str:
        """The organisation an admitted key (or OAuth token) belongs to."""
        return self.organizations.get(key, ORGANIZATION_ID)


SECTION = Section("anthropic", AnthropicConfig, (
    *common_fields("anthropic", [defaults.ANTHROPIC_KEY], ["claude-*"]),
    Field("sse_padding", scalar(bool), True),
    Field("oauth_refresh_tokens", frozen_strings, [defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN],
          flag="--anthropic-refresh-token", flag_mode="add", metavar="TOKEN",
          help="another OAuth refresh token the token endpoint accepts (once: tokens rotate)"),
    Field("oauth_access_tokens", frozen_strings, [], flag="--anthropic-access-token", flag_mode="add",
          metavar="TOKEN", help="an OAuth access token valid from start for the token lifetime"),
    Field("oauth_token_lifetime_seconds", positive(float), float(defaults.ANTHROPIC_OAUTH_TOKEN_LIFETIME_SECONDS),
          flag="--oauth-token-lifetime", flag_type=float, metavar="SECONDS",
          help="lifetime of OAuth access tokens (default 28800)"),
    Field("oauth_client_ids", frozen_strings, []),
    Field("organizations", string_map, {}, flag="--anthropic-organization", flag_mode="pairs",
          metavar="KEY=ORGANIZATION", help="an API key that belongs to its own organisation (thinking signatures "
          "made for one are refused by the others)"),
    Field("oauth_token_fault", optional_fault, None, flag="--oauth-token-fault", metavar="SPEC",
          help="a fault every token refresh suffers, e.g. 400 (invalid_grant) or 500"),
))


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


def max_tokens_problem(body: dict[str, Any]) -> str | None:
    if "max_tokens" not in body:
        return "max_tokens: Field required"
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return "max_tokens: Input should be a valid integer"
    if max_tokens < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    return None


def messages_problem(body: dict[str, Any]) -> str | None:
    """The vendor's message for the first problem in ``messages`` (shared with Bedrock), or None."""
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
    return None


def validate(body: Any, *, needs_max_tokens: bool = True) -> str | None:
    """The vendor's 400 message for the first problem in a Messages request body, or None."""
    if not isinstance(body, dict):
        return "Input should be a valid dictionary"
    problem = (max_tokens_problem(body) if needs_max_tokens else None) or messages_problem(body)
    if problem:
        return problem
    if "model" not in body:
        return "model: Field required"
    if not isinstance(body["model"], str):
        return "model: Input should be a valid string"
    if not isinstance(body.get("stream", False), bool):
        return "stream: Input should be a valid boolean"
    return None


def tool_use_id() -> str:
    return "toolu_01" + "".join(_rng.choices(_BASE58, k=22))


def _mark(organization: str, nonce: bytes) -> bytes:
    return hmac.new(organization.encode(), nonce, hashlib.sha256).digest()


def thinking_signature(organization: str) -> str:
    """An opaque signature like the vendor's (standard base64 of a few hundred bytes) that only the organisation
    that made it accepts back: its last 32 bytes are an HMAC of the rest under the organisation's id."""
    nonce = _rng.randbytes(_rng.randint(148, 268))
    return base64.b64encode(nonce + _mark(organization, nonce)).decode()


def _signed_by(signature: Any, organization: str) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    return len(raw) > 32 and hmac.compare_digest(raw[-32:], _mark(organization, raw[:-32]))


def signature_problem(body: dict[str, Any], organization: str) -> str | None:
    """The vendor's refusal of a history whose thinking block another organisation signed, or None."""
    for i, message in enumerate(body["messages"]):
        content = message.get("content") if message.get("role") == "assistant" else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if isinstance(block, dict) and block.get("type") == "thinking" and not _signed_by(
                    block.get("signature"), organization):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None


@dataclass(frozen=True, slots=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]

    @property
    def arguments(self) -> str:
        return orjson.dumps(self.input).decode()


def _last_user_text(messages: list[Any]) -> str | None:
    """The text of the last message when it is a user turn (None when it answers with ``tool_result``)."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    blocks = [block for block in content or () if isinstance(block, dict)]
    if any(block.get("type") == "tool_result" for block in blocks):
        return None
    texts = [str(block.get("text", "")) for block in blocks if block.get("type") == "text"]
    return texts[-1] if texts else ""


def choose_tool(body: dict[str, Any], new_id: Callable[[], str] = tool_use_id) -> ToolUse | None:
    """The tool the model calls (see the module docstring), or None for a text answer."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str)
             and t.get("type", "custom") in ("custom", None)]
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not tools or kind == "none":
        return None
    tool = None
    if kind == "tool":
        tool = next((t for t in tools if t["name"] == choice.get("name")), None)
    elif kind == "any":
        tool = tools[0]
    else:
        text = _last_user_text(body["messages"])
        if text:
            tool = next((t for t in tools if textgen.asks_to_call(text, t["name"])), None)
    if tool is None:
        return None
    return ToolUse(new_id(), tool["name"], arguments_for(tool.get("input_schema")))


def thinking_tokens(body: dict[str, Any]) -> int:
    """Thinking tokens for ``thinking`` enabled (at most its budget) or adaptive; 0 without thinking."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return 0
    if thinking.get("type") == "adaptive":
        return THINKING_TOKENS
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
            return min(THINKING_TOKENS, budget)
        return THINKING_TOKENS
    return 0


def tool_tokens(tool: ToolUse) -> int:
    return textgen.estimate_tokens(tool.name, tool.arguments) + 8


def argument_pieces(arguments: str, count: int = 3) -> list[str]:
    """The arguments JSON cut into about `count` ``partial_json`` pieces ("" for empty input, as recorded)."""
    if arguments == "{}":
        return [""]
    size = max(1, -(-len(arguments) // count))
    return [arguments[i:i + size] for i in range(0, len(arguments), size)]


@dataclass(frozen=True, slots=True)
class Reply:
    """What one reply says: thinking tokens (0: none), then a tool call or `text_tokens` of text."""

    stop_reason: str
    text_tokens: int
    thinking_tokens: int = 0
    tool: ToolUse | None = None
    signature: str = ""

    @property
    def output_tokens(self) -> int:
        answer = tool_tokens(self.tool) if self.tool is not None else self.text_tokens
        return self.thinking_tokens + answer


def plan_reply(body: dict[str, Any], reply_tokens: int, organization: str,
               new_id: Callable[[], str] = tool_use_id) -> Reply:
    """What the model answers to a validated Messages body: thinking first when enabled (signed for
    `organization`), then the forced or asked-for tool call, else text up to `max_tokens` (shared with
    Bedrock, which serves the same bodies)."""
    max_tokens = body["max_tokens"]
    tool = choose_tool(body, new_id)
    thinking = thinking_tokens(body)
    signature = thinking_signature(organization) if thinking else ""
    if tool is not None:
        return Reply("tool_use", 0, thinking, tool, signature)
    stop = "max_tokens" if max_tokens < reply_tokens else "end_turn"
    return Reply(stop, min(reply_tokens, max_tokens), thinking, None, signature)


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def content_blocks(reply: Reply) -> list[dict[str, Any]]:
    """The non-stream ``content``: the thinking block (if any), then the tool_use or text block."""
    blocks: list[dict[str, Any]] = []
    if reply.thinking_tokens:
        blocks.append({"type": "thinking", "thinking": textgen.reply(reply.thinking_tokens).text,
                       "signature": reply.signature})
    if reply.tool is not None:
        blocks.append({"type": "tool_use", "id": reply.tool.id, "name": reply.tool.name, "input": reply.tool.input})
    else:
        blocks.append({"type": "text", "text": textgen.reply(reply.text_tokens).text})
    return blocks


def message_body(
    model: str, message_id: str, text: str | Reply, stop_reason: str, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    """The non-stream ``message`` object (`text` a plain answer, or a `Reply` to render)."""
    content = content_blocks(text) if isinstance(text, Reply) else [{"type": "text", "text": text}]
    return {
        "model": model,
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": None,
        "usage": usage(input_tokens, output_tokens),
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
    reply: Reply | None = None,
) -> list[Frame]:
    """The SSE events of one streamed reply; with `error_after`, that many deltas then ``event: error``.
    Without `reply`, `output_tokens` of text."""
    if reply is None:
        reply = Reply(stop_reason, output_tokens)
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
            "usage": usage(input_tokens, 1),
        },
    }
    frames: list[Frame] = []
    deltas = 0

    class _Stop(Exception):
        pass

    def add(event: bytes, data: bytes, tokens: int = 0) -> None:
        frames.append((anthropic_frame(event, data, pad_width(len(frames)) if pad else 0), tokens))

    def block_start(index: int, block: bytes) -> None:
        add(b"content_block_start",
            b'{"type":"content_block_start","index":' + str(index).encode() + b',"content_block":' + block + b"}")
        if index == 0:
            frames.append((ANTHROPIC_PING, 0))

    def delta(index: int, body: bytes, tokens: int) -> None:
        nonlocal deltas
        if error_after is not None and deltas >= error_after:
            raise _Stop
        deltas += 1
        add(b"content_block_delta",
            b'{"type":"content_block_delta","index":' + str(index).encode() + b',"delta":' + body + b"}", tokens)

    def block_stop(index: int) -> None:
        add(b"content_block_stop", b'{"type":"content_block_stop","index":' + str(index).encode() + b"}")

    add(b"message_start", orjson.dumps(start))
    index = 0
    try:
        if reply.thinking_tokens:
            block_start(index, _THINKING_BLOCK)
            for text_json, count in textgen.chunks(reply.thinking_tokens, chunk_tokens):
                delta(index, b'{"type":"thinking_delta","thinking":' + text_json + b"}", count)
            delta(index, orjson.dumps({"type": "signature_delta", "signature": reply.signature}), 0)
            block_stop(index)
            index += 1
        if reply.tool is not None:
            tool = reply.tool
            block_start(index, orjson.dumps({"type": "tool_use", "id": tool.id, "name": tool.name, "input": {},
                                             "caller": {"type": "direct"}}))
            pieces = argument_pieces(tool.arguments)
            share = max(1, tool_tokens(tool) // len(pieces))
            for piece in pieces:
                delta(index, orjson.dumps({"type": "input_json_delta", "partial_json": piece}), share)
        else:
            block_start(index, _TEXT_BLOCK)
            for text_json, count in textgen.chunks(reply.text_tokens, chunk_tokens):
                delta(index, b'{"type":"text_delta","text":' + text_json + b"}", count)
        if error_after is not None and deltas >= error_after:
            raise _Stop
    except _Stop:
        frames.append((anthropic_frame(b"error", _STREAM_OVERLOADED), 0))
        return frames
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None, "stop_details": None},
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": reply.output_tokens,
        },
    }
    block_stop(index)
    add(b"message_delta", orjson.dumps(message_delta))
    add(b"message_stop", _MESSAGE_STOP)
    return frames


def _betas(request: web.Request) -> set[str]:
    return {beta.strip() for value in request.headers.getall("anthropic-beta", ()) for beta in value.split(",")}


class Messages(Endpoint):
    """``POST /v1/messages``. Order: auth, version header, faults, JSON, validation, model."""

    api = API
    section = SECTION.name
    vendor: AnthropicConfig

    def __init__(self, config: SimulatorConfig, tokens: OAuthTokens) -> None:
        super().__init__(config)
        self.tokens = tokens

    def _authenticate(self, request: web.Request) -> str:
        key = request.headers.get("x-api-key", "").strip()
        if key:
            if not self.vendor.key_ok(key):
                raise AnthropicError(401, "invalid x-api-key")
            return key
        authorization = request.headers.get("authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        if not token:
            raise AnthropicError(401, "x-api-key header is required")
        if self.vendor.key_ok(token):
            return token
        state = self.tokens.access_state(token)
        if state == "unknown":
            raise AnthropicError(401, "Invalid bearer token")
        if OAUTH_BETA not in _betas(request):
            raise AnthropicError(401, OAUTH_UNSUPPORTED)
        if state == "expired":
            raise AnthropicError(401, OAUTH_EXPIRED)
        return token

    def admit(self, ex: Exchange) -> str:
        key = self._authenticate(ex.request)
        if not ex.request.headers.get("anthropic-version"):
            raise AnthropicError(400, "anthropic-version: header is required")
        return key

    def bad_request(self, message: str) -> Refusal:
        return AnthropicError(400, message)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        return fault_error(fault)

    def _checked(self, ex: Exchange, *, needs_max_tokens: bool) -> dict[str, Any]:
        if ex.bad_json is not None:
            raise AnthropicError(400, f"The request body is not valid JSON: {ex.bad_json}")
        problem = validate(ex.body, needs_max_tokens=needs_max_tokens)
        if problem is not None:
            raise AnthropicError(400, problem)
        body: dict[str, Any] = ex.body
        if not self.vendor.serves(body["model"]):
            raise AnthropicError(404, f"model: {body['model']}")
        return body

    def validate(self, ex: Exchange) -> dict[str, Any]:
        body = self._checked(ex, needs_max_tokens=True)
        problem = signature_problem(body, self.vendor.organization(ex.key))
        if problem is not None:
            raise AnthropicError(400, problem)
        return body

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, body, request = self.config, plan, ex.request
        stream = body.get("stream") is True
        model = body["model"]
        organization = self.vendor.organization(ex.key)
        answer = plan_reply(body, config.reply_tokens, organization)
        output_tokens, stop_reason = answer.output_tokens, answer.stop_reason
        input_tokens = textgen.estimate_tokens(body["messages"], body.get("system"), body.get("tools"))
        message_id = ids.anthropic_message_id()
        delay = config.first_byte_delay + faults.extra_delay(fault)
        headers = {
            "Content-Type": SSE_TYPE if stream else JSON_TYPE,
            "request-id": ids.anthropic_request_id(),
            "anthropic-organization-id": organization,
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
                reply=answer,
            )
            return await delivery.send_stream(
                request, headers, frames,
                delay=delay,
                seconds_per_token=config.seconds_per_token,
                disconnect_after=faults.count(fault, "disconnect"),
            )
        payload = orjson.dumps(message_body(model, message_id, answer, stop_reason, input_tokens, output_tokens))
        return await delivery.send_body(
            request, 200, headers, payload,
            delay=delay + output_tokens * config.seconds_per_token,
            disconnect=faults.count(fault, "disconnect") is not None,
        )


class CountTokens(Messages):
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` by the same estimate; no faults."""

    faults = False

    def validate(self, ex: Exchange) -> dict[str, Any]:
        return self._checked(ex, needs_max_tokens=False)

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        tokens = textgen.estimate_tokens(plan["messages"], plan.get("system"), plan.get("tools"))
        headers = {"Content-Type": JSON_TYPE, "request-id": ids.anthropic_request_id()}
        return web.Response(headers=headers, body=orjson.dumps({"input_tokens": tokens}))


def routes(config: SimulatorConfig) -> list[Route]:
    tokens = OAuthTokens(config.anthropic)
    return [
        Route("POST", "/v1/messages", Messages(config, tokens)),
        Route("POST", "/v1/messages/count_tokens", CountTokens(config, tokens)),
        Route("POST", "/v1/oauth/token", TokenEndpoint(config, tokens)),
    ]
