"""The admin face of auth: `switchboard.auth.v1.AdminService`, what `switchboard keys` does, over gRPC.

Rules owned here:
- The same operations as the CLI through the same functions (`keys.create_key`, `keys.rotate_key`, the
  store, the `keys.validate_*` rules) and the same view (`key_views.public`): the API and the CLI cannot
  drift apart. A change is a store write like the CLI's and reaches the running service the same way.
- Auth errors meet gRPC statuses here and only here: KeyNotFound → NOT_FOUND, InvalidKeySpec →
  INVALID_ARGUMENT, KeyNameTaken → ALREADY_EXISTS, StoreError → UNAVAILABLE (its detail is logged, not sent).
- No reply and no log line holds a key's hash; the key itself only in the reply that minted it. Logs name
  keys by name and key_id.
- UpdateKey reads, changes and writes the record: the last write wins (a rotation racing an edit of the
  same key can lose one of them, as two CLI runs can).
- KeyStatus is for a key's holder, who proves it with the key: checked as Authenticate checks it (unknown,
  disabled, expired, a rotated-out secret past its grace: DENY with that reason, nothing else). What a limit has
  used comes from the ledger (`key_views.status`).
"""

import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import grpc

from switchboard.auth.v1 import admin_pb2, admin_pb2_grpc, auth_pb2
from switchboard_auth import key_views, keys
from switchboard_auth.errors import (
    AuthError,
    DatabaseUnreachable,
    InvalidKeySpec,
    KeyNameTaken,
    KeyNotFound,
    StoreError,
)
from switchboard_auth.key_views import public
from switchboard_auth.keys import KeyHasher, KeyLimits, KeyPolicy, KeyRecord, KeyState
from switchboard_auth.limits import Limiter, LimitStatus, LimitsUnavailable, day_end, month_end
from switchboard_auth.policy import KEY_MISSING, MAX_CREDENTIAL_LENGTH, CompiledKey, Verdict, authenticate, matching_key
from switchboard_auth.store import KeyStore, Ledger
from switchboard_auth.usage import Dimension, UsageSummary

ADMIN_SERVICE_NAME: str = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name

log = logging.getLogger(__name__)
T = TypeVar("T")

_STATUS: dict[type[AuthError], grpc.StatusCode] = {
    KeyNotFound: grpc.StatusCode.NOT_FOUND,
    InvalidKeySpec: grpc.StatusCode.INVALID_ARGUMENT,
    KeyNameTaken: grpc.StatusCode.ALREADY_EXISTS,
    StoreError: grpc.StatusCode.UNAVAILABLE,
    DatabaseUnreachable: grpc.StatusCode.UNAVAILABLE,
}
_STATES = {admin_pb2.KEY_STATE_ACTIVE: KeyState.ACTIVE, admin_pb2.KEY_STATE_DISABLED: KeyState.DISABLED}
_POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(KeyPolicy))
_LIMIT_FIELDS = tuple(f.name for f in dataclasses.fields(KeyLimits))
# KeySpec fields an update may name, beside "policy[.x]" and "limits[.x]".
_PLAIN_FIELDS = ("allowed_platforms", "allowed_models", "groups", "expires_at", "owner", "description", "tags")
_GROUPINGS = {admin_pb2.USAGE_GROUPING_UNSPECIFIED: Dimension.DAY, admin_pb2.USAGE_GROUPING_DAY: Dimension.DAY,
              admin_pb2.USAGE_GROUPING_MODEL: Dimension.MODEL, admin_pb2.USAGE_GROUPING_ACCOUNT: Dimension.ACCOUNT}
# A period's start and end (None: unbounded) and the key's usage in it.
Period = tuple[datetime | None, datetime | None, UsageSummary]


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, keys_store: KeyStore, ledger: Ledger, *, pepper: str,
                 now: Callable[[], float] = time.time, limiter: Limiter | None = None) -> None:
        """`pepper` must be the service's `SWITCHBOARD_AUTH_KEY_PEPPER`; `now` (POSIX seconds) is for tests;
        `limiter` (the service's) tells a key's holder what is left of its per-minute and concurrency limits."""
        self._limiter = limiter
        self._keys = keys_store
        self._ledger = ledger
        self._pepper = pepper
        self._hash = KeyHasher(pepper)
        self._now = now

    def register(self, server: grpc.aio.Server) -> None:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self, server)

    def _moment(self) -> datetime:
        return datetime.fromtimestamp(self._now(), UTC)

    def _view(self, record: KeyRecord) -> admin_pb2.KeyView:
        return admin_pb2.KeyView(key_id=record.key_id, name=record.name,
                                 json=json.dumps(public(record, self._moment())))

    async def CreateKey(self, request: admin_pb2.CreateKeyRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.IssuedKey:
        spec = request.key
        plaintext, record = await _answering(context, keys.create_key(
            self._keys,
            spec.name,
            pepper=self._pepper,
            platforms=spec.allowed_platforms,
            models=spec.allowed_models,
            groups=spec.groups,
            expires_at=_expiry(spec),
            owner=spec.owner,
            description=spec.description,
            tags=spec.tags,
            policy=_policy(spec.policy),
            limits=_limits(spec.limits),
        ))
        log.info("key %s (%s) created by the admin API", record.name, record.key_id)
        return admin_pb2.IssuedKey(key=plaintext, view=self._view(record))

    async def ListKeys(self, request: admin_pb2.ListKeysRequest,
                       context: grpc.aio.ServicerContext) -> admin_pb2.ListKeysResponse:
        records = await _answering(context, self._keys.list_all())
        return admin_pb2.ListKeysResponse(keys=[self._view(record) for record in records])

    async def GetKey(self, request: admin_pb2.GetKeyRequest, context: grpc.aio.ServicerContext) -> admin_pb2.KeyView:
        return self._view(await _answering(context, self._get(request.ref)))

    async def _get(self, ref: str) -> KeyRecord:
        record = await self._keys.get(ref) if ref else None
        if record is None:
            raise KeyNotFound(ref)
        return record

    async def UpdateKey(self, request: admin_pb2.UpdateKeyRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.KeyView:
        record = await _answering(context, self._update(request))
        log.info("key %s (%s) updated by the admin API", record.name, record.key_id)
        return self._view(record)

    async def _update(self, request: admin_pb2.UpdateKeyRequest) -> KeyRecord:
        state = _STATES.get(request.state)
        if request.state and state is None:
            raise InvalidKeySpec(f"unknown key state {request.state}")
        paths = list(request.update_mask.paths)
        if state is None and not paths:
            raise InvalidKeySpec("nothing to update: give a state or the fields to change")
        if not paths:
            assert state is not None
            changed = await self._keys.set_state(request.ref, state) if request.ref else None
        else:
            record = await self._get(request.ref)
            edited = _edited(record, request.key, paths, self._moment())
            changed = await self._keys.update(edited if state is None else dataclasses.replace(edited, state=state))
        if changed is None:
            raise KeyNotFound(request.ref)
        return changed

    async def RotateKey(self, request: admin_pb2.RotateKeyRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.IssuedKey:
        grace = request.grace.ToTimedelta() if request.HasField("grace") else None
        plaintext, record = await _answering(context, keys.rotate_key(
            self._keys, request.ref, pepper=self._pepper, grace=grace))
        log.info("key %s (%s) rotated by the admin API", record.name, record.key_id)
        return admin_pb2.IssuedKey(key=plaintext, view=self._view(record))

    async def DeleteKey(self, request: admin_pb2.DeleteKeyRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.KeyView:
        record = await _answering(context, self._delete(request.ref))
        log.info("key %s (%s) deleted by the admin API", record.name, record.key_id)
        return self._view(record)

    async def _delete(self, ref: str) -> KeyRecord:
        deleted = await self._keys.delete(ref) if ref else None
        if deleted is None:
            raise KeyNotFound(ref)
        return deleted

    async def KeyUsage(self, request: admin_pb2.KeyUsageRequest,
                       context: grpc.aio.ServicerContext) -> admin_pb2.KeyUsageResponse:
        by = _GROUPINGS.get(request.by)
        if by is None:
            await _abort(context, InvalidKeySpec(f"unknown usage grouping {request.by}"))
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        until = request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None
        if since is not None and until is not None and until <= since:
            await _abort(context, InvalidKeySpec("the range is empty: until must be after since"))
        key_id, name, rows = await _answering(context, self._usage(request.ref, since, until, by))
        return admin_pb2.KeyUsageResponse(key_id=key_id, name=name or "", json=json.dumps(
            key_views.usage(key_id, name, since, until, by, rows)))

    async def _usage(self, ref: str, since: datetime | None, until: datetime | None,
                     by: Dimension) -> tuple[str, str | None, list[UsageSummary]]:
        record = await self._keys.get(ref) if ref else None
        if record is None and not keys.KEY_ID_PATTERN.fullmatch(ref):  # a deleted key's usage stays in the ledger
            raise KeyNotFound(ref)
        key_id, name = (record.key_id, record.name) if record is not None else (ref, None)
        return key_id, name, await self._ledger.summary(key_id=key_id, since=since, until=until, by=[by])

    async def KeyStatus(self, request: admin_pb2.KeyStatusRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.KeyStatusResponse:
        verdict = (authenticate(await _answering(context, self._key_of(request.credential)), self._now())
                   if request.credential else KEY_MISSING)
        reply = admin_pb2.KeyStatusResponse(authentication=_authentication(verdict))
        if verdict.allowed and verdict.key is not None:
            record = verdict.key.record
            periods = await _answering(context, self._periods(record))
            live: dict[str, LimitStatus] = {}
            if self._limiter is not None and record.limits.any():
                try:
                    peeked = await self._limiter.peek(record.key_id, record.limits, self._now())
                    live = {status.name: status for status in peeked.statuses}
                except LimitsUnavailable as exc:  # the ledger's view still answers
                    log.warning("limits of %s not read: %s", record.key_id, exc)
            reply.json = json.dumps(key_views.status(record, self._moment(), periods, live))
        return reply

    async def _key_of(self, credential: str) -> CompiledKey | None:
        """The key a credential names (the current secret, or the previous one in a rotation's grace)."""
        if len(credential) > MAX_CREDENTIAL_LENGTH:
            return None
        key_hash = self._hash(credential)
        return matching_key(await self._keys.get_by_hash(key_hash), key_hash)

    async def _periods(self, record: KeyRecord) -> dict[str, Period]:
        """The key's usage today and this month (UTC), and in all when a total budget needs it."""
        now = self._now()
        day_start = datetime.fromtimestamp(day_end(now) - 86_400, UTC)
        month_start = self._moment().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month = await self._ledger.summary(key_id=record.key_id, since=month_start, by=[Dimension.DAY])
        periods: dict[str, Period] = {
            "day": (day_start, datetime.fromtimestamp(day_end(now), UTC),
                    key_views.summed([row for row in month if row.day == day_start.date()])),
            "month": (month_start, datetime.fromtimestamp(month_end(now), UTC), key_views.summed(month)),
        }
        if record.limits.total_budget_micro_usd is not None:
            periods["total"] = (None, None, key_views.summed(await self._ledger.summary(key_id=record.key_id)))
        return periods


def _authentication(verdict: Verdict) -> auth_pb2.AuthorizeResponse:
    """The verdict as Authenticate would answer it (no platforms, no limits)."""
    response = auth_pb2.AuthorizeResponse(
        decision=auth_pb2.DECISION_ALLOW if verdict.allowed else auth_pb2.DECISION_DENY,
        reason=auth_pb2.Reason.Value(f"REASON_{verdict.reason.name}"), message=verdict.message)
    if verdict.key is not None:
        record = verdict.key.record
        response.identity.key_id = record.key_id
        response.identity.name = record.name
        response.identity.groups.extend(record.groups)
    return response


async def _answering(context: grpc.aio.ServicerContext, action: Awaitable[T]) -> T:
    """The action's result; an auth error ends the call with its gRPC status."""
    try:
        return await action
    except AuthError as exc:
        await _abort(context, exc)


async def _abort(context: grpc.aio.ServicerContext, exc: AuthError) -> NoReturn:
    code = _STATUS.get(type(exc), grpc.StatusCode.INVALID_ARGUMENT)
    message = str(exc)
    if code is grpc.StatusCode.UNAVAILABLE:
        log.error("admin request failed: %s", exc)
        message = "the key store is unavailable; try again shortly"
    await context.abort(code, message)
    raise AssertionError("not reached: abort raises")


def _expiry(spec: admin_pb2.KeySpec) -> datetime | None:
    return spec.expires_at.ToDatetime(tzinfo=UTC) if spec.HasField("expires_at") else None


def _policy(spec: admin_pb2.KeyPolicySpec) -> KeyPolicy:
    return KeyPolicy(**{name: tuple(getattr(spec, name)) for name in _POLICY_FIELDS})


def _limits(spec: admin_pb2.KeyLimitsSpec) -> KeyLimits:
    return KeyLimits(**{name: getattr(spec, name) if spec.HasField(name) else None for name in _LIMIT_FIELDS})


def _edited(record: KeyRecord, spec: admin_pb2.KeySpec, paths: Iterable[str], now: datetime) -> KeyRecord:
    """`record` with the fields `paths` name taken from `spec`, each checked as `keys.create_key` checks it."""
    changes: dict[str, Any] = {}
    policy = {name: getattr(record.policy, name) for name in _POLICY_FIELDS}
    limits = {name: getattr(record.limits, name) for name in _LIMIT_FIELDS}
    for path in paths:
        head, _, leaf = path.partition(".")
        if head in _PLAIN_FIELDS and not leaf:
            changes[head] = _expiry(spec) if head == "expires_at" else getattr(spec, head)
        elif head == "policy" and leaf in ("", *_POLICY_FIELDS):
            for name in (leaf,) if leaf else _POLICY_FIELDS:
                policy[name] = tuple(getattr(spec.policy, name))
        elif head == "limits" and leaf in ("", *_LIMIT_FIELDS):
            for name in (leaf,) if leaf else _LIMIT_FIELDS:
                limits[name] = getattr(spec.limits, name) if spec.limits.HasField(name) else None
        elif path == "name":
            raise InvalidKeySpec("a key's name cannot change (create a new key, then delete this one)")
        else:
            raise InvalidKeySpec(f"unknown field {path!r}; fields that may change: {', '.join(_PLAIN_FIELDS)}, "
                                 f"policy[.{'|'.join(_POLICY_FIELDS)}], limits[.{'|'.join(_LIMIT_FIELDS)}]")
    checks: dict[str, Callable[[Any], Any]] = {
        "allowed_platforms": keys.validate_platforms,
        "allowed_models": lambda v: keys.validate_patterns(v, "model patterns"),
        "groups": lambda v: keys.validate_patterns(v, "group names"),
        "expires_at": lambda v: keys.validate_expiry(v, now),
        "owner": lambda v: keys.validate_text(v, "owner", 200),
        "description": lambda v: keys.validate_text(v, "description"),
        "tags": lambda v: keys.validate_patterns(v, "tags"),
    }
    checked = {name: checks[name](value) for name, value in changes.items()}
    if policy != {name: getattr(record.policy, name) for name in _POLICY_FIELDS}:
        checked["policy"] = keys.validate_policy(KeyPolicy(**policy))
    if limits != {name: getattr(record.limits, name) for name in _LIMIT_FIELDS}:
        checked["limits"] = keys.validate_limits(KeyLimits(**limits))
    return dataclasses.replace(record, **checked)
