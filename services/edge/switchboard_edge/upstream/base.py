"""The adapter contract and the header rules every adapter shares."""

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from switchboard.router.v1 import router_pb2
from switchboard_edge.sse import SSEEvent
from switchboard_edge.usage import Usage

# Response headers from the upstream that a client may see. Everything else
# (rate-limit state of the account, organisation ids, cookies) stays with us.
RESPONSE_HEADERS = frozenset(
    {"content-type", "request-id", "x-request-id", "retry-after", "retry-after-ms", "x-should-retry",
     "openai-processing-ms"}
)


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


def response_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers if name.lower() in RESPONSE_HEADERS}


class StreamTap(Protocol):
    """Watches a relayed stream event by event: usage, completion, events to hold back."""

    usage: Usage
    complete: bool

    def observe(self, event: SSEEvent) -> bool:
        """Reads one event; False means the client must not see it."""
        ...


class Adapter(Protocol):
    def url(self, account: router_pb2.Account, query: str) -> str: ...

    def headers(self, account: router_pb2.Account, client_headers: Mapping[str, str]) -> dict[str, str]: ...

    def prepare(self, body: Mapping[str, Any], upstream_model: str) -> dict[str, Any] | None:
        """The body the upstream must see, or None when the client's bytes can go as they are."""
        ...

    def usage(self, body: Any) -> Usage: ...

    def tap(self, body: Mapping[str, Any]) -> StreamTap:
        """A fresh tap for one attempt; `body` is the client's own body."""
        ...

    def stream_error(self, error_payload: dict[str, Any]) -> bytes:
        """A final SSE event carrying an error, in the client's protocol."""
        ...
