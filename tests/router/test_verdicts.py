"""What one reported outcome means for the account (`switchboard_router.verdicts`), from the vendors' real
headers and bodies: the vendor recordings under tests/fixtures where they hold the case, otherwise header sets
and bodies quoted in public issues and peers' code (each one names its source). The vendor's error reaches the
router as the edge's excerpt of the body (`switchboard_edge.upstream.base.upstream_error`), made here the same
way."""

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from switchboard.router.v1 import router_pb2
from switchboard_edge import failover
from switchboard_edge.upstream.base import error_excerpt, error_kind, upstream_error
from switchboard_router.verdicts import (
    Breaker,
    Effects,
    Hold,
    HoldKind,
    Reported,
    VerdictSettings,
    Window,
    decide,
    family,
    reported,
)

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
NOW = 1_777_100_000.0  # before every reset quoted below


def recorded(path: str, index: int = 0) -> tuple[int, dict[str, str], str]:
    """Status, rate-limit headers (lower-case, as the edge reports them) and the edge's error excerpt of one
    recorded answer."""
    interaction = yaml.safe_load((RECORDINGS / path).read_text())["interactions"][index]["response"]
    headers = {name.lower(): values[0] for name, values in interaction["headers"].items()}
    body = interaction["body"]["string"]
    status = interaction["status"]["code"]
    excerpt = upstream_error(body.encode() if isinstance(body, str) else body) if status >= 400 else ""
    return status, headers, excerpt


def vendor_error(body: dict[str, Any]) -> str:
    return upstream_error(orjson.dumps(body))


def judge(status: int, headers: dict[str, str] | None = None, error: str = "", model: str = "",
          outcome: int | None = None, now: float = NOW, platform: str = "claude-official",
          settings: VerdictSettings | None = None, error_type: str = "") -> Effects:
    if outcome is None:
        outcome = (router_pb2.OUTCOME_SUCCESS if status < 400 else
                   router_pb2.OUTCOME_RATE_LIMITED if status in (429, 529) else
                   router_pb2.OUTCOME_AUTH_FAILED if status in (401, 403) else
                   router_pb2.OUTCOME_UPSTREAM_ERROR if status >= 500 else router_pb2.OUTCOME_CLIENT_ERROR)
    report = Reported(platform, outcome, status, now, headers or {}, error, model, error_type)
    return decide(report, settings or VerdictSettings())


# -- throttles -----------------------------------------------------------------------------------------------


def test_an_anthropic_429_with_retry_after_throttles_the_models_family_for_that_long() -> None:
    status, headers, error = recorded("anthropic/error-429-then-529-then-200-retry-sequence.yaml", 0)
    effects = judge(status, headers, error, "claude-3-opus-20240229", platform="claude-console")
    assert effects.holds == (Hold(HoldKind.THROTTLED, "opus", NOW + 7, error),)
    assert error.startswith("rate_limit_error: Number of requests has exceeded your per-minute rate limit")
    assert effects.windows == () and effects.breaker is Breaker.NONE


def test_an_openai_429_throttles_the_whole_account_for_its_retry_after() -> None:
    status, headers, error = recorded("openai-chat/error-429-rate_limit_exceeded.yaml")
    effects = judge(status, headers, error, "gpt-3.5-turbo", platform="openai")
    assert effects.holds == (Hold(HoldKind.THROTTLED, "", NOW + 20, error),)  # retry-after-ms 20000
    assert error.startswith("rate_limit_exceeded: Rate limit reached for gpt-3.5-turbo")


@pytest.mark.parametrize(
    ("headers", "settings", "seconds"),
    [
        # The 429 a subscription answered with nothing but x-should-retry (quoted in emaspa/trmnl-claude#2).
        pytest.param({"x-should-retry": "true"}, VerdictSettings(), 30.0, id="no-reset-default"),
        pytest.param({}, VerdictSettings(throttle_default_seconds=10, throttle_max_seconds=60), 10.0,
                     id="no-reset-configured-default"),
        # A retry-after of hours without any window saying it is spent (the value from lidge-jun/opencodex#3809).
        pytest.param({"retry-after": "7999"}, VerdictSettings(), 300.0, id="long-retry-after-capped"),
        pytest.param({"retry-after": "7999"}, VerdictSettings(throttle_max_seconds=60), 60.0, id="configured-cap"),
        pytest.param({"retry-after": "Wed, 29 Apr 2026 06:55:00 GMT"}, VerdictSettings(), 300.0, id="http-date"),
        # OpenAI's spent request bucket and its reset, without retry-after.
        pytest.param({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s",
                      "x-ratelimit-remaining-tokens": "39923", "x-ratelimit-reset-tokens": "115ms"},
                     VerdictSettings(), 90.0, id="openai-spent-bucket"),
    ],
)
def test_a_429_without_a_spent_window_is_short_and_capped(headers: dict[str, str], settings: VerdictSettings,
                                                          seconds: float) -> None:
    error = vendor_error({"type": "error", "error": {"type": "rate_limit_error", "message": "Error"}})
    effects = judge(429, headers, error, "claude-sonnet-4-5", settings=settings)
    assert [(hold.kind, hold.family, hold.until) for hold in effects.holds] == [
        (HoldKind.THROTTLED, "sonnet", NOW + seconds)]


def test_a_gemini_resource_exhausted_is_a_throttle() -> None:
    status, headers, error = recorded("gemini/error-429-RESOURCE_EXHAUSTED.yaml")
    effects = judge(status, headers, error, "gemini-2.0-flash", platform="gemini")
    assert effects.holds == (Hold(HoldKind.THROTTLED, "", NOW + 30, error),)
    assert error.startswith("RESOURCE_EXHAUSTED: Resource exhausted.")


def test_openais_spent_billing_quota_throttles_for_the_longest_throttle() -> None:
    body = orjson.loads((RECORDINGS / "openai-responses/error-429-insufficient_quota.body.json").read_bytes())
    effects = judge(429, {}, vendor_error(body), "gpt-5", platform="openai-responses")
    assert [(hold.kind, hold.until) for hold in effects.holds] == [(HoldKind.THROTTLED, NOW + 300)]


def test_overloaded_is_a_short_cooldown_of_the_family() -> None:
    status, headers, error = recorded("anthropic/error-429-then-529-then-200-retry-sequence.yaml", 1)
    effects = judge(status, headers, error, "claude-3-opus-20240229", platform="claude-console")
    assert effects.holds == (Hold(HoldKind.OVERLOADED, "opus", NOW + 15, "overloaded_error: Overloaded"),)
    assert effects.breaker is Breaker.NONE  # the vendor is busy; the account is not broken


# -- usage windows: Anthropic --------------------------------------------------------------------------------

# A subscription's 200 answer: the unified windows as a real response carried them (anomalyco/opencode#49499:
# 5h 0.42, 7d 0.30, status allowed) with the Sonnet-only weekly window Sonnet answers carry
# (askalf/dario#141: `anthropic-ratelimit-unified-7d_sonnet-*`) and the claim (anthropics/claude-code#12829).
SUBSCRIPTION_200 = {
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-reset": "1777120000",
    "anthropic-ratelimit-unified-representative-claim": "five_hour",
    "anthropic-ratelimit-unified-5h-status": "allowed",
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": "1777120000",
    "anthropic-ratelimit-unified-7d-status": "allowed",
    "anthropic-ratelimit-unified-7d-utilization": "0.30",
    "anthropic-ratelimit-unified-7d-reset": "1777500000",
    "anthropic-ratelimit-unified-7d_sonnet-utilization": "0.0",
    "anthropic-ratelimit-unified-7d_sonnet-status": "allowed",
    "anthropic-ratelimit-unified-7d_sonnet-reset": "1777154400",
    "anthropic-ratelimit-unified-fallback-percentage": "0.5",
    "anthropic-ratelimit-unified-overage-status": "allowed",
    "anthropic-ratelimit-unified-overage-utilization": "0.0",
}


def test_a_success_records_every_window_and_holds_nothing() -> None:
    effects = judge(200, SUBSCRIPTION_200, model="claude-sonnet-4-5-20250929")
    assert effects.holds == () and effects.breaker is Breaker.SUCCESS
    assert set(effects.windows) == {
        Window("", "5h", 0.42, 1777120000.0),
        Window("", "7d", 0.30, 1777500000.0),
        Window("sonnet", "7d_sonnet", 0.0, 1777154400.0),
    }  # overage is extra usage, not a window


def test_retry_after_on_a_200_holds_nothing() -> None:
    status, headers, _ = recorded("anthropic/headers-retry-after-on-200-stream.yaml")
    assert headers["retry-after"] == "24"
    effects = judge(status, headers, model="claude-sonnet-4-5-20250929", platform="claude-console")
    assert effects == Effects(breaker=Breaker.SUCCESS)


def test_a_spent_five_hour_window_holds_the_whole_account_until_it_resets() -> None:
    # A drained five-hour window: rejected, its reset, and a retry-after of hours (lidge-jun/opencodex#3809).
    headers = SUBSCRIPTION_200 | {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-5h-status": "rejected",
        "anthropic-ratelimit-unified-5h-utilization": "1.0",
        "anthropic-ratelimit-unified-5h-reset": str(int(NOW) + 7999),
        "retry-after": "7999",
    }
    error = vendor_error({"type": "error", "error": {
        "type": "rate_limit_error", "message": "This request would exceed your account's rate limit. Please try "
                                               "again later."}})
    effects = judge(429, headers, error, "claude-opus-4-1")
    assert effects.holds == (Hold(HoldKind.WINDOW, "", NOW + 7999, "usage window 5h exhausted"),)  # not capped
    assert Window("", "5h", 1.0, NOW + 7999) in effects.windows


def test_a_spent_weekly_window_without_its_own_reset_holds_until_the_overall_reset() -> None:
    # The shape of a weekly-exhausted 429 as a peer recorded it (quoted in public peers' notes): 7d rejected,
    # the claim seven_day, overage refused for want of credits, the reset only at the top level.
    reset = int(NOW) + 3 * 86400
    headers = {
        "x-should-retry": "true",
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": "0.0",
        "anthropic-ratelimit-unified-7d-status": "rejected",
        "anthropic-ratelimit-unified-7d-utilization": "1.0",
        "anthropic-ratelimit-unified-7d-surpassed-threshold": "1.0",
        "anthropic-ratelimit-unified-representative-claim": "seven_day",
        "anthropic-ratelimit-unified-reset": str(reset),
        "retry-after": str(3 * 86400),
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "out_of_credits",
    }
    error = vendor_error({"type": "error", "error": {
        "type": "rate_limit_error", "message": "This request would exceed your account's rate limit. Please try "
                                               "again later."}})
    effects = judge(429, headers, error, "claude-sonnet-4-5")
    assert effects.holds == (Hold(HoldKind.WINDOW, "", float(reset), "usage window 7d exhausted"),)


def test_a_spent_family_window_holds_that_family_only() -> None:
    reset = int(NOW) + 86400
    headers = SUBSCRIPTION_200 | {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": "seven_day_sonnet",
        "anthropic-ratelimit-unified-7d_sonnet-status": "rejected",
        "anthropic-ratelimit-unified-7d_sonnet-utilization": "1.0",
        "anthropic-ratelimit-unified-7d_sonnet-reset": str(reset),
    }
    effects = judge(429, headers, "rate_limit_error: Error", "claude-sonnet-4-5-20250929")
    assert effects.holds == (Hold(HoldKind.WINDOW, "sonnet", float(reset), "usage window 7d_sonnet exhausted"),)
    assert Window("sonnet", "7d_sonnet", 1.0, float(reset)) in effects.windows


def test_a_spent_window_of_no_family_holds_the_family_of_the_refused_request() -> None:
    # `7d_oi` refused while 5h and 7d allow, retry-after to its reset (the 429 shape a peer recorded, quoted in
    # public code: "unified-status: rejected ... 7d_oi: rejected, utilization=1.02 ... retry-after: 304802").
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": "seven_day_overage_included",
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": "0.20",
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-utilization": "0.70",
        "anthropic-ratelimit-unified-7d_oi-status": "rejected",
        "anthropic-ratelimit-unified-7d_oi-utilization": "1.02",
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "retry-after": "304802",
    }
    effects = judge(429, headers, "rate_limit_error: Error", "claude-opus-4-1")
    assert effects.holds == (Hold(HoldKind.WINDOW, "opus", NOW + 304802, "usage window 7d_oi exhausted"),)
    # Recorded under its own scope, which no model belongs to: the record never keeps a model from a pick.
    assert Window("oi", "7d_oi", 1.0, None) in effects.windows
    # Nothing to attribute it to: a throttle, not a window on the whole account.
    unnamed = judge(429, headers, "rate_limit_error: Error", "")
    assert [(hold.kind, hold.family) for hold in unnamed.holds] == [(HoldKind.THROTTLED, "")]


@pytest.mark.parametrize(
    ("claim", "model", "held"),
    [
        pytest.param("five_hour", "claude-sonnet-4-5", "", id="five-hour"),
        pytest.param("seven_day", "claude-sonnet-4-5", "", id="seven-day"),
        pytest.param("seven_day_opus", "claude-opus-4-1", "opus", id="opus-only"),
        pytest.param("seven_day_overage_included", "claude-haiku-4-5", "haiku", id="no-family-claim"),
    ],
)
def test_only_the_overall_verdict_holds_the_window_its_claim_names(claim: str, model: str, held: str) -> None:
    reset = int(NOW) + 3600
    headers = {"anthropic-ratelimit-unified-status": "rejected",
               "anthropic-ratelimit-unified-reset": str(reset),
               "anthropic-ratelimit-unified-representative-claim": claim}
    effects = judge(429, headers, "rate_limit_error: Error", model)
    assert effects.holds == (Hold(HoldKind.WINDOW, held, float(reset), f"usage window {claim} exhausted"),)


@pytest.mark.parametrize(
    "message",
    [
        # Wei-Shaw/sub2api#572, anthropics/claude-code#42616 (a 429 rate_limit_error on a Max plan).
        pytest.param("Extra usage is required for long context requests.", id="long-context"),
        # griffinmartin/opencode-claude-auth#209: the 1M-context beta's extra usage spent.
        pytest.param("You're out of extra usage. Add more at claude.ai/settings/usage and keep going.",
                     id="out-of-extra-usage"),
    ],
)
def test_a_refusal_of_the_requests_class_holds_nothing(message: str) -> None:
    error = vendor_error({"type": "error", "error": {"type": "rate_limit_error", "message": message},
                          "request_id": "req_011CY5YJLsmBrFu4pcWKKt5b"})
    assert error == f"rate_limit_error: {message}"
    # Whatever the overall verdict says of this request, no window is spent.
    headers = SUBSCRIPTION_200 | {"anthropic-ratelimit-unified-status": "rejected",
                                  "anthropic-ratelimit-unified-overage-status": "rejected",
                                  "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
                                  "retry-after": "60"}
    effects = judge(429, headers, error, "claude-sonnet-4-5-20250929")
    assert effects.holds == () and effects.class_refusal == message
    assert len(effects.windows) == 3  # still recorded
    assert judge(429, {}, error, "claude-opus-4-6").holds == ()


# -- usage windows: Codex ------------------------------------------------------------------------------------

# A Plus account's exhausted 5-hour window, headers and body as reported in earendil-works/pi#4172.
CODEX_LIMITED = {
    "x-codex-active-limit": "premium", "x-codex-plan-type": "plus",
    "x-codex-primary-used-percent": "100", "x-codex-secondary-used-percent": "80",
    "x-codex-primary-window-minutes": "300", "x-codex-primary-over-secondary-limit-percent": "0",
    "x-codex-secondary-window-minutes": "10080", "x-codex-primary-reset-after-seconds": "13873",
    "x-codex-secondary-reset-after-seconds": "316705", "x-codex-primary-reset-at": "1777936568",
    "x-codex-secondary-reset-at": "1778239400", "x-codex-credits-has-credits": "False",
    "x-codex-credits-balance": "0", "x-codex-credits-unlimited": "False",
}
CODEX_BODY = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                        "plan_type": "plus", "resets_at": 1777936568, "eligible_promo": None,
                        "resets_in_seconds": 13872}}
CODEX_NOW = 1777936568.0 - 13872


def test_codex_usage_limit_reached_holds_the_account_until_the_announced_reset() -> None:
    error = vendor_error(CODEX_BODY)
    assert error == ("usage_limit_reached: The usage limit has been reached "
                     "(resets_at=1777936568, resets_in_seconds=13872)")
    effects = judge(429, CODEX_LIMITED, error, "gpt-5-codex", now=CODEX_NOW, platform="openai-responses")
    assert effects.holds == (Hold(HoldKind.WINDOW, "", 1777936568.0, "usage window primary, usage_limit_reached "
                                                                      "exhausted"),)
    assert set(effects.windows) == {Window("", "primary", 1.0, 1777936568.0),
                                    Window("", "secondary", 0.8, 1778239400.0)}


def test_codex_usage_limit_reached_in_the_body_alone_holds_for_its_resets_in_seconds() -> None:
    # The body without resets_at (the Codex backend fake of tests/edge/test_codex_backend.py).
    error = vendor_error({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                    "resets_in_seconds": 600}})
    effects = judge(429, {"x-codex-primary-used-percent": "12", "x-codex-primary-window-minutes": "300"}, error,
                    "gpt-5", platform="openai-responses")
    assert effects.holds == (Hold(HoldKind.WINDOW, "", NOW + 600, "usage window usage_limit_reached exhausted"),)
    assert effects.windows == (Window("", "primary", 0.12, None),)


def test_codex_windows_are_read_from_every_answer_but_not_a_placeholder() -> None:
    # A free plan's only (weekly) window spent, the secondary all zeros (icebear0828/codex-proxy#65).
    headers = {"x-codex-active-limit": "codex", "x-codex-plan-type": "free",
               "x-codex-primary-used-percent": "100", "x-codex-secondary-used-percent": "0",
               "x-codex-primary-window-minutes": "10080", "x-codex-primary-over-secondary-limit-percent": "0",
               "x-codex-secondary-window-minutes": "0", "x-codex-primary-reset-after-seconds": "471285",
               "x-codex-secondary-reset-after-seconds": "0", "x-codex-primary-reset-at": "1773860656",
               "x-codex-secondary-reset-at": ""}
    now = 1773860656.0 - 471285
    assert judge(200, headers, now=now).windows == (Window("", "primary", 1.0, 1773860656.0),)
    effects = judge(429, headers, "", "gpt-5.3-codex", now=now, platform="openai-responses")
    assert effects.holds == (Hold(HoldKind.WINDOW, "", 1773860656.0, "usage window primary exhausted"),)


# -- the credential, the breaker -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param("anthropic/error-401-authentication_error.yaml", "authentication_error: invalid x-api-key",
                     id="anthropic-401"),
        pytest.param("bedrock/error-403-ExpiredTokenException.yaml",
                     "The security token included in the request is expired", id="bedrock-403"),
    ],
)
def test_a_refused_credential_is_an_error_until_cleared(path: str, reason: str) -> None:
    status, headers, error = recorded(path)
    effects = judge(status, headers, error, platform=path.partition("/")[0])
    assert effects.holds == (Hold(HoldKind.ERROR, "", None, reason),)
    assert effects.breaker is Breaker.NONE


def test_a_sign_in_that_could_not_be_renewed_is_an_error_with_the_edges_reason() -> None:
    effects = judge(0, outcome=router_pb2.OUTCOME_AUTH_FAILED, error_type="oauth_refresh")
    assert effects.holds == (Hold(HoldKind.ERROR, "", None, "oauth_refresh"),)


@pytest.mark.parametrize(
    ("outcome", "status", "error_type", "breaker"),
    [
        pytest.param(router_pb2.OUTCOME_SUCCESS, 200, "", Breaker.SUCCESS, id="success"),
        pytest.param(router_pb2.OUTCOME_UPSTREAM_ERROR, 500, "http_500", Breaker.FAILURE, id="5xx"),
        pytest.param(router_pb2.OUTCOME_UPSTREAM_ERROR, 200, "upstream_error", Breaker.FAILURE, id="stream-error"),
        pytest.param(router_pb2.OUTCOME_CONNECT_ERROR, 0, "connect_error", Breaker.FAILURE, id="connect"),
        pytest.param(router_pb2.OUTCOME_TIMEOUT, 0, "timeout", Breaker.FAILURE, id="timeout"),
        pytest.param(router_pb2.OUTCOME_TRUNCATED, 200, "upstream_broke", Breaker.FAILURE, id="cut"),
        pytest.param(router_pb2.OUTCOME_TRUNCATED, 200, "client_closed", Breaker.NONE, id="client-left"),
        pytest.param(router_pb2.OUTCOME_TRUNCATED, 200, "shutdown", Breaker.NONE, id="edge-draining"),
        pytest.param(router_pb2.OUTCOME_CLIENT_ERROR, 400, "http_400", Breaker.NONE, id="clients-4xx"),
        pytest.param(router_pb2.OUTCOME_CANCELLED, 0, "error", Breaker.NONE, id="cancelled"),
    ],
)
def test_failures_count_towards_the_breaker_and_a_success_resets_it(outcome: int, status: int, error_type: str,
                                                                      breaker: Breaker) -> None:
    effects = judge(status, outcome=outcome, error_type=error_type)
    assert effects.breaker is breaker and effects.holds == ()


# -- errors inside a stream that began with 200 ---------------------------------------------------------------
# The edge reports a vendor's in-stream error with the stream's status (200) and headers, the excerpt of the error
# event (`error_excerpt`, as for a refusal's body) and the outcome its kind calls for (`failover.in_stream`).

# A real 200 stream's headers: Anthropic sends `retry-after: 24` with it, before any error could happen.
STREAM_HEADERS = recorded("anthropic/headers-retry-after-on-200-stream.yaml")[1]
RESPONSES_FAILURE = [orjson.loads(line) for line in (
    RECORDINGS / "openai-responses/stream-error-insufficient_quota.chunks.txt").read_text().splitlines()]


def in_stream(event: dict[str, Any], headers: dict[str, str] | None = None, model: str = "claude-sonnet-4-5",
              platform: str = "claude-console") -> tuple[str, Effects]:
    error = error_excerpt(event)
    return error, judge(200, STREAM_HEADERS if headers is None else headers, error, model,
                        outcome=failover.in_stream(error_kind(event)), platform=platform, error_type="upstream_error")


def test_an_overloaded_error_mid_stream_is_the_short_overloaded_cooldown_whatever_the_200_said() -> None:
    error, effects = in_stream({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert error == "overloaded_error: Overloaded"
    assert effects.holds == (Hold(HoldKind.OVERLOADED, "sonnet", NOW + 15, error),)  # not the 200's 24 s
    assert effects.breaker is Breaker.NONE


def test_a_rate_limit_error_mid_stream_is_a_throttle_of_its_own_default_length() -> None:
    error, effects = in_stream({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}})
    assert effects.holds == (Hold(HoldKind.THROTTLED, "sonnet", NOW + 30, error),)


@pytest.mark.parametrize("code", ["server_is_overloaded", "slow_down"])
def test_the_codex_backends_capacity_failures_are_overloaded(code: str) -> None:
    # A `response.failed`'s error as the Codex backend sends it at capacity (`slow_down` is its other capacity code).
    event = {"error": {"code": code, "message": "Selected model is at capacity. Please try a different model."}}
    error, effects = in_stream(event, {}, "gpt-5-codex", "openai-responses")
    assert effects.holds == (Hold(HoldKind.OVERLOADED, "", NOW + 15, error),)


def test_a_spent_usage_limit_mid_stream_holds_the_account_until_its_reset() -> None:
    event = {"type": "error", "error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                        "resets_at": int(NOW) + 13872, "resets_in_seconds": 13872}}
    headers = {"x-codex-primary-used-percent": "97", "x-codex-primary-window-minutes": "300", "retry-after": "5"}
    _, effects = in_stream(event, headers, "gpt-5-codex", "openai-responses")
    assert [(hold.kind, hold.family, hold.until) for hold in effects.holds] == [(HoldKind.WINDOW, "", NOW + 13872)]


def test_a_recorded_quota_failure_mid_stream_is_the_longest_throttle() -> None:
    event = next(event for event in RESPONSES_FAILURE if event["type"] == "error")
    error, effects = in_stream(event, {}, "gpt-5-nano", "openai-responses")
    assert error.startswith("insufficient_quota: You exceeded your current quota")
    assert [(hold.kind, hold.until) for hold in effects.holds] == [(HoldKind.THROTTLED, NOW + 300)]


def test_a_server_error_mid_stream_counts_towards_the_breaker_and_holds_nothing() -> None:
    event = {"error": {"code": "server_error", "message": "An error occurred while processing your request."}}
    _, effects = in_stream(event, {}, "gpt-5", "openai-responses")
    assert effects.holds == () and effects.breaker is Breaker.FAILURE


# -- families and the wire -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-opus-4-1", "opus"),
        ("claude-opus-4-1-20250805", "opus"),
        ("claude-sonnet-4-5-20250929", "sonnet"),
        ("claude-3-7-sonnet-20250219", "sonnet"),
        ("claude-3-5-haiku-latest", "haiku"),
        ("claude-haiku-4-5", "haiku"),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "sonnet"),
        ("anthropic.claude-opus-4-1-20250805-v1:0", "opus"),
        ("claude-3-5-sonnet-v2@20241022", "sonnet"),
        ("Claude-Opus-4-1", "opus"),
        ("claude-fable-5-1", "fable"),  # a newer family named the same way
        ("claude-2.1", ""),
        ("gpt-5-codex", ""),
        ("gemini-2.5-pro", ""),
        ("", ""),
    ],
)
def test_model_family(model: str, expected: str) -> None:
    assert family(model) == expected


def test_a_report_from_the_wire() -> None:
    request = router_pb2.ReportOutcomeRequest(
        lease_id="l", account_id="claude-official/a", outcome=router_pb2.OUTCOME_RATE_LIMITED, status_code=429,
        upstream_headers={"retry-after": "12"}, error_type="http_429",
        upstream_error="rate_limit_error: Error", model="claude-opus-4-1")
    report = reported(request, "claude-official", NOW)
    assert report == Reported("claude-official", router_pb2.OUTCOME_RATE_LIMITED, 429, NOW, {"retry-after": "12"},
                              "rate_limit_error: Error", "claude-opus-4-1", "http_429")
    assert decide(report).holds == (Hold(HoldKind.THROTTLED, "opus", NOW + 12, "rate_limit_error: Error"),)
