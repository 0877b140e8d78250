"""Anthropic models on AWS Bedrock (bedrock): InvokeModel and InvokeModelWithResponseStream.

- URL: `{base_url}/model/{model id}/invoke` or `/invoke-with-response-stream`; the model id is the account's
  mapping of the client's model, else `anthropic.<model>-v1:0` (Bedrock's naming of Claude models), behind
  the region's inference profile (`us.`, `eu.`, `apac.`) for the models Bedrock serves only that way; an id
  that already names a Bedrock model or inference profile (it has a dot) is used as it is.
- Body: the Anthropic request with `anthropic_version: bedrock-2023-05-31`, without `model` and `stream`;
  the client's `anthropic-beta` values that Bedrock accepts move into `anthropic_beta`, the others are
  dropped (Bedrock refuses unknown ones).
- Auth: SigV4 with botocore's signer over the final bytes (access key, secret, optional session token,
  region), or a Bedrock API key as a bearer token.
- Streams: AWS event-stream frames, decoded with botocore's parser; each `chunk` event carries one
  Anthropic event, relayed to the client as the SSE event Anthropic itself would send (the Bedrock-only
  `amazon-bedrock-invocationMetrics` removed). An exception frame becomes an Anthropic `error` event.
- Errors: Bedrock's `{"message": …}` bodies are reshaped into Anthropic's error format for the client.
"""

import base64
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, EventStreamMessage

from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEEvent
from switchboard_edge.upstream.anthropic import REFUSED_SIGNATURE, AnthropicStreamTap
from switchboard_edge.upstream.base import Call, Platform, UpstreamRequest
from switchboard_edge.usage import Usage, merge_anthropic

log = logging.getLogger(__name__)

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
EVENT_STREAM = "application/vnd.amazon.eventstream"
# anthropic-beta values Bedrock accepts for Claude models (others are refused by Bedrock).
BEDROCK_BETAS = frozenset({
    "computer-use-2024-10-22", "computer-use-2025-01-24", "token-efficient-tools-2025-02-19",
    "interleaved-thinking-2025-05-14", "output-128k-2025-02-19", "dev-full-thinking-2025-05-14",
    "context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14", "context-management-2025-06-27",
    "tool-search-tool-2025-10-19",
})
_DROPPED_FIELDS = ("model", "stream")
# Bedrock exception names -> Anthropic error types, for errors before and during a stream.
_ERROR_TYPES = {
    "ValidationException": "invalid_request_error",
    "AccessDeniedException": "permission_error",
    "UnrecognizedClientException": "authentication_error",
    "ExpiredTokenException": "authentication_error",
    "ResourceNotFoundException": "not_found_error",
    "ThrottlingException": "rate_limit_error",
    "throttlingException": "rate_limit_error",
    "ServiceUnavailableException": "overloaded_error",
    "serviceUnavailableException": "overloaded_error",
    "ModelTimeoutException": "timeout_error",
    "modelTimeoutException": "timeout_error",
}


# Claude models Bedrock serves on demand only through a cross-region inference profile ("us.anthropic.…").
PROFILE_ONLY = ("claude-sonnet-4", "claude-opus-4", "claude-haiku-4", "claude-3-7-sonnet")
# Region prefix -> the inference profile's geography.
_GEOGRAPHIES = (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac"), ("ca-", "ca"))


def bedrock_model_id(model: str, region: str) -> str:
    """The Bedrock id for a client's model: an id or ARN as it is; else Anthropic's model on Bedrock,
    through the region's inference profile where Bedrock requires one. Accounts override it with
    `model_mapping` (e.g. to a global profile or a provisioned-throughput ARN)."""
    if "." in model or model.startswith("arn:"):
        return model
    base = f"anthropic.{model}-v1:0"
    if not model.startswith(PROFILE_ONLY):
        return base
    geography = next((name for prefix, name in _GEOGRAPHIES if region.startswith(prefix)), "us")
    return f"{geography}.{base}"


def bedrock_body(call: Call) -> bytes:
    body = {key: value for key, value in call.body.items() if key not in _DROPPED_FIELDS}
    body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
    betas = [beta.strip() for beta in call.client_headers.get("anthropic-beta", "").split(",") if beta.strip()]
    accepted = [beta for beta in betas if beta in BEDROCK_BETAS]
    if len(accepted) < len(betas):
        log.debug("anthropic-beta values Bedrock does not accept dropped: %s",
                  ", ".join(beta for beta in betas if beta not in BEDROCK_BETAS))
    if accepted:
        body["anthropic_beta"] = accepted
    return orjson.dumps(body)


class BedrockDecoder:
    """AWS event-stream frames in, Anthropic SSE events out."""

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer.add_data(chunk)
        return [event for message in self._buffer if (event := _event(message)) is not None]

    def flush(self) -> bytes:
        return b""


def _event(message: EventStreamMessage) -> SSEEvent | None:
    headers = message.headers
    kind = headers.get(":message-type")
    if kind == "event" and headers.get(":event-type") == "chunk":
        try:
            data = base64.b64decode(orjson.loads(message.payload)["bytes"])
            name = orjson.loads(data).get("type", "")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("Bedrock sent an unreadable chunk event")
            return None
        if name == "message_stop" and b"amazon-bedrock-invocationMetrics" in data:
            parsed = orjson.loads(data)
            parsed.pop("amazon-bedrock-invocationMetrics", None)
            data = orjson.dumps(parsed)
        return SSEEvent(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n")
    if kind in ("exception", "error"):
        name = headers.get(":exception-type") or headers.get(":error-code") or "serviceUnavailableException"
        try:
            message_text = str(orjson.loads(message.payload).get("message", name))
        except (orjson.JSONDecodeError, AttributeError):
            message_text = str(name)
        error = {"type": "error", "error": {"type": _ERROR_TYPES.get(name, "api_error"), "message": message_text}}
        return SSEEvent(b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
    return None


class Bedrock(Platform):
    id = platforms.BEDROCK
    client_format = ClientFormat.ANTHROPIC
    stream_content_type = EVENT_STREAM

    def build(self, call: Call) -> UpstreamRequest:
        account = call.account
        action = "invoke-with-response-stream" if call.stream else "invoke"
        model_id = quote(bedrock_model_id(call.upstream_model, account.region), safe="")
        url = f"{account.base_url}/model/{model_id}/{action}"
        body = bedrock_body(call)
        headers = {"content-type": "application/json", "accept": EVENT_STREAM if call.stream else "application/json"}
        headers.update(account.headers)
        secrets = account.credential.secrets
        if secrets.get("aws_access_key_id"):
            signed = AWSRequest(method="POST", url=url, data=body, headers=headers)
            credentials = Credentials(secrets["aws_access_key_id"], secrets.get("aws_secret_access_key", ""),
                                      secrets.get("aws_session_token") or None)
            SigV4Auth(credentials, "bedrock", account.region).add_auth(signed)
            headers = dict(signed.headers.items())
        else:
            headers["authorization"] = f"Bearer {account.credential.api_key}"
        return UpstreamRequest(url, headers, body)

    def usage(self, body: Any) -> Usage:
        usage = Usage()
        if isinstance(body, dict):
            merge_anthropic(usage, body.get("usage"))
        return usage

    def tap(self, body: Mapping[str, Any]) -> AnthropicStreamTap:
        return AnthropicStreamTap()

    def refuses_reasoning(self, status: int, payload: bytes) -> bool:
        return status == 400 and REFUSED_SIGNATURE in payload

    def decoder(self) -> BedrockDecoder:
        return BedrockDecoder()

    def client_error(self, status: int, headers: Mapping[str, str], payload: bytes) -> bytes | None:
        """Bedrock's error body in Anthropic's format: /claude clients read Anthropic errors."""
        name = headers.get("x-amzn-errortype", "").split(":", 1)[0]
        try:
            message = str(orjson.loads(payload).get("message") or name or f"HTTP {status}")
        except (orjson.JSONDecodeError, AttributeError):
            message = name or f"HTTP {status}"
        kind = _ERROR_TYPES.get(name, "invalid_request_error" if status < 500 else "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
