"""Calls over one long-lived bidirectional stream per edge, with the unary method as the fallback.

A round trip on an open stream costs about a third of a unary call here (latency and CPU at both ends; see
the README's edge ↔ router section), and the edge asks auth and the router once per request. Requests carry a
`call_id`; the service answers in the order it is ready, and a reader task hands each answer to the call
waiting for it.

- The stream opens on the first call and again on the first call after it ends (a service restart): the
  calls in flight when it broke fail as a unary call to a vanished service would (ServiceUnavailable).
- A service without the stream method (an older one, mid-upgrade) ends the stream before answering anything:
  the calls that were waiting are sent as unary calls, and after UNIMPLEMENTED (or three refusals in a row:
  grpc reports INTERNAL when the refusal races the first write) this edge uses the unary method for good.
- An answer nobody waits for any more (its call timed out) may carry something granted (a lease, an
  admission): it goes to `orphan`, which gives it back.
- `Batches` (Authorize, Pick): each stream message carries every request waiting when the stream could take
  one, each answer message the answers the service had ready together. Nothing waits to fill a batch: one
  request alone goes at once; under load, requests queue behind the message being written and leave together.
  A stream message costs both ends about as much whatever it holds (grpc.aio's write, its poller thread's
  wake-up), and the calls are the edge's and the services' largest cost per request after HTTP itself.
"""

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import grpc

from switchboard_edge.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# This many streams in a row refused (INTERNAL) before any answer, and calls go unary for good (see `call`).
_UNANSWERED_LIMIT = 3
# At most this many requests, and about this many bytes, in one batch message (gRPC refuses a message over
# 4 MiB, and with it ends the stream every other call waits on). A request bigger than MESSAGE_BYTES on its
# own goes as a unary call: if the service refuses it, it fails alone.
BATCH_LIMIT = 256
MESSAGE_BYTES = 1 << 20


class _Call(Protocol):
    call_id: int

    def ByteSize(self) -> int: ...  # noqa: N802 - protobuf's name


Request = TypeVar("Request", bound=_Call)
Answer = TypeVar("Answer", bound=_Call)


@dataclass(frozen=True)
class Batches(Generic[Request, Answer]):
    """How a batched stream method wraps requests (`pack`) and unwraps answers (`unpack`)."""

    pack: Callable[[list[Request]], Any]
    unpack: Callable[[Any], Iterable[Answer]]


class _StreamGone(Exception):
    """The stream ended before this call's answer. `answered`: it had answered some call before (so the
    service speaks the stream method, and this call may have been answered there: what it granted comes back
    by itself)."""

    def __init__(self, answered: bool) -> None:
        self.answered = answered


class _Expired(Exception):
    """No answer within the timeout."""


def _expire(answer: "asyncio.Future[Any]") -> None:
    if not answer.done():
        answer.set_exception(_Expired())


class CallStream(Generic[Request, Answer]):
    """`call(request)` for the whole edge, over one stream.

    `open_stream` starts the stream method with a message iterator (of requests, or of what `batches` packs),
    `unary` is the unary method (called with `timeout=`), `orphan` takes answers nobody waits for, `service` and
    `unavailable` word the logs and the client's 503.
    """

    def __init__(self, open_stream: Callable[[AsyncIterator[Any]], Any],
                 unary: Callable[..., Awaitable[Answer]], *, timeout: float, orphan: Callable[[Answer], None],
                 service: str, unavailable: str, batches: Batches[Request, Answer] | None = None) -> None:
        self._open_stream = open_stream
        self._batches = batches
        self._unary_call = unary
        self._timeout = timeout
        self._orphan = orphan
        self._service = service
        self._unavailable = unavailable
        self._unary = False
        self._outbox: asyncio.Queue[tuple[Request, int] | None] | None = None  # (request, its size)
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._unanswered_streams = 0  # streams in a row refused before answering anything

    async def call(self, request: Request) -> Answer:
        """The service's answer; raises `ServiceUnavailable` when it cannot be asked."""
        size = request.ByteSize()
        if not self._unary and size <= MESSAGE_BYTES:
            try:
                return await self._over_stream(request, size)
            except _StreamGone as gone:
                if gone.answered:
                    raise ServiceUnavailable(self._unavailable) from None
                # A stream that never answered: a service without the stream method (grpc reports UNIMPLEMENTED,
                # or, when the refusal races the first write, INTERNAL), or one that is down. Unary finds out.
        try:
            return await self._unary_call(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("%s unavailable: %s", self._service, exc.code().name)
            raise ServiceUnavailable(self._unavailable) from None

    async def close(self) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _over_stream(self, request: Request, size: int) -> Answer:
        outbox = self._open()
        call_id = next(self._ids)
        request.call_id = call_id
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        self._pending[call_id] = answer
        outbox.put_nowait((request, size))
        # A timer, not asyncio.timeout/shield: this is every request's path. A caller that gives up (timeout,
        # or cancelled) leaves `answer` done, and the reader hands an answer that still comes to `orphan`.
        timer = loop.call_later(self._timeout, _expire, answer)
        try:
            return await answer
        except _Expired:
            log.warning("%s unavailable: no answer within %.1f s", self._service, self._timeout)
            raise ServiceUnavailable(self._unavailable) from None
        finally:
            timer.cancel()

    def _open(self) -> "asyncio.Queue[tuple[Request, int] | None]":
        if self._outbox is not None:
            return self._outbox
        outbox: asyncio.Queue[tuple[Request, int] | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[Request]:
            while (sized := await outbox.get()) is not None:
                yield sized[0]

        async def batches(pack: Callable[[list[Request]], Any]) -> AsyncIterator[Any]:
            carried: tuple[Request, int] | None = None  # taken from the outbox, too big for the batch before
            while (sized := carried or await outbox.get()) is not None:
                carried = None
                batch, size = [sized[0]], sized[1]
                while len(batch) < BATCH_LIMIT and not outbox.empty():
                    waiting = outbox.get_nowait()
                    if waiting is None:  # closing: what was taken still goes
                        outbox.put_nowait(None)
                        break
                    size += waiting[1]
                    if size > MESSAGE_BYTES:
                        carried = waiting
                        break
                    batch.append(waiting[0])
                yield pack(batch)

        call = self._open_stream(requests() if self._batches is None else batches(self._batches.pack))
        self._outbox = outbox
        self._reader = asyncio.get_running_loop().create_task(self._read(call, outbox))
        return outbox

    async def _read(self, call: grpc.aio.StreamStreamCall,
                    outbox: "asyncio.Queue[tuple[Request, int] | None]") -> None:
        answered = False
        try:
            unpack = None if self._batches is None else self._batches.unpack
            async for message in call:
                answered = True
                self._unanswered_streams = 0
                for response in (message,) if unpack is None else unpack(message):
                    answer = self._pending.pop(response.call_id, None)
                    if answer is None or answer.done():
                        self._orphan(response)
                        continue
                    answer.set_result(response)
        except grpc.aio.AioRpcError as exc:
            refused = exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL)
            if refused and not answered:  # not UNAVAILABLE: a service that is down says nothing of its methods
                self._unanswered_streams += 1
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED or self._unanswered_streams >= _UNANSWERED_LIMIT:
                log.info("the %s has no call stream (%s): unary calls from now on", self._service,
                         exc.code().name)
                self._unary = True
            else:
                log.warning("%s call stream ended: %s", self._service, exc.code().name)
        finally:
            if self._outbox is outbox:
                self._outbox = None
            outbox.put_nowait(None)
            call.cancel()
            pending, self._pending = self._pending, {}
            for answer in pending.values():
                if not answer.done():
                    answer.set_exception(_StreamGone(answered))
