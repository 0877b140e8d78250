"""The gRPC face of auth: `switchboard.auth.v1.AuthService` wired to the cache, policy and stores.

Rules owned here:
- Authorize is the hot path: hash, cache lookup, `policy.decide`, one
  response. No store round trip on a cache hit, nothing blocking the loop.
  Authenticate is the same path with `policy.authenticate` (the key checks
  alone, no platform or model) and no `reuse_for`; both share one KeyCache,
  so the Authorize that follows an Authenticate finds the key cached.
- Store failures become gRPC UNAVAILABLE (the only place auth errors meet
  gRPC statuses), so the caller keeps its batch and retries. A malformed
  usage record (no request_id, negative tokens) is dropped, logged and
  counted, never a batch error: a retried batch would fail forever.
- Each usage record is priced as it arrives (`pricing`, the table loaded once at
  start), at the model the vendor billed (`upstream_model`, else `model`); one the
  upstream failed costs 0 (`usage.upstream_failed`), and one whose counts cannot
  be priced is kept with no cost, never dropped.
- The credential and its hash are never logged, echoed or put in a label.
"""

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from google.protobuf import duration_pb2

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.cache import KeyCache
from switchboard_auth.errors import StoreError
from switchboard_auth.key_changes import Change, KeyChanges
from switchboard_auth.keys import KeyHasher, KeyLimits
from switchboard_auth.limits import Limiter, LimitsUnavailable, MemoryLimiter
from switchboard_auth.metrics import STALE_KEY_LOOKUPS, count_decision, count_invalid_usage, count_usage
from switchboard_auth.policy import (
    KEY_MISSING,
    MAX_CREDENTIAL_LENGTH,
    Caller,
    CompiledKey,
    Reason,
    Verdict,
    authenticate,
    decide,
    limit_refusal,
    matching_key,
)
from switchboard_auth.pricing import PriceTable, cost_micro_usd, default_prices
from switchboard_auth.store import KeyStore, Ledger
from switchboard_auth.usage import UsageEntry, last_used_by_key, upstream_failed
from switchboard_common.answer_streams import answer_batches, answer_stream

SERVICE_NAME: str = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
_PROTO_REASON = {reason: auth_pb2.Reason.Value(f"REASON_{reason.name}") for reason in Reason}

log = logging.getLogger(__name__)
# Keys whose limits are remembered for settling usage; a bound (the map is rebuilt as requests come).
_MAX_LIMITED_KEYS = 100_000


class Undecided(Exception):
    """No decision can be made: a store it needs is unavailable (unary calls: UNAVAILABLE; streams: `unavailable`).
    Its message is safe to send."""


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        keys: KeyStore,
        ledger: Ledger,
        *,
        hasher: KeyHasher,
        cache_ttl_seconds: float,
        cache_max_entries: int,
        decision_reuse_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        prices: PriceTable | None = None,
        limiter: Limiter | None = None,
        stale_keys_seconds: float = 0.0,
    ) -> None:
        """`clock` drives cache expiry, `now` (POSIX seconds) key expiry; tests swap both. `prices` prices the
        usage records (None: the packaged list prices). While the key store fails, a key cached within
        `stale_keys_seconds` is answered as last read (`cache.KeyCache`)."""
        self._keys = keys
        self._ledger = ledger
        self._prices = _packaged_prices() if prices is None else prices
        self._hash = hasher
        self._now = now
        self._reuse_seconds = decision_reuse_seconds
        self._limiter: Limiter = limiter or MemoryLimiter()
        # key_id → (until, its limits or None): usage settles against them without a store read per record.
        self._limited: dict[str, tuple[float, KeyLimits | None]] = {}
        self._limits_ttl = cache_ttl_seconds
        self._clock = clock
        self._cache = KeyCache(
            self._load, ttl_seconds=cache_ttl_seconds, max_entries=cache_max_entries, clock=clock,
            stale_seconds=stale_keys_seconds, on_stale=STALE_KEY_LOOKUPS.inc,
        )
        self.key_changes = KeyChanges(self._forget)
        self._ledger_failing = False  # the last usage append failed (logged once until one succeeds)
        self._releasing: set[asyncio.Task[auth_pb2.ReleaseAdmissionsResponse]] = set()

    def register(self, server: grpc.aio.Server) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(self, server)

    def _forget(self, change: Change) -> None:
        """A key changed: this replica stops using what it cached of it."""
        self._cache.forget(change)
        if change is None:
            self._limited.clear()
        else:
            for key_id in change:
                self._limited.pop(key_id, None)

    async def WatchKeyChanges(
        self, request: auth_pb2.WatchKeyChangesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[auth_pb2.KeyChangesEvent]:
        async for change in self.key_changes.watch():
            if change is None:
                yield auth_pb2.KeyChangesEvent(everything=True)
            else:
                yield auth_pb2.KeyChangesEvent(key_ids=sorted(change))

    async def _load(self, key_hash: str) -> CompiledKey | None:
        return matching_key(await self._keys.get_by_hash(key_hash), key_hash)

    async def _lookup(self, credential: str) -> CompiledKey | None:
        """The key a non-empty credential names (None: no such key); an oversized one is never looked up."""
        if len(credential) > MAX_CREDENTIAL_LENGTH:
            return None
        try:
            return await self._cache.get(self._hash(credential))
        except StoreError as exc:
            log.error("key lookup failed: %s", exc)
            raise Undecided("key store unavailable") from None

    async def Authorize(
        self, request: auth_pb2.AuthorizeRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.AuthorizeResponse:
        try:
            return await self._authorize(request)
        except Undecided as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise  # not reached: abort raises (grpc's stubs do not say so)

    async def AuthorizeBatches(
        self, batches: AsyncIterator[auth_pb2.AuthorizeBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[auth_pb2.AuthorizeAnswers]:
        """Authorize's answers over one stream (see auth.proto); no decision is `unavailable`, not an abort."""
        async for answers in answer_batches(batches, _authorize_requests, self._stream_answer,
                                            self._release_undelivered, _authorize_answers):
            yield answers

    async def _stream_answer(self, request: auth_pb2.AuthorizeRequest) -> auth_pb2.AuthorizeResponse:
        try:
            return await self._authorize(request)
        except Undecided as exc:
            return auth_pb2.AuthorizeResponse(unavailable=True, message=str(exc))

    def _release_undelivered(self, response: auth_pb2.AuthorizeResponse) -> None:
        if response.admission_id:
            release = auth_pb2.ReleaseAdmissionsRequest(admissions=[auth_pb2.ReleaseAdmissionsRequest.Admission(
                key_id=response.identity.key_id, admission_id=response.admission_id)])
            task = asyncio.get_running_loop().create_task(self._release(release))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _authorize(self, request: auth_pb2.AuthorizeRequest) -> auth_pb2.AuthorizeResponse:
        if not request.credential:
            verdict = KEY_MISSING
        else:
            key = await self._lookup(request.credential)
            client = request.client
            verdict = decide(key, request.platforms, request.model, self._now(),
                             Caller(client.remote_addr, client.client_app, client.client_format))
            if verdict.allowed and verdict.key is not None and verdict.key.record.limits.any():
                return await self._admit(verdict)
        response = _answer(verdict)
        if verdict.allowed and self._reuse_seconds > 0:
            response.reuse_for.FromNanoseconds(int(self._reuse_for(verdict) * 1e9))
        return response

    async def _admit(self, verdict: Verdict) -> auth_pb2.AuthorizeResponse:
        """A limited key's request: admitted against its limits now (no `reuse_for`: every request asks)."""
        assert verdict.key is not None
        record = verdict.key.record
        self._remember_limits(record.key_id, record.limits)
        try:
            check = await self._limiter.admit(record.key_id, record.limits, self._now())
        except (LimitsUnavailable, StoreError) as exc:  # StoreError: the ledger a first sight starts from
            log.error("limits unavailable: %s", exc)
            raise Undecided("limits store unavailable") from None
        if not check.allowed:
            verdict = limit_refusal(verdict.key, check.refused_by)
        response = _answer(verdict)
        response.admission_id = check.admission_id
        response.refused_by = check.refused_by
        if check.retry_after is not None:
            response.retry_after.FromNanoseconds(int(check.retry_after * 1e9))
        for status in check.statuses:
            limit = response.limits.add(name=status.name, limit=status.limit, remaining=status.remaining)
            limit.reset.FromNanoseconds(int(status.reset_seconds * 1e9))
        return response

    async def Authenticate(
        self, request: auth_pb2.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.AuthorizeResponse:
        if not request.credential:
            verdict = KEY_MISSING
        else:
            try:
                verdict = authenticate(await self._lookup(request.credential), self._now())
            except Undecided as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
                raise  # not reached
        return _answer(verdict)

    def _reuse_for(self, verdict: Verdict) -> float:
        """How long the edge may reuse an ALLOW: the configured time, cut short by the key's expiry."""
        reuse = self._reuse_seconds
        expires_at = verdict.key.record.expires_at if verdict.key is not None else None
        if expires_at is not None:
            reuse = min(reuse, max(0.0, expires_at.timestamp() - self._now()))
        return reuse

    async def RecordUsage(
        self, request: auth_pb2.RecordUsageRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RecordUsageResponse:
        received = datetime.now(UTC)
        entries: list[UsageEntry] = []
        async for record in _in_turns(request.records):
            try:
                entries.append(_entry(record, received, self._prices))
            except ValueError as exc:  # refusing the batch would make the edge resend it forever
                log.warning("usage record dropped: %s", exc)
                count_invalid_usage()
        try:
            new = await self._ledger.append(entries)
        except StoreError as exc:
            # Once per outage: the edges send the batches they keep again at every flush.
            log.log(logging.DEBUG if self._ledger_failing else logging.ERROR,
                    "usage append failed, the edges keep the records and send them again: %s", exc)
            self._ledger_failing = True
            await context.abort(grpc.StatusCode.UNAVAILABLE, "usage ledger unavailable")
        if self._ledger_failing:
            self._ledger_failing = False
            log.warning("usage ledger writable again")
        count_usage(len(entries), new)
        await self._settle(new)
        try:
            await self._keys.touch(last_used_by_key(new))
        except StoreError as exc:  # the ledger has the records; last_used_at is best effort
            log.warning("last_used_at update failed: %s", exc)
        return auth_pb2.RecordUsageResponse(accepted=len(new))


    async def ReleaseAdmissions(
        self, request: auth_pb2.ReleaseAdmissionsRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ReleaseAdmissionsResponse:
        return await self._release(request)

    async def ReleaseAdmissionStream(
        self, requests: AsyncIterator[auth_pb2.ReleaseAdmissionsRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[auth_pb2.ReleaseAdmissionsResponse]:
        """ReleaseAdmissions' batches over one stream, each answered once applied (see auth.proto)."""
        async for response in answer_stream(requests, self._release, lambda _: None):
            yield response

    async def _release(self, request: auth_pb2.ReleaseAdmissionsRequest) -> auth_pb2.ReleaseAdmissionsResponse:
        for admission in request.admissions:
            limits = await self._limits_of(admission.key_id)
            if limits is None or not admission.admission_id:
                continue
            try:
                await self._limiter.settle(admission.key_id, limits, admission.admission_id, 0, 0, self._now())
            except LimitsUnavailable as exc:  # the admission expires by itself
                log.warning("admission of %s not released: %s", admission.key_id, exc)
        return auth_pb2.ReleaseAdmissionsResponse()

    async def _limits_of(self, key_id: str) -> KeyLimits | None:
        """The key's limits (None: it has none), as this replica last admitted it or, when another replica did,
        read from the store and kept for a cache TTL."""
        known = self._limited.get(key_id)
        if known is not None and known[0] > self._clock():
            return known[1]
        try:
            record = await self._keys.get(key_id)
        except StoreError as exc:
            log.warning("limits of %s unknown, usage not charged to them: %s", key_id, exc)
            return None
        limits = record.limits if record is not None and record.limits.any() else None
        self._remember_limits(key_id, limits)
        return limits

    def _remember_limits(self, key_id: str, limits: KeyLimits | None) -> None:
        if len(self._limited) >= _MAX_LIMITED_KEYS:
            self._limited.clear()
        self._limited[key_id] = (self._clock() + self._limits_ttl, limits)

    async def _settle(self, entries: list[UsageEntry]) -> None:
        """Charges each new record's tokens and cost to its key's limits and ends its concurrency admission.
        Best effort once the ledger has the records: a limits store that cannot be reached is logged."""
        async for entry in _in_turns(entries):
            limits = await self._limits_of(entry.key_id)
            if limits is None:
                continue
            tokens = (entry.input_tokens + entry.output_tokens + entry.cache_read_input_tokens
                      + entry.cache_creation_input_tokens)
            try:
                await self._limiter.settle(entry.key_id, limits, entry.admission_id, tokens,
                                           entry.cost_micro_usd or 0, entry.started_at.timestamp())
            except LimitsUnavailable as exc:
                log.warning("usage of %s not charged to its limits: %s", entry.key_id, exc)


def _answer(verdict: Verdict) -> auth_pb2.AuthorizeResponse:
    """Counts the verdict and turns it into a response."""
    count_decision(verdict)
    if not verdict.allowed and verdict.key is not None:
        log.debug("denied key %s: %s", verdict.key.record.name, verdict.reason.value)
    return _response(verdict)


def _response(verdict: Verdict) -> auth_pb2.AuthorizeResponse:
    response = auth_pb2.AuthorizeResponse(
        decision=auth_pb2.DECISION_ALLOW if verdict.allowed else auth_pb2.DECISION_DENY,
        reason=_PROTO_REASON[verdict.reason],
        message=verdict.message,
        allowed_platforms=verdict.allowed_platforms,
    )
    if verdict.key is not None:
        record = verdict.key.record
        response.identity.key_id = record.key_id
        response.identity.name = record.name
        response.identity.groups.extend(record.groups)
        response.permissions.allowed_platforms.extend(record.allowed_platforms)
        response.permissions.allowed_models.extend(record.allowed_models)
    return response


def _seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


@functools.cache
def _packaged_prices() -> PriceTable:
    """The packaged list prices, read once per process (a table is never changed once made)."""
    return default_prices()


_T = TypeVar("_T")
# Usage records handled between two turns of the event loop: an edge's batch (hundreds of records) must not
# hold up the Authorize answers every request waits for.
_RECORDS_PER_TURN = 32


async def _in_turns(items: Iterable[_T]) -> AsyncIterator[_T]:
    """`items`, letting the loop run other work every `_RECORDS_PER_TURN` of them."""
    for count, item in enumerate(items, 1):
        yield item
        if count % _RECORDS_PER_TURN == 0:
            await asyncio.sleep(0)


def _entry(record: auth_pb2.UsageRecord, received: datetime, prices: PriceTable) -> UsageEntry:
    """One proto record as a priced ledger entry; ValueError names what is wrong with it."""
    if not record.request_id:
        raise ValueError("every usage record needs a request_id")
    usage = record.usage
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_tokens,
        usage.cache_creation_5m_input_tokens,
        usage.cache_creation_1h_input_tokens,
    )
    if min(counts) < 0:
        raise ValueError(f"usage record {record.request_id!r} has a negative token count")
    if counts[5] + counts[6] > counts[3]:
        raise ValueError(f"usage record {record.request_id!r} has more 5-minute and 1-hour cache writes than in all")
    started_at = record.started_at.ToDatetime(tzinfo=UTC) if record.HasField("started_at") else received
    entry = UsageEntry(
        request_id=record.request_id,
        key_id=record.key_id,
        platform=record.platform,
        model=record.model,
        started_at=started_at,
        recorded_at=received,
        account_id=record.account_id,
        upstream_model=record.upstream_model,
        input_tokens=counts[0],
        output_tokens=counts[1],
        cache_read_input_tokens=counts[2],
        cache_creation_input_tokens=counts[3],
        reasoning_tokens=counts[4],
        cache_creation_5m_input_tokens=counts[5],
        cache_creation_1h_input_tokens=counts[6],
        status_code=record.status_code,
        stream=record.stream,
        truncated=record.truncated,
        duration_seconds=_seconds(record.duration),
        time_to_first_token_seconds=(
            _seconds(record.time_to_first_token) if record.HasField("time_to_first_token") else None
        ),
        client_format=record.client_format,
        admission_id=record.admission_id,
        session_id=record.session_id,
        usage_estimated=record.usage_estimated,
        end_reason=record.end_reason,
        client_app=record.client_app[:64],
    )
    if upstream_failed(entry.status_code, entry.end_reason, entry.has_tokens()):
        return dataclasses.replace(entry, failed=True, cost_micro_usd=0)  # never charged; the tokens stay
    try:
        cost = cost_micro_usd(prices, entry.platform, entry.upstream_model or entry.model, entry)
    except ValueError as exc:  # counts no price can apply to: keep the record, without a cost
        log.warning("usage record %r kept without a cost: %s", entry.request_id, exc)
        cost = None
    return dataclasses.replace(entry, cost_micro_usd=cost)


async def _authorize_requests(batch: auth_pb2.AuthorizeBatch) -> Iterable[auth_pb2.AuthorizeRequest]:
    return batch.requests


def _authorize_answers(responses: list[auth_pb2.AuthorizeResponse]) -> auth_pb2.AuthorizeAnswers:
    return auth_pb2.AuthorizeAnswers(responses=responses)
