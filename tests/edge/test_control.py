"""The edge's control plane against in-process auth and router servers: leases are returned on every path."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge.control import ControlPlane
from switchboard_edge.errors import AuthenticationFailed, ModelNotFound, ServiceUnavailable
from switchboard_edge.spool import UsageSpool

from .control_fakes import ALLOW, FakeAuth, FakeRouter, serve_fakes


class Harness:
    def __init__(self, control: ControlPlane, auth: FakeAuth, router: FakeRouter) -> None:
        self.control, self.auth, self.router = control, auth, router

    async def settled(self) -> None:
        """Lets batched outcome reports reach the router."""
        for _ in range(100):
            await asyncio.sleep(0.02)
            if not self.control.reports._outcomes and not self.control.reports._background:
                return


@pytest.fixture()
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    auth, router = FakeAuth(), FakeRouter()
    server, target = await serve_fakes(auth, router)
    control = ControlPlane(target, target, rpc_timeout=2, usage_flush_seconds=3600, usage_batch_size=100,
                           holder="edge-test:1", spool=UsageSpool(tmp_path / "spool"))
    control.start()
    try:
        yield Harness(control, auth, router)
    finally:
        await control.close()
        await server.stop(None)


async def test_a_control_plane_backing_off_from_the_same_address_does_not_fail_a_new_one(tmp_path: Path) -> None:
    """gRPC shares subchannels between a process's channels of equal settings by default: an edge's channels left
    behind by an earlier server at the address would hand their backoff to a new edge's calls."""
    auth, router = FakeAuth(), FakeRouter()
    earlier, target = await serve_fakes(auth, router)

    def control_plane(name: str) -> ControlPlane:
        return ControlPlane(target, target, rpc_timeout=2, usage_flush_seconds=3600, usage_batch_size=100,
                            holder=f"edge-test:{name}", spool=UsageSpool(tmp_path / name))

    left_behind = control_plane("left-behind")
    await left_behind.admission.key("good", _client())
    await earlier.stop(None)
    with pytest.raises(ServiceUnavailable):  # now backing off from the address
        await left_behind.admission.key("good", _client())
    server, _ = await serve_fakes(auth, router, port=int(target.rsplit(":", 1)[1]))
    control = control_plane("new")
    asked_before = auth.authenticated
    try:
        await control.admission.key("good", _client())
        assert auth.authenticated == asked_before + 1
    finally:
        await control.close()
        await left_behind.close()
        await server.stop(None)


def _client(request_id: str = "r1") -> auth_pb2.ClientMetadata:
    return auth_pb2.ClientMetadata(request_id=request_id)


async def test_lease_is_returned_when_auth_is_unavailable(harness: Harness) -> None:
    control = harness.control
    await control.admission.authenticate("good", _client())  # the key is known: Authorize and Pick run together
    harness.auth.available = False
    with pytest.raises(ServiceUnavailable):
        await control.admission.admit("good", ("openai",), "gpt-4o", _client(), False)
    await harness.settled()
    assert harness.router.issued == 1 and harness.router.held == set()


async def test_lease_is_returned_when_the_caller_gives_up_before_pick_answers(harness: Harness) -> None:
    control = harness.control
    await control.admission.authenticate("good", _client())
    harness.router.pick_delay = 0.3
    admitting = asyncio.create_task(control.admission.admit("good", ("openai",), "gpt-4o", _client(), False))
    await asyncio.sleep(0.1)
    admitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await admitting
    for _ in range(50):
        await asyncio.sleep(0.05)
        if harness.router.issued:
            break
    await harness.settled()
    assert harness.router.issued == 1 and harness.router.held == set()


async def test_a_failover_pick_given_up_is_returned_too(harness: Harness) -> None:
    harness.router.pick_delay = 0.3
    picking = asyncio.create_task(harness.control.admission.pick(("openai",), "gpt-4o", ALLOW.identity, "", "r1"))
    await asyncio.sleep(0.1)
    picking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await picking
    await asyncio.sleep(0.4)
    await harness.settled()
    assert harness.router.issued == 1 and harness.router.held == set()


async def test_a_lease_returned_travels_with_the_next_pick_whatever_the_outcome_window(tmp_path: Path) -> None:
    """A client calling one after another on a one-slot account: its previous request's slot is free for the
    next, though the outcome window (a minute here) has not ended."""
    auth, router = FakeAuth(), FakeRouter()
    router.max_concurrency = 1
    server, target = await serve_fakes(auth, router)
    control = ControlPlane(target, target, rpc_timeout=2, usage_flush_seconds=3600, usage_batch_size=100,
                           outcome_flush_seconds=60, holder="edge-test:1", spool=UsageSpool(tmp_path / "spool"))
    control.start()
    try:
        await control.admission.authenticate("good", _client())
        for turn in range(3):
            admitted = await control.admission.admit("good", ("openai",), "gpt-4o", _client(f"r{turn}"), False)
            assert admitted.pick.lease_id == f"lease-{turn + 1}"
            control.reports.report(router_pb2.ReportOutcomeRequest(
                lease_id=admitted.pick.lease_id, account_id=admitted.pick.account.id,
                outcome=router_pb2.OUTCOME_SUCCESS))
        assert router.outcomes_with_picks == 2 and router.held == {"lease-3"}
    finally:
        await control.close()
        await server.stop(None)


async def test_the_heartbeat_lists_the_leases_whose_outcome_is_not_handed_over(tmp_path: Path) -> None:
    """So the router returns any lease whose outcome was lost on the way (a stream that broke)."""
    auth, router = FakeAuth(), FakeRouter()
    router.holder_ttl = 0.6  # a beat every 0.2 s
    server, target = await serve_fakes(auth, router)
    control = ControlPlane(target, target, rpc_timeout=2, usage_flush_seconds=3600, usage_batch_size=100,
                           holder="edge-test:1", spool=UsageSpool(tmp_path / "spool"))
    control.start()
    try:
        await control.admission.authenticate("good", _client())
        done = await control.admission.admit("good", ("openai",), "gpt-4o", _client("r1"), False)
        running = await control.admission.admit("good", ("openai",), "gpt-4o", _client("r2"), False)
        control.reports.report(router_pb2.ReportOutcomeRequest(
            lease_id=done.pick.lease_id, account_id=done.pick.account.id, outcome=router_pb2.OUTCOME_SUCCESS))
        beats_before = len(router.beats)
        for _ in range(200):  # the second beat from now was surely sent after the report
            if len(router.beats) >= beats_before + 2:
                break
            await asyncio.sleep(0.02)
        beat = router.beats[-1]
        assert beat.reconcile and not beat.release_held and list(beat.leases) == [running.pick.lease_id]
    finally:
        await control.close()
        await server.stop(None)


async def test_invalid_key_is_refused_by_authenticate_and_a_valid_one_is_remembered(harness: Harness) -> None:
    with pytest.raises(AuthenticationFailed):
        await harness.control.admission.authenticate("bad", _client())
    await harness.control.admission.authenticate("good", _client())
    await harness.control.admission.authenticate("good", _client())
    assert harness.auth.authenticated == 2


async def test_model_nobody_serves_is_404(harness: Harness) -> None:
    harness.router.status = router_pb2.PICK_STATUS_NO_MODEL
    with pytest.raises(ModelNotFound):
        await harness.control.admission.admit("good", ("openai",), "x", _client(), False)


async def test_picks_name_the_holder_and_the_first_heartbeat_releases_what_it_held(harness: Harness) -> None:
    for _ in range(50):
        if harness.router.beats:
            break
        await asyncio.sleep(0.02)
    assert harness.router.beats[0].holder == "edge-test:1" and harness.router.beats[0].release_held


async def test_usage_waits_in_the_spool_until_auth_has_it(harness: Harness, tmp_path: Path) -> None:
    control = harness.control
    harness.auth.available = False
    for index in range(3):
        control.reports.record_usage(auth_pb2.UsageRecord(request_id=f"u{index}"))
    await control.reports.flush_usage()
    assert harness.auth.recorded == [] and list((tmp_path / "spool").glob("usage-*.spool"))
    harness.auth.available = True
    control.reports.record_usage(auth_pb2.UsageRecord(request_id="u3"))
    await control.reports.flush_usage()
    assert harness.auth.recorded == ["u0", "u1", "u2", "u3"]
    assert not list((tmp_path / "spool").glob("usage-*.spool"))
