"""PickBatches: many picks on one stream, in batches, each answered with its call id, as unary Pick would answer
it."""

import asyncio
from collections.abc import AsyncIterator

from switchboard.router.v1 import router_pb2
from switchboard_router.state import MemoryState

from .router_testing import Router, account


async def requests_from(queue: "asyncio.Queue[router_pb2.PickRequest | None]") -> AsyncIterator[router_pb2.PickBatch]:
    while (request := await queue.get()) is not None:
        yield router_pb2.PickBatch(requests=[request])


def ask(call_id: int, **fields: object) -> router_pb2.PickRequest:
    return router_pb2.PickRequest(platforms=["claude-console"], model="claude-sonnet-4", call_id=call_id,
                                  holder="edge:1", **fields)


async def test_picks_on_one_stream_are_answered_by_call_id_and_hold_their_slots(router: Router) -> None:
    router.set_accounts([account("one", max_concurrency=2), account("two", max_concurrency=1)])
    batch = router_pb2.PickBatch(requests=[
        *(ask(call_id) for call_id in (11, 12, 13, 14)),
        router_pb2.PickRequest(call_id=15),  # breaks the contract: no platforms
        ask(16, exclude_account_ids=["claude-console/one"])])
    messages = [message async for message in router.stub.PickBatches(iter([batch]))]
    answers = {answer.call_id: answer for message in messages for answer in message.responses}
    assert sorted(answers) == [11, 12, 13, 14, 15, 16]
    assert len(messages) < len(answers)  # answers ready together travel together
    served = [answers[i].account.name for i in (11, 12, 13, 14)]
    assert sorted(served[:3]) == ["one", "one", "two"] and answers[14].status == router_pb2.PICK_STATUS_NO_ACCOUNT
    assert answers[15].status == router_pb2.PICK_STATUS_INVALID and "platforms" in answers[15].message
    assert answers[16].status == router_pb2.PICK_STATUS_NO_ACCOUNT  # "two" is full, "one" excluded
    assert router.servicer.state.in_flight() == {"claude-console/one": 2, "claude-console/two": 1}
    for i in (11, 12, 13):
        await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
            lease_id=answers[i].lease_id, account_id=answers[i].account.id, outcome=router_pb2.OUTCOME_SUCCESS))
    assert router.servicer.state.in_flight() == {}


class GatedState(MemoryState):
    """Takes slots only when the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def acquire(self, account_id: str, lease_id: str, limit: int, expires_at: float) -> bool:
        self.entered.set()
        await self.gate.wait()
        return await super().acquire(account_id, lease_id, limit, expires_at)


async def test_an_answer_the_stream_could_not_deliver_returns_its_lease(router: Router) -> None:
    router.set_accounts([account("one")])
    state = GatedState()
    router.servicer.state = state
    outbox: asyncio.Queue[router_pb2.PickRequest | None] = asyncio.Queue()
    call = router.stub.PickBatches(requests_from(outbox))
    outbox.put_nowait(ask(1))
    await asyncio.wait_for(state.entered.wait(), 5)
    call.cancel()  # the edge goes away while its pick is being chosen
    await asyncio.sleep(0.1)
    state.gate.set()
    for _ in range(50):
        if len(router.leases) == 0 and state.in_flight() == {}:
            break
        await asyncio.sleep(0.02)
    assert len(router.leases) == 0 and state.in_flight() == {}


async def test_outcomes_riding_with_a_batch_free_their_slots_for_its_picks(router: Router) -> None:
    router.set_accounts([account("one", max_concurrency=1)])
    outbox: asyncio.Queue[router_pb2.PickBatch | None] = asyncio.Queue()

    async def batches() -> AsyncIterator[router_pb2.PickBatch]:
        while (batch := await outbox.get()) is not None:
            yield batch

    call = router.stub.PickBatches(batches())
    outbox.put_nowait(router_pb2.PickBatch(requests=[ask(1)]))
    [first] = (await call.read()).responses
    assert first.status == router_pb2.PICK_STATUS_OK
    outbox.put_nowait(router_pb2.PickBatch(requests=[ask(2)]))  # the slot is still held
    [refused] = (await call.read()).responses
    assert refused.status == router_pb2.PICK_STATUS_NO_ACCOUNT
    returned = router_pb2.ReportOutcomeRequest(lease_id=first.lease_id, account_id=first.account.id,
                                               outcome=router_pb2.OUTCOME_SUCCESS)
    outbox.put_nowait(router_pb2.PickBatch(requests=[ask(3)], outcomes=[returned]))
    [third] = (await call.read()).responses
    assert third.status == router_pb2.PICK_STATUS_OK and third.call_id == 3
    assert router.servicer.state.in_flight() == {"claude-console/one": 1}
    outbox.put_nowait(None)
    call.cancel()
