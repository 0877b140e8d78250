"""Authenticate over the in-process gRPC server: the key checks alone, on Authorize's cache."""

import logging
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from prometheus_client import REGISTRY

from switchboard.auth.v1 import auth_pb2
from switchboard_auth.keys import KeyHasher, KeyState
from switchboard_auth.service import AuthServicer

from .auth_testing import PEPPER, Harness

ALLOW, DENY = auth_pb2.DECISION_ALLOW, auth_pb2.DECISION_DENY


class LookupCounter:
    """Counts key store lookups by hash (what a cache hit must avoid)."""

    def __init__(self, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = harness.keys.get_by_hash

        async def counted(key_hash: str) -> object:
            self.calls += 1
            return await real(key_hash)

        monkeypatch.setattr(harness.keys, "get_by_hash", counted)


@pytest.fixture
def lookups(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> LookupCounter:
    return LookupCounter(harness, monkeypatch)


def decisions(decision: str, reason: str) -> float:
    return REGISTRY.get_sample_value("switchboard_auth_decisions_total", {"decision": decision, "reason": reason}) or 0


async def test_active_key_is_allowed_with_identity_and_permissions_whatever_it_may_use(harness: Harness) -> None:
    plaintext, record = await harness.create(
        "team", platforms=["claude-console"], models=["claude-*"], groups=["g1", "g2"]
    )
    response = await harness.authenticate(plaintext)
    assert (response.decision, response.reason) == (ALLOW, auth_pb2.REASON_OK)
    assert (response.identity.key_id, response.identity.name) == (record.key_id, "team")
    assert list(response.identity.groups) == ["g1", "g2"]
    assert list(response.permissions.allowed_platforms) == ["claude-console"]
    assert list(response.permissions.allowed_models) == ["claude-*"]
    assert list(response.allowed_platforms) == []  # no platform was asked about
    assert not response.HasField("reuse_for")


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("sk-sb-" + "x" * 40, id="well-formed-but-unknown"),
        pytest.param("Bearer nonsense", id="garbage"),
        pytest.param("sk-" + "y" * 5000, id="oversized"),
    ],
)
async def test_unknown_credential_is_key_invalid_and_never_echoed(harness: Harness, credential: str) -> None:
    response = await harness.authenticate(credential)
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_INVALID)
    assert credential not in response.message
    assert not response.HasField("identity")


async def test_disabled_key_is_key_disabled_with_identity(harness: Harness) -> None:
    plaintext, record = await harness.create("off")
    await harness.keys.set_state("off", KeyState.DISABLED)
    response = await harness.authenticate(plaintext)
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_DISABLED)
    assert response.identity.key_id == record.key_id


async def test_key_is_authenticated_until_expiry_then_key_expired(harness: Harness) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    plaintext, _ = await harness.create("short", expires_at=expires)
    assert (await harness.authenticate(plaintext)).decision == ALLOW
    harness.wall_clock.value = expires.timestamp()
    response = await harness.authenticate(plaintext)
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_EXPIRED)
    assert expires.strftime("%Y-%m-%dT%H:%M:%SZ") in response.message


async def test_empty_credential_is_key_missing_without_a_lookup(harness: Harness, lookups: LookupCounter) -> None:
    response = await harness.authenticate("")
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_MISSING)
    assert lookups.calls == 0


async def test_oversized_credential_is_refused_without_a_lookup(harness: Harness, lookups: LookupCounter) -> None:
    response = await harness.authenticate("sk-" + "y" * 5000)
    assert response.reason == auth_pb2.REASON_KEY_INVALID
    assert lookups.calls == 0


async def test_refusals_carry_the_same_reason_and_message_as_authorize(harness: Harness) -> None:
    disabled, _ = await harness.create("off")
    await harness.keys.set_state("off", KeyState.DISABLED)
    expired, _ = await harness.create("old", expires_at=datetime.now(UTC) + timedelta(hours=1))
    harness.wall_clock.advance(2 * 3600)
    for credential in ("", "sk-sb-unknown", disabled, expired):
        authenticated, authorized = await harness.authenticate(credential), await harness.authorize(credential)
        assert authenticated.decision == DENY
        assert (authenticated.reason, authenticated.message) == (authorized.reason, authorized.message)


async def test_second_call_is_served_from_the_cache_and_so_is_the_authorize_after_it(
    harness: Harness, lookups: LookupCounter
) -> None:
    plaintext, _ = await harness.create("cached")
    assert (await harness.authenticate(plaintext)).decision == ALLOW
    assert lookups.calls == 1
    assert (await harness.authenticate(plaintext)).decision == ALLOW
    assert (await harness.authorize(plaintext)).decision == ALLOW
    assert (await harness.authenticate("sk-sb-unknown")).reason == auth_pb2.REASON_KEY_INVALID
    assert (await harness.authenticate("sk-sb-unknown")).reason == auth_pb2.REASON_KEY_INVALID
    assert lookups.calls == 2  # one per distinct credential: found and not-found answers are both cached
    harness.expire_cache()
    await harness.authenticate(plaintext)
    assert lookups.calls == 3


async def test_store_failure_is_unavailable_not_a_decision(harness: Harness) -> None:
    await harness.keys.close()
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await harness.authenticate("sk-sb-" + "z" * 40)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_decisions_are_counted_like_authorize(harness: Harness) -> None:
    plaintext, _ = await harness.create("metered")
    before = {
        ("allow", "ok"): decisions("allow", "ok"),
        ("deny", "key_missing"): decisions("deny", "key_missing"),
        ("deny", "key_invalid"): decisions("deny", "key_invalid"),
    }
    await harness.authenticate(plaintext)
    await harness.authenticate("")
    await harness.authenticate("sk-sb-unknown")
    await harness.authenticate("sk-sb-unknown")
    assert decisions("allow", "ok") - before[("allow", "ok")] == 1
    assert decisions("deny", "key_missing") - before[("deny", "key_missing")] == 1
    assert decisions("deny", "key_invalid") - before[("deny", "key_invalid")] == 2


async def test_no_reuse_for_even_when_authorize_would_give_one(harness: Harness) -> None:
    servicer = AuthServicer(
        harness.keys,
        harness.ledger,
        hasher=KeyHasher(PEPPER),
        cache_ttl_seconds=0,
        cache_max_entries=10,
        decision_reuse_seconds=1.5,
        now=harness.wall_clock,
    )
    plaintext, _ = await harness.create("lasting")
    response = await servicer.Authenticate(auth_pb2.AuthenticateRequest(credential=plaintext), None)  # type: ignore[arg-type]
    assert response.decision == ALLOW
    assert not response.HasField("reuse_for")


async def test_neither_the_key_nor_its_hash_is_logged_at_any_level(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    plaintext, record = await harness.create("quiet")
    await harness.keys.set_state("quiet", KeyState.DISABLED)
    with caplog.at_level(logging.DEBUG):
        await harness.authenticate(plaintext)
        await harness.authorize(plaintext)
        harness.expire_cache()
        await harness.keys.get_by_hash(record.key_hash)
        await harness.authenticate(plaintext)
    assert "denied key quiet" in caplog.text  # DEBUG records were captured
    assert plaintext not in caplog.text
    assert record.key_hash not in caplog.text
