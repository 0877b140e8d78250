"""The platform contract and the header rules every platform shares."""

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge import failover
from switchboard_edge.errors import ClientFormat
from switchboard_edge.failover import Verdict
from switchboard_edge.sse import SSEDecoder, SSEEvent
from switchboard_edge.usage import Usage, estimate_input, tokens_for_chars

# Response headers from the upstream that a client may see. Everything else
# (rate-limit state of the account, organisation ids, cookies) stays with us.
RESPONSE_HEADERS = frozenset(
    {"content-type", "request-id", "x-request-id", "retry-after", "retry-after-ms", "x-should-retry",
     "openai-processing-ms"}
)
# Except the Codex backend's usage windows (used percent, window minutes, reset times), which Codex CLI shows
# its user: they describe the account that served the answer.
RESPONSE_HEADER_PREFIXES = ("x-codex-primary-", "x-codex-secondary-")

# Who issues an account's OAuth access tokens (`Platform.sign_in`): Anthropic (claude-official) or OpenAI for
# a ChatGPT sign-in (openai-responses on the Codex backend). The edge's settings name each one's token endpoint.
ANTHROPIC_SIGN_IN = "anthropic"
CHATGPT_SIGN_IN = "chatgpt"


def forwardable(headers: Mapping[str, str], names: frozenset[str], prefixes: tuple[str, ...]) -> dict[str, str]:
    """Client headers allowed upstream: an allowlist of names and prefixes (lower-case)."""
    return {
        name: value
        for name, value in headers.items()
        if name in names or name.startswith(prefixes)
    }


def with_query(url: str, query: str) -> str:
    """The upstream URL carrying the client's query string (Claude Code sends `?beta=true`)."""
    return f"{url}?{query}" if query else url


# What the router reads (`switchboard_router.verdicts`): retry delays, OpenAI's `x-ratelimit-*` buckets,
# Anthropic's `anthropic-ratelimit-unified-*` usage windows (and the older per-minute buckets), and the Codex
# backend's `x-codex-primary-*` / `x-codex-secondary-*` usage windows.
_HINT_HEADERS = frozenset({"retry-after", "retry-after-ms", "x-should-retry"})
_HINT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "x-codex-")


def upstream_hints(headers: Iterable[tuple[str, str]], retry_after: float | None = None) -> dict[str, str]:
    """The vendor's rate-limit, usage-window and retry headers of an attempt, for the router, whatever its
    outcome (the usage windows arrive on 200 answers); a delay the vendor gave only in its body
    (`retry_after`) becomes `retry-after`."""
    hints = {lower: value for name, value in headers
             if (lower := name.lower()) in _HINT_HEADERS or lower.startswith(_HINT_PREFIXES)}
    if retry_after is not None and "retry-after" not in hints:
        hints["retry-after"] = str(max(1, math.ceil(retry_after)))
    return hints


UPSTREAM_ERROR_CHARS = 300
# Facts of a vendor's error body the router needs besides the message: when a spent usage window resets
# (the Codex backend's `usage_limit_reached`).
_RESET_FIELDS = ("resets_at", "resets_in_seconds")
# Shapes of credentials a vendor might echo in a message (keys, bearer tokens, JWTs); the account's own
# secrets are masked by value besides.
_CREDENTIAL_SHAPES = re.compile(
    r"Bearer\s+\S+|\b(?:sk-|AIza|AKIA|ASIA)[A-Za-z0-9_\-]{12,}|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-.]+")
_MASK = "[redacted]"


def upstream_error(payload: bytes, secrets: Iterable[str] = ()) -> str:
    """The vendor's own error kind and message from an error body, for the router (`error_excerpt`); empty
    when the body is not a JSON error."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    return error_excerpt(body, secrets)


def error_kind(body: Any) -> str:
    """The vendor's own error kind in a parsed error body or in-stream error event: Anthropic's `error.type`,
    OpenAI's `error.code` or `type`, Google's `error.status`; empty when it names none."""
    error = _error_object(body)
    if error is None:
        return ""
    return next((value for name in ("code", "type", "status")
                 if isinstance(value := error.get(name), str) and value and value != "error"), "")


def error_excerpt(body: Any, secrets: Iterable[str] = ()) -> str:
    """`"<kind>: <message>"` from a parsed error body or in-stream error event (`error_kind`), with any reset
    the body states after the message (`(resets_at=1777936568, resets_in_seconds=13872)`), at most 300
    characters; empty when it is not an error. Never a credential: `secrets` (the account's own) and anything
    shaped like a key are masked."""
    error = _error_object(body)
    if error is None:
        return ""
    kind = error_kind(body)
    message = next((value for name in ("message", "Message", "detail")
                    if isinstance(value := error.get(name), str)), "")
    resets = ", ".join(f"{name}={str(value)[:40]}" for name in _RESET_FIELDS
                       if isinstance(value := error.get(name), int | float | str) and not isinstance(value, bool))
    suffix = f" ({_masked(resets, secrets)})" if resets else ""
    prefix = f"{_masked(kind[:80], secrets)}: " if kind else ""
    message = _masked(" ".join(message.split()), secrets)
    room = UPSTREAM_ERROR_CHARS - len(prefix) - len(suffix)
    if len(message) > room:
        message = message[:max(0, room - 1)] + "…"
    return f"{prefix}{message}{suffix}"[:UPSTREAM_ERROR_CHARS]


def _error_object(body: Any) -> dict[str, Any] | None:
    """The object holding an error's fields: `body["error"]`, else the body itself (Bedrock's `{"message": …}`,
    the Codex backend's `{"detail": …}`, a Responses `error` event's own `code` and `message`)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return {"message": error}
    return error if isinstance(error, dict) else body


def _masked(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 8:
            text = text.replace(secret, _MASK)
    return _CREDENTIAL_SHAPES.sub(_MASK, text)


def event_object(data: bytes) -> dict[str, Any]:
    """A stream event's JSON data as an object; {} when it is not one (a tap never fails on a vendor's bytes)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def response_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {lower: value for name, value in headers
            if (lower := name.lower()) in RESPONSE_HEADERS or lower.startswith(RESPONSE_HEADER_PREFIXES)}


class StreamTap(ABC):
    """Watches a relayed stream event by event: usage, completion, the vendor's own error, events to hold back.

    Each platform's tap fills these fields from its events; `settled_usage` turns them into the
    usage to record, estimated when the stream ended before the vendor's final usage.
    """

    def __init__(self) -> None:
        self.usage = Usage()
        # The stream reached its proper end (Anthropic message_stop, OpenAI [DONE]).
        self.complete = False
        # The vendor sent its final usage (Anthropic message_delta, OpenAI's usage chunk).
        self.final_usage = False
        # The vendor already said the input tokens (Anthropic message_start).
        self.input_reported = False
        # The vendor sent its own in-stream error event, which the client has seen; `error` is the first one's
        # error body (read with `error_kind` and `error_excerpt`), None when it was unreadable.
        self.errored = False
        self.error: Mapping[str, Any] | None = None
        # Output relayed so far: generated characters (text, thinking, tool arguments) and delta events.
        self.output_chars = 0
        self.output_deltas = 0

    @abstractmethod
    def observe(self, event: SSEEvent) -> bool:
        """Reads one event; False means the client must not see it."""

    def failed(self, error: Any) -> None:
        """The vendor's in-stream error: its error body (`{"error": {...}}`, or the error's own fields); the
        first one is kept (a Responses `error` event and the `response.failed` after it say the same)."""
        self.errored = True
        if self.error is None and isinstance(error, dict) and error:
            self.error = error

    def settled_usage(self, request_body: Mapping[str, Any]) -> tuple[Usage, bool]:
        """The usage to record and whether any of it is the gateway's estimate."""
        if self.final_usage:
            return self.usage, False
        usage = Usage(**{name: getattr(self.usage, name) for name in Usage.__slots__})
        if not self.input_reported:
            usage.input_tokens = estimate_input(request_body)
        usage.output_tokens = max(usage.output_tokens, self.output_deltas, tokens_for_chars(self.output_chars))
        return usage, True


class IncompleteAnswer(Exception):
    """A streamed upstream answer, collected for a non-stream client, that ended without its result (the
    message is safe to show the client; `error` is the vendor's own error body when it sent one)."""

    def __init__(self, message: str, error: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error


class StreamDecoder(Protocol):
    """Turns the upstream's stream bytes into events in the platform's native client format."""

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...

    def flush(self) -> bytes:
        """Whatever is left at the end (an unterminated last event), to pass on as it is."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """Everything a platform may use to build one upstream request."""

    account: router_pb2.Account
    upstream_model: str
    # The client's body, parsed, and its bytes as received (sent unchanged when nothing must change).
    body: Mapping[str, Any]
    raw: bytes
    stream: bool
    query: str
    client_headers: Mapping[str, str]
    # What the client asked for: "chat" (a completion) or another operation the platform lists.
    operation: str = "chat"
    # Instructions for an upstream that refuses a request without them (the Codex backend), when the client
    # gave none (the edge's `codex_default_instructions`).
    default_instructions: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    body: bytes


class Platform(ABC):
    """One upstream platform: how a request is built for it and how its answers are read. Sans-I/O.

    A platform serves clients of one format (`client_format`) natively; the routes of that format reach it
    through the registry (`switchboard_edge.upstream.registry`).
    """

    id: str
    client_format: ClientFormat
    # The content type of the platform's streamed answers.
    stream_content_type = "text/event-stream"
    # Operations the platform serves ("chat"; Anthropic's also "count_tokens"; Gemini's too; Responses' "compact").
    operations: frozenset[str] = frozenset({"chat"})

    def sign_in(self, account: router_pb2.Account) -> str | None:
        """Who issues the account's OAuth access token (`ANTHROPIC_SIGN_IN`, `CHATGPT_SIGN_IN`), which
        `switchboard_edge.oauth` keeps fresh before the request is built; None: the account uses a key."""
        return None

    @abstractmethod
    def build(self, call: Call) -> UpstreamRequest:
        """URL, headers and the final body bytes (signed, where the platform signs)."""

    @abstractmethod
    def usage(self, body: Any) -> Usage:
        """Usage from a non-stream answer body (after `whole_body`)."""

    def whole_body(self, payload: bytes, content_type: str) -> tuple[bytes, str]:
        """A successful non-stream answer as the client gets it, and its content type. An upstream that
        only streams (the Codex backend) is collected here into the one JSON answer the client asked for;
        `IncompleteAnswer` when the stream never finished."""
        return payload, content_type

    @abstractmethod
    def tap(self, body: Mapping[str, Any]) -> StreamTap:
        """A fresh tap for one attempt; `body` is the client's own body."""

    def decoder(self) -> StreamDecoder:
        return SSEDecoder()

    def client_error(self, status: int, headers: Mapping[str, str], payload: bytes) -> bytes | None:
        """An upstream error body reshaped into the client format, or None to pass it on as it is."""
        return None

    def refuses_reasoning(self, status: int, payload: bytes) -> bool:
        """Whether an error refuses the history's reasoning tokens as made by another account or organisation
        (the relay then sends the history once more without them)."""
        return False

    def classify(self, status: int, payload: bytes) -> Verdict:
        """What an upstream error (status and body) means for the request and the account."""
        return failover.classify(status)
