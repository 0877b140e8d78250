"""Picks over one long-lived `PickStream` to the router, with unary `Pick` as the fallback.

A round trip on an open stream costs about a third of a unary call here (latency and CPU at both ends; see
the README's edge ↔ router section), and the edge makes one per request. Requests carry a `call_id`; the
router answers in the order it is ready, and a reader task hands each answer to the pick waiting for it.

- The stream opens on the first pick and again on the first pick after it ends (a router restart): the
  picks in flight when it broke fail as a unary call to a vanished router would (ServiceUnavailable).
- A router without `PickStream` (an older one, mid-upgrade) ends the stream before answering anything: the
  picks that were waiting are sent as unary `Pick`s, and after UNIMPLEMENTED (or three refusals in a row: grpc
  reports INTERNAL when the refusal races the first write) this edge uses unary `Pick` for good.
- An answer nobody waits for any more (its pick timed out) still carries a lease: it is returned.
"""

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable

import grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.errors import ServiceUnavailable

log = logging.getLogger(__name__)

_UNAVAILABLE = "The gateway cannot choose an upstream right now; try again shortly."
# This many streams in a row refused (INTERNAL) before any answer, and picks go unary for good (see `pick`).
_UNANSWERED_LIMIT = 3


class _StreamGone(Exception):
    """The stream ended before this pick's answer. `answered`: it had answered some pick before (so the
    router speaks PickStream, and this pick may have been chosen there: its lease comes back by itself)."""

    def __init__(self, answered: bool) -> None:
        self.answered = answered


class _Expired(Exception):
    """No answer within the timeout."""


def _expire(answer: "asyncio.Future[router_pb2.PickResponse]") -> None:
    if not answer.done():
        answer.set_exception(_Expired())


class Picker:
    """`pick(request)` for the whole edge, over one stream."""

    def __init__(self, router: router_pb2_grpc.RouterServiceStub, *, timeout: float,
                 release: Callable[[router_pb2.PickResponse], None]) -> None:
        self._router = router
        self._timeout = timeout
        self._release = release
        self._unary = False
        self._outbox: asyncio.Queue[router_pb2.PickRequest | None] | None = None
        self._pending: dict[int, asyncio.Future[router_pb2.PickResponse]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._unanswered_streams = 0  # streams in a row refused before answering anything

    async def pick(self, request: router_pb2.PickRequest) -> router_pb2.PickResponse:
        """The router's answer; raises `ServiceUnavailable` when the router cannot be asked."""
        if not self._unary:
            try:
                return await self._over_stream(request)
            except _StreamGone as gone:
                if gone.answered:
                    raise ServiceUnavailable(_UNAVAILABLE) from None
                # A stream that never answered: a router without PickStream (grpc reports UNIMPLEMENTED, or, when
                # the refusal races the first write, INTERNAL), or one that is down. Unary finds out which.
        try:
            return await self._router.Pick(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router unavailable: %s", exc.code().name)
            raise ServiceUnavailable(_UNAVAILABLE) from None

    async def close(self) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _over_stream(self, request: router_pb2.PickRequest) -> router_pb2.PickResponse:
        outbox = self._open()
        call_id = next(self._ids)
        request.call_id = call_id
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[router_pb2.PickResponse] = loop.create_future()
        self._pending[call_id] = answer
        outbox.put_nowait(request)
        # A timer, not asyncio.timeout/shield: this is every request's path. A caller that gives up (timeout,
        # or cancelled) leaves `answer` done, and the reader returns the lease of an answer that still comes.
        timer = loop.call_later(self._timeout, _expire, answer)
        try:
            response = await answer
        except _Expired:
            log.warning("router unavailable: no answer to a pick within %.1f s", self._timeout)
            raise ServiceUnavailable(_UNAVAILABLE) from None
        finally:
            timer.cancel()
        if response.status == router_pb2.PICK_STATUS_INVALID:
            log.error("router refused a pick: %s", response.message)
            raise ServiceUnavailable(_UNAVAILABLE)
        return response

    def _open(self) -> "asyncio.Queue[router_pb2.PickRequest | None]":
        if self._outbox is not None:
            return self._outbox
        outbox: asyncio.Queue[router_pb2.PickRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[router_pb2.PickRequest]:
            while (request := await outbox.get()) is not None:
                yield request

        call = self._router.PickStream(requests())
        self._outbox = outbox
        self._reader = asyncio.get_running_loop().create_task(self._read(call, outbox))
        return outbox

    async def _read(self, call: grpc.aio.StreamStreamCall, outbox: "asyncio.Queue[router_pb2.PickRequest | None]"
                    ) -> None:
        answered = False
        try:
            async for response in call:
                answered = True
                self._unanswered_streams = 0
                answer = self._pending.pop(response.call_id, None)
                if answer is None or answer.done():
                    if response.lease_id:
                        self._release(response)
                    continue
                answer.set_result(response)
        except grpc.aio.AioRpcError as exc:
            refused = exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL)
            if refused and not answered:  # not UNAVAILABLE: a router that is down says nothing of its methods
                self._unanswered_streams += 1
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED or self._unanswered_streams >= _UNANSWERED_LIMIT:
                log.info("the router has no PickStream (%s): picking with unary calls", exc.code().name)
                self._unary = True
            else:
                log.warning("router pick stream ended: %s", exc.code().name)
        finally:
            if self._outbox is outbox:
                self._outbox = None
            outbox.put_nowait(None)
            call.cancel()
            pending, self._pending = self._pending, {}
            for answer in pending.values():
                if not answer.done():
                    answer.set_exception(_StreamGone(answered))
