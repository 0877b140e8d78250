"""Amazon Bedrock Runtime for Anthropic models: ``POST /model/{modelId}/invoke`` and
``…/invoke-with-response-stream``, as vendor-recordings/bedrock has them.

Auth: a SigV4 signature (service ``bedrock``, the configured region), recomputed with botocore over
the request as received (`sigv4`), or ``Authorization: Bearer <Bedrock API key>``. Refusals are AWS's:
``UnrecognizedClientException`` (unknown access key), ``InvalidSignatureException`` (wrong secret,
scope or clock), ``IncompleteSignatureException``, ``MissingAuthenticationTokenException``,
``ExpiredTokenException`` (a session token listed in ``expired_session_tokens``; body as recorded) and,
for API keys, ``AccessDeniedException`` with AWS's capitalised ``{"Message": …}``.

Errors are ``{"message": …}`` with ``x-amzn-ErrorType: <Code>:http://internal.amazon.com/coral/<ns>/``
and ``x-amzn-RequestId``. Validation follows Bedrock's schema for Anthropic bodies: ``anthropic_version``
(``bedrock-2023-05-31``), ``max_tokens`` and ``messages`` required, ``model`` and ``stream`` not
permitted, ``anthropic_beta`` a list of flags Bedrock knows (``invalid beta flag`` otherwise); all
problems are joined in one ``Malformed input request: …`` ValidationException. An unknown model id is
``The provided model identifier is invalid.`` (recorded). Model ids: ``anthropic.claude-…``, inference
profiles (``us.``, ``eu.``, ``apac.``, ``global.`` …) and their ARNs.

Replies: the Anthropic message as Bedrock returns it (``msg_bdrk_`` ids, usage of input and output
tokens, ``X-Amzn-Bedrock-*-Token-Count`` and ``-Invocation-Latency`` headers), with thinking and forced
or asked-for tool calls as the Anthropic simulator plans them (``toolu_bdrk_`` ids, the recorded empty
first ``input_json_delta``); thinking signatures made elsewhere are refused as ``Invalid `signature` in
`thinking` block``. Streams are
``application/vnd.amazon.eventstream``: one ``chunk`` event per Anthropic event (no ping), payload
``{"bytes": base64(event JSON), "p": padding}``, the last being ``message_stop`` with
``amazon-bedrock-invocationMetrics``. A ``stream_error`` fault sends a ``modelStreamErrorException``
frame after N deltas; ``429`` is ``ThrottlingException``, ``overloaded`` ``ServiceUnavailableException``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, eventstream, faults, ids, sigv4, textgen
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..settings import (
    ConfigError,
    Field,
    Section,
    VendorConfig,
    common_fields,
    frozen_strings,
    mapping,
    model_matcher,
    scalar,
    string_tuple,
)
from ..sse import Frame
from .anthropic import (
    Reply,
    argument_pieces,
    content_blocks,
    max_tokens_problem,
    messages_problem,
    plan_reply,
    signature_problem,
    tool_tokens,
)
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "bedrock"
# Whom Bedrock's thinking signatures are bound to: Anthropic's first-party organisations refuse them, and
# Bedrock refuses theirs.
ORGANIZATION = "aws-bedrock"
SERVICE = "bedrock"
STREAM_TYPE = "application/vnd.amazon.eventstream"
BEDROCK_NS = "com.amazon.bedrock"
CORAL_NS = "com.amazon.coral.service"
ANTHROPIC_VERSION = "bedrock-2023-05-31"
INVALID_MODEL = "The provided model identifier is invalid."
MALFORMED = "Malformed input request, please reformat your input and try again."
KEY_INVALID = "Authentication failed: Please make sure your API Key is valid."
KEY_FORMAT = "Invalid API Key format: Must start with pre-defined prefix"
STREAM_FAILURE = "The system encountered an unexpected error during processing. Try your request again."
#: Beta flags Bedrock accepts in ``anthropic_beta`` (glob patterns); others are ``invalid beta flag``.
BEDROCK_BETAS = [
    "computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
    "token-efficient-tools-2025-02-19", "interleaved-thinking-2025-05-14", "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14", "context-1m-2025-08-07", "context-management-2025-06-27",
    "effort-2025-11-24", "tool-search-tool-2025-10-19", "tool-examples-2025-10-29",
    "fine-grained-tool-streaming-2025-05-14",
]
# Lengths of the "p" padding field in the recorded chunks, used by position (the value is a prefix of
# the alphabet, as recorded).
_PAD_LENGTHS = (27, 57, 15, 45, 26, 10, 56, 55, 19, 50, 33, 34, 10, 15, 17, 56, 5, 24, 20, 39, 45, 24, 2, 42)
_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_VERSION_SUFFIX = re.compile(r"-v\d+(?::\d+)?$")
_FAULTS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", MALFORMED),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The model returned an error. Try your request again."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", STREAM_FAILURE),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}


def _credentials(where: str, value: Any) -> dict[str, sigv4.Secret]:
    out = {}
    for key, item in mapping(where, value).items():
        if isinstance(item, str):
            out[str(key)] = sigv4.Secret(item)
            continue
        entry = mapping(f"{where}.{key}", item)
        secret, token = entry.get("secret_access_key"), entry.get("session_token")
        if set(entry) - {"secret_access_key", "session_token"} or not isinstance(secret, str) \
                or not isinstance(token, str | None):
            raise ConfigError(f"{where}.{key}: expected a secret, or secret_access_key and session_token strings")
        out[str(key)] = sigv4.Secret(secret, token)
    return out


@dataclass(frozen=True, slots=True)
class BedrockConfig(VendorConfig):
    """The ``bedrock`` section: API keys (the common ``keys``), SigV4 credentials, region, betas."""

    region: str = defaults.BEDROCK_REGION
    credentials: Mapping[str, sigv4.Secret] = field(default_factory=dict)
    expired_session_tokens: frozenset[str] = frozenset()
    anthropic_versions: frozenset[str] = frozenset({ANTHROPIC_VERSION})
    betas: tuple[str, ...] = ()
    _betas: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super(BedrockConfig, self).__post_init__()
        object.__setattr__(self, "_betas", model_matcher(self.betas))

    def beta_ok(self, beta: str) -> bool:
        return self._betas.match(beta) is not None


SECTION = Section("bedrock", BedrockConfig, (
    *common_fields("bedrock", [defaults.BEDROCK_API_KEY], ["anthropic.claude-*", "*.anthropic.claude-*"],
                   what="Bedrock API key (Authorization: Bearer)"),
    Field("region", scalar(str), defaults.BEDROCK_REGION, flag="--bedrock-region", metavar="REGION",
          help=f"the region signatures must be scoped to (default {defaults.BEDROCK_REGION})"),
    Field("credentials", _credentials, {defaults.BEDROCK_ACCESS_KEY_ID: defaults.BEDROCK_SECRET_ACCESS_KEY},
          flag="--bedrock-credential", flag_mode="pairs", metavar="ACCESS_KEY_ID=SECRET",
          help="another SigV4 access key and its secret"),
    Field("expired_session_tokens", frozen_strings, []),
    Field("anthropic_versions", frozen_strings, [ANTHROPIC_VERSION]),
    Field("betas", string_tuple, BEDROCK_BETAS),
))


class AwsError(Refusal):
    """An AWS JSON error: ``{"message": …}`` plus ``x-amzn-ErrorType`` and ``x-amzn-RequestId``."""

    def __init__(self, status: int, code: str, message: str, *, namespace: str = BEDROCK_NS,
                 message_key: str = "message") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.namespace, self.message_key = namespace, message_key

    def parts(self) -> tuple[dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": ids.request_uuid(),
            "x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/{self.namespace}/",
        }
        return headers, orjson.dumps({self.message_key: self.message})


def validation(message: str) -> AwsError:
    return AwsError(400, "ValidationException", message)


def fault_error(fault: Fault) -> AwsError:
    status = fault.status if fault.kind == "status" and fault.status else 503
    if status == 401:
        return AwsError(403, "UnrecognizedClientException", sigv4.INVALID_TOKEN, namespace=CORAL_NS)
    code, message = _FAULTS.get(status) or _FAULTS[500 if status >= 500 else 400]
    return AwsError(status, code, message)


def model_name(model_id: str) -> str:
    """The ``model`` Bedrock reports: ``us.anthropic.claude-sonnet-4-20250514-v1:0`` → ``claude-sonnet-4-20250514``."""
    bare = model_id.rpartition("/")[2]
    bare = bare.partition("anthropic.")[2] or bare
    return _VERSION_SUFFIX.sub("", bare)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "BigDecimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject" if isinstance(value, dict) else "Null"


def schema_problems(body: dict[str, Any], versions: frozenset[str]) -> list[str]:
    """Bedrock's schema errors for an Anthropic body, in the order it lists them."""
    problems = [f"#: required key [{key}] not found"
                for key in ("anthropic_version", "max_tokens", "messages") if key not in body]
    problems += [f"#: extraneous key [{key}] is not permitted" for key in ("model", "stream") if key in body]
    version = body.get("anthropic_version")
    if "anthropic_version" in body and version not in versions:
        problems.append(f"#/anthropic_version: {version} is not a valid enum value")
    if "max_tokens" in body and (not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool)):
        problems.append(f"#/max_tokens: expected type: Integer, found: {_json_type(body['max_tokens'])}")
    betas = body.get("anthropic_beta")
    if "anthropic_beta" in body and not isinstance(betas, list):
        problems.append(f"#/anthropic_beta: expected type: JSONArray, found: {_json_type(betas)}")
    elif isinstance(betas, list):
        problems += [f"#/anthropic_beta/{i}: expected type: String, found: {_json_type(beta)}"
                     for i, beta in enumerate(betas) if not isinstance(beta, str)]
    return problems


def _payload(event: bytes, position: int) -> bytes:
    pad = _PAD_ALPHABET[: _PAD_LENGTHS[position % len(_PAD_LENGTHS)]]
    return b'{"bytes":"' + base64.b64encode(event) + b'","p":"' + pad.encode() + b'"}'


def stream_frames(
    model: str, message_id: str, input_tokens: int, reply: Reply, *,
    chunk_tokens: int = 1, first_byte_ms: int = 0, total_ms: int = 0, error_after: int | None = None,
) -> list[Frame]:
    """The event-stream messages of one streamed reply (thinking, then a tool call or text, as recorded:
    no ping, no ``caller``, usage of input and output tokens only); with `error_after`, that many deltas
    then a ``modelStreamErrorException``."""
    frames: list[Frame] = []
    deltas = 0

    class _Stop(Exception):
        pass

    def chunk(event: dict[str, Any] | bytes, tokens: int = 0) -> None:
        data = event if isinstance(event, bytes) else orjson.dumps(event)
        frames.append((eventstream.event("chunk", _payload(data, len(frames))), tokens))

    def delta(index: int, body: dict[str, Any] | bytes, tokens: int) -> None:
        nonlocal deltas
        if error_after is not None and deltas >= error_after:
            raise _Stop
        deltas += 1
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        chunk(b'{"type":"content_block_delta","index":' + str(index).encode() + b',"delta":' + payload + b"}",
              tokens)

    chunk({"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }})
    index = 0
    try:
        if reply.thinking_tokens:
            chunk({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            for text_json, count in textgen.chunks(reply.thinking_tokens, chunk_tokens):
                delta(0, b'{"type":"thinking_delta","thinking":' + text_json + b"}", count)
            delta(0, {"type": "signature_delta", "signature": reply.signature}, 0)
            chunk({"type": "content_block_stop", "index": 0})
            index = 1
        if reply.tool is not None:
            tool = reply.tool
            chunk({"type": "content_block_start", "index": index,
                   "content_block": {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}})
            pieces = argument_pieces(tool.arguments)
            share = max(1, tool_tokens(tool) // len(pieces))
            # Bedrock opens every tool input with an empty piece (recorded).
            for piece in pieces if pieces == [""] else ["", *pieces]:
                delta(index, {"type": "input_json_delta", "partial_json": piece}, share if piece else 0)
        else:
            chunk({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            for text_json, count in textgen.chunks(reply.text_tokens, chunk_tokens):
                delta(index, b'{"type":"text_delta","text":' + text_json + b"}", count)
        if error_after is not None and deltas >= error_after:
            raise _Stop
    except _Stop:
        failure = orjson.dumps({"message": STREAM_FAILURE})
        frames.append((eventstream.exception("modelStreamErrorException", failure), 0))
        return frames
    chunk({"type": "content_block_stop", "index": index})
    chunk({"type": "message_delta", "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
           "usage": {"output_tokens": reply.output_tokens}})
    chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": input_tokens, "outputTokenCount": reply.output_tokens,
        "invocationLatency": total_ms, "firstByteLatency": first_byte_ms,
    }})
    return frames


@dataclass(frozen=True, slots=True)
class _Plan:
    model_id: str
    body: dict[str, Any]


class Invoke(Endpoint):
    """``InvokeModel`` (``stream=False``) or ``InvokeModelWithResponseStream`` (``stream=True``)."""

    api = API
    section = SECTION.name
    vendor: BedrockConfig

    def __init__(self, config: SimulatorConfig, *, stream: bool) -> None:
        super().__init__(config)
        self.stream = stream

    def admit(self, ex: Exchange) -> str:
        request = ex.request
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
            if self.vendor.key_ok(token):
                return token
            message = KEY_INVALID if token.startswith("ABSK") else KEY_FORMAT
            raise AwsError(403, "AccessDeniedException", message, message_key="Message")
        headers = list(request.headers.items())
        try:
            if self.vendor.accept_any_key and authorization:
                return sigv4.parse_authorization(authorization).access_key
            return sigv4.verify(
                request.method, request.raw_path, headers, ex.raw,
                region=self.vendor.region, service=SERVICE, lookup=self.vendor.credentials.get,
                expired_tokens=self.vendor.expired_session_tokens,
            )
        except sigv4.SigV4Error as exc:
            raise AwsError(exc.status, exc.code, exc.message, namespace=CORAL_NS) from None

    def streams(self, ex: Exchange) -> bool:
        return self.stream

    def bad_request(self, message: str) -> Refusal:
        return validation(message)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        return fault_error(fault)

    def validate(self, ex: Exchange) -> _Plan:
        model_id = ex.request.match_info["model_id"]
        if not self.vendor.serves(model_id.rpartition("/")[2]):
            raise validation(INVALID_MODEL)
        body = ex.json_object
        if body is None:
            raise validation(MALFORMED)
        problems = schema_problems(body, self.vendor.anthropic_versions)
        if problems:
            raise validation(f"Malformed input request: {', '.join(problems)}, please reformat your input and "
                             "try again.")
        if any(not self.vendor.beta_ok(beta) for beta in body.get("anthropic_beta", ())):
            raise validation("invalid beta flag")
        problem = max_tokens_problem(body) or messages_problem(body) or signature_problem(body, ORGANIZATION)
        if problem:
            raise validation(problem)
        return _Plan(model_id, body)

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, body = self.config, plan.body
        reply = plan_reply(body, config.reply_tokens, ORGANIZATION, ids.bedrock_tool_use_id)
        output_tokens = reply.output_tokens
        input_tokens = textgen.estimate_tokens(body["messages"], body.get("system"), body.get("tools"))
        model, message_id = model_name(plan.model_id), ids.bedrock_message_id()
        delay = config.first_byte_delay + faults.extra_delay(fault)
        generation = output_tokens * config.seconds_per_token
        if self.stream:
            headers = {"Content-Type": STREAM_TYPE, "X-Amzn-Bedrock-Content-Type": "application/json",
                       "x-amzn-RequestId": ids.request_uuid()}
            frames = stream_frames(
                model, message_id, input_tokens, reply,
                chunk_tokens=config.chunk_tokens, first_byte_ms=int(delay * 1000),
                total_ms=int((delay + generation) * 1000), error_after=faults.count(fault, "stream_error"),
            )
            return await delivery.send_stream(
                ex.request, headers, frames, delay=delay, seconds_per_token=config.seconds_per_token,
                disconnect_after=faults.count(fault, "disconnect"),
            )
        message = {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": content_blocks(reply),
            "stop_reason": reply.stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
        headers = {
            "Content-Type": "application/json",
            "X-Amzn-Bedrock-Input-Token-Count": str(input_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(int((delay + generation) * 1000)),
            "X-Amzn-Bedrock-Output-Token-Count": str(output_tokens),
            "x-amzn-RequestId": ids.request_uuid(),
        }
        return await delivery.send_body(
            ex.request, 200, headers, orjson.dumps(message), delay=delay + generation,
            disconnect=faults.count(fault, "disconnect") is not None,
        )


def routes(config: SimulatorConfig) -> list[Route]:
    return [
        Route("POST", "/model/{model_id:.+}/invoke", Invoke(config, stream=False)),
        Route("POST", "/model/{model_id:.+}/invoke-with-response-stream", Invoke(config, stream=True)),
    ]
