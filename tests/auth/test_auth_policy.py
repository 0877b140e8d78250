"""The decision rules (policy.decide, policy.authenticate) on plain data: order of checks, platforms, globs."""

import fnmatch
from datetime import UTC, datetime, timedelta

import pytest

from switchboard_auth.keys import KeyRecord, KeyState
from switchboard_auth.policy import CompiledKey, Reason, authenticate, decide

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def key(**fields: object) -> CompiledKey:
    base: dict[str, object] = {
        "key_id": "key_0123456789ab",
        "name": "k",
        "key_hash": "h",
        "state": KeyState.ACTIVE,
        "created_at": NOW - timedelta(days=1),
    }
    return CompiledKey.of(KeyRecord(**(base | fields)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("compiled", "platforms", "model", "reason"),
    [
        pytest.param(None, ["openai"], "gpt-4o", Reason.KEY_INVALID, id="unknown-key"),
        pytest.param(key(state=KeyState.DISABLED), ["openai"], "gpt-4o", Reason.KEY_DISABLED, id="disabled"),
        pytest.param(key(expires_at=NOW), ["openai"], "gpt-4o", Reason.KEY_EXPIRED, id="expired-at-now"),
        pytest.param(
            key(state=KeyState.DISABLED, expires_at=NOW - timedelta(1)), ["openai"], "m", Reason.KEY_DISABLED,
            id="disabled-wins-over-expired",
        ),
        pytest.param(
            key(expires_at=NOW - timedelta(1), allowed_platforms=("gemini",)), ["openai"], "m", Reason.KEY_EXPIRED,
            id="expired-wins-over-platform",
        ),
        pytest.param(
            key(allowed_platforms=("gemini",)), ["openai", "azure-openai"], "gpt-4o", Reason.PLATFORM_NOT_ALLOWED,
            id="no-requested-platform-allowed",
        ),
        pytest.param(
            key(allowed_platforms=("gemini",), allowed_models=("x",)), ["openai"], "gpt-4o",
            Reason.PLATFORM_NOT_ALLOWED, id="platform-wins-over-model",
        ),
        pytest.param(key(allowed_models=("claude-*",)), ["openai"], "gpt-4o", Reason.MODEL_NOT_ALLOWED, id="model"),
        pytest.param(key(expires_at=NOW + timedelta(1)), ["openai"], "gpt-4o", Reason.OK, id="not-yet-expired"),
        pytest.param(key(), [], "", Reason.OK, id="unrestricted-empty-request"),
    ],
)
def test_checks_run_in_order_and_first_failure_decides(
    compiled: CompiledKey | None, platforms: list[str], model: str, reason: Reason
) -> None:
    verdict = decide(compiled, platforms, model, NOW.timestamp())
    assert verdict.reason is reason
    assert verdict.allowed is (reason is Reason.OK)
    assert verdict.message.endswith(".")


@pytest.mark.parametrize(
    ("allowed", "requested", "expected"),
    [
        pytest.param((), ["bedrock", "claude-console"], ("bedrock", "claude-console"), id="unrestricted-passes-all"),
        pytest.param(
            ("claude-console", "bedrock"), ["claude-official", "bedrock", "claude-console"],
            ("bedrock", "claude-console"), id="filtered-in-request-order",
        ),
        pytest.param(("gemini", "openai"), [], ("gemini", "openai"), id="no-request-platforms-gets-key-list"),
    ],
)
def test_allowed_platforms_are_the_requested_ones_the_key_may_use(
    allowed: tuple[str, ...], requested: list[str], expected: tuple[str, ...]
) -> None:
    verdict = decide(key(allowed_platforms=allowed), requested, "m", NOW.timestamp())
    assert verdict.allowed
    assert verdict.allowed_platforms == expected


@pytest.mark.parametrize(
    ("patterns", "model"),
    [
        pytest.param(("claude-*",), "claude-sonnet-4-20250514", id="star"),
        pytest.param(("claude-*",), "Claude-sonnet", id="case-sensitive"),
        pytest.param(("gpt-4?",), "gpt-4o", id="question-mark"),
        pytest.param(("gpt-4?",), "gpt-4o-mini", id="anchored-at-end"),
        pytest.param(("gemini-2.5-[fp]*",), "gemini-2.5-flash", id="char-class"),
        pytest.param(("gemini-2.5-[fp]*",), "gemini-2.5-ultra", id="char-class-miss"),
        pytest.param(("a.b",), "axb", id="dot-is-literal"),
        pytest.param(("o3", "gpt-*"), "o3", id="second-of-two"),
        pytest.param(("*",), "", id="star-matches-empty"),
    ],
)
def test_model_globs_match_exactly_like_fnmatchcase(patterns: tuple[str, ...], model: str) -> None:
    expected = any(fnmatch.fnmatchcase(model, p) for p in patterns)
    verdict = decide(key(allowed_models=patterns), ["openai"], model, NOW.timestamp())
    assert verdict.allowed is expected


def test_denial_messages_name_the_problem_but_cap_client_text() -> None:
    long_model = "m" * 10_000
    verdict = decide(key(allowed_models=("x",)), ["openai"], long_model, NOW.timestamp())
    assert verdict.reason is Reason.MODEL_NOT_ALLOWED
    assert len(verdict.message) < 300
    expired = decide(key(expires_at=datetime(2026, 1, 1, tzinfo=UTC)), ["openai"], "m", NOW.timestamp())
    assert "2026-01-01T00:00:00Z" in expired.message
    platform = decide(key(allowed_platforms=("gemini",)), ["openai"], "m", NOW.timestamp())
    assert "'openai'" in platform.message


@pytest.mark.parametrize(
    ("compiled", "reason"),
    [
        pytest.param(None, Reason.KEY_INVALID, id="unknown-key"),
        pytest.param(key(state=KeyState.DISABLED), Reason.KEY_DISABLED, id="disabled"),
        pytest.param(key(expires_at=NOW), Reason.KEY_EXPIRED, id="expired-at-now"),
        pytest.param(
            key(state=KeyState.DISABLED, expires_at=NOW - timedelta(1)), Reason.KEY_DISABLED,
            id="disabled-wins-over-expired",
        ),
        pytest.param(key(expires_at=NOW + timedelta(1)), Reason.OK, id="not-yet-expired"),
        pytest.param(
            key(allowed_platforms=("gemini",), allowed_models=("x",)), Reason.OK, id="restrictions-not-checked"
        ),
    ],
)
def test_authenticate_runs_only_the_key_checks_and_refuses_exactly_like_decide(
    compiled: CompiledKey | None, reason: Reason
) -> None:
    verdict = authenticate(compiled, NOW.timestamp())
    assert verdict.reason is reason
    assert verdict.key is compiled
    assert verdict.allowed_platforms == ()
    if reason is not Reason.OK:
        assert verdict == decide(compiled, ["openai"], "gpt-4o", NOW.timestamp())
