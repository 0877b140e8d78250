"""Leases tagged with a holder: they live while the holder beats, and go when it is silent or restarts."""

import grpc
import pytest

from switchboard.router.v1 import router_pb2
from switchboard_router.leases import LeaseTable

from .router_testing import FakeClock, Router, account

A, B = "claude-console/a", "openai/b"
EDGE_1, EDGE_2 = "edge-1:8080", "edge-2:8080"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> LeaseTable:
    return LeaseTable(ttl_seconds=600, holder_ttl_seconds=30, clock=clock)


def test_holder_leases_live_while_it_beats_even_past_the_long_ttl(table: LeaseTable, clock: FakeClock) -> None:
    table.acquire(A, EDGE_1)
    for _ in range(100):  # 2,000 s, far past the 600 s lease TTL
        clock.now += 20
        table.heartbeat(EDGE_1)
    assert table.in_flight(A) == 1
    clock.now += 29
    assert table.in_flight(A) == 1
    clock.now += 1  # silent for the whole holder TTL
    assert table.in_flight(A) == 0
    assert len(table) == 0 and table.held_by(EDGE_1) == 0


def test_a_silent_holder_loses_only_its_own_leases(table: LeaseTable, clock: FakeClock) -> None:
    table.acquire(A, EDGE_1)
    table.acquire(B, EDGE_1)
    table.acquire(A, EDGE_2)
    table.acquire(A)  # holderless
    clock.now += 20
    table.heartbeat(EDGE_2)
    clock.now += 10  # EDGE_1 silent for 30 s, EDGE_2 for 10 s
    assert (table.in_flight(A), table.in_flight(B)) == (2, 0)
    assert (table.held_by(EDGE_1), table.held_by(EDGE_2)) == (0, 1)


def test_a_pick_with_the_holder_counts_as_a_heartbeat(table: LeaseTable, clock: FakeClock) -> None:
    table.acquire(A, EDGE_1)
    clock.now += 20
    table.acquire(A, EDGE_1)
    clock.now += 20  # first lease 40 s old, but its holder was seen 20 s ago
    assert table.in_flight(A) == 2


def test_reconcile_returns_only_old_leases_the_holder_no_longer_holds(table: LeaseTable, clock: FakeClock) -> None:
    kept, lost = table.acquire(A, EDGE_1), table.acquire(A, EDGE_1)
    table.acquire(B, EDGE_2)
    clock.now += 10
    young = table.acquire(A, EDGE_1)  # perhaps answered after the holder listed its leases
    assert table.reconcile(EDGE_1, {kept}, older_than=10) == [(A, lost)]
    assert (table.in_flight(A), table.in_flight(B)) == (2, 1)
    assert table.reconcile(EDGE_1, {kept, young}, older_than=10) == []
    assert table.release(kept) == A and table.release(young) == A


def test_holderless_leases_keep_the_long_ttl(table: LeaseTable, clock: FakeClock) -> None:
    table.acquire(A)
    clock.now += 599
    assert table.in_flight(A) == 1
    clock.now += 1
    assert table.in_flight(A) == 0


def test_release_held_returns_every_lease_of_that_holder_once(table: LeaseTable) -> None:
    mine = [table.acquire(A, EDGE_1), table.acquire(B, EDGE_1), table.acquire(A, EDGE_1)]
    theirs = table.acquire(A, EDGE_2)
    table.release(mine[2])  # already returned: not counted again
    assert table.heartbeat(EDGE_1, release_held=True) == 2
    assert (table.in_flight(A), table.in_flight(B)) == (1, 0)
    assert [table.release(lease) for lease in mine] == [None, None, None]  # idempotent
    assert table.heartbeat(EDGE_1, release_held=True) == 0
    assert table.release(theirs) == A
    # The holder is alive again and takes new leases as usual.
    table.acquire(B, EDGE_1)
    assert table.held_by(EDGE_1) == 1 and table.in_flight(B) == 1


def test_a_returned_lease_is_not_dropped_again_when_its_holder_expires(table: LeaseTable, clock: FakeClock) -> None:
    first = table.acquire(A, EDGE_1)
    table.acquire(A, EDGE_1)
    table.acquire(A)
    assert table.release(first) == A
    clock.now += 30
    assert table.in_flight(A) == 1  # only the holderless one; no count went negative
    assert table.release(first) is None


def test_a_holder_back_after_expiry_starts_afresh(table: LeaseTable, clock: FakeClock) -> None:
    old = table.acquire(A, EDGE_1)
    clock.now += 31
    new = table.acquire(A, EDGE_1)  # expiry runs first: the old lease is gone
    assert table.in_flight(A) == 1
    assert table.release(old) is None and table.release(new) == A


def test_many_leases_of_one_holder_are_returned_together(table: LeaseTable, clock: FakeClock) -> None:
    for i in range(100_000):
        table.acquire(A if i % 2 else B, EDGE_1)
    table.acquire(A, EDGE_2)
    clock.now += 15
    table.heartbeat(EDGE_2)
    clock.now += 15
    assert (table.in_flight(A), table.in_flight(B), len(table)) == (1, 0, 1)


@pytest.mark.parametrize(("ttl", "holder_ttl"), [(0, 30), (600, 0), (600, -1)], ids=["ttl", "holder", "negative"])
def test_ttls_must_be_positive(ttl: float, holder_ttl: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        LeaseTable(ttl_seconds=ttl, holder_ttl_seconds=holder_ttl)


# -- through the RPCs --


async def in_flight(router: Router, account_id: str = A) -> int:
    return (await router.list_accounts())[account_id].in_flight


async def test_heartbeat_release_held_returns_a_restarted_edges_leases(router: Router) -> None:
    router.set_accounts([account("a")])
    held = [await router.pick(holder=EDGE_1) for _ in range(3)]
    await router.pick(holder=EDGE_2)
    await router.pick()  # holderless
    assert await in_flight(router) == 5

    reply = await router.heartbeat(EDGE_1, release_held=True)
    assert reply.released == 3
    assert reply.holder_ttl.ToMilliseconds() == 30_000
    assert await in_flight(router) == 2

    # The old life's outcomes arriving late change nothing and still succeed.
    await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
        lease_id=held[0].lease_id, account_id=A, outcome=router_pb2.OUTCOME_SUCCESS), timeout=5)
    await router.stub.Release(router_pb2.ReleaseRequest(lease_id=held[1].lease_id), timeout=5)
    assert await in_flight(router) == 2


async def test_leases_of_a_silent_edge_return_after_the_holder_ttl(router: Router) -> None:
    router.set_accounts([account("a")])
    await router.pick(holder=EDGE_1)
    await router.pick(holder=EDGE_2)
    router.clock.now += 25
    reply = await router.heartbeat(EDGE_2)
    assert (reply.released, reply.holder_ttl.seconds) == (0, 30)
    router.clock.now += 5  # EDGE_1 silent for 30 s
    assert await in_flight(router) == 1
    router.clock.now += 25
    assert await in_flight(router) == 0


async def test_a_refused_pick_also_keeps_its_holder_alive(router: Router) -> None:
    router.set_accounts([account("a")])
    await router.pick(holder=EDGE_1)
    router.clock.now += 20
    refused = await router.pick(holder=EDGE_1, exclude_account_ids=[A])
    assert refused.status == router_pb2.PICK_STATUS_NO_ACCOUNT
    router.clock.now += 20
    assert await in_flight(router) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda r: r.heartbeat(""), id="heartbeat-without-holder"),
        pytest.param(lambda r: r.heartbeat("h" * 513), id="heartbeat-long-holder"),
        pytest.param(lambda r: r.pick(holder="h" * 513), id="pick-long-holder"),
    ],
)
async def test_bad_holders_are_invalid_argument(router: Router, call) -> None:
    router.set_accounts([account("a")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(router)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await in_flight(router) == 0


async def test_a_reconciling_heartbeat_returns_old_leases_the_edge_no_longer_holds(router: Router) -> None:
    router.set_accounts([account("a")])
    running, lost = await router.pick(holder=EDGE_1), await router.pick(holder=EDGE_1)  # lost: no outcome came
    await router.pick(holder=EDGE_2)
    router.clock.now += 11
    young = await router.pick(holder=EDGE_1)  # answered after the edge listed its leases
    assert await in_flight(router) == 4

    older_edge = await router.stub.Heartbeat(router_pb2.HeartbeatRequest(holder=EDGE_1), timeout=5)
    assert older_edge.released == 0 and await in_flight(router) == 4  # an edge that lists nothing loses nothing
    reply = await router.stub.Heartbeat(router_pb2.HeartbeatRequest(
        holder=EDGE_1, leases=[running.lease_id], reconcile=True), timeout=5)
    assert reply.released == 1 and await in_flight(router) == 3
    # The lost outcome arriving after all changes nothing.
    await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
        lease_id=lost.lease_id, account_id=A, outcome=router_pb2.OUTCOME_SUCCESS), timeout=5)
    assert await in_flight(router) == 3 and young.lease_id
