"""Reports: outcomes to the router (which return leases), usage to auth through the spool, the lease heartbeat.

Everything here leaves the request path: outcomes and concurrency admissions ended in batches within
milliseconds, usage every second or `usage_batch_size` records. Every usage
record is on disk (`switchboard_edge.spool`) before it is in a batch, so a
killed edge loses none. The heartbeat keeps this edge's leases alive at the
router; the first one after start returns whatever a previous life held.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge import metrics
from switchboard_edge.call_streams import CallStream
from switchboard_edge.durations import seconds_of
from switchboard_edge.errors import ServiceUnavailable
from switchboard_edge.spool import Segment, UsageSpool

log = logging.getLogger(__name__)

_DEFAULT_HEARTBEAT = 10.0


def _drop(_: object) -> None:
    """An acknowledgement nobody waits for any more: nothing to give back."""


class Reports:
    def __init__(self, auth: auth_pb2_grpc.AuthServiceStub, router: router_pb2_grpc.RouterServiceStub, *,
                 rpc_timeout: float, usage_flush_seconds: float, usage_batch_size: int,
                 outcome_flush_seconds: float = 0.02, holder: str = "", spool: UsageSpool | None = None) -> None:
        self._auth = auth
        self._router = router
        self._timeout = rpc_timeout
        self.holder = holder
        self._spool = spool
        self._background: set[asyncio.Task[Any]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._held: set[str] = set()  # leases picked whose outcome is not handed over yet
        # Usage settled since the last flush, then sealed segments waiting for auth, oldest first.
        self._usage: list[auth_pb2.UsageRecord] = []
        self._segments: deque[Segment] = deque()
        self._closed = False
        self._usage_wakeup = asyncio.Event()
        self._flush_seconds = usage_flush_seconds
        self._batch_size = usage_batch_size
        self._usage_limit = 100_000
        self._usage_failing = False
        self._flusher: asyncio.Task[None] | None = None
        self._outcomes: list[router_pb2.ReportOutcomeRequest] = []
        self._admissions: list[auth_pb2.ReleaseAdmissionsRequest.Admission] = []
        self._outcome_window = outcome_flush_seconds
        # Both batches go over one long-lived stream each (unary for a service without it): at a few hundred
        # requests a second a unary call per window cost the edge and the service more than the request's pick.
        self._outcome_calls: CallStream[router_pb2.ReportOutcomesRequest, router_pb2.ReportOutcomeResponse] = (
            CallStream(router.ReportOutcomeStream, router.ReportOutcomes, timeout=rpc_timeout, orphan=_drop,
                       service="router", unavailable="router unavailable"))
        self._release_calls: CallStream[auth_pb2.ReleaseAdmissionsRequest, auth_pb2.ReleaseAdmissionsResponse] = (
            CallStream(auth.ReleaseAdmissionStream, auth.ReleaseAdmissions, timeout=rpc_timeout, orphan=_drop,
                       service="auth", unavailable="auth unavailable"))
        self._outcome_flush: asyncio.TimerHandle | None = None
        metrics.USAGE_BACKLOG.set_function(lambda: self.usage_waiting)

    def release(self, pick: router_pb2.PickResponse) -> None:
        """Returns a lease that was never used."""
        if pick.lease_id:
            self.report(router_pb2.ReportOutcomeRequest(
                lease_id=pick.lease_id, account_id=pick.account.id, outcome=router_pb2.OUTCOME_CANCELLED
            ))

    def release_admission(self, key_id: str, admission_id: str) -> None:
        """Ends a concurrency admission auth granted, with the request (off the request path: batched with
        the others ending within the outcome window; a lost call costs only the admission's expiry)."""
        if not admission_id or self._closed:
            return
        self._admissions.append(auth_pb2.ReleaseAdmissionsRequest.Admission(key_id=key_id, admission_id=admission_id))
        self._schedule_flush()

    async def _release_admissions(self, request: auth_pb2.ReleaseAdmissionsRequest) -> None:
        try:
            await self._release_calls.call(request)
        except ServiceUnavailable:
            log.warning("admission release failed (they expire by themselves)")

    def hold(self, lease_id: str) -> None:
        """A lease the router granted this edge, held until its outcome is handed over (`report`); the
        heartbeat lists them, so the router returns any whose outcome was lost on the way."""
        self._held.add(lease_id)

    def report(self, outcome: router_pb2.ReportOutcomeRequest) -> None:
        self._held.discard(outcome.lease_id)
        if self._closed:  # too late to send; the router returns the lease when this holder goes silent
            return
        self._outcomes.append(outcome)
        self._schedule_flush()

    def take_outcomes(self, at_most: int = 64) -> list[router_pb2.ReportOutcomeRequest]:
        """Up to `at_most` of the outcomes waiting for the window to end (a message stays small), handed over
        to leave now with a batch of picks; the rest leave with the next batch or at the window's end."""
        batch, self._outcomes = self._outcomes[:at_most], self._outcomes[at_most:]
        return batch

    def _schedule_flush(self) -> None:
        if self._outcome_flush is None:
            self._outcome_flush = asyncio.get_running_loop().call_later(self._outcome_window, self._send_outcomes)

    def _send_outcomes(self) -> None:
        """Sends the outcomes (to the router) and admission releases (to auth) of the window just ended."""
        self._outcome_flush = None
        batch, self._outcomes = self._outcomes, []
        if batch:
            self._spawn(self._report_outcomes(router_pb2.ReportOutcomesRequest(outcomes=batch)))
        admissions, self._admissions = self._admissions, []
        if admissions:
            self._spawn(self._release_admissions(auth_pb2.ReleaseAdmissionsRequest(admissions=admissions)))

    def store_credential(self, account_id: str, *, credential: router_pb2.Credential | None = None,
                         error: str = "") -> None:
        """Hands a refreshed credential (or why it could not be refreshed) to the router, off the request path."""
        request = router_pb2.StoreCredentialRequest(account_id=account_id, error=error)
        if credential is not None:
            request.credential.CopyFrom(credential)
        self._spawn(self._call(self._router.StoreCredential, request))

    async def current_credential(self, account_id: str) -> router_pb2.Credential | None:
        """The credential the router hands out for the account now (`GetCredential`); None when it cannot say."""
        try:
            reply = await self._router.GetCredential(router_pb2.GetCredentialRequest(account_id=account_id),
                                                     timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router: current credential of %s not read: %s", account_id, exc.code().name)
            return None
        return reply.credential

    def record_usage(self, record: auth_pb2.UsageRecord) -> None:
        if self._spool is not None:
            try:
                self._spool.append(record)
            except OSError as exc:
                log.error("usage spool write failed (record kept in memory only): %s", exc)
        self._usage.append(record)
        if len(self._usage) >= self._batch_size:
            self._usage_wakeup.set()

    async def _report_outcomes(self, request: router_pb2.ReportOutcomesRequest) -> None:
        try:
            await self._outcome_calls.call(request)
        except ServiceUnavailable:
            log.warning("router report failed: %d outcomes not delivered", len(request.outcomes))

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
                    router_pb2.HeartbeatRequest(holder=self.holder, release_held=release_held,
                                                leases=self._held, reconcile=True),
                    timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                log.warning("router heartbeat failed: %s", exc.code().name)
                await asyncio.sleep(min(interval, 1.0))
                continue
            if release_held and reply.released:
                log.info("router returned %d leases held by this edge before it restarted", reply.released)
            release_held = False
            ttl = seconds_of(reply.holder_ttl)
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
                    # Once per outage: the flush comes back every second.
                    log.log(logging.DEBUG if self._usage_failing else logging.WARNING,
                            "usage report failed (%d records kept): %s", self.usage_waiting, exc.code().name)
                    self._usage_failing = True
                    return
                if self._usage_failing:
                    self._usage_failing = False
                    log.info("usage reports accepted again (%d records still waiting)", self.usage_waiting)
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
        await asyncio.gather(self._outcome_calls.close(), self._release_calls.close())
        if self._spool is not None:
            self._spool.close()
