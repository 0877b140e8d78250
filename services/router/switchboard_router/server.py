"""The RouterService servicer: proto in, domain calls, proto out.

No routing rule lives here (see `selection`); this module translates requests,
takes and returns leases, counts metrics and maps `RouterError`s to gRPC codes.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import replace
from typing import Any

import grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_common.answer_streams import answer_batches, answer_stream
from switchboard_router import metrics, wire
from switchboard_router.accounts import Account
from switchboard_router.errors import CredentialNotSaved, InvalidHeartbeat, InvalidPick, RouterError
from switchboard_router.leases import LeaseTable
from switchboard_router.managed_accounts import ManagedAccounts
from switchboard_router.pool import AccountPool, PoolSnapshot
from switchboard_router.selection import Live, PickQuery, Review, Selector, Unavailable
from switchboard_router.state import Hold, HoldKind, MemoryState, RouterState, StateUnavailable, Window
from switchboard_router.verdicts import Breaker, decide, reported

log = logging.getLogger(__name__)

SERVICE_NAME: str = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name

_OK = router_pb2.PICK_STATUS_OK
_REFUSED = {
    Unavailable.NO_MODEL: router_pb2.PICK_STATUS_NO_MODEL,
    Unavailable.NO_ACCOUNT: router_pb2.PICK_STATUS_NO_ACCOUNT,
}
# Why a pick is refused while the shared state is down and SWITCHBOARD_ROUTER_REDIS_UNAVAILABLE=refuse.
_STATE_DOWN = "The router's shared state cannot be reached; try again shortly."
# A heartbeat's reconciliation spares leases younger than this: a pick answered after the holder listed its
# leases, or still on its way to it (longer than any edge waits for a pick).
_RECONCILE_AFTER_SECONDS = 10.0
# Holder ids are edge instance names ("<hostname>:<port>"); anything longer is a caller bug.
MAX_HOLDER_CHARS = 512
# Edge instances whose last slot extension is remembered; a bound, as holder names come from callers.
MAX_HOLDERS_TRACKED = 10_000
# A StoreCredential error reason is kept and logged at most this long.
MAX_REASON_CHARS = 500


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    """grpc.aio RouterService over one pool, one lease table and one selector."""

    def __init__(self, pool: AccountPool, leases: LeaseTable, selector: Selector | None = None,
                 state: RouterState | None = None, *, window_threshold: float = 0.95,
                 breaker_threshold: int = 5, breaker_open_seconds: float = 30.0,
                 session_ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.leases = leases
        self.selector = selector or Selector()
        self.state: RouterState = state or MemoryState()
        self.managed = ManagedAccounts(self.state, pool)
        self.window_threshold = window_threshold
        self.breaker_threshold = breaker_threshold
        self.breaker_open_seconds = breaker_open_seconds
        self.session_ttl_seconds = session_ttl_seconds
        self._clock = clock
        # Holder → when its slots in the shared state were last extended.
        self._extended_at: dict[str, float] = {}
        self._chores: set[asyncio.Task[None]] = set()
        pool.on_new_credentials = self._credentials_changed

    def _live(self) -> Live:
        return Live(self.state.health(), self.state.in_flight(), self._clock(), self.window_threshold)

    def register(self, server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServiceServicer_to_server(self, server)

    async def Pick(
        self, request: router_pb2.PickRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.PickResponse:
        try:
            return await self._pick(request)
        except RouterError as exc:
            await context.abort(exc.grpc_code, str(exc))

    async def PickBatches(
        self, batches: AsyncIterator[router_pb2.PickBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.PickAnswers]:
        """Answers each request as soon as it is chosen (several at once); see router.proto."""
        async for answers in answer_batches(batches, self._batch_picks, self._stream_answer,
                                            self._return_undelivered, _pick_answers):
            yield answers

    async def _batch_picks(self, batch: router_pb2.PickBatch) -> Iterable[router_pb2.PickRequest]:
        """The batch's picks, once the outcomes it carries are applied (their slots free for these picks)."""
        await self._settle_all(batch.outcomes)
        return batch.requests

    async def _stream_answer(self, request: router_pb2.PickRequest) -> router_pb2.PickResponse:
        try:
            return await self._pick(request)
        except RouterError as exc:
            return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_INVALID, message=str(exc))

    def _return_undelivered(self, response: router_pb2.PickResponse) -> None:
        if response.lease_id:
            account_id = self.leases.release(response.lease_id)
            if account_id is not None:
                self._background(self._free_slot(account_id, response.lease_id))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _pick(self, request: router_pb2.PickRequest) -> router_pb2.PickResponse:
        query = _query(request)
        _check_holder(request.holder, InvalidPick, required=False)
        snapshot = self.pool.snapshot
        live = self._live()
        session = _session_key(request.key_id, query.session_hint)
        bound = await self._bound(session)
        await self._holder_alive(request.holder)
        if self.state.refusing():
            return _state_down()
        skips: dict[str, int] = {}
        if log.isEnabledFor(logging.DEBUG):
            _log_review(request.request_id, self.selector.review(snapshot, query, live, bound))
        while True:
            chosen = self.selector.pick(snapshot, query, live, bound, skips)
            if chosen is None:
                metrics.count_skips(skips)
                return self._refusal(snapshot, query, live)
            account = chosen.account
            lease_id = self.leases.acquire(account.id, request.holder)
            if await self._take_slot(account, lease_id, request.holder):
                break
            # Another replica took the account's last slot since this one's copy of the counts was read.
            self.leases.release(lease_id)
            if self.state.refusing():
                return _state_down()
            live = replace(live, full=live.full | {account.id})
        metrics.count_pick(account)
        if skips:
            metrics.count_skips(skips)
        if session:
            metrics.count_session("hit" if bound == account.id else "moved" if bound else "new")
            if bound != account.id:
                # A new conversation, or one whose account cannot serve it now (a failover's retry lands
                # here too): it lives on where it is served.
                await self._bind(session, account.id)
        return router_pb2.PickResponse(
            status=_OK,
            account=snapshot.messages[account.id],
            upstream_model=chosen.upstream_model,
            lease_id=lease_id,
        )

    async def _holder_alive(self, holder: str) -> None:
        """Any Pick says its holder is alive; its slots in the shared state follow, at most every third of
        the holder TTL (a heartbeat's pace), so picks do not each pay a round trip for it."""
        if not holder:
            return
        self.leases.heartbeat(holder)
        if self._clock() - self._extended_at.get(holder, float("-inf")) >= self.leases.holder_ttl_seconds / 3:
            await self._extend_slots(holder)

    async def _extend_slots(self, holder: str) -> None:
        now = self._clock()
        if len(self._extended_at) >= MAX_HOLDERS_TRACKED:
            self._extended_at.clear()
        self._extended_at[holder] = now
        try:
            await self.state.extend_all(self.leases.leases_of(holder), now + self.leases.holder_ttl_seconds)
        except StateUnavailable as exc:
            log.warning("leases of %r not extended in the shared state: %s", holder, exc)

    def _refusal(self, snapshot: PoolSnapshot, query: PickQuery, live: Live) -> router_pb2.PickResponse:
        refusal = self.selector.explain(snapshot, query, live)
        response = router_pb2.PickResponse(status=_REFUSED[refusal.reason], message=refusal.message)
        if refusal.retry_at is not None:
            response.retry_after.CopyFrom(wire.duration(max(1.0, refusal.retry_at - live.now)))
        return response

    async def Explain(
        self, request: router_pb2.PickRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ExplainResponse:
        try:
            query = _query(request)
        except RouterError as exc:
            await context.abort(exc.grpc_code, str(exc))
        snapshot, live = self.pool.snapshot, self._live()
        session = _session_key(request.key_id, query.session_hint)
        bound = await self._peek_bound(session)
        reviews = self.selector.review(snapshot, query, live, bound)
        response = router_pb2.ExplainResponse(
            candidates=[_candidate_review(review) for review in reviews], bound_account_id=bound or "")
        chosen = next((review for review in reviews if review.verdict == "chosen"), None)
        if chosen is not None:
            response.status, response.account_id = _OK, chosen.account.id
        else:
            refusal = self._refusal(snapshot, query, live)
            response.status, response.message = refusal.status, refusal.message
            if refusal.HasField("retry_after"):
                response.retry_after.CopyFrom(refusal.retry_after)
        return response

    async def _take_slot(self, account: Account, lease_id: str, holder: str) -> bool:
        """The account's concurrency slot for this lease, shared by every replica (`RouterState.acquire`);
        it expires when the holder's heartbeat is overdue (or the long lease TTL), so a crashed edge or a lost
        report never keeps it longer."""
        expires_at = self._clock() + self.leases.ttl_for(holder)
        try:
            return await self.state.acquire(account.id, lease_id, account.max_concurrency, expires_at)
        except StateUnavailable as exc:
            if self.state.refusing():
                return False
            # Refusing every request while the store is down would be worse than a limit briefly unenforced.
            log.warning("concurrency slot of %s not counted in the shared state: %s", account.id, exc)
            return True

    async def _bound(self, session: str) -> str | None:
        """The account a conversation is bound to (its sliding TTL renewed), if any."""
        if not session:
            return None
        try:
            return await self.state.session(session, self.session_ttl_seconds)
        except StateUnavailable as exc:
            log.warning("session binding unavailable: %s", exc)
            return None

    async def _peek_bound(self, session: str) -> str | None:
        """The account a conversation is bound to, for Explain: the binding is not renewed."""
        if not session:
            return None
        try:
            return await self.state.session(session, 0)
        except StateUnavailable as exc:
            log.warning("session binding unavailable: %s", exc)
            return None

    async def _bind(self, session: str, account_id: str) -> None:
        try:
            await self.state.bind(session, account_id, self.session_ttl_seconds)
        except StateUnavailable as exc:
            log.warning("session binding not stored: %s", exc)

    async def ReportOutcome(
        self, request: router_pb2.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ReportOutcomeResponse:
        await self._settle(request)
        return router_pb2.ReportOutcomeResponse()

    async def ReportOutcomes(
        self, request: router_pb2.ReportOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ReportOutcomeResponse:
        return await self._settle_batch(request)

    async def ReportOutcomeStream(
        self, requests: AsyncIterator[router_pb2.ReportOutcomesRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.ReportOutcomeResponse]:
        """ReportOutcomes' batches over one stream, each answered once applied (see router.proto)."""
        async for response in answer_stream(requests, self._settle_batch, lambda _: None):
            yield response

    async def _settle_batch(self, request: router_pb2.ReportOutcomesRequest) -> router_pb2.ReportOutcomeResponse:
        await self._settle_all(request.outcomes)
        return router_pb2.ReportOutcomeResponse()

    async def _settle_all(self, outcomes: Iterable[router_pb2.ReportOutcomeRequest]) -> None:
        for outcome in outcomes:
            await self._settle(outcome)

    async def _settle(self, request: router_pb2.ReportOutcomeRequest) -> None:
        """Returns the lease, counts the outcome and lets it steer later picks (`verdicts`)."""
        held = self.leases.release(request.lease_id) if request.lease_id else None
        account_id = held or request.account_id
        # Count only accounts the router knows, so a caller cannot mint label values.
        if held is None and account_id not in self.pool.snapshot.by_id:
            log.debug("outcome for unknown account %r ignored", account_id)
            return
        if request.lease_id:
            # Also a lease another replica granted (the edge's channel moved): slots are shared.
            await self._free_slot(account_id, request.lease_id)
        platform, _, name = account_id.partition("/")
        metrics.count_outcome(platform, name, wire.outcome_label(request.outcome))
        try:
            await self._apply(account_id, request, platform)
        except StateUnavailable as exc:
            log.warning("outcome of account %s not recorded in the shared state: %s", account_id, exc)

    async def _free_slot(self, account_id: str, lease_id: str) -> None:
        try:
            await self.state.release(account_id, lease_id)
        except StateUnavailable as exc:
            log.warning("concurrency slot of %s not returned to the shared state (it expires by itself): %s",
                        account_id, exc)

    async def _apply(self, account_id: str, request: router_pb2.ReportOutcomeRequest, platform: str) -> None:
        effects = decide(reported(request, platform, self._clock()))
        for window in effects.windows:
            await self.state.put_window(account_id, window.family,
                                        Window(window.name, window.utilization, window.resets_at))
        for hold in effects.holds:
            log.info("account %s %s %s until %s: %s", account_id, hold.kind.value, hold.family or "(all models)",
                     "cleared" if hold.until is None else time.strftime("%H:%M:%S", time.gmtime(hold.until)),
                     hold.reason)
            metrics.count_hold(platform, account_id.partition("/")[2], hold.kind.value)
            await self.state.put_hold(account_id, hold.family, Hold(hold.kind, hold.until, hold.reason))
        if effects.breaker is Breaker.SUCCESS:
            await self.state.record_success(account_id)
        elif effects.breaker is Breaker.FAILURE:
            opened = await self.state.record_failure(account_id, self.breaker_threshold, self.breaker_open_seconds)
            if opened is not None:
                log.warning("account %s: circuit open for %.0f s after %d failures in a row", account_id,
                            self.breaker_open_seconds, self.breaker_threshold)
                metrics.count_hold(platform, account_id.partition("/")[2], HoldKind.BREAKER.value)

    async def Release(
        self, request: router_pb2.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ReleaseResponse:
        account_id = self.leases.release(request.lease_id)
        if account_id is not None:
            await self._free_slot(account_id, request.lease_id)
        return router_pb2.ReleaseResponse()

    async def Heartbeat(
        self, request: router_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.HeartbeatResponse:
        try:
            _check_holder(request.holder, InvalidHeartbeat, required=True)
        except RouterError as exc:
            await context.abort(exc.grpc_code, str(exc))
        dropped = self.leases.leases_of(request.holder) if request.release_held else []
        released = self.leases.heartbeat(request.holder, release_held=request.release_held)
        if released:
            log.info("lease holder %r restarted: returned the %d leases it held", request.holder, released)
        if request.reconcile and not request.release_held:
            lost = self.leases.reconcile(request.holder, frozenset(request.leases), _RECONCILE_AFTER_SECONDS)
            if lost:
                log.warning("lease holder %r no longer holds %d leases (their outcomes were lost): returned",
                            request.holder, len(lost))
            dropped, released = lost, len(lost)
        for account_id, lease_id in dropped:
            await self._free_slot(account_id, lease_id)
        await self._extend_slots(request.holder)
        return router_pb2.HeartbeatResponse(
            released=released, holder_ttl=wire.duration(self.leases.holder_ttl_seconds)
        )

    async def StoreCredential(
        self, request: router_pb2.StoreCredentialRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.StoreCredentialResponse:
        """A refreshed credential (kept live at once, and persisted) or why the refresh failed (the account
        is in error until its credential changes or the router restarts)."""
        try:
            if request.error:
                self.pool.credential_failed(request.account_id, _reason(request.error))
            else:
                try:
                    stored = self.pool.store_credential(request.account_id, *wire.credential_of(request.credential))
                except CredentialNotSaved:  # live here all the same: the other replicas should have it too
                    await self.managed.share_credential(request.account_id)
                    raise
                if stored:
                    await self.managed.share_credential(request.account_id)
        except CredentialNotSaved as exc:
            log.error("account %s: %s", request.account_id, exc)
            await context.abort(exc.grpc_code, str(exc))
        except RouterError as exc:
            await context.abort(exc.grpc_code, str(exc))
        return router_pb2.StoreCredentialResponse()

    async def GetCredential(
        self, request: router_pb2.GetCredentialRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.GetCredentialResponse:
        """The credential Pick hands out for the account now (an edge re-reads it after a refused refresh)."""
        message = self.pool.snapshot.messages.get(request.account_id)
        if message is not None:
            return router_pb2.GetCredentialResponse(credential=message.credential)
        await context.abort(grpc.StatusCode.NOT_FOUND, f"no account {request.account_id[:200]!r} in the pool")
        raise AssertionError("unreachable: abort raises")

    async def ListAccounts(
        self, request: router_pb2.ListAccountsRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ListAccountsResponse:
        health, in_flight, managed = self.state.health(), self.state.in_flight(), self.pool.managed_ids
        response = router_pb2.ListAccountsResponse(
            accounts=[
                wire.account_status(account, in_flight.get(account.id, 0), health,
                                    source="managed" if account.id in managed else "file")
                for account in self.pool.snapshot.accounts
                if not request.platform or account.platform == request.platform
            ]
        )
        if request.stored_credentials:  # for the operator to write refreshed tokens back (never logged)
            for status in response.accounts:
                stored = self.pool.stored_credential(status.account.id)
                if stored is not None:
                    status.stored_credential.api_key = stored[0]
                    status.stored_credential.secrets.update(stored[1])
        return response

    def _credentials_changed(self, account_ids: list[str]) -> None:
        """A changed credential may work where the old one was refused: its error hold ends."""
        for account_id in account_ids:
            log.info("account %s has a new credential: its refused-credential hold, if any, ends", account_id)
            self._background(self._clear(account_id, frozenset({HoldKind.ERROR})))

    async def _clear(self, account_id: str, kinds: frozenset[HoldKind] | None) -> None:
        try:
            await self.state.clear_holds(account_id, kinds)
        except StateUnavailable as exc:
            log.warning("holds of %s not cleared: %s", account_id, exc)

    async def ClearHolds(
        self, request: router_pb2.ClearHoldsRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ClearHoldsResponse:
        if request.account_id not in self.pool.snapshot.by_id:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no account {request.account_id[:200]!r} in the pool")
        clearable: dict[str, HoldKind] = {k.value: k for k in HoldKind if k is not HoldKind.TRIPPED}
        unknown = [kind for kind in request.kinds if kind not in clearable]
        if unknown:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"kinds must be among: {', '.join(clearable)} (got {unknown[0][:40]!r})")
        kinds = frozenset(clearable[kind] for kind in request.kinds) or None
        if kinds is not None and HoldKind.BREAKER in kinds:
            kinds |= {HoldKind.TRIPPED}  # a cleared breaker is closed, not half-open
        try:
            await self.state.clear_holds(request.account_id, kinds)
        except StateUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"holds not cleared: {exc}")
        log.warning("account %s: holds %s cleared by an operator", request.account_id,
                    ", ".join(sorted(k.value for k in kinds)) if kinds else "of every kind")
        return router_pb2.ClearHoldsResponse()

    async def UpsertAccount(
        self, request: router_pb2.UpsertAccountRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.UpsertAccountResponse:
        try:
            account, created = await self.managed.upsert(request.spec_json)
        except RouterError as exc:
            await context.abort(exc.grpc_code, str(exc))
        served = self.pool.snapshot.by_id.get(account.id, account)  # with any stored credential's state
        return router_pb2.UpsertAccountResponse(
            status=wire.account_status(served, self.state.in_flight().get(account.id, 0), self.state.health(),
                                       source="managed"),
            created=created)

    async def DeleteAccount(
        self, request: router_pb2.DeleteAccountRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.DeleteAccountResponse:
        try:
            deleted = await self.managed.delete(request.account_id)
        except RouterError as exc:
            await context.abort(exc.grpc_code, str(exc))
        return router_pb2.DeleteAccountResponse(deleted=deleted)


def _candidate_review(review: Review) -> router_pb2.CandidateReview:
    return router_pb2.CandidateReview(
        account_id=review.account.id, verdict=review.verdict, detail=review.detail, tier=review.tier,
        in_flight=review.in_flight, upstream_model=review.upstream_model)


def _log_review(request_id: str, reviews: list[Review]) -> None:
    """The debug log's account of a pick: every candidate passed over and why."""
    for review in reviews:
        if review.tier >= 0 and review.verdict not in ("available", "chosen"):
            log.debug("pick %s: skipped %s (%s)%s", request_id or "-", review.account.id, review.verdict,
                      f": {review.detail}" if review.detail else "")


def _reason(text: str) -> str:
    """An error reason from the edge as it is logged and kept: one line, bounded."""
    line = "".join(c if c.isprintable() else " " for c in text).strip()
    return line if len(line) <= MAX_REASON_CHARS else line[:MAX_REASON_CHARS] + "…"


def _check_holder(holder: str, error: type[RouterError], *, required: bool) -> None:
    if required and not holder:
        raise error("holder must not be empty")
    if len(holder) > MAX_HOLDER_CHARS:
        raise error(f"holder must be at most {MAX_HOLDER_CHARS} characters")


def _session_key(key_id: str, hint: str) -> str:
    """Sessions are per key: two keys' conversations never share a binding."""
    return f"{key_id}:{hint}" if hint else ""


def _state_down() -> router_pb2.PickResponse:
    """A refused pick while the shared state is down (the edge: 503, Retry-After 1 s)."""
    return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_NO_ACCOUNT, message=_STATE_DOWN,
                                   retry_after=wire.duration(1.0))


def _query(request: router_pb2.PickRequest) -> PickQuery:
    if not request.platforms:
        raise InvalidPick("PickRequest.platforms must name at least one platform")
    if not request.model:
        raise InvalidPick("PickRequest.model must not be empty")
    return PickQuery(
        platforms=tuple(request.platforms),
        model=request.model,
        preferred=frozenset(request.platforms[: request.preferred]) if request.preferred else frozenset(),
        groups=tuple(request.groups),
        exclude=frozenset(request.exclude_account_ids),
        session_hint=request.session_hint,
    )


def _pick_answers(responses: list[router_pb2.PickResponse]) -> router_pb2.PickAnswers:
    return router_pb2.PickAnswers(responses=responses)
