"""The edge's side of auth and router: admission, leases and usage reports.

Admission is the one serial step before the upstream call, so it is at most
one round of RPCs. Auth says how long an ALLOW may be reused (`reuse_for`);
while it holds, only Pick is called. Otherwise Authorize and Pick run
concurrently: Pick needs the key's identity and groups, which the edge
remembers (by key digest, never the key) from the key's last Authorize, and
it re-picks in the rare case they changed. Outcome and usage reports leave
the request path in batches: outcomes within milliseconds (they return
leases), usage every second.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge import metrics
from switchboard_edge.errors import (
    AuthenticationFailed,
    NoAvailableAccount,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    SwitchboardError,
)

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
    ) -> None:
        options = [("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)]
        self.auth_channel = grpc.aio.insecure_channel(auth_target, options=options)
        self.router_channel = grpc.aio.insecure_channel(router_target, options=options)
        self._auth = auth_pb2_grpc.AuthServiceStub(self.auth_channel)
        self._router = router_pb2_grpc.RouterServiceStub(self.router_channel)
        self._timeout = rpc_timeout
        # Key digest -> identity from its last Authorize; lets Pick run alongside Authorize.
        self._identities: dict[bytes, auth_pb2.KeyIdentity] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._usage: list[auth_pb2.UsageRecord] = []
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

    async def admit(
        self,
        credential: str,
        platforms: Sequence[str],
        model: str,
        client: auth_pb2.ClientMetadata,
        stream: bool,
    ) -> Admission:
        """Authorize and pick together. Raises the client-facing error on any refusal."""
        digest = hashlib.sha256(credential.encode()).digest()
        platforms = tuple(platforms)
        reused = self._decisions.get((digest, platforms, model))
        if reused is not None and reused[0] > time.monotonic():
            auth = reused[1]
            pick = await self.pick(auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id)
            if pick.status != router_pb2.PICK_STATUS_OK:
                raise no_account(pick)
            return Admission(auth.identity, tuple(auth.allowed_platforms), pick)
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
            auth, pick = await asyncio.gather(
                self._authorize(request),
                self.pick(platforms, model, known, client.session_id, client.request_id),
            )
            if auth.decision != auth_pb2.DECISION_ALLOW:
                self.release(pick)
                raise denial(auth)
            stale = auth.identity.key_id != known.key_id or auth.identity.groups != known.groups
            if stale:
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
        if pick.status != router_pb2.PICK_STATUS_OK:
            raise no_account(pick)
        return Admission(auth.identity, tuple(auth.allowed_platforms), pick)

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
        request = router_pb2.PickRequest(
            platforms=platforms,
            model=model,
            key_id=identity.key_id,
            groups=identity.groups,
            session_hint=session,
            exclude_account_ids=exclude,
            request_id=request_id,
        )
        try:
            return await self._router.Pick(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot choose an upstream right now; try again shortly.") from None

    def _remember(self, digest: bytes, identity: auth_pb2.KeyIdentity) -> None:
        if len(self._identities) >= _IDENTITY_CACHE_SIZE:
            self._identities.clear()
        self._identities[digest] = identity

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
        self._outcomes.append(outcome)
        if self._outcome_flush is None:
            self._outcome_flush = asyncio.get_running_loop().call_later(self._outcome_window, self._send_outcomes)

    def _send_outcomes(self) -> None:
        self._outcome_flush = None
        batch, self._outcomes = self._outcomes, []
        if batch:
            self._spawn(self._call(self._router.ReportOutcomes, router_pb2.ReportOutcomesRequest(outcomes=batch)))

    def record_usage(self, record: auth_pb2.UsageRecord) -> None:
        if len(self._usage) >= self._usage_limit:
            self._usage.pop(0)
            metrics.USAGE_DROPPED.inc()
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

    # -- usage batching --------------------------------------------------------

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._usage_wakeup.wait(), self._flush_seconds)
            except TimeoutError:
                pass
            self._usage_wakeup.clear()
            await self.flush_usage()

    async def flush_usage(self) -> None:
        while self._usage:
            batch = self._usage[: self._batch_size]
            try:
                await self._auth.RecordUsage(auth_pb2.RecordUsageRequest(records=batch), timeout=5 * self._timeout)
            except grpc.aio.AioRpcError as exc:
                log.warning("usage report failed (%d records kept): %s", len(self._usage), exc.code().name)
                return
            del self._usage[: len(batch)]

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        if self._outcome_flush is not None:
            self._outcome_flush.cancel()
        self._send_outcomes()
        if self._background:
            await asyncio.wait(self._background, timeout=self._timeout)
        await self.flush_usage()
        await self.auth_channel.close()
        await self.router_channel.close()


def no_account(pick: router_pb2.PickResponse) -> NoAvailableAccount:
    retry_after = pick.retry_after.ToTimedelta().total_seconds() if pick.HasField("retry_after") else None
    return NoAvailableAccount(pick.message or "No upstream account is available for this model.",
                              retry_after=retry_after)
