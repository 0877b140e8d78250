"""Leases, in-flight counts, ListAccounts and the router's metrics, through the real RPCs."""

import pytest
from prometheus_client import REGISTRY

from switchboard.router.v1 import router_pb2
from switchboard_router.leases import LeaseTable

from .router_testing import Router, account

CONSOLE_A = "claude-console/a"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def in_flight(router: Router, account_id: str = CONSOLE_A) -> int:
    return (await router.list_accounts())[account_id].in_flight


async def test_leases_count_in_flight_until_reported_or_released(router: Router) -> None:
    router.set_accounts([account("a")])
    first, second, third = [await router.pick() for _ in range(3)]
    assert await in_flight(router) == 3

    await router.stub.Release(router_pb2.ReleaseRequest(lease_id=first.lease_id), timeout=5)
    assert await in_flight(router) == 2
    await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
        lease_id=second.lease_id, account_id=CONSOLE_A, outcome=router_pb2.OUTCOME_SUCCESS), timeout=5)
    assert await in_flight(router) == 1

    # Idempotent: returning a lease twice, or one never issued, changes nothing and succeeds.
    await router.stub.Release(router_pb2.ReleaseRequest(lease_id=first.lease_id), timeout=5)
    await router.stub.Release(router_pb2.ReleaseRequest(lease_id="no-such-lease"), timeout=5)
    await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
        lease_id=second.lease_id, account_id=CONSOLE_A, outcome=router_pb2.OUTCOME_SUCCESS), timeout=5)
    assert await in_flight(router) == 1

    await router.stub.Release(router_pb2.ReleaseRequest(lease_id=third.lease_id), timeout=5)
    assert await in_flight(router) == 0


async def test_leaked_leases_expire_after_the_ttl(router: Router) -> None:
    router.set_accounts([account("a")])
    await router.pick()
    router.clock.now += 300
    await router.pick()
    assert await in_flight(router) == 2
    router.clock.now += 301  # first lease is 601 s old, second 301 s
    assert await in_flight(router) == 1
    router.clock.now += 300
    assert await in_flight(router) == 0


def test_lease_table_releases_return_the_holder_once() -> None:
    table = LeaseTable(ttl_seconds=10, clock=lambda: 0.0)
    lease = table.acquire("openai/x")
    assert table.release(lease) == "openai/x"
    assert table.release(lease) is None
    assert len(table) == 0 and table.in_flight("openai/x") == 0


async def test_list_accounts_reports_state_models_and_never_credentials(router: Router) -> None:
    router.set_accounts([
        account("a", models=["claude-*", "x"], headers={"h": "v"}),
        account("off", enabled=False),
        {**account("broken", platform="openai"), "api_key": None, "api_key_env": "MISSING_KEY"},
    ])
    reply = await router.stub.ListAccounts(router_pb2.ListAccountsRequest(), timeout=5)
    assert [s.account.id for s in reply.accounts] == [CONSOLE_A, "claude-console/off", "openai/broken"]
    by_id = {s.account.id: s for s in reply.accounts}
    assert by_id[CONSOLE_A].state == router_pb2.ACCOUNT_STATE_READY
    assert by_id["claude-console/off"].state == router_pb2.ACCOUNT_STATE_DISABLED
    assert by_id["openai/broken"].state == router_pb2.ACCOUNT_STATE_ERROR
    assert list(by_id[CONSOLE_A].models) == ["claude-*", "x"]
    assert by_id[CONSOLE_A].account.base_url == "http://127.0.0.1:8090/a"
    for status in reply.accounts:
        assert not status.account.HasField("credential")
    assert b"sk-test-" not in reply.SerializeToString()

    only_openai = await router.list_accounts(platform="openai")
    assert list(only_openai) == ["openai/broken"]


async def test_error_account_is_listed_but_never_picked(router: Router) -> None:
    router.set_accounts([{**account("broken", priority=1), "api_key": None, "api_key_env": "MISSING_KEY"},
                         account("fine", priority=99)])
    assert {(await router.pick()).account.name for _ in range(3)} == {"fine"}


@pytest.mark.parametrize("environ", [{"CONSOLE_KEY": "sk-from-env-123456"}], ids=["env-key"])
async def test_env_credential_reaches_the_pick_reply(router: Router, environ: dict[str, str]) -> None:
    router.set_accounts([{**account("a"), "api_key": None, "api_key_env": "CONSOLE_KEY"}])
    reply = await router.pick()
    assert reply.account.credential.api_key == "sk-from-env-123456"
    assert (await router.list_accounts())[CONSOLE_A].state == router_pb2.ACCOUNT_STATE_READY


async def test_pick_and_outcome_metrics_use_account_names(router: Router) -> None:
    router.set_accounts([account("metric-acct", platform="claude-ccr")])
    labels = {"platform": "claude-ccr", "account": "metric-acct"}
    picks_before = sample("switchboard_router_picks_total", **labels)
    ok_before = sample("switchboard_upstream_requests_total", **labels, outcome="success")
    limited_before = sample("switchboard_upstream_requests_total", **labels, outcome="rate_limited")

    first = await router.pick(platforms=("claude-ccr",))
    second = await router.pick(platforms=("claude-ccr",))
    assert sample("switchboard_router_picks_total", **labels) == picks_before + 2
    for reply, outcome in ((first, router_pb2.OUTCOME_SUCCESS), (second, router_pb2.OUTCOME_RATE_LIMITED)):
        await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
            lease_id=reply.lease_id, account_id=reply.account.id, outcome=outcome, status_code=200), timeout=5)
    assert sample("switchboard_upstream_requests_total", **labels, outcome="success") == ok_before + 1
    assert sample("switchboard_upstream_requests_total", **labels, outcome="rate_limited") == limited_before + 1

    # An account id the router never heard of does not mint a new label set.
    await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
        account_id="claude-ccr/invented", outcome=router_pb2.OUTCOME_SUCCESS), timeout=5)
    assert REGISTRY.get_sample_value("switchboard_upstream_requests_total",
                                     {"platform": "claude-ccr", "account": "invented", "outcome": "success"}) is None


async def test_accounts_gauge_counts_states_per_platform(router: Router) -> None:
    router.set_accounts([account("g1", platform="azure-openai"), account("g2", platform="azure-openai"),
                         account("g3", platform="azure-openai", enabled=False)])
    assert sample("switchboard_router_accounts", platform="azure-openai", state="ready") == 2
    assert sample("switchboard_router_accounts", platform="azure-openai", state="disabled") == 1
    assert sample("switchboard_router_accounts", platform="azure-openai", state="cooling") == 0
    router.set_accounts([])
    assert sample("switchboard_router_accounts", platform="azure-openai", state="ready") == 0


async def test_batched_outcomes_return_every_lease(router: Router) -> None:
    router.set_accounts([account("a")])
    picks = [await router.pick() for _ in range(4)]
    assert await in_flight(router) == 4
    batch = router_pb2.ReportOutcomesRequest(outcomes=[
        router_pb2.ReportOutcomeRequest(lease_id=pick.lease_id, account_id=CONSOLE_A,
                                        outcome=router_pb2.OUTCOME_SUCCESS)
        for pick in picks[:3]
    ])
    await router.stub.ReportOutcomes(batch, timeout=5)
    assert await in_flight(router) == 1


async def test_outcome_batches_on_the_stream_are_acknowledged_by_call_id_once_their_leases_are_back(
        router: Router) -> None:
    router.set_accounts([account("a")])
    picks = [await router.pick() for _ in range(3)]
    assert await in_flight(router) == 3

    def batch(call_id: int, *leases: str) -> router_pb2.ReportOutcomesRequest:
        return router_pb2.ReportOutcomesRequest(call_id=call_id, outcomes=[
            router_pb2.ReportOutcomeRequest(lease_id=lease, account_id=CONSOLE_A, outcome=router_pb2.OUTCOME_SUCCESS)
            for lease in leases])

    call = router.stub.ReportOutcomeStream(iter([batch(11, picks[0].lease_id, picks[1].lease_id),
                                                 batch(12, picks[2].lease_id)]))
    acknowledged = sorted([answer.call_id async for answer in call])
    assert acknowledged == [11, 12]
    assert await in_flight(router) == 0
