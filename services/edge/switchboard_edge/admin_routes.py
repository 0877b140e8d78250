"""The edge's admin API, `/admin/v1/…`, and a key holder's own usage, `/v1/usage`: over auth's AdminService.

| route                                | does                                                      |
|--------------------------------------|-----------------------------------------------------------|
| POST   /admin/v1/keys                | create (201, the key shown once)                          |
| GET    /admin/v1/keys                | list                                                      |
| GET    /admin/v1/keys/{ref}          | one key, by name or key_id                                |
| PATCH  /admin/v1/keys/{ref}          | `state` and/or fields (JSON merge patch: null removes)    |
| POST   /admin/v1/keys/{ref}/rotate   | a new secret (`grace_seconds`: the old one's grace)       |
| DELETE /admin/v1/keys/{ref}          | delete                                                    |
| GET    /admin/v1/keys/{ref}/usage    | usage and cost, `?since=&until=&by=day|model|account`     |
| GET    /v1/usage (also /openai/v1/…, | the caller's own key (any key header): its record, limits |
|        /claude/v1/…, /gemini/v1/…)   | with what is left, today's and this month's usage         |

Rules owned here:
- The API is off unless `SWITCHBOARD_EDGE_ADMIN_TOKEN` is set: then every path under /admin/ is a 404. When
  on, nothing under /admin/ answers (not even a 404 or 405) before `Authorization: Bearer <token>` matched
  (`hmac.compare_digest`); a missing or wrong token is a 401. The token is never logged, echoed or forwarded.
- Failed attempts are bounded per client address (the TCP peer, or behind trusted proxies the one
  `X-Forwarded-For` names, as for key policies): a bucket of `admin_failures_per_minute` failures, refilled at
  that rate. Once a source has spent it, every /admin/ request from it is a 429 with `retry-after` (the token
  is not even compared) until a failure's worth has refilled; other sources are unaffected. Per edge replica.
- Bodies are JSON objects named as the key's JSON view names its fields; replies are that view (what
  `switchboard keys show --json` prints, made by auth), and a minted key only in the reply that made it
  (`cache-control: no-store`).
- Errors are OpenAI-style JSON: auth's INVALID_ARGUMENT 400, NOT_FOUND 404, ALREADY_EXISTS 409; auth
  unreachable (or anything else) 503 with `retry-after`.
- /v1/usage needs no admin token, only the key it reports on (refused as the relay refuses it: 401, in the
  route's format, Anthropic's on /claude). It answers what auth's KeyStatus made (`key_views.status`).
- A usage range is a UTC day (`since` from its start, `until` through its end) or a time (`until` excluded), as
  `switchboard keys usage` takes it.
"""

import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import grpc
import orjson
from fastapi import FastAPI
from google.protobuf import field_mask_pb2, json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router
from starlette.types import Receive, Scope, Send

from switchboard.auth.v1 import admin_pb2, admin_pb2_grpc, auth_pb2
from switchboard_edge import callers, inbound
from switchboard_edge.admission import denial
from switchboard_edge.control import ControlPlane
from switchboard_edge.errors import (
    AuthenticationFailed,
    ClientError,
    ClientFormat,
    InvalidRequest,
    NotFound,
    RateLimited,
    RequestTooLarge,
    ServiceUnavailable,
    SwitchboardError,
    render,
)
from switchboard_edge.settings import EdgeSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Admin bodies are a key's settings: a few KiB at most.
MAX_BODY_BYTES = 64 * 1024
_STATES = {"active": admin_pb2.KEY_STATE_ACTIVE, "disabled": admin_pb2.KEY_STATE_DISABLED}
_NESTED = ("policy", "limits")  # the view's objects, merged field by field by a PATCH
_READS = ("GET", "HEAD")  # Starlette serves HEAD wherever GET is
_GROUPINGS = {"day": admin_pb2.USAGE_GROUPING_DAY, "model": admin_pb2.USAGE_GROUPING_MODEL,
              "account": admin_pb2.USAGE_GROUPING_ACCOUNT}
# Where a key's holder reads its own usage, and the format of that route's errors.
HOLDER_ROUTES = (("/v1/usage", ClientFormat.OPENAI), ("/openai/v1/usage", ClientFormat.OPENAI),
                 ("/claude/v1/usage", ClientFormat.ANTHROPIC), ("/gemini/v1/usage", ClientFormat.GEMINI))


class Conflict(ClientError):
    status = 409
    openai_code = "conflict"


_GRPC_ERRORS: dict[grpc.StatusCode, type[SwitchboardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
}


def install(app: FastAPI, settings: EdgeSettings, control: Callable[[], ControlPlane]) -> None:
    """Mounts /admin and the holders' usage routes on `app`; `control` gives the running ControlPlane (made in
    the app's lifespan)."""
    auth = _AdminCalls(settings.rpc_timeout_seconds, control)
    failures = FailedAttempts(settings.admin_failures_per_minute)
    trusted = callers.trusted_networks(settings.trusted_proxies)
    app.router.routes.append(Mount("/admin", app=AdminApi(settings.admin_token, auth, failures, trusted)))
    for path, client_format in HOLDER_ROUTES:
        handler = _holder_usage(auth, client_format)
        app.add_route(path, handler, methods=["GET"])
        app.add_route(path + "/", handler, methods=["GET"])


class _AdminCalls:
    """AdminService on the edge's channel to auth: each call with the RPC deadline, its failure a client error."""

    def __init__(self, timeout: float, control: Callable[[], ControlPlane]) -> None:
        self._timeout = timeout
        self._control = control
        self._stub: admin_pb2_grpc.AdminServiceStub | None = None

    @property
    def stub(self) -> admin_pb2_grpc.AdminServiceStub:
        if self._stub is None:
            self._stub = admin_pb2_grpc.AdminServiceStub(self._control().auth_channel)
        return self._stub

    async def __call__(self, call: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await call(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            error_class = _GRPC_ERRORS.get(exc.code())
            if error_class is None:
                log.warning("admin call to auth failed: %s", exc.code().name)
                raise ServiceUnavailable("The key store cannot be reached right now; try again shortly.") from None
            raise error_class(exc.details() or exc.code().name) from None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    reported: bool = False  # the source's block was logged


class FailedAttempts:
    """Failed admin authentications per source: a token bucket of `per_minute` failures each, refilled at
    `per_minute` a minute (0: unbounded). At most `max_sources` buckets are kept, the least recently failed
    dropped first (a dropped source starts again with a full bucket)."""

    def __init__(self, per_minute: int, *, max_sources: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(max(0, per_minute))
        self._rate = self._capacity / 60.0
        self._max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _refilled(self, source: str) -> _Bucket | None:
        bucket = self._buckets.get(source)
        if bucket is not None:
            now = self._clock()
            bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        return bucket

    def blocked_for(self, source: str) -> float:
        """Seconds until `source` may try again; 0 when it may now."""
        bucket = self._refilled(source) if self._rate else None
        if bucket is None:
            return 0.0
        if bucket.tokens >= 1.0:
            bucket.reported = False
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def first_refusal(self, source: str) -> bool:
        """Whether this is the first refusal of the source's current block (so it is logged once)."""
        bucket = self._buckets.get(source)
        if bucket is None or bucket.reported:
            return False
        bucket.reported = True
        return True

    def failed(self, source: str) -> None:
        """One failure from `source` spends one from its bucket."""
        if not self._rate:
            return
        bucket = self._refilled(source)
        if bucket is None:
            bucket = self._buckets[source] = _Bucket(self._capacity, self._clock())
            while len(self._buckets) > self._max_sources:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(source)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)


class AdminApi:
    """The ASGI app under /admin: the failure limit, the token gate, then the admin routes."""

    def __init__(self, token: str, auth: _AdminCalls, failures: FailedAttempts,
                 trusted_proxies: tuple[callers.Network, ...]) -> None:
        self._token = token.encode()
        self._call = auth
        self._failures = failures
        self._trusted = trusted_proxies
        self._routes = Router(routes=[
            Route("/v1/keys", self._keys, methods=["GET", "POST"]),
            Route("/v1/keys/{ref}", self._key, methods=["GET", "PATCH", "DELETE"]),
            Route("/v1/keys/{ref}/rotate", self._rotate, methods=["POST"]),
            Route("/v1/keys/{ref}/usage", self._usage, methods=["GET"]),
        ])

    @property
    def stub(self) -> admin_pb2_grpc.AdminServiceStub:
        return self._call.stub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no admin WebSocket: refused at the handshake
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = self._gate(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._routes(scope, receive, send)

    def _gate(self, request: Request) -> Response | None:
        """None when the request carries the admin token; else the answer (404 when the API is off, 429 while the
        source has spent its failures, else 401)."""
        if not self._token:
            return _error(NotFound(f"No route for {request.method} {inbound.shown(request.url.path)}."))
        peer = request.client.host if request.client is not None else ""
        source = callers.client_address(peer, request.headers, self._trusted)
        wait = self._failures.blocked_for(source)
        if wait > 0:
            if self._failures.first_refusal(source):
                log.warning("admin API: too many failed attempts from %s; refused for %.0f s", source, wait)
            return _error(RateLimited("Too many failed admin authentication attempts from this address; "
                                      f"retry in {math.ceil(wait)} s.", retry_after=math.ceil(wait)))
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes the client sent.
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode("latin-1"), self._token):
            return None
        self._failures.failed(source)
        log.warning("admin request refused: %s %s from %s without a valid admin token", request.method,
                    inbound.shown(request.url.path), source)
        response = _error(AuthenticationFailed(
            "The admin API needs the admin token: send 'Authorization: Bearer <SWITCHBOARD_EDGE_ADMIN_TOKEN>'."))
        response.headers["www-authenticate"] = 'Bearer realm="switchboard-admin"'
        return response

    async def _keys(self, request: Request) -> Response:
        try:
            if request.method in _READS:
                listed = await self._call(self.stub.ListKeys, admin_pb2.ListKeysRequest())
                return _json({"data": [_view(view) for view in listed.keys]})
            spec = _spec(await _body(request))
            issued = await self._call(self.stub.CreateKey, admin_pb2.CreateKeyRequest(key=spec))
        except SwitchboardError as error:
            return _error(error)
        log.info("admin API: key %s (%s) created", issued.view.name, issued.view.key_id)
        return _json({"key": issued.key, **_view(issued.view)}, 201, secret=True,
                     location=f"/admin/v1/keys/{issued.view.key_id}")

    async def _key(self, request: Request) -> Response:
        ref = request.path_params["ref"]
        try:
            if request.method in _READS:
                return _json(_view(await self._call(self.stub.GetKey, admin_pb2.GetKeyRequest(ref=ref))))
            if request.method == "DELETE":
                deleted = await self._call(self.stub.DeleteKey, admin_pb2.DeleteKeyRequest(ref=ref))
                log.info("admin API: key %s (%s) deleted", deleted.name, deleted.key_id)
                return _json({"key_id": deleted.key_id, "name": deleted.name, "deleted": True})
            updated = await self._call(self.stub.UpdateKey, _update(ref, await _body(request)))
        except SwitchboardError as error:
            return _error(error)
        log.info("admin API: key %s (%s) updated", updated.name, updated.key_id)
        return _json(_view(updated))

    async def _rotate(self, request: Request) -> Response:
        try:
            rotation = _rotation(request.path_params["ref"], await _body(request, optional=True))
            issued = await self._call(self.stub.RotateKey, rotation)
        except SwitchboardError as error:
            return _error(error)
        log.info("admin API: key %s (%s) rotated", issued.view.name, issued.view.key_id)
        return _json({"key": issued.key, **_view(issued.view)}, secret=True)

    async def _usage(self, request: Request) -> Response:
        try:
            usage = await self._call(self.stub.KeyUsage, _usage_request(request.path_params["ref"],
                                                                        request.query_params))
        except SwitchboardError as error:
            return _error(error)
        return Response(usage.json.encode(), 200, media_type="application/json")


def _holder_usage(auth: _AdminCalls, client_format: ClientFormat) -> Callable[[Request], Awaitable[Response]]:
    async def usage(request: Request) -> Response:
        try:
            query_key = request.query_params.get("key", "") if client_format is ClientFormat.GEMINI else ""
            credential = inbound.extract_key(request.headers, query_key)
            client = auth_pb2.ClientMetadata(user_agent=request.headers.get("user-agent", ""),
                                             client_format=client_format.value)
            status = await auth(auth.stub.KeyStatus, admin_pb2.KeyStatusRequest(credential=credential, client=client))
            if status.authentication.decision != auth_pb2.DECISION_ALLOW:
                raise denial(status.authentication)
        except SwitchboardError as error:
            return _error(error, client_format)
        return Response(status.json.encode(), 200, {"cache-control": "no-store"}, media_type="application/json")

    return usage


def _usage_request(ref: str, query: Mapping[str, str]) -> admin_pb2.KeyUsageRequest:
    unknown = sorted(set(query) - {"since", "until", "by"})
    if unknown:
        raise InvalidRequest(f"Unknown query parameter {inbound.shown(unknown[0])!r}; known: since, until, by.")
    by = query.get("by", "day")
    if by not in _GROUPINGS:
        raise InvalidRequest(f"by must be one of {', '.join(_GROUPINGS)}.")
    request = admin_pb2.KeyUsageRequest(ref=ref, by=_GROUPINGS[by])
    for name in ("since", "until"):
        if query.get(name):
            getattr(request, name).CopyFrom(_bound(name, query[name]))
    return request


def _bound(name: str, text: str) -> timestamp_pb2.Timestamp:
    """A UTC day (`since`: its start; `until`: the start of the next) or a time (no zone: UTC)."""
    text = text.strip()
    stamp = timestamp_pb2.Timestamp()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            moment += timedelta(days=1) if name == "until" else timedelta(0)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        stamp.FromDatetime(moment)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name}: invalid day or time {inbound.shown(text)!r}; use e.g. 2026-05-01 or "
                             "2026-05-01T12:00:00Z.") from None
    return stamp


async def _body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (with `optional`, an empty body is `{}`); 400, 413 or 415 otherwise."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestTooLarge(f"An admin request body may be at most {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip() and optional:
        return {}
    inbound.check_content_type(request.headers.get("content-type", ""))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


def _check_names(body: Mapping[str, Any], descriptor: Descriptor, where: str = "") -> None:
    """Every field of `body` is one of `descriptor`'s (by its snake_case name), nested objects too."""
    for name, value in body.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            known = ", ".join(f.name for f in descriptor.fields)
            raise InvalidRequest(f"Unknown field {inbound.shown(where + name)!r}; known here: {known}.")
        if field.message_type is not None and name in _NESTED and isinstance(value, dict):
            _check_names(value, field.message_type, f"{where}{name}.")


def _spec(body: Mapping[str, Any]) -> admin_pb2.KeySpec:
    _check_names(body, admin_pb2.KeySpec.DESCRIPTOR)
    try:
        return json_format.ParseDict(body, admin_pb2.KeySpec())
    except json_format.ParseError as exc:
        raise InvalidRequest(f"Invalid key settings: {exc}") from None


def _update(ref: str, body: dict[str, Any]) -> admin_pb2.UpdateKeyRequest:
    """A PATCH body as an UpdateKey: `state`, and the other fields as a JSON merge patch (null removes a value;
    `policy` and `limits` merge field by field)."""
    state = body.pop("state", None)
    if state is not None and state not in _STATES:
        raise InvalidRequest(f"state must be one of {', '.join(_STATES)}.")
    paths: list[str] = []
    for name, value in body.items():
        if name in _NESTED and isinstance(value, dict):
            paths.extend(f"{name}.{leaf}" for leaf in value)
        else:
            paths.append(name)
    return admin_pb2.UpdateKeyRequest(ref=ref, state=_STATES.get(state or "", admin_pb2.KEY_STATE_UNSPECIFIED),
                                      key=_spec(body), update_mask=field_mask_pb2.FieldMask(paths=paths))


def _rotation(ref: str, body: dict[str, Any]) -> admin_pb2.RotateKeyRequest:
    unknown = set(body) - {"grace_seconds"}
    if unknown:
        raise InvalidRequest(f"Unknown field {inbound.shown(sorted(unknown)[0])!r}; known here: grace_seconds.")
    request = admin_pb2.RotateKeyRequest(ref=ref)
    grace = body.get("grace_seconds")
    if grace is not None:
        if isinstance(grace, bool) or not isinstance(grace, int | float):
            raise InvalidRequest("grace_seconds must be a number of seconds.")
        try:
            request.grace.FromTimedelta(timedelta(seconds=grace))
        except (OverflowError, ValueError):
            raise InvalidRequest("grace_seconds is out of range.") from None
    return request


def _view(view: admin_pb2.KeyView) -> dict[str, Any]:
    shown: dict[str, Any] = orjson.loads(view.json)
    return shown


def _json(payload: object, status: int = 200, *, secret: bool = False, location: str = "") -> Response:
    headers = {"cache-control": "no-store"} if secret else {}
    if location:
        headers["location"] = location
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


def _error(error: SwitchboardError, client_format: ClientFormat = ClientFormat.OPENAI) -> Response:
    status, payload, headers = render(error, client_format)
    return Response(payload, status, headers)
