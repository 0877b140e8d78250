"""AuthService over a real in-process grpc.aio server and channel, with the generated stub."""

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from prometheus_client import REGISTRY

from switchboard.auth.v1 import auth_pb2
from switchboard_auth import service
from switchboard_auth.keys import KeyHasher, KeyState
from switchboard_auth.service import AuthServicer

from .auth_testing import PEPPER, Harness

ALLOW, DENY = auth_pb2.DECISION_ALLOW, auth_pb2.DECISION_DENY


def decisions(decision: str, reason: str) -> float:
    return REGISTRY.get_sample_value("switchboard_auth_decisions_total", {"decision": decision, "reason": reason}) or 0


def tokens(platform: str, model: str, token_type: str) -> float:
    labels = {"platform": platform, "model": model, "token_type": token_type}
    return REGISTRY.get_sample_value("switchboard_usage_tokens_total", labels) or 0


def usage(request_id: str, key_id: str, **fields: object) -> auth_pb2.UsageRecord:
    return auth_pb2.UsageRecord(request_id=request_id, key_id=key_id, platform="openai", model="gpt-4o", **fields)


async def test_empty_credential_is_key_missing(harness: Harness) -> None:
    response = await harness.authorize("")
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_MISSING)
    assert "API key" in response.message


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("sk-sb-" + "x" * 40, id="well-formed-but-unknown"),
        pytest.param("Bearer nonsense", id="garbage"),
        pytest.param("sk-" + "y" * 5000, id="oversized"),
    ],
)
async def test_unknown_credential_is_key_invalid_and_never_echoed(harness: Harness, credential: str) -> None:
    response = await harness.authorize(credential)
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_INVALID)
    assert credential not in response.message
    assert not response.HasField("identity")


async def test_disabled_key_is_key_disabled(harness: Harness) -> None:
    plaintext, record = await harness.create("off")
    await harness.keys.set_state("off", KeyState.DISABLED)
    response = await harness.authorize(plaintext)
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_DISABLED)
    assert response.identity.key_id == record.key_id  # the edge may log who was refused
    assert plaintext not in response.message


async def test_key_is_allowed_until_expiry_then_key_expired(harness: Harness) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    plaintext, _ = await harness.create("short", expires_at=expires)
    assert (await harness.authorize(plaintext)).decision == ALLOW
    harness.wall_clock.value = expires.timestamp()
    response = await harness.authorize(plaintext)
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_KEY_EXPIRED)
    assert expires.strftime("%Y-%m-%dT%H:%M:%SZ") in response.message


async def test_platform_not_allowed_when_no_requested_platform_is_permitted(harness: Harness) -> None:
    plaintext, _ = await harness.create("claude-only", platforms=["claude-console", "bedrock"])
    response = await harness.authorize(plaintext, platforms=["openai", "azure-openai"])
    assert (response.decision, response.reason) == (DENY, auth_pb2.REASON_PLATFORM_NOT_ALLOWED)
    assert list(response.allowed_platforms) == []


async def test_allow_filters_requested_platforms_in_request_order_and_fills_identity(harness: Harness) -> None:
    plaintext, record = await harness.create(
        "team", platforms=["bedrock", "claude-console"], models=["claude-*"], groups=["g1", "g2"]
    )
    response = await harness.authorize(
        plaintext, platforms=["claude-official", "claude-console", "claude-ccr", "bedrock"], model="claude-sonnet-4"
    )
    assert (response.decision, response.reason) == (ALLOW, auth_pb2.REASON_OK)
    assert list(response.allowed_platforms) == ["claude-console", "bedrock"]
    assert response.identity.key_id == record.key_id
    assert response.identity.name == "team"
    assert list(response.identity.groups) == ["g1", "g2"]
    assert list(response.permissions.allowed_platforms) == ["bedrock", "claude-console"]
    assert list(response.permissions.allowed_models) == ["claude-*"]


async def test_unrestricted_key_gets_every_requested_platform(harness: Harness) -> None:
    plaintext, _ = await harness.create("all")
    response = await harness.authorize(plaintext, platforms=["gemini", "openai"], model="anything")
    assert response.decision == ALLOW
    assert list(response.allowed_platforms) == ["gemini", "openai"]
    assert list(response.permissions.allowed_platforms) == []


@pytest.mark.parametrize(
    ("model", "decision"),
    [
        pytest.param("gpt-4o", ALLOW, id="prefix-glob"),
        pytest.param("gpt-4o-mini", ALLOW, id="prefix-glob-longer"),
        pytest.param("o3", ALLOW, id="exact"),
        pytest.param("o3-pro", DENY, id="exact-is-anchored"),
        pytest.param("GPT-4o", DENY, id="case-sensitive"),
        pytest.param("claude-sonnet-4", DENY, id="other-family"),
    ],
)
async def test_models_are_matched_against_globs(harness: Harness, model: str, decision: int) -> None:
    plaintext, _ = await harness.create("gpt", models=["gpt-*", "o3"])
    response = await harness.authorize(plaintext, model=model)
    assert response.decision == decision
    if decision == DENY:
        assert response.reason == auth_pb2.REASON_MODEL_NOT_ALLOWED


async def test_store_changes_reach_authorize_only_after_the_cache_ttl(harness: Harness) -> None:
    plaintext, _ = await harness.create("cached")
    assert (await harness.authorize(plaintext)).decision == ALLOW
    await harness.keys.set_state("cached", KeyState.DISABLED)
    assert (await harness.authorize(plaintext)).decision == ALLOW  # served from cache within the TTL
    harness.expire_cache()
    assert (await harness.authorize(plaintext)).reason == auth_pb2.REASON_KEY_DISABLED
    await harness.keys.delete("cached")
    harness.expire_cache()
    assert (await harness.authorize(plaintext)).reason == auth_pb2.REASON_KEY_INVALID


async def test_store_failure_is_unavailable_not_a_decision(harness: Harness) -> None:
    await harness.keys.close()
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await harness.authorize("sk-sb-" + "z" * 40)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_decision_counters_move_by_reason(harness: Harness) -> None:
    plaintext, _ = await harness.create("metered", models=["gpt-*"])
    before = {
        ("allow", "ok"): decisions("allow", "ok"),
        ("deny", "key_missing"): decisions("deny", "key_missing"),
        ("deny", "key_invalid"): decisions("deny", "key_invalid"),
        ("deny", "model_not_allowed"): decisions("deny", "model_not_allowed"),
    }
    await harness.authorize(plaintext)
    await harness.authorize(plaintext)
    await harness.authorize("")
    await harness.authorize("sk-sb-unknown")
    await harness.authorize(plaintext, model="claude-x")
    assert decisions("allow", "ok") - before[("allow", "ok")] == 2
    assert decisions("deny", "key_missing") - before[("deny", "key_missing")] == 1
    assert decisions("deny", "key_invalid") - before[("deny", "key_invalid")] == 1
    assert decisions("deny", "model_not_allowed") - before[("deny", "model_not_allowed")] == 1


async def test_no_metric_label_carries_the_key_its_hash_or_key_id(harness: Harness) -> None:
    plaintext, record = await harness.create("secretive")
    await harness.authorize(plaintext)
    records = [usage("req-secret", record.key_id, usage=auth_pb2.TokenUsage(input_tokens=1))]
    await harness.stub.RecordUsage(auth_pb2.RecordUsageRequest(records=records), timeout=5)
    label_values = {v for family in REGISTRY.collect() for s in family.samples for v in s.labels.values()}
    assert "gpt-4o" in label_values  # the usage did reach the metrics
    assert not {plaintext, record.key_hash, record.key_id, record.name} & label_values


async def test_record_usage_is_idempotent_persisted_and_counted_once(harness: Harness) -> None:
    _, record = await harness.create("user")
    started = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    started_pb = timestamp_pb2.Timestamp()
    started_pb.FromDatetime(started)
    first = usage(
        "req-1", record.key_id, account_id="acct-1", upstream_model="gpt-4o-2024", status_code=200, stream=True,
        usage=auth_pb2.TokenUsage(input_tokens=100, output_tokens=20, cache_read_input_tokens=7, reasoning_tokens=3),
        started_at=started_pb, duration=duration_pb2.Duration(seconds=1, nanos=500_000_000),
        time_to_first_token=duration_pb2.Duration(nanos=250_000_000), client_format="openai", session_id="s1",
    )
    second = usage("req-2", record.key_id, usage=auth_pb2.TokenUsage(input_tokens=1))
    input_before, cached_before = tokens("openai", "gpt-4o", "input"), tokens("openai", "gpt-4o", "cached_input")

    response = await harness.stub.RecordUsage(auth_pb2.RecordUsageRequest(records=[first, second, first]), timeout=5)
    assert response.accepted == 2
    retry = await harness.stub.RecordUsage(auth_pb2.RecordUsageRequest(records=[first, second]), timeout=5)
    assert retry.accepted == 0

    assert tokens("openai", "gpt-4o", "input") - input_before == 101
    assert tokens("openai", "gpt-4o", "cached_input") - cached_before == 7
    with sqlite3.connect(harness.db_path) as conn:
        stored = conn.execute(
            "SELECT request_id, key_id, account_id, upstream_model, input_tokens, output_tokens,"
            " cache_read_input_tokens, reasoning_tokens, status_code, stream, duration_seconds,"
            " time_to_first_token_seconds, client_format, session_id, started_at"
            " FROM usage_records ORDER BY request_id"
        ).fetchall()
    assert stored[0] == (
        "req-1", record.key_id, "acct-1", "gpt-4o-2024", 100, 20, 7, 3, 200, 1, 1.5, 0.25, "openai", "s1",
        "2026-05-01T12:00:00.000000Z",
    )
    assert [row[0] for row in stored] == ["req-1", "req-2"]
    assert stored[1][11] is None  # no time_to_first_token reported
    last_used = (await harness.keys.get("user")).last_used_at  # type: ignore[union-attr]
    assert last_used is not None and last_used >= started


async def test_malformed_usage_records_are_dropped_and_counted_while_the_rest_is_written(harness: Harness) -> None:
    def invalid() -> float:
        return REGISTRY.get_sample_value("switchboard_auth_usage_records_total", {"result": "invalid"}) or 0

    before = invalid()
    batch = auth_pb2.RecordUsageRequest(
        records=[
            usage("ok-1", "key_0123456789ab"),
            usage("", "key_0123456789ab"),
            usage("neg-1", "key_0123456789ab", usage=auth_pb2.TokenUsage(output_tokens=-5)),
        ]
    )
    response = await harness.stub.RecordUsage(batch, timeout=5)
    assert response.accepted == 1
    assert invalid() - before == 2
    with sqlite3.connect(harness.db_path) as conn:
        assert conn.execute("SELECT request_id FROM usage_records").fetchall() == [("ok-1",)]


async def test_ledger_failure_is_unavailable_so_the_caller_keeps_its_batch(harness: Harness) -> None:
    await harness.ledger.close()
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await harness.stub.RecordUsage(auth_pb2.RecordUsageRequest(records=[usage("r", "k")]), timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_grpc_server_metrics_count_authorize_calls(harness: Harness) -> None:
    labels = {"grpc_service": "switchboard.auth.v1.AuthService", "grpc_method": "Authorize", "grpc_code": "OK"}
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    await harness.authorize("")
    assert REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 1


async def test_allow_says_how_long_it_may_be_reused_capped_by_expiry(harness: Harness) -> None:
    servicer = AuthServicer(harness.keys, harness.ledger, hasher=KeyHasher(PEPPER), cache_ttl_seconds=0,
                            cache_max_entries=10, decision_reuse_seconds=1.5, now=harness.wall_clock)
    lasting, _ = await harness.create("lasting")
    soon = datetime.fromtimestamp(harness.wall_clock() + 0.25, UTC)
    brief, _ = await harness.create("brief", expires_at=soon)

    def ask(credential: str) -> auth_pb2.AuthorizeRequest:
        return auth_pb2.AuthorizeRequest(credential=credential, platforms=["openai"], model="gpt-4o")

    allowed = await servicer.Authorize(ask(lasting), None)  # type: ignore[arg-type]
    assert allowed.decision == ALLOW and allowed.reuse_for.ToTimedelta().total_seconds() == 1.5
    capped = await servicer.Authorize(ask(brief), None)  # type: ignore[arg-type]
    assert 0 < capped.reuse_for.ToTimedelta().total_seconds() <= 0.25
    denied = await servicer.Authorize(ask("sk-sb-unknown"), None)  # type: ignore[arg-type]
    assert denied.decision == DENY and not denied.HasField("reuse_for")


async def test_no_reuse_when_not_configured(harness: Harness) -> None:
    plaintext, _ = await harness.create("plain")
    assert not (await harness.authorize(plaintext)).HasField("reuse_for")


async def test_record_usage_stores_the_estimate_flag_and_end_reason(harness: Harness) -> None:
    batch = auth_pb2.RecordUsageRequest(
        records=[
            usage("est-1", "key_0123456789ab", usage_estimated=True, end_reason="upstream_broke", truncated=True),
            usage("done-1", "key_0123456789ab", end_reason="complete"),
            usage("old-edge-1", "key_0123456789ab"),
        ]
    )
    assert (await harness.stub.RecordUsage(batch, timeout=5)).accepted == 3
    with sqlite3.connect(harness.db_path) as conn:
        stored = conn.execute(
            "SELECT request_id, usage_estimated, end_reason, truncated FROM usage_records ORDER BY request_id"
        ).fetchall()
    assert stored == [("done-1", 0, "complete", 0), ("est-1", 1, "upstream_broke", 1), ("old-edge-1", 0, "", 0)]


async def test_record_usage_stores_the_cache_writes_split_by_duration(harness: Harness) -> None:
    def cache_writes(total: int, five_minutes: int, one_hour: int) -> auth_pb2.TokenUsage:
        return auth_pb2.TokenUsage(input_tokens=3, output_tokens=9, cache_creation_input_tokens=total,
                                   cache_creation_5m_input_tokens=five_minutes,
                                   cache_creation_1h_input_tokens=one_hour)

    batch = auth_pb2.RecordUsageRequest(
        records=[
            usage("split-1", "key_0123456789ab", usage=cache_writes(1000, 400, 600)),
            usage("total-only-1", "key_0123456789ab", usage=cache_writes(1000, 0, 0)),
            usage("part-1", "key_0123456789ab", usage=cache_writes(1000, 0, 200)),
        ]
    )
    before = tokens("openai", "gpt-4o", "cache_creation_input")
    assert (await harness.stub.RecordUsage(batch, timeout=5)).accepted == 3
    assert tokens("openai", "gpt-4o", "cache_creation_input") - before == 3000  # the split is not counted twice
    with sqlite3.connect(harness.db_path) as conn:
        stored = conn.execute(
            "SELECT request_id, cache_creation_input_tokens, cache_creation_5m_input_tokens,"
            " cache_creation_1h_input_tokens FROM usage_records ORDER BY request_id"
        ).fetchall()
    assert stored == [("part-1", 1000, 0, 200), ("split-1", 1000, 400, 600), ("total-only-1", 1000, 0, 0)]


@pytest.mark.parametrize(
    "token_usage",
    [
        pytest.param(auth_pb2.TokenUsage(cache_creation_input_tokens=10, cache_creation_5m_input_tokens=-1),
                     id="negative-5m"),
        pytest.param(auth_pb2.TokenUsage(cache_creation_input_tokens=10, cache_creation_1h_input_tokens=-1),
                     id="negative-1h"),
        pytest.param(auth_pb2.TokenUsage(cache_creation_input_tokens=10, cache_creation_5m_input_tokens=6,
                                         cache_creation_1h_input_tokens=5), id="split-above-total"),
        pytest.param(auth_pb2.TokenUsage(cache_creation_1h_input_tokens=1), id="split-without-total"),
    ],
)
async def test_a_cache_write_split_that_cannot_be_right_is_dropped(
    harness: Harness, token_usage: auth_pb2.TokenUsage
) -> None:
    batch = auth_pb2.RecordUsageRequest(records=[usage("bad-1", "key_0123456789ab", usage=token_usage),
                                                 usage("ok-1", "key_0123456789ab")])
    assert (await harness.stub.RecordUsage(batch, timeout=5)).accepted == 1
    with sqlite3.connect(harness.db_path) as conn:
        assert conn.execute("SELECT request_id FROM usage_records").fetchall() == [("ok-1",)]


async def test_a_big_usage_batch_lets_other_work_run_while_it_is_priced(harness: Harness,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Authorize answers share auth's event loop with RecordUsage: an edge's batch of hundreds of records is
    priced in turns, not in one stretch."""
    _, record = await harness.create("busy")
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    turns_at_pricing: list[int] = []
    price = service._entry

    def counted(*args: object) -> object:
        turns_at_pricing.append(turns)
        return price(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_entry", counted)
    records = [usage(f"req-turns-{n}", record.key_id, usage=auth_pb2.TokenUsage(input_tokens=1)) for n in range(200)]
    running = asyncio.create_task(other_work())
    try:
        response = await harness.stub.RecordUsage(auth_pb2.RecordUsageRequest(records=records), timeout=5)
    finally:
        running.cancel()
    assert response.accepted == 200 and len(turns_at_pricing) == 200
    assert turns_at_pricing[-1] - turns_at_pricing[0] >= 200 // service._RECORDS_PER_TURN - 1
