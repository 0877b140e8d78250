"""What a client connection may send, and for how long: enforced while the request is parsed.

uvicorn's httptools protocol takes any number of headers of any size and waits forever for a slow
client. `LimitedHttpProtocol` (a subclass, selected with `uvicorn.Config(http=protocol_for(limits))`)
bounds the request head as it arrives and puts a deadline on every wait for the client:

- more than `max_headers` header lines → 431;
- a header line (`name: value` and its CRLF) over `max_header_line_bytes` → 431;
- header lines together over `max_header_bytes` → 431;
- a request target over `max_header_line_bytes` → 414;
- a `Transfer-Encoding` other than `chunked` alone → 400 before the request reaches the app (`gzip, chunked`
  would hand it a body still coded; `identity` or a repeated header httptools refuses only once the app has
  the request); the other framing conflicts request smuggling relies on (Content-Length with
  Transfer-Encoding, two Content-Lengths, an obfuscated Transfer-Encoding) httptools refuses in the head → 400;
- a head httptools refuses (control bytes, bad syntax) → 401 if the line is a key header, else 400;
- no complete head `header_timeout` after the connection opened (on a kept-alive connection: after the
  request's first byte) → 408, or closed without an answer if the connection sent nothing;
- no complete body `body_timeout` after the head → 408 (only closed if the app already answered);
- nothing, for `idle_timeout` after an answer on a kept-alive connection → closed (uvicorn's keep-alive).

Every answer is rendered by `errors.render` in the format of the endpoint the request line named
(Anthropic under /claude, OpenAI elsewhere), with `connection: close`, and the connection is closed.
The per-line limit counts `name: value` and its CRLF, so the largest line let through (8190 bytes
without its CRLF at the default) is one aiohttp servers (the simulator) accept: an allowlisted
header never reaches an upstream that would refuse it.

Cost on the hot path: a few counters per header and no timer at all for a request whose head (and
body) arrive in one read; a timer (`loop.call_later`) is armed only while the edge waits for more.
"""

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from switchboard_edge.errors import (
    AuthenticationFailed,
    InvalidRequest,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    SwitchboardError,
    URITooLong,
    format_for_path,
    render,
)
from switchboard_edge.settings import EdgeSettings

log = logging.getLogger(__name__)

# Headers that carry the client's key: a malformed one is an authentication failure, never echoed.
KEY_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})

# Where the connection is in the current request.
_WAIT = 0  # between requests (or none yet): no request bytes pending
_HEAD = 1  # the request line or headers are arriving
_BODY = 2  # the head is complete, the body is arriving
_DONE = 3  # refused or handed over: nothing more is read or answered here

# Bytes httptools refuses in a header line (HTAB allowed).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    max_header_line_bytes: int = 8 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 120.0
    idle_timeout: float = 75.0

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> "HttpLimits":
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            max_header_line_bytes=settings.max_header_line_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            idle_timeout=settings.idle_timeout_seconds,
        )


def protocol_for(limits: HttpLimits) -> type["LimitedHttpProtocol"]:
    """The protocol class to hand to `uvicorn.Config(http=...)`, bound to `limits`."""
    bound = limits

    class BoundProtocol(LimitedHttpProtocol):
        limits = bound

    return BoundProtocol


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; `data_received` answers `error`."""

    def __init__(self, error: SwitchboardError) -> None:
        super().__init__(error.message)
        self.error = error


class LimitedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = self.limits
        # uvicorn's keep-alive timer: armed when an answer is complete, cancelled by the next byte.
        self.timeout_keep_alive = limits.idle_timeout  # type: ignore[assignment]
        # Read per header: instance attributes are the fastest lookups (Python 3.11 does not specialise
        # class attributes read through an instance).
        self._max_line = limits.max_header_line_bytes
        self._max_total = limits.max_header_bytes
        self._max_count = limits.max_headers
        self.url = b""
        self._phase = _WAIT
        self._header_bytes = 0
        # The unfinished line of a head split across reads (to bound it and to name a refused header).
        self._partial = bytearray()
        self._began_in_read = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # -- connection --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte holds a file descriptor: it gets the header deadline too.
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._phase = _DONE
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _DONE:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.error)
            else:
                self._refuse(self._malformed(exc, data))
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._cancel_timers()
                self._phase = _DONE
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        phase = self._phase
        if phase == _WAIT:
            cycle = self.cycle
            if cycle is not None and cycle.response_complete and self.timeout_keep_alive_task is None:
                # Answered before its body ended (a 401 before the upload, say): idle from now on, and the
                # keep-alive timer that the body's bytes cancelled is not armed again by uvicorn.
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                    self.timeout_keep_alive_handler)
        elif phase == _HEAD:
            self._head_continues(data)
        elif phase == _BODY and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_deadline)

    # -- parser callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._began_in_read = True
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self._max_line:
            raise _Refused(URITooLong(f"The request target exceeds {self._max_line} bytes."))

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's on_header with the sizes (the line as sent is `name: value` and CRLF); the count is checked
        # when the head is complete or a read ends inside it, since the total already bounds it.
        size = len(name) + len(value) + 4
        total = self._header_bytes + size
        self._header_bytes = total
        if size > self._max_line or total > self._max_total:
            raise _Refused(self._too_large(name, size))
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        elif name == b"transfer-encoding" and _codings(value) != [b"chunked"]:
            raise _Refused(InvalidRequest("Transfer-Encoding must be chunked alone; no other coding is supported."))
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if len(self.headers) > self._max_count:
            raise _Refused(self._too_many())
        self._phase = _BODY
        self._began_in_read = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._partial:
            self._partial.clear()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _WAIT
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # -- limits --------------------------------------------------------------------

    def _too_many(self) -> RequestHeaderFieldsTooLarge:
        return RequestHeaderFieldsTooLarge(f"The request has more than {self._max_count} headers.")

    def _too_large(self, name: bytes, size: int) -> RequestHeaderFieldsTooLarge:
        limits = self.limits
        if size > limits.max_header_line_bytes:
            shown = name[:100].decode("latin-1")
            return RequestHeaderFieldsTooLarge(
                f"The {shown} header line is {size} bytes; the limit is {limits.max_header_line_bytes}.")
        return RequestHeaderFieldsTooLarge(f"The request headers exceed {limits.max_header_bytes} bytes.")

    def _head_continues(self, data: bytes) -> None:
        """The read ended inside a head: arm its deadline, and bound the line httptools is accumulating."""
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_deadline)
        limit = self.limits.max_header_line_bytes
        partial = self._partial
        newline = data.rfind(b"\n")
        if newline >= 0:
            partial[:] = data[newline + 1:]
        else:
            partial += data
        if self._began_in_read:
            # The read may have begun with the end of a pipelined request: judge the line from the next read.
            self._began_in_read = False
            del partial[:-limit]
        if len(partial) > limit:
            self._refuse(RequestHeaderFieldsTooLarge(f"A request header line exceeds {limit} bytes."))
        elif len(self.headers) > self._max_count:
            self._refuse(self._too_many())

    def _malformed(self, exc: httptools.HttpParserError, data: bytes) -> SwitchboardError:
        """httptools refused the request: an authentication failure if the bad line is a key header."""
        if self._phase == _HEAD and _refused_header(bytes(self._partial) + data) in KEY_HEADERS:
            return AuthenticationFailed("The API key contains characters that are not allowed.")
        reason = str(exc).rstrip(".") or "unparseable"
        return InvalidRequest(f"Malformed HTTP request: {reason}.")

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._phase == _HEAD:
            self._refuse(RequestTimeout(
                f"The request headers were not received within {self.limits.header_timeout:g} s."))
        else:  # the connection never sent a byte: nobody to answer
            self._phase = _DONE
            self.transport.close()

    def _body_deadline(self) -> None:
        self._body_timer = None
        if self.flow.read_paused:  # the edge stopped reading (the app is behind), not the client
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_deadline)
            return
        self._refuse(RequestTimeout(
            f"The request body was not received within {self.limits.body_timeout:g} s."))

    # -- answering -------------------------------------------------------------------

    def _refuse(self, error: SwitchboardError) -> None:
        """Answer `error` and close; or only close, when the connection can no longer carry an answer."""
        phase = self._phase
        self._phase = _DONE
        self._cancel_timers()
        transport = self.transport
        if transport.is_closing():
            return
        log.debug("refused a request from %s: %d %s", self.client, error.status, error.message)
        cycle = self.cycle
        if phase == _BODY:
            # The request already belongs to the app: answer only if the app has not begun to.
            if cycle is not None and not cycle.response_started and not self.pipeline:
                cycle.disconnected = True  # the app's receive() sees the client gone; its send() is a no-op
                cycle.message_event.set()
                self._answer(error)
            transport.close()
            return
        if cycle is not None and not cycle.response_complete:
            # A request pipelined behind one still being answered: that answer ends the connection.
            cycle.keep_alive = False
            self.flow.pause_reading()
            return
        self._answer(error)
        transport.close()

    def _answer(self, error: SwitchboardError) -> None:
        path = self.url if self.url.startswith(b"/") else _path_of(self.url)
        status, payload, headers = render(error, format_for_path(path.decode("latin-1")))
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        for header, text in headers.items():
            content.append(f"{header}: {text}\r\n".encode("latin-1"))
        content.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(payload))
        content.append(payload)
        self.transport.write(b"".join(content))

    def _cancel_timers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None


def _path_of(url: bytes) -> bytes:
    """The path of an absolute-form request target (`http://host/claude/...`); empty if it has none."""
    try:
        return httptools.parse_url(url).path or b""
    except httptools.HttpParserInvalidURLError:
        return b""


def _codings(value: bytes) -> list[bytes]:
    """A Transfer-Encoding value's codings, lowercased (empty list elements dropped, as RFC 9110 allows)."""
    return [coding.strip().lower() for coding in value.split(b",") if coding.strip()]


def _refused_header(head: bytes) -> bytes | None:
    """The lowercased name of the first header line in `head` holding a byte httptools refuses."""
    for line in head.split(b"\n"):
        if _CONTROL.search(line.removesuffix(b"\r")):
            name, colon, _ = line.partition(b":")
            return name.strip().lower() if colon else None
    return None
