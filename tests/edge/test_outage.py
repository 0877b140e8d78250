"""The last answers the edge rides on while auth or the router is unreachable: bounded in time, stripped of what
only a live service grants, forgotten when a key changes."""

import pytest

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge.errors import RateLimited
from switchboard_edge.outage import LastDecisions, LastPicks


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _allow(key_id: str = "k1") -> auth_pb2.AuthorizeResponse:
    answer = auth_pb2.AuthorizeResponse(decision=auth_pb2.DECISION_ALLOW, identity=auth_pb2.KeyIdentity(key_id=key_id),
                                        allowed_platforms=["openai"], admission_id="adm-1", call_id=4)
    answer.limits.add(name="requests_per_minute", limit=10, remaining=3)
    answer.reuse_for.FromSeconds(1)
    return answer


def _pick(account: str) -> router_pb2.PickResponse:
    return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_OK, lease_id=f"lease-{account}", call_id=9,
                                   account=router_pb2.Account(id=account, platform="openai"))


def test_a_decision_is_recalled_within_the_grace_without_admission_limits_or_reuse() -> None:
    clock = Clock()
    decisions = LastDecisions(60, clock)
    decisions.remember(b"d", ("openai",), "gpt-4o", _allow())
    recalled = decisions.recall(b"d", ("openai",), "gpt-4o")
    assert recalled is not None and recalled.decision == auth_pb2.DECISION_ALLOW
    assert recalled.identity.key_id == "k1" and list(recalled.allowed_platforms) == ["openai"]
    assert not recalled.admission_id and not recalled.limits and not recalled.HasField("reuse_for")
    assert decisions.recall(b"d", ("openai",), "gpt-4.1") is None  # another model: never allowed
    assert decisions.admits_key(b"d") and not decisions.admits_key(b"other")
    clock.now += 61
    assert decisions.recall(b"d", ("openai",), "gpt-4o") is None
    assert not decisions.admits_key(b"d")


def test_a_denial_is_never_remembered_and_a_changed_key_is_forgotten() -> None:
    decisions = LastDecisions(60, Clock())
    denied = auth_pb2.AuthorizeResponse(decision=auth_pb2.DECISION_DENY, identity=auth_pb2.KeyIdentity(key_id="k2"))
    decisions.remember(b"x", ("openai",), "gpt-4o", denied)
    assert decisions.recall(b"x", ("openai",), "gpt-4o") is None and not decisions.admits_key(b"x")
    decisions.remember(b"d", ("openai",), "gpt-4o", _allow("k1"))
    decisions.remember(b"e", ("openai",), "gpt-4o", _allow("k3"))
    decisions.forget({"k1"})
    assert decisions.recall(b"d", ("openai",), "gpt-4o") is None and not decisions.admits_key(b"d")
    assert decisions.recall(b"e", ("openai",), "gpt-4o") is not None


def test_no_grace_remembers_nothing() -> None:
    decisions, picks = LastDecisions(0, Clock()), LastPicks(0, Clock())
    decisions.remember(b"d", ("openai",), "gpt-4o", _allow())
    picks.remember(("openai",), "gpt-4o", _pick("a"))
    assert decisions.recall(b"d", ("openai",), "gpt-4o") is None and not decisions.admits_key(b"d")
    assert picks.recall(("openai",), "gpt-4o", ()) is None


def test_picks_rotate_among_the_accounts_seen_skip_the_excluded_and_carry_no_lease() -> None:
    clock = Clock()
    picks = LastPicks(60, clock)
    for account in ("a", "b", "a"):
        picks.remember(("openai",), "gpt-4o", _pick(account))
    chosen = [picks.recall(("openai",), "gpt-4o", ()) for _ in range(4)]
    assert sorted({c.account.id for c in chosen if c is not None}) == ["a", "b"]
    assert all(c is not None and not c.lease_id and not c.call_id for c in chosen)
    only = picks.recall(("openai",), "gpt-4o", ("a",))
    assert only is not None and only.account.id == "b"
    assert picks.recall(("openai",), "gpt-4o", ("a", "b")) is None
    assert picks.recall(("openai", "azure-openai"), "gpt-4o", ()) is None  # another query: not chosen for it
    refused = router_pb2.PickResponse(status=router_pb2.PICK_STATUS_NO_ACCOUNT)
    picks.remember(("openai",), "o3", refused)
    assert picks.recall(("openai",), "o3", ()) is None
    clock.now += 61
    assert picks.recall(("openai",), "gpt-4o", ()) is None


def test_a_keys_requests_per_minute_are_counted_while_riding_on_its_last_allow() -> None:
    clock = Clock()
    decisions = LastDecisions(300, clock)
    answer = _allow()  # its limits say 10 requests per minute
    decisions.remember(b"d", ("openai",), "gpt-4o", answer)
    for _ in range(10):
        assert decisions.recall(b"d", ("openai",), "gpt-4o") is not None
    with pytest.raises(RateLimited) as refused:
        decisions.recall(b"d", ("openai",), "gpt-4o")
    assert refused.value.retry_after is not None and 1 <= refused.value.retry_after <= 60
    clock.now += 60
    assert decisions.recall(b"d", ("openai",), "gpt-4o") is not None  # a minute on: room again
    unlimited = _allow("k9")
    del unlimited.limits[:]
    decisions.remember(b"u", ("openai",), "gpt-4o", unlimited)
    assert all(decisions.recall(b"u", ("openai",), "gpt-4o") is not None for _ in range(50))


def test_a_conversation_keeps_the_account_the_router_last_gave_it() -> None:
    picks = LastPicks(60, Clock())
    picks.remember(("openai",), "gpt-4o", _pick("a"), session="conv-1")
    picks.remember(("openai",), "gpt-4o", _pick("b"), session="conv-2")
    for _ in range(4):
        first = picks.recall(("openai",), "gpt-4o", (), session="conv-1")
        second = picks.recall(("openai",), "gpt-4o", (), session="conv-2")
        assert first is not None and first.account.id == "a"
        assert second is not None and second.account.id == "b"
    moved = picks.recall(("openai",), "gpt-4o", ("a",), session="conv-1")  # its account failed: another
    assert moved is not None and moved.account.id == "b"
