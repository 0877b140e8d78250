"""Outcomes steer later picks through the real RPC: rate limits, spent windows, breaker, concurrency, weight."""

import asyncio
import logging
import time

import grpc
import pytest
from prometheus_client import REGISTRY

from switchboard.router.v1 import router_pb2
from switchboard_router.accounts_yaml import parse_accounts
from switchboard_router.errors import AccountsInvalid

from .router_testing import Router, account

OK = router_pb2.PICK_STATUS_OK
NO_ACCOUNT = router_pb2.PICK_STATUS_NO_ACCOUNT


async def _report(router: Router, lease: router_pb2.PickResponse, outcome: int, status: int,
                  headers: dict[str, str] | None = None, error: str = "", model: str = "claude-sonnet-4") -> None:
    await router.stub.ReportOutcome(router_pb2.ReportOutcomeRequest(
        lease_id=lease.lease_id, account_id=lease.account.id, outcome=outcome, status_code=status,
        upstream_headers=headers or {}, upstream_error=error, model=model))


async def test_a_throttled_account_is_skipped_until_its_retry_after_and_503_says_when(router: Router) -> None:
    router.set_accounts([account("a"), account("b")])
    first = await router.pick()
    await _report(router, first, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "40"},
                  "rate_limit_error: Number of requests has exceeded your rate limit")
    names = {(await router.pick()).account.name for _ in range(6)}
    assert names == {"b" if first.account.name == "a" else "a"}
    other = await router.pick()
    await _report(router, other, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "20"})
    refused = await router.pick()
    assert refused.status == NO_ACCOUNT and "rate-limited" in refused.message
    assert 15 <= refused.retry_after.ToTimedelta().total_seconds() <= 21  # the earliest hold's end


async def test_extra_usage_refusal_does_not_take_the_account_out(router: Router) -> None:
    router.set_accounts([account("only")])
    lease = await router.pick()
    await _report(router, lease, router_pb2.OUTCOME_RATE_LIMITED, 429, {},
                  "rate_limit_error: Extra usage is required for long context requests.")
    assert (await router.pick()).status == OK


async def test_a_nearly_spent_window_steers_away_before_the_429(router: Router) -> None:
    router.set_accounts([account("busy", priority=1), account("spare", priority=2)])
    lease = await router.pick()
    assert lease.account.name == "busy"
    reset = str(int(time.time()) + 3600)
    await _report(router, lease, router_pb2.OUTCOME_SUCCESS, 200, {
        "anthropic-ratelimit-unified-5h-utilization": "0.97", "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-status": "allowed"})
    assert (await router.pick()).account.name == "spare"


async def test_a_family_hold_leaves_the_other_families_alone(router: Router) -> None:
    router.set_accounts([account("only", models=["claude-*"])])
    lease = await router.pick(model="claude-opus-4-1")
    await _report(router, lease, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "60"}, model="claude-opus-4-1")
    assert (await router.pick(model="claude-opus-4-1")).status == NO_ACCOUNT
    assert (await router.pick(model="claude-sonnet-4-5")).status == OK


async def test_consecutive_failures_open_the_breaker_and_a_refused_credential_is_an_error(router: Router) -> None:
    router.set_accounts([account("flaky", priority=1), account("steady", priority=2)])
    for _ in range(5):
        lease = await router.pick()
        assert lease.account.name == "flaky"
        await _report(router, lease, router_pb2.OUTCOME_UPSTREAM_ERROR, 502)
    assert (await router.pick()).account.name == "steady"
    lease = await router.pick()
    assert lease.account.name == "steady"
    await _report(router, lease, router_pb2.OUTCOME_AUTH_FAILED, 401, {},
                  "authentication_error: invalid x-api-key")
    refused = await router.pick()
    assert refused.status == NO_ACCOUNT
    # The credential error has no end; the open breaker (30 s) is when an account is expected back.
    assert 20 <= refused.retry_after.ToTimedelta().total_seconds() <= 31


async def test_a_half_open_breaker_lets_one_probe_through_and_its_failure_reopens_it(router: Router) -> None:
    router.set_accounts([account("flaky", priority=1), account("steady", priority=2)])
    for _ in range(5):
        lease = await router.pick()
        assert lease.account.name == "flaky"
        await _report(router, lease, router_pb2.OUTCOME_UPSTREAM_ERROR, 502)
    assert (await router.pick()).account.name == "steady"
    router.clock.now += 31  # the open period is over: half-open
    probe = await router.pick()
    assert probe.account.name == "flaky"
    assert (await router.pick()).account.name == "steady"  # one probe at a time
    await _report(router, probe, router_pb2.OUTCOME_UPSTREAM_ERROR, 502)
    assert (await router.pick()).account.name == "steady"  # one failure reopened it, not five
    router.clock.now += 31
    probe = await router.pick()
    assert probe.account.name == "flaky"
    await _report(router, probe, router_pb2.OUTCOME_SUCCESS, 200)
    assert [(await router.pick()).account.name for _ in range(2)] == ["flaky", "flaky"]  # closed


async def test_concurrency_limit_and_weight(router: Router) -> None:
    router.set_accounts([account("one-slot", max_concurrency=1), account("heavy", weight=3)])
    held = [await router.pick() for _ in range(4)]
    names = [lease.account.name for lease in held]
    assert names.count("one-slot") == 1  # its single slot is taken while the lease is open
    await router.stub.Release(router_pb2.ReleaseRequest(lease_id=held[names.index("one-slot")].lease_id))
    assert "one-slot" in {(await router.pick()).account.name for _ in range(2)}


async def test_a_slot_lives_while_its_holder_beats_and_ends_when_it_falls_silent(router: Router) -> None:
    router.set_accounts([account("one-slot", max_concurrency=1)])
    assert (await router.pick(holder="edge:1")).status == OK  # never reported: the edge crashed, or the report was lost
    for _ in range(3):
        router.clock.now += 20
        await router.heartbeat("edge:1")
        refused = await router.pick()
        assert refused.status == NO_ACCOUNT and "concurrency limit" in refused.message
    router.clock.now += 31  # no heartbeat for longer than the holder TTL
    assert (await router.pick()).status == OK


async def test_a_holderless_slot_ends_at_the_lease_ttl(router: Router) -> None:
    router.set_accounts([account("one-slot", max_concurrency=1)])
    assert (await router.pick()).status == OK
    router.clock.now += 599
    assert (await router.pick()).status == NO_ACCOUNT
    router.clock.now += 2
    assert (await router.pick()).status == OK


async def test_a_restarted_holder_returns_its_slots(router: Router) -> None:
    router.set_accounts([account("one-slot", max_concurrency=1)])
    assert (await router.pick(holder="edge:1")).status == OK
    assert (await router.pick(holder="edge:2")).status == NO_ACCOUNT
    assert (await router.heartbeat("edge:1", release_held=True)).released == 1
    assert (await router.pick(holder="edge:2")).status == OK


async def test_an_unschedulable_account_takes_no_new_work(router: Router) -> None:
    router.set_accounts([account("draining", schedulable=False, priority=1), account("open", priority=2)])
    assert {(await router.pick()).account.name for _ in range(3)} == {"open"}


def test_yaml_reads_weight_concurrency_and_schedulable_and_refuses_bad_values() -> None:
    text = ("accounts:\n  - {name: a, platform: claude-console, base_url: http://x, api_key: k,"
            " weight: 3, max_concurrency: 2, schedulable: false}\n")
    (parsed,) = parse_accounts(text, source="t", environ={})
    assert (parsed.weight, parsed.max_concurrency, parsed.schedulable) == (3, 2, False)
    bad = text.replace("weight: 3", "weight: 0").replace("max_concurrency: 2", "max_concurrency: -1")
    with pytest.raises(AccountsInvalid) as refused:
        parse_accounts(bad, source="t", environ={})
    assert any("weight" in p for p in refused.value.problems)
    assert any("max_concurrency" in p for p in refused.value.problems)


async def test_a_conversation_stays_on_its_account_and_moves_only_when_it_cannot_serve(router: Router) -> None:
    router.set_accounts([account("a"), account("b"), account("c")])
    first = await router.pick(session_hint="conv-1", key_id="k1")
    again = [(await router.pick(session_hint="conv-1", key_id="k1")).account.name for _ in range(5)]
    assert set(again) == {first.account.name}  # round robin would have moved it
    # Other conversations (subagents) spread over the accounts instead of piling onto one: the bound account
    # holds six open requests, so the least loaded others take the new ones, three each.
    others = [(await router.pick(session_hint=f"sub-{n}", key_id="k1")).account.name for n in range(6)]
    rest = sorted({"a", "b", "c"} - {first.account.name})
    assert sorted(others) == sorted(rest * 3)
    # The same hint under another key is another conversation.
    assert (await router.pick(session_hint="conv-1", key_id="k2")).status == OK
    # Its account is rate-limited: the conversation moves, and stays where it moved.
    await _report(router, first, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "60"})
    moved = (await router.pick(session_hint="conv-1", key_id="k1")).account.name
    assert moved != first.account.name
    assert {(await router.pick(session_hint="conv-1", key_id="k1")).account.name for _ in range(3)} == {moved}


async def test_a_draining_account_keeps_its_conversations(router: Router) -> None:
    router.set_accounts([account("a", priority=1), account("b", priority=2)])
    bound = await router.pick(session_hint="conv", key_id="k")
    assert bound.account.name == "a"
    router.set_accounts([account("a", priority=1, schedulable=False), account("b", priority=2)])
    assert (await router.pick(session_hint="conv", key_id="k")).account.name == "a"
    assert (await router.pick(session_hint="fresh", key_id="k")).account.name == "b"


async def test_list_accounts_shows_holds_windows_and_the_state_they_make(router: Router) -> None:
    router.set_accounts([account("limited"), account("family"), account("refused")])
    leases = {}
    for _ in range(3):
        lease = await router.pick()
        leases[lease.account.name] = lease
    reset = int(time.time()) + 3600
    await _report(router, leases["limited"], router_pb2.OUTCOME_RATE_LIMITED, 429, {
        "retry-after": "30", "anthropic-ratelimit-unified-5h-utilization": "0.5",
        "anthropic-ratelimit-unified-5h-reset": str(reset), "anthropic-ratelimit-unified-5h-status": "allowed"},
        model="claude-3-custom")  # no model family: the throttle covers the whole account
    await _report(router, leases["family"], router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "30"},
                  model="claude-opus-4-1")
    await _report(router, leases["refused"], router_pb2.OUTCOME_AUTH_FAILED, 401, {},
                  "authentication_error: invalid x-api-key")
    listed = {status.account.name: status for status in
              (await router.stub.ListAccounts(router_pb2.ListAccountsRequest(), timeout=5)).accounts}
    assert listed["limited"].state == router_pb2.ACCOUNT_STATE_COOLING
    (hold,) = listed["limited"].holds
    assert (hold.kind, hold.family) == ("throttled", "") and hold.until > time.time()
    assert [(w.name, w.utilization) for w in listed["limited"].windows] == [("5h", 0.5)]
    assert listed["family"].state == router_pb2.ACCOUNT_STATE_READY  # only opus is held
    assert [h.family for h in listed["family"].holds] == ["opus"]
    assert listed["refused"].state == router_pb2.ACCOUNT_STATE_ERROR
    assert listed["refused"].holds[0].until == 0 and "invalid x-api-key" in listed["refused"].holds[0].reason


def _skips(reason: str) -> float:
    return REGISTRY.get_sample_value("switchboard_router_skips_total", {"reason": reason}) or 0.0


async def test_explain_says_why_each_account_is_passed_over_and_changes_nothing(router: Router) -> None:
    router.set_accounts([
        account("held", priority=1), account("full", priority=1, max_concurrency=1), account("spare", priority=2),
        account("gpt", platform="openai"), account("other-model", models=["gpt-*"]),
        account("grouped", groups=["team-x"]), account("off", enabled=False),
    ])
    throttled = await router.pick(exclude_account_ids=["claude-console/full", "claude-console/spare"])
    assert throttled.account.name == "held"
    await _report(router, throttled, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "60"},
                  "rate_limit_error: Number of requests has exceeded your rate limit")
    assert (await router.pick(exclude_account_ids=["claude-console/spare"])).account.name == "full"  # kept open

    ask = router_pb2.PickRequest(platforms=["claude-console"], model="claude-sonnet-4")
    explained = await router.stub.Explain(ask)
    verdicts = {review.account_id.split("/")[1]: review for review in explained.candidates}
    assert {name: review.verdict for name, review in verdicts.items()} == {
        "held": "held", "full": "concurrency", "spare": "chosen", "gpt": "platform", "other-model": "model",
        "grouped": "group", "off": "disabled"}
    held = verdicts["held"].detail
    assert held.startswith("throttled for ") and "exceeded your rate limit" in held
    assert verdicts["full"].detail == "1 of 1 in flight" and verdicts["full"].in_flight == 1
    assert (verdicts["held"].tier, verdicts["spare"].tier, verdicts["gpt"].tier) == (0, 1, -1)
    assert (explained.status, explained.account_id) == (OK, "claude-console/spare")
    assert await router.stub.Explain(ask) == explained  # no round-robin step, no lease

    held_before, full_before = _skips("held"), _skips("concurrency")
    assert (await router.pick()).account.name == "spare"
    assert (_skips("held") - held_before, _skips("concurrency") - full_before) == (1, 1)


async def test_explain_of_a_refusal_gives_the_reason_and_when(router: Router) -> None:
    router.set_accounts([account("only")])
    lease = await router.pick(key_id="k", session_hint="conversation-1")
    await _report(router, lease, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "40"})
    explained = await router.stub.Explain(router_pb2.PickRequest(
        platforms=["claude-console"], model="claude-sonnet-4", key_id="k", session_hint="conversation-1"))
    assert explained.status == NO_ACCOUNT and "rate-limited" in explained.message and not explained.account_id
    assert 30 <= explained.retry_after.ToTimedelta().total_seconds() <= 40
    assert explained.bound_account_id == "claude-console/only"
    (review,) = explained.candidates
    assert review.verdict == "held"


async def test_the_debug_log_names_each_skipped_candidate(router: Router, caplog: pytest.LogCaptureFixture) -> None:
    router.set_accounts([account("held", priority=1), account("spare", priority=2)])
    lease = await router.pick()
    await _report(router, lease, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "60"})
    with caplog.at_level(logging.DEBUG, logger="switchboard_router.server"):
        assert (await router.pick(request_id="req-7")).account.name == "spare"
    assert "pick req-7: skipped claude-console/held (held): throttled for 60 s: HTTP 429" in caplog.messages


async def test_a_refusal_names_the_class_of_trouble(router: Router) -> None:
    router.set_accounts([account("only")])
    lease = await router.pick()
    await _report(router, lease, router_pb2.OUTCOME_AUTH_FAILED, 401, {}, "authentication_error: invalid x-api-key")
    refused = await router.pick()
    assert refused.status == NO_ACCOUNT and refused.message.endswith("is in error (its credential was refused)")
    assert not refused.HasField("retry_after")

    router.set_accounts([account("other")])
    lease = await router.pick()
    await _report(router, lease, router_pb2.OUTCOME_RATE_LIMITED, 529, {}, "overloaded_error: Overloaded")
    refused = await router.pick()
    until = time.strftime("%H:%M:%S", time.gmtime(router.clock.now + 15))
    assert refused.message.endswith(f"is overloaded upstream until {until} UTC") and refused.retry_after.seconds > 0


async def test_a_refused_credential_holds_until_the_credential_changes(router: Router) -> None:
    router.set_accounts([account("only")])
    lease = await router.pick()
    await _report(router, lease, router_pb2.OUTCOME_AUTH_FAILED, 401, {}, "authentication_error: invalid x-api-key")
    router.set_accounts([account("only", priority=3)])  # a reload that leaves the credential as it was
    await asyncio.sleep(0.05)
    assert (await router.pick()).status == NO_ACCOUNT
    router.set_accounts([account("only", api_key="sk-test-new-key")])
    for _ in range(50):
        if (reply := await router.pick()).status == OK:
            break
        await asyncio.sleep(0.02)
    assert reply.status == OK and reply.account.credential.api_key == "sk-test-new-key"


async def test_an_operator_clears_holds_by_kind(router: Router) -> None:
    router.set_accounts([account("only")])
    lease = await router.pick()
    await _report(router, lease, router_pb2.OUTCOME_RATE_LIMITED, 429, {"retry-after": "120"})
    assert (await router.pick()).status == NO_ACCOUNT
    await router.stub.ClearHolds(router_pb2.ClearHoldsRequest(account_id=lease.account.id, kinds=["error"]))
    assert (await router.pick()).status == NO_ACCOUNT  # not that kind
    await router.stub.ClearHolds(router_pb2.ClearHoldsRequest(account_id=lease.account.id, kinds=["throttled"]))
    assert (await router.pick()).status == OK
    for request, code in ((router_pb2.ClearHoldsRequest(account_id="claude-console/nope"), grpc.StatusCode.NOT_FOUND),
                          (router_pb2.ClearHoldsRequest(account_id=lease.account.id, kinds=["tripped"]),
                           grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.stub.ClearHolds(request)
        assert refused.value.code() == code
