"""One request in flight: the route it came by (`Endpoint`), what is known of it (`Exchange`), how it ended."""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from switchboard_edge.admission import Admission
from switchboard_edge.errors import ClientFormat
from switchboard_edge.framing import StreamFraming, sse
from switchboard_edge.usage import Usage

SessionReader = Callable[[Mapping[str, Any], Mapping[str, str]], str]
# Chooses a stream's client framing from the request's query parameters.
FramingChooser = Callable[[Mapping[str, str]], StreamFraming]

# How a request ended (UsageRecord.end_reason).
COMPLETE = "complete"
CLIENT_CLOSED = "client_closed"
UPSTREAM_BROKE = "upstream_broke"
UPSTREAM_ENDED = "upstream_ended"
UPSTREAM_ERROR = "upstream_error"
TIMEOUT = "timeout"
SHUTDOWN = "shutdown"
ERROR = "error"
# nginx's status for "the client closed the connection": never sent (nobody is listening), only recorded.
CLIENT_CLOSED_STATUS = 499


@dataclass(frozen=True)
class Endpoint:
    """A client-facing route: its dialect, the platforms it reaches and how."""

    route: str
    client_format: ClientFormat
    operation: str
    # Every platform the route reaches, those answering in its own format first (`registry.reachable`);
    # a bare model name narrows them to the ones serving it (`switchboard_edge.catalog`).
    platforms: tuple[str, ...]
    session: SessionReader
    # Those of `platforms` that answer in the route's format without a translator (the router ranks them first).
    natives: frozenset[str] = frozenset()
    # What the route's requests are written in, when it differs from what it answers in (`/gemini/v1/chat`).
    request_format: ClientFormat | None = None
    # Gemini's routes name the model in the path (`{model}` path parameter), accept the key as `?key=`,
    # and say by their action whether they stream (None: the body's `stream` says).
    model_in_path: bool = False
    key_in_query: bool = False
    stream: bool | None = None
    framing: FramingChooser = sse


@dataclass(eq=False)
class Exchange:
    """Everything known about one request while it is in flight."""

    endpoint: Endpoint
    request_id: str
    started: float
    started_wall: float
    model: str = ""
    stream: bool = False
    session: str = ""
    # The client program recognised from the headers (`callers.client_app`), for the ledger.
    client_app: str = ""
    platform: str = ""
    body: Mapping[str, Any] = field(default_factory=dict)
    framing: StreamFraming = field(default_factory=StreamFraming)
    admission: Admission | None = None
    # The current attempt's lease has not been reported back yet.
    lease_open: bool = False
    upstream_model: str = ""
    upstream_started: float = 0.0
    upstream_time: float = 0.0
    first_byte: float = 0.0
    usage: Usage = field(default_factory=Usage)
    # The current attempt's upstream rate-limit and retry headers, reported with its outcome.
    upstream_hints: dict[str, str] = field(default_factory=dict)
    usage_estimated: bool = False
    # Set once, by whoever ends the request early (the client leaving, the drain); empty while it runs.
    end_reason: str = ""
    # The task handling the request until its response starts; the upstream response while streaming.
    task: asyncio.Task[Any] | None = None
    upstream: aiohttp.ClientResponse | None = None
