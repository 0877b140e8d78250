"""One client request from arrival to settlement: admit, forward, relay, account.

Order of work, cheapest refusal first: the key's presence and the headers, then
the key's validity (before a byte of the body is read), then the body within
the edge-wide budget, then Authorize and Pick together.

Before the upstream's first byte, a failed attempt (connection error, 5xx,
429, the account's own credential refused) is retried on another account,
up to `max_attempts` and while `failover_budget_seconds` since the first
attempt have not passed; a timeout is not (the client has already waited the
whole timeout). After the first byte nothing is retried: a broken stream
ends with one error event in the client's protocol (the vendor's own when it
sent one; the router is told its kind and message). A client that goes away
cancels the upstream call. Every request settles exactly once: outcome to the
router (which returns the lease), usage to auth (through the spool), metrics
here.

On SIGTERM the edge drains: requests run on for `drain_seconds`, then open
streams end with an error event and waiting requests get 503, each settled.
"""

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from yarl import URL

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge import callers, failover, inbound, metrics, wire
from switchboard_edge.admission import Admission
from switchboard_edge.body import BodyBudget, ClientLeft, read_body
from switchboard_edge.control import ControlPlane
from switchboard_edge.durations import seconds_of
from switchboard_edge.errors import (
    ClientFormat,
    InvalidRequest,
    ServiceUnavailable,
    SwitchboardError,
    UpstreamTimeout,
    UpstreamUnavailable,
    render,
)
from switchboard_edge.exchange import (
    CLIENT_CLOSED,
    CLIENT_CLOSED_STATUS,
    COMPLETE,
    ERROR,
    SHUTDOWN,
    TIMEOUT,
    UPSTREAM_BROKE,
    UPSTREAM_ENDED,
    UPSTREAM_ERROR,
    Endpoint,
    Exchange,
)
from switchboard_edge.limit_headers import limit_headers
from switchboard_edge.oauth import OAuthTokens, RefreshFailed, TokenEndpoint, token_endpoints
from switchboard_edge.settings import EdgeSettings
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate.base import StreamConverter, Target
from switchboard_edge.translate.bridge import Bridge, bridge
from switchboard_edge.translate.scrub import scrubbed, without_reasoning
from switchboard_edge.upstream.base import (
    Call,
    IncompleteAnswer,
    Platform,
    StreamTap,
    error_excerpt,
    error_kind,
    response_headers,
    upstream_error,
    upstream_hints,
)
from switchboard_edge.upstream.registry import PLATFORMS
from switchboard_edge.upstream_http import Upstreams
from switchboard_edge.usage import Usage, estimate_input

log = logging.getLogger(__name__)

_STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# Every request's metrics, their children found without prometheus_client's per-call checks.
_REQUESTS = metrics.Children(metrics.REQUESTS)
_OVERHEAD = metrics.Children(metrics.OVERHEAD)
_REQUEST_DURATION = metrics.Children(metrics.REQUEST_DURATION)
_TIME_TO_FIRST_TOKEN = metrics.Children(metrics.TIME_TO_FIRST_TOKEN)
_TIME_PER_OUTPUT_TOKEN = metrics.Children(metrics.TIME_PER_OUTPUT_TOKEN)
_TOKEN_USAGE = metrics.Children(metrics.TOKEN_USAGE)
_ACTIVE_STREAMS = metrics.Children(metrics.ACTIVE_STREAMS)

_RESTARTING = "The gateway is restarting; retry the request."


class UpstreamAttemptFailed(Exception):
    """An attempt that another account may still serve (unless `final`)."""

    def __init__(self, error: SwitchboardError, outcome: int, status: int, reason: str,
                 response: Response | None = None, final: bool = False, upstream_error: str = "") -> None:
        super().__init__(error.message)
        self.error, self.outcome, self.status, self.reason = error, outcome, status, reason
        # The vendor's own error kind and message, for the router (`upstream.base.upstream_error`).
        self.upstream_error = upstream_error
        # What to send the client if no other account can take over.
        self.response = response
        self.final = final


class Drained(Exception):
    """Raised into an open stream when the drain time is over."""


class Relay:
    def __init__(self, settings: EdgeSettings, control: ControlPlane, upstreams: Upstreams) -> None:
        self._settings = settings
        self._trusted_proxies = callers.trusted_networks(settings.trusted_proxies)
        self._admission = control.admission
        self._catalog = control.catalog
        self._reports = control.reports
        self._upstreams = upstreams
        self._oauth = OAuthTokens(control.reports, upstreams, token_url=settings.oauth_token_url,
                                  client_id=settings.oauth_client_id,
                                  margin_seconds=settings.oauth_refresh_margin_seconds)
        self._token_endpoints = token_endpoints(settings)
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}
        self._budget = BodyBudget(settings.max_buffered_body_bytes)
        self._labels = metrics.ModelLabels(settings.max_model_labels)
        # Requests past admission whose response has not ended: the drain reaches them here.
        self._in_flight: set[Exchange] = set()
        self._draining = False

    # -- entry -----------------------------------------------------------------

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        exchange = Exchange(endpoint, uuid.uuid4().hex, time.perf_counter(), time.time())
        held = 0
        try:
            credential, client = self._screen(request, exchange)
            await self._admission.authenticate(credential, client)
            raw, held = await read_body(request, self._settings.max_body_bytes, self._budget)
            platforms, body = self._parse(exchange, raw, request)
            client.session_id = exchange.session
            return await self._run(request, exchange, credential, client, platforms, body, raw)
        except SwitchboardError as error:
            return self._fail(exchange, error)
        except ClientLeft:
            exchange.end_reason = CLIENT_CLOSED
            self._settle(exchange, CLIENT_CLOSED_STATUS, CLIENT_CLOSED, record=False)
            return Response(status_code=CLIENT_CLOSED_STATUS)
        finally:
            self._budget.give_back(held)

    def _screen(self, request: Request, exchange: Exchange) -> tuple[str, auth_pb2.ClientMetadata]:
        """What can be refused from the headers alone."""
        if self._draining:
            raise ServiceUnavailable(_RESTARTING, retry_after=1.0)
        headers = request.headers
        endpoint = exchange.endpoint
        credential = inbound.extract_key(
            headers, request.query_params.get("key", "") if endpoint.key_in_query else "")
        inbound.check_content_type(headers.get("content-type", ""))
        inbound.check_declared_length(headers.get("content-length"), self._settings.max_body_bytes)
        client = self.client_metadata(request.client.host if request.client else "", headers, endpoint)
        client.request_id = exchange.request_id
        exchange.client_app = client.client_app
        return credential, client

    def client_metadata(self, peer: str, headers: Mapping[str, str], endpoint: Endpoint) -> auth_pb2.ClientMetadata:
        """What auth is told of the caller (its key policies look at the address and the client program)."""
        return auth_pb2.ClientMetadata(
            remote_addr=callers.client_address(peer, headers, self._trusted_proxies),
            user_agent=headers.get("user-agent", ""),
            client_format=endpoint.client_format.value,
            client_app=callers.client_app(headers),
        )

    def _parse(self, exchange: Exchange, raw: bytes, request: Request) -> tuple[tuple[str, ...], dict[str, Any]]:
        endpoint = exchange.endpoint
        body = inbound.parse_body(raw)
        ref = inbound.parse_model({"model": request.path_params.get("model", "")} if endpoint.model_in_path else body)
        if ref.platform is None:
            platforms = self._catalog.platforms_for(ref.model, endpoint.platforms)
            if not platforms:
                raise inbound.unknown_model(ref.model)
        elif ref.platform in endpoint.platforms:
            platforms = (ref.platform,)
        else:
            raise InvalidRequest(
                f"model: platform '{ref.platform}' cannot serve {endpoint.route} requests; "
                f"use one of: {', '.join(endpoint.platforms)}."
            )
        if endpoint.stream is None:
            nullable = (endpoint.request_format or endpoint.client_format) in (ClientFormat.OPENAI,
                                                                                ClientFormat.RESPONSES)
            exchange.stream = inbound.parse_stream(body, nullable=nullable)
        else:
            exchange.stream = endpoint.stream
        exchange.model = ref.model
        exchange.body = body
        exchange.session = endpoint.session(body, request.headers)
        if exchange.stream:
            exchange.framing = endpoint.framing(request.query_params)
        return platforms, body

    async def _run(self, request: Request, exchange: Exchange, credential: str, client: auth_pb2.ClientMetadata,
                   platforms: tuple[str, ...], body: dict[str, Any], raw: bytes) -> Response:
        """Admission and the upstream call, cancelled if the client leaves or the drain time ends."""
        task = asyncio.current_task()
        assert task is not None
        exchange.task = task
        watcher = asyncio.get_running_loop().create_task(_watch_disconnect(request.receive, exchange))
        self._in_flight.add(exchange)
        streaming = False
        try:
            admission = await self._admission.admit(credential, platforms, exchange.model, client, exchange.stream,
                                                    natives=exchange.endpoint.natives)
            response = await self._forward(request, exchange, admission, body, raw)
            streaming = isinstance(response, StreamingResponse)
            return response
        except asyncio.CancelledError:
            if not exchange.end_reason:
                exchange.end_reason = SHUTDOWN  # cancelled by the server itself
                self._abandon(exchange)
                raise
            task.uncancel()
            self._abandon(exchange)
            if exchange.end_reason == SHUTDOWN:
                status, payload, headers = render(ServiceUnavailable(_RESTARTING, retry_after=1.0),
                                                  exchange.endpoint.client_format)
                return Response(payload, status, headers)
            return Response(status_code=CLIENT_CLOSED_STATUS)
        except SwitchboardError:
            # Refused with an account picked and no outcome yet (a translator's 400): the lease goes back.
            if exchange.lease_open:
                self._report(exchange, router_pb2.OUTCOME_CANCELLED, 0, error_type=ERROR)
            raise
        except Exception:
            # A defect, not a client or upstream fault: still return the lease, then answer 500.
            log.exception("request %s failed in the gateway", exchange.request_id)
            if exchange.upstream is not None:
                exchange.upstream.close()
                exchange.upstream = None
            if exchange.lease_open:
                self._report(exchange, router_pb2.OUTCOME_CANCELLED, 0, error_type=ERROR)
            raise SwitchboardError("The gateway failed to relay this request.") from None
        finally:
            watcher.cancel()
            exchange.task = None
            if not streaming:
                self._in_flight.discard(exchange)

    def _abandon(self, exchange: Exchange) -> None:
        """Settles a request cancelled before its response began (client gone, or the edge stopping)."""
        if exchange.upstream is not None:  # a stream response made but never started
            exchange.upstream.close()
            exchange.upstream = None
        if exchange.lease_open:
            self._report(exchange, router_pb2.OUTCOME_CANCELLED, 0, error_type=exchange.end_reason)
        if exchange.upstream_started:
            # The vendor may already be working on it and bills the prompt: record an estimate of it.
            exchange.upstream_time = time.perf_counter() - exchange.upstream_started
            exchange.usage = Usage(input_tokens=estimate_input(exchange.body))
            exchange.usage_estimated = True
        status = CLIENT_CLOSED_STATUS if exchange.end_reason == CLIENT_CLOSED else ServiceUnavailable.status
        self._settle(exchange, status, exchange.end_reason, record=exchange.admission is not None)

    # -- drain -----------------------------------------------------------------

    def drain(self) -> None:
        """SIGTERM: refuse new requests now; end what is still open when `drain_seconds` are over."""
        if self._draining:
            return
        self._draining = True
        log.info("draining: %d requests in flight, %.0f s to finish", len(self._in_flight),
                 self._settings.drain_seconds)
        asyncio.get_running_loop().call_later(self._settings.drain_seconds, self._cut_all)

    def _cut_all(self) -> None:
        if self._in_flight:
            log.info("drain time over: ending %d requests", len(self._in_flight))
        for exchange in list(self._in_flight):
            if exchange.end_reason:
                continue
            exchange.end_reason = SHUTDOWN
            if exchange.upstream is not None:
                exchange.upstream.content.set_exception(Drained())
            elif exchange.task is not None:
                exchange.task.cancel()

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- attempts --------------------------------------------------------------

    async def _forward(self, request: Request, exchange: Exchange, admission: Admission,
                       body: dict[str, Any], raw: bytes) -> Response:
        excluded: list[str] = []
        attempts = self._settings.max_attempts
        first_attempt = time.perf_counter()
        while True:
            exchange.admission = admission
            exchange.lease_open = bool(admission.pick.lease_id)
            pick = admission.pick
            exchange.platform = pick.account.platform
            exchange.upstream_model = pick.upstream_model
            try:
                return await self._attempt(request, exchange, body, raw)
            except UpstreamAttemptFailed as failed:
                self._report(exchange, failed.outcome, failed.status, error_type=failed.reason,
                             upstream_error=failed.upstream_error)
                attempts -= 1
                excluded.append(pick.account.id)
                retry = None
                if attempts > 0 and not failed.final and self._budget_left(exchange, first_attempt, len(excluded)):
                    retry = await self._admission.pick(
                        admission.platforms, exchange.model, admission.identity, exchange.session,
                        exchange.request_id, excluded, admission.preferred,
                    )
                if retry is None or retry.status != router_pb2.PICK_STATUS_OK:
                    if failed.response is not None:
                        self._settle(exchange, failed.response.status_code, f"http_{failed.status}", record=True)
                        return failed.response
                    raise failed.error from None
                metrics.UPSTREAM_FAILOVERS.labels(pick.account.platform, failed.reason).inc()
                admission = dataclasses.replace(admission, pick=retry)

    def _budget_left(self, exchange: Exchange, first_attempt: float, tried: int) -> bool:
        """Whether the failover budget leaves time for another attempt (`failover.within_budget`)."""
        budget = self._settings.failover_budget_seconds
        if failover.within_budget(first_attempt, time.perf_counter(), budget):
            return True
        log.info("request %s: failover budget of %g s spent after %d attempts; no other account is tried",
                 exchange.request_id, budget, tried)
        return False

    async def _attempt(self, request: Request, exchange: Exchange, body: dict[str, Any], raw: bytes) -> Response:
        pick = exchange.admission.pick  # type: ignore[union-attr]
        account = pick.account
        platform = PLATFORMS[account.platform]
        exchange.upstream_started = time.perf_counter()
        exchange.upstream_hints = {}
        sign_in = platform.sign_in(account)
        endpoint = self._token_endpoints[sign_in] if sign_in is not None else None
        if endpoint is not None:
            account = await self._signed_in(account, endpoint)
        crossing = self._crossing(exchange, platform)
        translated = crossing.request(body, request.headers) if crossing is not None else None
        if translated is None:
            # Reasoning another platform made (sealed by a translator on an earlier turn) is opened or removed.
            own = scrubbed(body, raw, exchange.endpoint.client_format, platform.id) if crossing is None else None
            if own is not None:
                body, raw = own, orjson.dumps(own)
            query = request.scope["query_string"].decode("latin-1")  # as request.url.query, without building a URL
            call = Call(account, pick.upstream_model, body, raw, exchange.stream, query, request.headers,
                        exchange.endpoint.operation, self._settings.codex_default_instructions)
        else:
            # The client's query string belongs to its own API (`?beta=true`, `?alt=sse`): not sent across.
            call = Call(account, pick.upstream_model, translated.body, orjson.dumps(translated.body),
                        exchange.stream, "", translated.headers, exchange.endpoint.operation,
                        self._settings.codex_default_instructions)
        upstream = await self._send(platform, call)
        if upstream.status == 401 and endpoint is not None:
            # The token was refused before its time: renew it once (one refresh per account) and try again.
            upstream.release()
            account = await self._signed_in(account, endpoint,
                                            refused=account.credential.secrets.get("access_token", ""))
            upstream = await self._send(platform, dataclasses.replace(call, account=account))
        if upstream.status == 400:
            resent = await self._without_refused_reasoning(platform, call, upstream)
            if resent is not None:
                call, upstream = resent
        status = upstream.status
        if status >= 400:
            return await self._refused(exchange, platform, upstream, crossing, _secrets(account))
        # Usage windows come with successful answers too: the router records them from every outcome.
        exchange.upstream_hints = upstream_hints(upstream.headers.items())
        content_type = upstream.headers.get("content-type", "")
        if exchange.stream and content_type.startswith(platform.stream_content_type):
            return self._relay_stream(exchange, platform, call.body, upstream, crossing, _secrets(account))
        try:
            payload = await upstream.read()
        except TimeoutError:
            upstream.close()
            raise UpstreamAttemptFailed(
                UpstreamTimeout("The upstream API stopped sending its answer."),
                router_pb2.OUTCOME_TIMEOUT, status, TIMEOUT, final=True) from None
        except aiohttp.ClientError:
            upstream.close()
            raise UpstreamAttemptFailed(
                UpstreamUnavailable("The upstream API connection broke before the answer arrived."),
                router_pb2.OUTCOME_CONNECT_ERROR, status, "connect_error") from None
        except BaseException:
            upstream.close()
            raise
        exchange.upstream_time = time.perf_counter() - exchange.upstream_started
        exchange.first_byte = exchange.upstream_time
        try:
            payload, content_type = platform.whole_body(payload, content_type)
        except IncompleteAnswer as incomplete:
            # Nothing reached the client yet: another account may still answer. The router hears the vendor's
            # own error as from a stream (`failover.in_stream`).
            outcome, vendor_error = router_pb2.OUTCOME_UPSTREAM_ERROR, ""
            if incomplete.error is not None:
                outcome = failover.in_stream(error_kind(incomplete.error))
                vendor_error = error_excerpt(incomplete.error, _secrets(account))
            raise UpstreamAttemptFailed(UpstreamUnavailable(str(incomplete)), outcome, status, UPSTREAM_ERROR,
                                        upstream_error=vendor_error) from None
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            answer = None
            log.warning("upstream %s sent a non-JSON %d body", account.id, status)
        if answer is not None:
            exchange.usage = platform.usage(answer)
            if crossing is not None and isinstance(answer, dict):
                try:
                    payload, content_type = orjson.dumps(crossing.response(answer)), "application/json"
                except UpstreamUnavailable as untranslatable:  # an answer the translator could not read
                    raise UpstreamAttemptFailed(untranslatable, router_pb2.OUTCOME_UPSTREAM_ERROR, status,
                                                UPSTREAM_ERROR) from None
        self._report(exchange, router_pb2.OUTCOME_SUCCESS, status)
        exchange.end_reason = COMPLETE
        self._settle(exchange, status, None, record=True)
        headers = _client_headers(exchange, upstream)
        if content_type:
            headers["content-type"] = content_type
        return Response(payload, status, headers)

    async def _signed_in(self, account: router_pb2.Account, endpoint: TokenEndpoint,
                         refused: str = "") -> router_pb2.Account:
        try:
            return await self._oauth.fresh(account, refused=refused, endpoint=endpoint)
        except RefreshFailed:
            raise UpstreamAttemptFailed(
                UpstreamUnavailable("The upstream account's sign-in could not be renewed."),
                router_pb2.OUTCOME_AUTH_FAILED, 0, "oauth_refresh") from None

    async def _send(self, platform: Platform, call: Call) -> aiohttp.ClientResponse:
        account = call.account
        outbound = platform.build(call)
        try:
            return await self._upstreams.session(account.proxy_url).post(
                # Sent exactly as built: a signature covers the path as it is encoded (Bedrock's "%3A").
                URL(outbound.url, encoded=True),
                data=outbound.body,
                headers=outbound.headers,
                timeout=self._timeout(account),
                allow_redirects=False,
            )
        except TimeoutError:
            raise UpstreamAttemptFailed(
                UpstreamTimeout("The upstream API did not answer in time."),
                router_pb2.OUTCOME_TIMEOUT, 0, TIMEOUT, final=True) from None
        except aiohttp.ClientError as exc:
            log.info("upstream %s unreachable: %s", account.id, type(exc).__name__)
            raise UpstreamAttemptFailed(
                UpstreamUnavailable("The upstream API could not be reached."),
                router_pb2.OUTCOME_CONNECT_ERROR, 0, "connect_error") from None

    async def _without_refused_reasoning(self, platform: Platform, call: Call, upstream: aiohttp.ClientResponse
                                         ) -> tuple[Call, aiohttp.ClientResponse] | None:
        """A 400 refusing the history's reasoning as made by another account or organisation (the conversation
        moved): the call once more, same account, with that reasoning removed. None when the refusal is about
        something else (the answer stays readable: aiohttp keeps the body it read)."""
        try:
            payload = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            return None
        if not platform.refuses_reasoning(upstream.status, payload):
            return None
        body = without_reasoning(call.body, platform.client_format)
        if body is None:
            return None
        upstream.release()
        log.info("account %s refused reasoning made elsewhere in the history; sent again without it", call.account.id)
        metrics.REASONING_RESENDS.labels(platform.id).inc()
        resent = dataclasses.replace(call, body=body, raw=orjson.dumps(body))
        return resent, await self._send(platform, resent)

    def _crossing(self, exchange: Exchange, platform: Platform) -> Bridge | None:
        """How this attempt crosses formats; None when the platform speaks the client's own."""
        endpoint = exchange.endpoint
        if platform.client_format is endpoint.client_format and endpoint.request_format is None:
            return None
        estimate = estimate_input(exchange.body) if exchange.stream else 0
        options = exchange.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return bridge(endpoint.request_format or endpoint.client_format, endpoint.client_format,
                      platform.client_format,
                      Target(platform.id, exchange.model, exchange.stream, estimate, include_usage),
                      exchange.body)

    async def _refused(self, exchange: Exchange, platform: Platform, upstream: aiohttp.ClientResponse,
                       crossing: Bridge | None, secrets: tuple[str, ...]) -> Response:
        """Upstream 4xx/5xx: the client's own 4xx passes through; the rest may fail over (`failover`).
        `secrets` are the account's, masked in what the router is told of the vendor's error."""
        status = upstream.status
        try:
            payload = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            payload = b""
        finally:
            upstream.release()
        exchange.upstream_time = time.perf_counter() - exchange.upstream_started
        vendor_error = upstream_error(payload, secrets)
        headers = _client_headers(exchange, upstream)
        reshaped = platform.client_error(status, upstream.headers, payload)
        if reshaped is not None:
            payload, headers["content-type"] = reshaped, "application/json"
        verdict = platform.classify(status, payload)
        if crossing is not None:
            payload, headers["content-type"] = crossing.error(status, payload), "application/json"
        exchange.upstream_hints = upstream_hints(upstream.headers.items(), verdict.retry_after)
        if verdict.retry_after is not None and "retry-after" not in headers:
            headers["retry-after"] = exchange.upstream_hints["retry-after"]  # a 429 tells the client how long
        passthrough = Response(payload, status, headers)
        if verdict.outcome == router_pb2.OUTCOME_AUTH_FAILED:
            log.warning("upstream refused the credential of account %s (HTTP %d)",
                        exchange.admission.pick.account.id, status)  # type: ignore[union-attr]
        if verdict.retry:
            raise UpstreamAttemptFailed(verdict.error(), verdict.outcome, status, verdict.reason,
                                        response=passthrough if verdict.pass_through else None,
                                        upstream_error=vendor_error)
        self._report(exchange, verdict.outcome, status, error_type=verdict.reason, upstream_error=vendor_error)
        exchange.end_reason = ERROR
        self._settle(exchange, status, verdict.reason, record=True)
        return passthrough

    def _timeout(self, account: router_pb2.Account) -> aiohttp.ClientTimeout:
        read = seconds_of(account.timeout) or self._settings.upstream_timeout_seconds  # zero when unset
        connect = seconds_of(account.connect_timeout) or self._settings.upstream_connect_timeout_seconds
        timeout = self._timeouts.get((read, connect))
        if timeout is None:
            # No total: a stream may run long. Bound the silence between reads instead.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            self._timeouts[(read, connect)] = timeout
        return timeout

    # -- streams ---------------------------------------------------------------

    def _relay_stream(self, exchange: Exchange, platform: Platform, body: Mapping[str, Any],
                      upstream: aiohttp.ClientResponse, crossing: Bridge | None, secrets: tuple[str, ...]) -> Response:
        """`body` is the request as the upstream got it (its tap reads the answer in that light); `secrets`
        are the account's, masked in what the router is told of a vendor's in-stream error."""
        tap = platform.tap(body)
        headers = _client_headers(exchange, upstream)
        headers.update(_STREAM_HEADERS)
        exchange.upstream = upstream
        if exchange.framing.content_type is not None:
            headers["content-type"] = exchange.framing.content_type
        elif platform.stream_content_type != "text/event-stream" or crossing is not None:
            headers["content-type"] = "text/event-stream; charset=utf-8"  # re-framed as SSE for the client
        converter = crossing.stream() if crossing is not None else None
        return _RelayedStream(self._events(exchange, platform, tap, upstream, converter, secrets), upstream.status,
                              headers, settle=lambda: self._end_stream(exchange, tap, upstream, CLIENT_CLOSED, secrets))

    async def _events(self, exchange: Exchange, platform: Platform, tap: StreamTap, upstream: aiohttp.ClientResponse,
                      converter: StreamConverter | None, secrets: tuple[str, ...]) -> AsyncIterator[bytes]:
        client_format = exchange.endpoint.client_format
        gauge = _ACTIVE_STREAMS(client_format.value)
        gauge.inc()
        decoder = platform.decoder()
        framing = exchange.framing

        def relayed(events: list[SSEEvent]) -> bytes:
            """The client's bytes for these upstream events (the tap reads each one first)."""
            if converter is None:
                return b"".join([framing.event(event) for event in events if tap.observe(event)])
            out: list[bytes] = []
            for event in events:
                tap.observe(event)  # with a converter, the converter decides what the client sees
                out.extend(framing.event(converted) for converted in converter.feed(event))
            return b"".join(out)

        failure = CLIENT_CLOSED
        message = "The upstream stream ended before the answer was complete."
        try:
            try:
                async for chunk in upstream.content.iter_any():
                    if not exchange.first_byte:
                        exchange.first_byte = time.perf_counter() - exchange.upstream_started
                    out = relayed(decoder.feed(chunk))
                    if out:
                        yield out
                rest = decoder.flush()
                out = relayed([SSEEvent(rest)]) if rest else b""
                if out:
                    yield out
                if tap.complete and not tap.errored:
                    failure = ""
                    for converted in converter.finish() if converter is not None else ():
                        yield framing.event(converted)
                else:
                    failure = UPSTREAM_ERROR if tap.errored else UPSTREAM_ENDED
            except Drained:
                failure, message = SHUTDOWN, "The gateway is restarting; the answer was cut short. Retry the request."
            except TimeoutError:
                failure, message = TIMEOUT, "The upstream API stopped sending its answer."
            except aiohttp.ClientError:
                failure = UPSTREAM_ERROR if tap.errored else UPSTREAM_BROKE
            except UpstreamUnavailable as untranslatable:  # an upstream event the translator could not read
                failure, message = UPSTREAM_BROKE, untranslatable.message
            if failure and not tap.errored:
                error = UpstreamTimeout(message) if failure == TIMEOUT else UpstreamUnavailable(message)
                yield framing.error(error, client_format)
            closing = framing.end()
            if closing:
                yield closing
        finally:
            gauge.dec()
            self._end_stream(exchange, tap, upstream, failure, secrets)

    def _end_stream(self, exchange: Exchange, tap: StreamTap, upstream: aiohttp.ClientResponse,
                    failure: str, secrets: tuple[str, ...]) -> None:
        """Settles a stream: `failure` is how it ended early, or empty when the upstream finished it. A vendor's
        own error event is reported with its kind and message, as an outcome that matches the kind
        (`failover.in_stream`: overloaded and rate or usage limits hold the account, anything else counts
        towards its breaker)."""
        if exchange.upstream is None:
            return  # already settled
        self._in_flight.discard(exchange)
        exchange.upstream = None
        exchange.upstream_time = time.perf_counter() - exchange.upstream_started
        exchange.usage, exchange.usage_estimated = tap.settled_usage(exchange.body)
        vendor_error = ""
        if failure:
            upstream.close()
            metrics.STREAM_TRUNCATIONS.labels(exchange.platform).inc()
            outcome = router_pb2.OUTCOME_TRUNCATED
            if tap.errored:
                outcome, vendor_error = failover.in_stream(error_kind(tap.error)), error_excerpt(tap.error, secrets)
        else:
            upstream.release()
            outcome = router_pb2.OUTCOME_SUCCESS
        exchange.end_reason = failure or COMPLETE
        self._report(exchange, outcome, upstream.status, error_type=failure, upstream_error=vendor_error)
        self._settle(exchange, upstream.status, failure or None, record=True, truncated=bool(failure))

    # -- settlement ------------------------------------------------------------

    def _report(self, exchange: Exchange, outcome: int, status: int, error_type: str = "",
                upstream_error: str = "") -> None:
        """The attempt's outcome to the router, with what it needs to judge the account: the vendor's
        rate-limit and usage-window headers (`exchange.upstream_hints`, on every outcome), its own error kind
        and message, and the upstream model (usage windows and holds may concern one model family)."""
        pick = exchange.admission.pick if exchange.admission else None
        if pick is None or not exchange.lease_open:
            return
        exchange.lease_open = False
        report = wire.outcome(exchange, outcome, status, error_type)
        report.upstream_error = upstream_error
        report.model = exchange.upstream_model
        self._reports.report(report)

    def _fail(self, exchange: Exchange, error: SwitchboardError) -> Response:
        status, payload, headers = render(error, exchange.endpoint.client_format)
        if not exchange.end_reason:
            exchange.end_reason = TIMEOUT if isinstance(error, UpstreamTimeout) else ERROR
        self._settle(exchange, status, type(error).__name__, record=exchange.admission is not None)
        return Response(payload, status, headers)

    def _settle(self, exchange: Exchange, status: int, error_type: str | None, *, record: bool,
                truncated: bool = False) -> None:
        endpoint = exchange.endpoint
        elapsed = time.perf_counter() - exchange.started
        platform = exchange.platform or "none"
        # Only a model an account served becomes a label value; refused requests count as "other".
        served = exchange.admission is not None and exchange.first_byte > 0 and status < 400
        model = self._labels.label(exchange.model, served)
        _REQUESTS(endpoint.route, endpoint.client_format.value, platform, str(status)).inc()
        _OVERHEAD(endpoint.route).observe(max(0.0, elapsed - exchange.upstream_time))
        _REQUEST_DURATION(endpoint.operation, platform, model, error_type or "").observe(elapsed)
        usage = exchange.usage
        if exchange.stream and exchange.first_byte:
            _TIME_TO_FIRST_TOKEN(platform, model).observe(
                exchange.upstream_started - exchange.started + exchange.first_byte)
            if usage.output_tokens > 1:
                per_token = (exchange.upstream_time - exchange.first_byte) / (usage.output_tokens - 1)
                _TIME_PER_OUTPUT_TOKEN(platform, model).observe(max(0.0, per_token))
        if not usage.is_empty():
            response_model = self._labels.label(exchange.upstream_model, served) if exchange.upstream_model else model
            for token_type, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached_input", usage.cache_read_input_tokens),
                ("cache_creation_input", usage.cache_creation_input_tokens),
                ("reasoning", usage.reasoning_tokens),
            ):
                if count:
                    _TOKEN_USAGE(endpoint.operation, platform, model, response_model,
                                               token_type).observe(count)
        admission = exchange.admission
        if admission is not None and admission.admission_id:
            # A concurrency admission ends with its request, not with the next usage batch (the record still
            # names it: either is enough).
            self._reports.release_admission(admission.identity.key_id, admission.admission_id)
        if record and admission is not None:
            self._reports.record_usage(wire.usage_record(exchange, status, truncated, elapsed))


class _RelayedStream(StreamingResponse):
    """A relayed stream that is settled even when the client leaves before its first chunk is pulled
    (an async generator that never started never runs its `finally`)."""

    def __init__(self, content: AsyncIterator[bytes], status: int, headers: Mapping[str, str],
                 settle: Callable[[], None]) -> None:
        super().__init__(content, status, headers=headers)
        # A no-op when the stream settled itself; also called by whoever reads the stream without serving it.
        self.settle = settle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.settle()


def _secrets(account: router_pb2.Account) -> tuple[str, ...]:
    """The account's credential values (the API key, tokens, not their expiry), never repeated to the router."""
    credential = account.credential
    values = (credential.api_key, *(value for name, value in credential.secrets.items() if name != "expires_at"))
    return tuple(value for value in values if value)


async def _watch_disconnect(receive: Receive, exchange: Exchange) -> None:
    """Waits for the client to go away (the body is already read) and cancels the request's task."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
    if not exchange.end_reason and exchange.task is not None:
        exchange.end_reason = CLIENT_CLOSED
        exchange.task.cancel()


def _client_headers(exchange: Exchange, upstream: aiohttp.ClientResponse) -> dict[str, str]:
    """The upstream's headers the client may see, plus a limited key's x-ratelimit-* (its own limits)."""
    headers = response_headers(upstream.headers.items())
    if exchange.admission is not None and exchange.admission.limits:
        headers.update(limit_headers(exchange.admission.limits))
    return headers
