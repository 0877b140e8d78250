"""Picks over one long-lived `PickBatches` stream to the router, with unary `Pick` as the fallback
(`switchboard_edge.call_streams`). An answer nobody waits for any more still carries a lease: it is returned."""

import logging
from collections.abc import Callable, Iterable

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.call_streams import Batches, CallStream
from switchboard_edge.errors import ServiceUnavailable

log = logging.getLogger(__name__)

_UNAVAILABLE = "The gateway cannot choose an upstream right now; try again shortly."


class Picker:
    """`pick(request)` for the whole edge, over one stream."""

    def __init__(self, router: router_pb2_grpc.RouterServiceStub, *, timeout: float,
                 release: Callable[[router_pb2.PickResponse], None],
                 outcomes: Callable[[], list[router_pb2.ReportOutcomeRequest]] = list) -> None:
        """`release` returns the lease of an answer nobody waits for; `outcomes` hands over the outcomes waiting
        to be reported, which travel with the next batch of picks (router.proto, PickBatch.outcomes)."""
        def orphan(response: router_pb2.PickResponse) -> None:
            if response.lease_id:
                release(response)

        self._calls: CallStream[router_pb2.PickRequest, router_pb2.PickResponse] = CallStream(
            router.PickBatches, router.Pick, timeout=timeout, orphan=orphan, service="router",
            unavailable=_UNAVAILABLE,
            batches=Batches(lambda requests: router_pb2.PickBatch(requests=requests, outcomes=outcomes()), _unpack))

    async def pick(self, request: router_pb2.PickRequest) -> router_pb2.PickResponse:
        """The router's answer; raises `ServiceUnavailable` when the router cannot be asked."""
        response = await self._calls.call(request)
        if response.status == router_pb2.PICK_STATUS_INVALID:
            log.error("router refused a pick: %s", response.message)
            raise ServiceUnavailable(_UNAVAILABLE)
        return response

    async def close(self) -> None:
        await self._calls.close()


def _unpack(answers: router_pb2.PickAnswers) -> Iterable[router_pb2.PickResponse]:
    return answers.responses
