"""The router's live view -> status and conditions (pure)."""

from datetime import UTC, datetime

from switchboard_operator.conditions import Hold, Live, Observed, Problem, Window, changed, status

NOW = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 29, 10, 5, 0, tzinfo=UTC)
UNTIL = NOW.timestamp() + 60


def by_type(result: dict) -> dict[str, dict]:
    return {c["type"]: c for c in result["conditions"]}


def test_a_ready_account() -> None:
    result = status(Observed("openai/ns.a", 3, Live("ready", in_flight=2)), NOW)
    got = by_type(result)
    assert (got["Ready"]["status"], got["RateLimited"]["status"], got["Error"]["status"]) == ("True", "False", "False")
    assert got["Ready"]["observedGeneration"] == 3 and got["Ready"]["lastTransitionTime"] == "2026-11-29T10:00:00Z"
    assert result["inFlight"] == 2 and result["accountId"] == "openai/ns.a" and result["observedGeneration"] == 3
    assert result["cooldownUntil"] is None and result["lastError"] is None and result["windows"] == []


def test_a_throttled_account_is_rate_limited_and_cooling_until_the_hold_ends() -> None:
    live = Live("cooling", holds=(Hold("", "throttled", UNTIL, "rate_limit_error: slow down"),),
                windows=(Window("", "5h", 0.97, UNTIL + 3600),))
    result = status(Observed("claude-console/ns.a", 1, live), NOW)
    got = by_type(result)
    assert got["Ready"]["status"] == "False" and got["Ready"]["reason"] == "Cooling"
    assert got["RateLimited"]["status"] == "True" and got["RateLimited"]["reason"] == "Throttled"
    assert "slow down" in got["RateLimited"]["message"] and got["Error"]["status"] == "False"
    assert result["cooldownUntil"] == "2026-11-29T10:01:00Z"
    assert result["windows"] == [{"family": "", "name": "5h", "utilization": 0.97,
                                  "resetsAt": "2026-11-29T11:01:00Z"}]


def test_a_family_hold_rate_limits_but_leaves_the_account_ready() -> None:
    live = Live("ready", holds=(Hold("opus", "window", UNTIL, "weekly opus limit"),))
    got = by_type(status(Observed("claude-official/ns.a", 1, live), NOW))
    assert got["Ready"]["status"] == "True" and "opus" in got["Ready"]["message"]
    assert got["RateLimited"]["status"] == "True" and got["RateLimited"]["reason"] == "UsageWindowSpent"


def test_a_refused_credential_is_an_error() -> None:
    live = Live("error", holds=(Hold("", "error", 0, "authentication_error: invalid x-api-key"),))
    result = status(Observed("claude-console/ns.a", 1, live), NOW)
    got = by_type(result)
    assert got["Error"]["status"] == "True" and got["Error"]["reason"] == "CredentialRefused"
    assert got["Ready"]["reason"] == "AccountError" and got["RateLimited"]["status"] == "False"
    assert result["lastError"] == "authentication_error: invalid x-api-key"


def test_a_problem_pushing_the_account_is_an_error_and_not_ready() -> None:
    result = status(Observed("openai/ns.a", 2, None, Problem("InvalidSpec", "the Secret needs key 'api_key'")), NOW)
    got = by_type(result)
    assert got["Ready"]["status"] == "False" and got["Error"]["reason"] == "InvalidSpec"
    assert result["lastError"] == "the Secret needs key 'api_key'"
    unknown = by_type(status(Observed("openai/ns.a", 2, None), NOW))
    assert unknown["Ready"]["status"] == "Unknown" and unknown["Ready"]["reason"] == "NotInRouter"


def test_transition_times_move_only_with_the_status_and_an_unchanged_status_needs_no_patch() -> None:
    first = status(Observed("openai/ns.a", 1, Live("ready")), NOW)
    again = status(Observed("openai/ns.a", 1, Live("ready"), previous=first["conditions"]), LATER)
    assert again == first and changed(first, again) == {}
    throttled = Live("cooling", holds=(Hold("", "throttled", UNTIL, ""),))
    moved = by_type(status(Observed("openai/ns.a", 1, throttled, previous=first["conditions"]), LATER))
    assert moved["Ready"]["lastTransitionTime"] == moved["RateLimited"]["lastTransitionTime"] == "2026-11-29T10:05:00Z"
    assert moved["Error"]["lastTransitionTime"] == "2026-11-29T10:00:00Z"


def test_the_patch_holds_only_what_changed() -> None:
    current = {"inFlight": 1, "accountId": "a", "lastError": "old"}
    assert changed(current, {"inFlight": 2, "accountId": "a", "lastError": None, "cooldownUntil": None}) == {
        "inFlight": 2, "lastError": None}
