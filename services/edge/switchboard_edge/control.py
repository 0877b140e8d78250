"""The edge's side of auth and router: authentication, admission, leases and usage reports.

A key the edge has not seen valid in the last `_IDENTITY_TTL` seconds is
authenticated (`Authenticate`, key only) before the request body is read.
Admission is then at most one round of RPCs. Auth says how long an ALLOW may
be reused (`reuse_for`); while it holds, only Pick is called. Otherwise
Authorize and Pick run concurrently: Pick needs the key's identity and groups,
which the edge remembers (by key digest, never the key), and it re-picks in
the rare case they changed.

Leases: every Pick names this edge as the lease holder; a heartbeat keeps the
holder alive at the router, and the first one after start returns whatever a
previous life of this edge held. A lease whose Pick answered after its
request was given up (the client left, auth failed) is returned when it lands.

Outcome and usage reports leave the request path in batches: outcomes within
milliseconds (they return leases), usage every second, through the spool
(`switchboard_edge.spool`) so a killed edge loses none.
"""

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge import metrics
from switchboard_edge.errors import (
    AuthenticationFailed,
    ModelNotFound,
    NoAvailableAccount,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    SwitchboardError,
)
from switchboard_edge.spool import Segment, UsageSpool

log = logging.getLogger(__name__)

_DENIALS: dict[int, type[SwitchboardError]] = {
    auth_pb2.REASON_KEY_MISSING: AuthenticationFailed,
    auth_pb2.REASON_KEY_INVALID: AuthenticationFailed,
    auth_pb2.REASON_KEY_DISABLED: AuthenticationFailed,
    auth_pb2.REASON_KEY_EXPIRED: AuthenticationFailed,
    auth_pb2.REASON_PLATFORM_NOT_ALLOWED: PermissionDenied,
    auth_pb2.REASON_MODEL_NOT_ALLOWED: PermissionDenied,
    auth_pb2.REASON_RATE_LIMITED: RateLimited,
    auth_pb2.REASON_CONCURRENCY_LIMITED: RateLimited,
    auth_pb2.REASON_QUOTA_EXCEEDED: RateLimited,
}
_IDENTITY_CACHE_SIZE = 10_000
# How long a key seen valid may send bodies without being authenticated again.
_IDENTITY_TTL = 30.0
_DEFAULT_HEARTBEAT = 10.0


def denial(response: auth_pb2.AuthorizeResponse) -> SwitchboardError:
    """The client-facing error for a DENY decision (401 / 403 / 429)."""
    error_class = _DENIALS.get(response.reason, AuthenticationFailed)
    retry_after = response.retry_after.ToTimedelta().total_seconds() if response.HasField("retry_after") else None
    return error_class(response.message or "Request not authorized.", retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Admission:
    identity: auth_pb2.KeyIdentity
    # The requested platforms this key may use; failover stays within them.
    platforms: tuple[str, ...]
    pick: router_pb2.PickResponse


class ControlPlane:
    """gRPC clients for auth and router with deadlines, plus the usage batcher."""

    def __init__(
        self,
        auth_target: str,
        router_target: str,
        *,
        rpc_timeout: float,
        usage_flush_seconds: float,
        usage_batch_size: int,
        outcome_flush_seconds: float = 0.005,
        holder: str = "",
        spool: UsageSpool | None = None,
    ) -> None:
        options = [("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)]
        self.auth_channel = grpc.aio.insecure_channel(auth_target, options=options)
        self.router_channel = grpc.aio.insecure_channel(router_target, options=options)
        self._auth = auth_pb2_grpc.AuthServiceStub(self.auth_channel)
        self._router = router_pb2_grpc.RouterServiceStub(self.router_channel)
        self._timeout = rpc_timeout
        # Key digest -> (monotonic expiry, identity) from its last Authenticate/Authorize; lets Pick run
        # alongside Authorize, and a known key send its body without another round trip.
        self._identities: dict[bytes, tuple[float, auth_pb2.KeyIdentity]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.holder = holder
        self._spool = spool
        self._heartbeat: asyncio.Task[None] | None = None
        # Usage settled since the last flush, then sealed segments waiting for auth, oldest first.
        self._usage: list[auth_pb2.UsageRecord] = []
        self._segments: deque[Segment] = deque()
        self._closed = False
        self._usage_wakeup = asyncio.Event()
        self._flush_seconds = usage_flush_seconds
        self._batch_size = usage_batch_size
        self._usage_limit = 100_000
        self._flusher: asyncio.Task[None] | None = None
        # (key digest, platforms, model) -> (monotonic expiry, ALLOW response) while auth lets us reuse it.
        self._decisions: dict[tuple[bytes, tuple[str, ...], str], tuple[float, auth_pb2.AuthorizeResponse]] = {}
        self._outcomes: list[router_pb2.ReportOutcomeRequest] = []
        self._outcome_window = outcome_flush_seconds
        self._outcome_flush: asyncio.TimerHandle | None = None

    # -- admission ---------------------------------------------------------

    async def authenticate(self, credential: str, client: auth_pb2.ClientMetadata) -> None:
        """Refuses an invalid key (401) before its body is read; free for a key seen valid recently."""
        digest = hashlib.sha256(credential.encode()).digest()
        known = self._identities.get(digest)
        if known is not None and known[0] > time.monotonic():
            return
        try:
            reply = await self._auth.Authenticate(
                auth_pb2.AuthenticateRequest(credential=credential, client=client), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("auth unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot check keys right now; try again shortly.") from None
        if reply.decision != auth_pb2.DECISION_ALLOW:
            raise denial(reply)
        self._remember(digest, reply.identity)

    async def key(self, credential: str, client: auth_pb2.ClientMetadata) -> auth_pb2.AuthorizeResponse:
        """The key's identity and permissions (for listings: not on the request hot path, never cached)."""
        try:
            reply = await self._auth.Authenticate(
                auth_pb2.AuthenticateRequest(credential=credential, client=client), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("auth unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot check keys right now; try again shortly.") from None
        if reply.decision != auth_pb2.DECISION_ALLOW:
            raise denial(reply)
        return reply

    async def accounts(self) -> list[router_pb2.AccountStatus]:
        """The router's account pool, without credentials."""
        try:
            reply = await self._router.ListAccounts(router_pb2.ListAccountsRequest(), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot read its accounts right now; try again shortly.") from None
        return list(reply.accounts)

    async def admit(
        self,
        credential: str,
        platforms: Sequence[str],
        model: str,
        client: auth_pb2.ClientMetadata,
        stream: bool,
    ) -> Admission:
        """Authorize and pick together. Raises the client-facing error on any refusal; never leaks a lease."""
        digest = hashlib.sha256(credential.encode()).digest()
        platforms = tuple(platforms)
        reused = self._decisions.get((digest, platforms, model))
        if reused is not None and reused[0] > time.monotonic():
            auth = reused[1]
            pick = await self.pick(auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id)
            return Admission(auth.identity, tuple(auth.allowed_platforms), checked(pick))
        request = auth_pb2.AuthorizeRequest(
            credential=credential, platforms=platforms, model=model, client=client, stream=stream
        )
        known = self._identities.get(digest)
        if known is None:
            auth = await self._authorize(request)
            if auth.decision != auth_pb2.DECISION_ALLOW:
                raise denial(auth)
            self._remember(digest, auth.identity)
            pick = await self.pick(auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id)
        else:
            auth, pick = await self._authorize_and_pick(request, known[1])
            stale = auth.identity.key_id != known[1].key_id or auth.identity.groups != known[1].groups
            self._remember(digest, auth.identity)
            off_limits = pick.status == router_pb2.PICK_STATUS_OK and (
                pick.account.platform not in auth.allowed_platforms
            )
            if stale or off_limits:
                self.release(pick)
                pick = await self.pick(
                    auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id
                )
        self._reuse(digest, platforms, model, auth)
        return Admission(auth.identity, tuple(auth.allowed_platforms), checked(pick))

    async def _authorize_and_pick(
        self, request: auth_pb2.AuthorizeRequest, identity: auth_pb2.KeyIdentity
    ) -> tuple[auth_pb2.AuthorizeResponse, router_pb2.PickResponse]:
        """Both calls at once; if either fails (or the caller gives up), a lease already taken is returned."""
        loop = asyncio.get_running_loop()
        client = request.client
        authorizing = loop.create_task(self._authorize(request))
        picking = loop.create_task(
            self._pick(request.platforms, request.model, identity, client.session_id, client.request_id))
        try:
            await asyncio.wait((authorizing, picking))
        except asyncio.CancelledError:
            authorizing.cancel()
            picking.add_done_callback(self._release_done)
            raise
        if authorizing.exception() is not None or authorizing.result().decision != auth_pb2.DECISION_ALLOW:
            self._release_done(picking)
            error = authorizing.exception()
            if error is not None:
                raise error
            raise denial(authorizing.result())
        return authorizing.result(), picking.result()

    def _release_done(self, picking: "asyncio.Task[router_pb2.PickResponse]") -> None:
        if not picking.cancelled() and picking.exception() is None:
            self.release(picking.result())

    def _reuse(self, digest: bytes, platforms: tuple[str, ...], model: str,
               auth: auth_pb2.AuthorizeResponse) -> None:
        if not auth.HasField("reuse_for"):
            return
        seconds = auth.reuse_for.ToTimedelta().total_seconds()
        if seconds <= 0:
            return
        if len(self._decisions) >= _IDENTITY_CACHE_SIZE:
            self._decisions.clear()
        self._decisions[(digest, platforms, model)] = (time.monotonic() + seconds, auth)

    async def pick(
        self,
        platforms: Sequence[str],
        model: str,
        identity: auth_pb2.KeyIdentity,
        session: str,
        request_id: str,
        exclude: Sequence[str] = (),
    ) -> router_pb2.PickResponse:
        """A Pick whose lease is returned when it lands if the caller gave up waiting for it."""
        picking = asyncio.get_running_loop().create_task(
            self._pick(platforms, model, identity, session, request_id, exclude))
        try:
            return await asyncio.shield(picking)
        except asyncio.CancelledError:
            picking.add_done_callback(self._release_done)
            raise

    async def _pick(
        self,
        platforms: Sequence[str],
        model: str,
        identity: auth_pb2.KeyIdentity,
        session: str,
        request_id: str,
        exclude: Sequence[str] = (),
    ) -> router_pb2.PickResponse:
        request = router_pb2.PickRequest(
            platforms=platforms,
            model=model,
            key_id=identity.key_id,
            groups=identity.groups,
            session_hint=session,
            exclude_account_ids=exclude,
            request_id=request_id,
            holder=self.holder,
        )
        try:
            return await self._router.Pick(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot choose an upstream right now; try again shortly.") from None

    def _remember(self, digest: bytes, identity: auth_pb2.KeyIdentity) -> None:
        if len(self._identities) >= _IDENTITY_CACHE_SIZE:
            self._identities.clear()
        self._identities[digest] = (time.monotonic() + _IDENTITY_TTL, identity)

    async def _authorize(self, request: auth_pb2.AuthorizeRequest) -> auth_pb2.AuthorizeResponse:
        try:
            return await self._auth.Authorize(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("auth unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot check keys right now; try again shortly.") from None

    # -- after the upstream call ---------------------------------------------

    def release(self, pick: router_pb2.PickResponse) -> None:
        """Returns a lease that was never used."""
        if pick.lease_id:
            self.report(router_pb2.ReportOutcomeRequest(
                lease_id=pick.lease_id, account_id=pick.account.id, outcome=router_pb2.OUTCOME_CANCELLED
            ))

    def report(self, outcome: router_pb2.ReportOutcomeRequest) -> None:
        if self._closed:  # too late to send; the router returns the lease when this holder goes silent
            return
        self._outcomes.append(outcome)
        if self._outcome_flush is None:
            self._outcome_flush = asyncio.get_running_loop().call_later(self._outcome_window, self._send_outcomes)

    def _send_outcomes(self) -> None:
        self._outcome_flush = None
        batch, self._outcomes = self._outcomes, []
        if batch:
            self._spawn(self._call(self._router.ReportOutcomes, router_pb2.ReportOutcomesRequest(outcomes=batch)))

    def store_credential(self, account_id: str, *, credential: router_pb2.Credential | None = None,
                         error: str = "") -> None:
        """Hands a refreshed credential (or why it could not be refreshed) to the router, off the request path."""
        request = router_pb2.StoreCredentialRequest(account_id=account_id, error=error)
        if credential is not None:
            request.credential.CopyFrom(credential)
        self._spawn(self._call(self._router.StoreCredential, request))

    def record_usage(self, record: auth_pb2.UsageRecord) -> None:
        if self._spool is not None:
            try:
                self._spool.append(record)
            except OSError as exc:
                log.error("usage spool write failed (record kept in memory only): %s", exc)
        self._usage.append(record)
        if len(self._usage) >= self._batch_size:
            self._usage_wakeup.set()

    async def _call(self, method: grpc.aio.UnaryUnaryMultiCallable, request: object) -> None:
        try:
            await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router report failed: %s", exc.code().name)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- background: heartbeat and usage batching ---------------------------

    def start(self) -> None:
        """Replays what a previous life left in the spool, then starts the heartbeat and the usage flusher."""
        if self._spool is not None:
            left = self._spool.open()
            if left:
                log.info("usage spool: %d records left by the last run will be sent again",
                         sum(len(segment.records) for segment in left))
            self._segments.extend(left)
            if left:
                self._usage_wakeup.set()  # send them now, not after the first flush interval
        loop = asyncio.get_running_loop()
        self._flusher = loop.create_task(self._flush_forever())
        if self.holder:
            self._heartbeat = loop.create_task(self._heartbeat_forever())

    async def _heartbeat_forever(self) -> None:
        """Keeps this edge's leases alive; the first beat returns leases held by its previous life."""
        release_held = True
        interval = _DEFAULT_HEARTBEAT
        while True:
            try:
                reply = await self._router.Heartbeat(
                    router_pb2.HeartbeatRequest(holder=self.holder, release_held=release_held),
                    timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                log.warning("router heartbeat failed: %s", exc.code().name)
                await asyncio.sleep(min(interval, 1.0))
                continue
            if release_held and reply.released:
                log.info("router returned %d leases held by this edge before it restarted", reply.released)
            release_held = False
            ttl = reply.holder_ttl.ToTimedelta().total_seconds() if reply.HasField("holder_ttl") else 0.0
            interval = max(0.2, ttl / 3) if ttl > 0 else _DEFAULT_HEARTBEAT
            await asyncio.sleep(interval)

    async def _flush_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._usage_wakeup.wait(), self._flush_seconds)
            except TimeoutError:
                pass
            self._usage_wakeup.clear()
            await self.flush_usage()

    async def flush_usage(self) -> None:
        """Seals what settled since the last flush and sends every waiting segment, oldest first.

        A segment's file is deleted only when auth has all its records; a failed call keeps it for
        the next flush (or the next start), and auth ignores records it already has.
        """
        if self._usage:
            path = self._spool.seal() if self._spool is not None else None
            self._segments.append(Segment(path, self._usage))
            self._usage = []
            self._bound_memory()
        while self._segments:
            segment = self._segments[0]
            while segment.records:
                batch = segment.records[: self._batch_size]
                try:
                    await self._auth.RecordUsage(auth_pb2.RecordUsageRequest(records=batch),
                                                 timeout=5 * self._timeout)
                except grpc.aio.AioRpcError as exc:
                    log.warning("usage report failed (%d records kept): %s", self.usage_waiting, exc.code().name)
                    return
                del segment.records[: len(batch)]
            if segment.path is not None:
                segment.path.unlink(missing_ok=True)
            self._segments.popleft()

    @property
    def usage_waiting(self) -> int:
        return len(self._usage) + sum(len(segment.records) for segment in self._segments)

    def _bound_memory(self) -> None:
        """Past the limit, the oldest segments leave memory; their files stay and are sent on the next start."""
        while len(self._segments) > 1 and self.usage_waiting > self._usage_limit:
            dropped = self._segments.popleft()
            if dropped.path is None:
                metrics.USAGE_DROPPED.inc(len(dropped.records))

    async def close(self) -> None:
        """Stops the background work and hands over every outcome and usage record still held."""
        self._closed = True
        for task in (self._flusher, self._heartbeat):
            if task is not None:
                task.cancel()
        if self._outcome_flush is not None:
            self._outcome_flush.cancel()
        self._send_outcomes()
        if self._background:
            await asyncio.wait(self._background, timeout=self._timeout)
        await self.flush_usage()
        if self._spool is not None:
            self._spool.close()
        await self.auth_channel.close()
        await self.router_channel.close()


def checked(pick: router_pb2.PickResponse) -> router_pb2.PickResponse:
    """The pick if it found an account; else the client-facing error: 404 for a model nobody serves, else 503."""
    if pick.status == router_pb2.PICK_STATUS_OK:
        return pick
    if pick.status == router_pb2.PICK_STATUS_NO_MODEL:
        return _raise(ModelNotFound(pick.message or "No account serves this model."))
    retry_after = pick.retry_after.ToTimedelta().total_seconds() if pick.HasField("retry_after") else None
    return _raise(NoAvailableAccount(pick.message or "No upstream account is available for this model.",
                                     retry_after=retry_after))


def _raise(error: SwitchboardError) -> router_pb2.PickResponse:
    raise error
