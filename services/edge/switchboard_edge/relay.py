"""One client request from arrival to settlement: admit, forward, relay, account.

Before the upstream's first byte, a failed attempt (connection error, 5xx,
429, the account's own credential refused) is retried on another account,
up to `max_attempts`. After the first byte nothing is retried: a broken
stream ends with an error event in the client's protocol. Every request
settles exactly once: outcome to the router, usage to auth, metrics here.
"""

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge import inbound, metrics
from switchboard_edge.control import Admission, ControlPlane
from switchboard_edge.errors import (
    ClientFormat,
    InvalidRequest,
    SwitchboardError,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_payload,
    render,
)
from switchboard_edge.settings import EdgeSettings
from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.base import Adapter, StreamTap, response_headers
from switchboard_edge.usage import Usage

log = logging.getLogger(__name__)

SessionReader = Callable[[Mapping[str, Any], Mapping[str, str]], str]

_STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_OUTCOME_BY_STATUS = {429: router_pb2.OUTCOME_RATE_LIMITED, 529: router_pb2.OUTCOME_RATE_LIMITED,
                      401: router_pb2.OUTCOME_AUTH_FAILED, 403: router_pb2.OUTCOME_AUTH_FAILED}


@dataclass(frozen=True)
class Endpoint:
    """A client-facing route: its dialect, the platforms it reaches and how."""

    route: str
    client_format: ClientFormat
    operation: str
    # Platforms tried when the model string names none, in preference order.
    platforms: tuple[str, ...]
    adapters: Mapping[str, Adapter]
    session: SessionReader


@dataclass
class Exchange:
    """Everything known about one request while it is in flight."""

    endpoint: Endpoint
    request_id: str
    started: float
    started_wall: float
    model: str = ""
    stream: bool = False
    session: str = ""
    platform: str = ""
    admission: Admission | None = None
    upstream_model: str = ""
    upstream_started: float = 0.0
    upstream_time: float = 0.0
    first_byte: float = 0.0
    usage: Usage = field(default_factory=Usage)


class UpstreamAttemptFailed(Exception):
    """An attempt that another account may still serve."""

    def __init__(self, error: SwitchboardError, outcome: int, status: int, reason: str,
                 response: Response | None = None) -> None:
        super().__init__(error.message)
        self.error, self.outcome, self.status, self.reason = error, outcome, status, reason
        # What to send the client if no other account can take over.
        self.response = response


class Relay:
    def __init__(self, settings: EdgeSettings, control: ControlPlane, http: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._control = control
        self._http = http
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    # -- entry -----------------------------------------------------------------

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        exchange = Exchange(endpoint, uuid.uuid4().hex, time.perf_counter(), time.time())
        try:
            return await self._handle(request, exchange)
        except SwitchboardError as error:
            return self._fail(exchange, error)

    async def _handle(self, request: Request, exchange: Exchange) -> Response:
        endpoint, settings = exchange.endpoint, self._settings
        headers = request.headers
        credential = inbound.extract_key(headers)
        inbound.check_content_type(headers.get("content-type", ""))
        inbound.check_declared_length(headers.get("content-length"), settings.max_body_bytes)
        raw = await _read_body(request, settings.max_body_bytes)
        body = inbound.parse_body(raw)
        ref = inbound.parse_model(body)
        if ref.platform is None:
            platforms = endpoint.platforms
        elif ref.platform in endpoint.adapters:
            platforms = (ref.platform,)
        else:
            raise InvalidRequest(
                f"model: platform '{ref.platform}' cannot serve {endpoint.route} requests; "
                f"use one of: {', '.join(endpoint.adapters)}."
            )
        exchange.model = ref.model
        exchange.stream = body.get("stream") is True
        exchange.session = endpoint.session(body, headers)
        client = auth_pb2.ClientMetadata(
            remote_addr=request.client.host if request.client else "",
            user_agent=headers.get("user-agent", ""),
            session_id=exchange.session,
            request_id=exchange.request_id,
            client_format=endpoint.client_format.value,
        )
        admission = await self._control.admit(credential, platforms, ref.model, client, exchange.stream)
        return await self._forward(request, exchange, admission, body, raw)

    # -- attempts --------------------------------------------------------------

    async def _forward(self, request: Request, exchange: Exchange, admission: Admission,
                       body: dict[str, Any], raw: bytes) -> Response:
        excluded: list[str] = []
        attempts = self._settings.max_attempts
        while True:
            exchange.admission = admission
            pick = admission.pick
            exchange.platform = pick.account.platform
            exchange.upstream_model = pick.upstream_model
            try:
                return await self._attempt(request, exchange, body, raw)
            except UpstreamAttemptFailed as failed:
                self._report(exchange, failed.outcome, failed.status, error_type=failed.reason)
                attempts -= 1
                excluded.append(pick.account.id)
                retry = None
                if attempts > 0:
                    retry = await self._control.pick(
                        admission.platforms, exchange.model, admission.identity, exchange.session,
                        exchange.request_id, excluded,
                    )
                if retry is None or retry.status != router_pb2.PICK_STATUS_OK:
                    if failed.response is not None:
                        self._settle(exchange, failed.response.status_code, None, record=True)
                        return failed.response
                    raise failed.error from None
                metrics.UPSTREAM_FAILOVERS.labels(pick.account.platform, failed.reason).inc()
                admission = Admission(admission.identity, admission.platforms, retry)

    async def _attempt(self, request: Request, exchange: Exchange, body: dict[str, Any], raw: bytes) -> Response:
        pick = exchange.admission.pick  # type: ignore[union-attr]
        account = pick.account
        adapter = exchange.endpoint.adapters[account.platform]
        upstream_body = adapter.prepare(body, pick.upstream_model)
        data = raw if upstream_body is None else orjson.dumps(upstream_body)
        exchange.upstream_started = time.perf_counter()
        try:
            upstream = await self._http.post(
                adapter.url(account, request.url.query),
                data=data,
                headers=adapter.headers(account, request.headers),
                timeout=self._timeout(account),
                allow_redirects=False,
            )
        except TimeoutError:
            raise UpstreamAttemptFailed(
                UpstreamTimeout("The upstream API did not answer in time."),
                router_pb2.OUTCOME_TIMEOUT, 0, "timeout") from None
        except aiohttp.ClientError as exc:
            log.info("upstream %s unreachable: %s", account.id, type(exc).__name__)
            raise UpstreamAttemptFailed(
                UpstreamUnavailable("The upstream API could not be reached."),
                router_pb2.OUTCOME_CONNECT_ERROR, 0, "connect_error") from None
        status = upstream.status
        if status >= 400:
            return await self._refused(exchange, upstream)
        content_type = upstream.headers.get("content-type", "")
        if exchange.stream and content_type.startswith("text/event-stream"):
            return self._relay_stream(exchange, adapter, body, upstream)
        try:
            payload = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            upstream.close()
            raise UpstreamAttemptFailed(
                UpstreamUnavailable("The upstream API connection broke before the answer arrived."),
                router_pb2.OUTCOME_CONNECT_ERROR, status, "connect_error") from None
        exchange.upstream_time = time.perf_counter() - exchange.upstream_started
        exchange.first_byte = exchange.upstream_time
        try:
            exchange.usage = adapter.usage(orjson.loads(payload))
        except orjson.JSONDecodeError:
            log.warning("upstream %s sent a non-JSON %d body", account.id, status)
        self._report(exchange, router_pb2.OUTCOME_SUCCESS, status)
        self._settle(exchange, status, None, record=True)
        return Response(payload, status, response_headers(upstream.headers.items()))

    async def _refused(self, exchange: Exchange, upstream: aiohttp.ClientResponse) -> Response:
        """Upstream 4xx/5xx: the client's own 4xx passes through; the rest may fail over."""
        status = upstream.status
        try:
            payload = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            payload = b""
        exchange.upstream_time = time.perf_counter() - exchange.upstream_started
        headers = response_headers(upstream.headers.items())
        passthrough = Response(payload, status, headers)
        if status >= 500:
            raise UpstreamAttemptFailed(
                UpstreamUnavailable(f"The upstream API failed (HTTP {status})."),
                _OUTCOME_BY_STATUS.get(status, router_pb2.OUTCOME_UPSTREAM_ERROR), status, f"http_{status}")
        if status == 429:
            raise UpstreamAttemptFailed(
                UpstreamUnavailable("The upstream API is rate limited."),
                router_pb2.OUTCOME_RATE_LIMITED, status, "http_429", response=passthrough)
        if status in (401, 403):
            # The account's credential was refused: not the client's fault.
            log.warning("upstream refused the credential of account %s (HTTP %d)",
                        exchange.admission.pick.account.id, status)  # type: ignore[union-attr]
            raise UpstreamAttemptFailed(
                UpstreamUnavailable(f"The upstream API refused the gateway's account (HTTP {status})."),
                router_pb2.OUTCOME_AUTH_FAILED, status, f"http_{status}")
        self._report(exchange, router_pb2.OUTCOME_CLIENT_ERROR, status, error_type=f"http_{status}")
        self._settle(exchange, status, None, record=True)
        return passthrough

    def _timeout(self, account: router_pb2.Account) -> aiohttp.ClientTimeout:
        seconds = account.timeout.ToTimedelta().total_seconds() if account.HasField("timeout") else 0.0
        seconds = seconds or self._settings.upstream_timeout_seconds
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # No total: a stream may run long. Bound the silence between reads instead.
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._settings.upstream_connect_timeout_seconds, sock_read=seconds
            )
            self._timeouts[seconds] = timeout
        return timeout

    # -- streams ---------------------------------------------------------------

    def _relay_stream(self, exchange: Exchange, adapter: Adapter, body: Mapping[str, Any],
                      upstream: aiohttp.ClientResponse) -> Response:
        tap = adapter.tap(body)
        headers = response_headers(upstream.headers.items())
        headers.update(_STREAM_HEADERS)
        return StreamingResponse(
            self._events(exchange, adapter, tap, upstream), upstream.status, headers=headers
        )

    async def _events(self, exchange: Exchange, adapter: Adapter, tap: StreamTap,
                      upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        client_format = exchange.endpoint.client_format
        gauge = metrics.ACTIVE_STREAMS.labels(client_format.value)
        gauge.inc()
        decoder = SSEDecoder()
        outcome, failure = router_pb2.OUTCOME_TRUNCATED, "client_closed"
        try:
            try:
                async for chunk in upstream.content.iter_any():
                    if not exchange.first_byte:
                        exchange.first_byte = time.perf_counter() - exchange.upstream_started
                    events = decoder.feed(chunk)
                    out = b"".join([event.raw for event in events if tap.observe(event)])
                    if out:
                        yield out
                rest = decoder.flush()
                if rest:
                    yield rest
                if tap.complete:
                    outcome, failure = router_pb2.OUTCOME_SUCCESS, ""
                else:
                    failure = "upstream_ended"
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = "timeout" if isinstance(exc, TimeoutError) else "upstream_broke"
            if failure:
                error = UpstreamUnavailable("The upstream stream ended before the answer was complete.")
                yield adapter.stream_error(error_payload(error, client_format))
        finally:
            gauge.dec()
            exchange.upstream_time = time.perf_counter() - exchange.upstream_started
            exchange.usage = tap.usage
            if outcome != router_pb2.OUTCOME_SUCCESS:
                upstream.close()
                metrics.STREAM_TRUNCATIONS.labels(exchange.platform).inc()
            else:
                upstream.release()
            self._report(exchange, outcome, upstream.status, error_type=failure)
            self._settle(exchange, upstream.status, failure or None, record=True, truncated=bool(failure))

    # -- settlement ------------------------------------------------------------

    def _report(self, exchange: Exchange, outcome: int, status: int, error_type: str = "") -> None:
        pick = exchange.admission.pick if exchange.admission else None
        if pick is None:
            return
        self._control.report(router_pb2.ReportOutcomeRequest(
            lease_id=pick.lease_id,
            account_id=pick.account.id,
            outcome=outcome,
            status_code=status,
            time_to_first_byte=_duration(exchange.first_byte),
            duration=_duration(time.perf_counter() - exchange.upstream_started),
            error_type=error_type,
            session_hint=exchange.session,
        ))

    def _fail(self, exchange: Exchange, error: SwitchboardError) -> Response:
        status, payload, headers = render(error, exchange.endpoint.client_format)
        self._settle(exchange, status, type(error).__name__, record=exchange.admission is not None)
        return Response(payload, status, headers)

    def _settle(self, exchange: Exchange, status: int, error_type: str | None, *, record: bool,
                truncated: bool = False) -> None:
        endpoint = exchange.endpoint
        elapsed = time.perf_counter() - exchange.started
        platform = exchange.platform or "none"
        model = exchange.model or "unknown"
        metrics.REQUESTS.labels(endpoint.route, endpoint.client_format.value, platform, str(status)).inc()
        metrics.OVERHEAD.labels(endpoint.route).observe(max(0.0, elapsed - exchange.upstream_time))
        metrics.REQUEST_DURATION.labels(endpoint.operation, platform, model, error_type or "").observe(elapsed)
        usage = exchange.usage
        if exchange.stream and exchange.first_byte:
            metrics.TIME_TO_FIRST_TOKEN.labels(platform, model).observe(
                exchange.upstream_started - exchange.started + exchange.first_byte)
            if usage.output_tokens > 1:
                per_token = (exchange.upstream_time - exchange.first_byte) / (usage.output_tokens - 1)
                metrics.TIME_PER_OUTPUT_TOKEN.labels(platform, model).observe(max(0.0, per_token))
        if not usage.is_empty():
            response_model = exchange.upstream_model or model
            for token_type, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached_input", usage.cache_read_input_tokens),
                ("cache_creation_input", usage.cache_creation_input_tokens),
                ("reasoning", usage.reasoning_tokens),
            ):
                if count:
                    metrics.TOKEN_USAGE.labels(endpoint.operation, platform, model, response_model,
                                               token_type).observe(count)
        if record and exchange.admission is not None:
            self._control.record_usage(_usage_record(exchange, status, truncated, elapsed))


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _usage_record(exchange: Exchange, status: int, truncated: bool, elapsed: float) -> auth_pb2.UsageRecord:
    admission = exchange.admission
    assert admission is not None
    started = Timestamp()
    started.FromNanoseconds(int(exchange.started_wall * 1e9))
    usage = exchange.usage
    return auth_pb2.UsageRecord(
        request_id=exchange.request_id,
        key_id=admission.identity.key_id,
        platform=exchange.platform,
        account_id=admission.pick.account.id,
        model=exchange.model,
        upstream_model=exchange.upstream_model,
        usage=auth_pb2.TokenUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        ),
        status_code=status,
        stream=exchange.stream,
        truncated=truncated,
        started_at=started,
        duration=_duration(elapsed),
        time_to_first_token=_duration(exchange.first_byte),
        client_format=exchange.endpoint.client_format.value,
        session_id=exchange.session,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing it as soon as it passes `limit` (chunked uploads too)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise inbound.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)

