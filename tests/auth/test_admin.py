"""AdminService over a real in-process grpc.aio server on SQLite: the CLI's key operations, its JSON view, its
errors as gRPC statuses, and never a hash in a reply or a log line."""

import asyncio
import json
import logging
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard.auth.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc
from switchboard_auth.admin import ADMIN_SERVICE_NAME, AdminServicer
from switchboard_auth.keys import KeyLimits
from switchboard_auth.limits import MemoryLimiter
from switchboard_auth.usage import UsageEntry

from .auth_testing import PEPPER, Harness, free_port, run_cli, subprocess_env

KEY = re.compile(r"sk-sb-[A-Za-z0-9_-]{40}")
ALLOW, DENY = auth_pb2.DECISION_ALLOW, auth_pb2.DECISION_DENY


@pytest.fixture
async def admin(harness: Harness) -> AsyncIterator[admin_pb2_grpc.AdminServiceStub]:
    server = grpc.aio.server()
    AdminServicer(harness.keys, harness.ledger, pepper=PEPPER, now=harness.wall_clock).register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield admin_pb2_grpc.AdminServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


def stored_hashes(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [value for row in conn.execute("SELECT key_hash, previous_key_hash FROM api_keys")
                for value in row if value]


def spec(name: str, **fields: object) -> admin_pb2.KeySpec:
    return admin_pb2.KeySpec(name=name, **fields)  # type: ignore[arg-type]


async def create(admin: admin_pb2_grpc.AdminServiceStub, name: str, **fields: object) -> admin_pb2.IssuedKey:
    return await admin.CreateKey(admin_pb2.CreateKeyRequest(key=spec(name, **fields)), timeout=5)


async def status_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), caught.value.details() or ""


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def test_the_auth_process_serves_it_beside_auth_service(tmp_path: Path) -> None:
    port = free_port()
    env = subprocess_env(SWITCHBOARD_AUTH_LISTEN=f"127.0.0.1:{port}", SWITCHBOARD_AUTH_METRICS_PORT="-1",
                         SWITCHBOARD_AUTH_DB_PATH=str(tmp_path / "auth.db"))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard_auth", env=env,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(200):
                assert proc.returncode is None, "auth exited during start"
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=ADMIN_SERVICE_NAME), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("AdminService never reported SERVING")
            issued = await admin_pb2_grpc.AdminServiceStub(channel).CreateKey(
                admin_pb2.CreateKeyRequest(key=spec("booted")), timeout=5)
            allowed = await auth_pb2_grpc.AuthServiceStub(channel).Authenticate(
                auth_pb2.AuthenticateRequest(credential=issued.key), timeout=5)
            assert allowed.decision == ALLOW  # minted with the service's own pepper
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
        assert proc.returncode == 0, stderr.decode()
        assert "key booted (" in stderr.decode() and issued.key not in stderr.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_create_returns_the_key_once_and_it_works(admin: admin_pb2_grpc.AdminServiceStub,
                                                        harness: Harness) -> None:
    issued = await create(admin, "team-a", allowed_platforms=["openai"], allowed_models=["gpt-*"], groups=["g1"])
    assert KEY.fullmatch(issued.key)
    view = json.loads(issued.view.json)
    assert (issued.view.key_id, issued.view.name) == (view["key_id"], "team-a")
    assert view["key_prefix"] == issued.key[:12] and issued.key not in issued.view.json
    assert (view["state"], view["allowed_platforms"], view["allowed_models"], view["groups"]) == (
        "active", ["openai"], ["gpt-*"], ["g1"])
    response = await harness.authorize(issued.key, platforms=["openai"], model="gpt-4o")
    assert response.decision == ALLOW and response.identity.key_id == view["key_id"]


async def test_the_view_is_what_the_cli_prints(admin: admin_pb2_grpc.AdminServiceStub, harness: Harness) -> None:
    expires = timestamp_pb2.Timestamp()
    expires.FromDatetime(datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC))
    issued = await create(
        admin, "shaped", expires_at=expires, owner="team a", description="for the demo", tags=["demo", "a"],
        policy=admin_pb2.KeyPolicySpec(denied_platforms=["bedrock"], denied_models=["*-preview"],
                                       allowed_clients=["claude-code"], allowed_ips=["10.0.0.7/8"]),
        limits=admin_pb2.KeyLimitsSpec(requests_per_minute=60, daily_budget_micro_usd=25_000_000))
    shown = await run_cli("keys", "show", "shaped", "--json", db=harness.db_path)
    assert shown.returncode == 0, shown.stderr
    fetched = await admin.GetKey(admin_pb2.GetKeyRequest(ref="shaped"), timeout=5)
    assert json.loads(fetched.json) == json.loads(shown.stdout) == json.loads(issued.view.json)
    view = json.loads(fetched.json)
    assert view["expires_at"] == "2099-01-02T03:04:05Z"
    assert view["policy"] == {"denied_platforms": ["bedrock"], "denied_models": ["*-preview"],
                              "allowed_clients": ["claude-code"], "allowed_ips": ["10.0.0.0/8"]}
    assert view["limits"] == {"requests_per_minute": 60, "daily_budget_micro_usd": 25_000_000}


@pytest.mark.parametrize("fields, words", [
    pytest.param({"name": "key_0123456789ab"}, "looks like a key_id", id="name-like-a-key-id"),
    pytest.param({"name": ""}, "invalid key name", id="no-name"),
    pytest.param({"name": "p", "allowed_platforms": ["nope"]}, "unknown platform", id="platform"),
    pytest.param({"name": "l", "limits": admin_pb2.KeyLimitsSpec(concurrency=0)}, "positive whole number",
                 id="zero-limit"),
    pytest.param({"name": "i", "policy": admin_pb2.KeyPolicySpec(allowed_ips=["10.0.0.300"])}, "CIDR",
                 id="address"),
    pytest.param({"name": "c", "policy": admin_pb2.KeyPolicySpec(allowed_clients=["curl"])}, "unknown client",
                 id="client"),
])
async def test_an_invalid_spec_is_invalid_argument(admin: admin_pb2_grpc.AdminServiceStub, fields: dict[str, object],
                                                   words: str) -> None:
    code, details = await status_of(admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.KeySpec(**fields))))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and words in details


async def test_an_expiry_in_the_past_is_invalid_argument(admin: admin_pb2_grpc.AdminServiceStub) -> None:
    past = timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    code, details = await status_of(create(admin, "late", expires_at=past))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "in the past" in details


async def test_a_taken_name_is_already_exists(admin: admin_pb2_grpc.AdminServiceStub) -> None:
    await create(admin, "twice")
    code, details = await status_of(create(admin, "twice"))
    assert code is grpc.StatusCode.ALREADY_EXISTS and "'twice' already exists" in details


async def test_list_and_get_by_name_or_key_id_never_show_a_secret(admin: admin_pb2_grpc.AdminServiceStub,
                                                                  harness: Harness) -> None:
    second, first = await create(admin, "zeta"), await create(admin, "alpha")
    listed = await admin.ListKeys(admin_pb2.ListKeysRequest(), timeout=5)
    assert [view.name for view in listed.keys] == ["alpha", "zeta"]
    by_id = await admin.GetKey(admin_pb2.GetKeyRequest(ref=second.view.key_id), timeout=5)
    assert by_id.name == "zeta"
    replies = listed.SerializeToString() + by_id.SerializeToString()
    for secret in (first.key, second.key, *stored_hashes(harness.db_path)):
        assert secret.encode() not in replies
    for view in listed.keys:
        assert "hash" not in view.json


@pytest.mark.parametrize("ref", ["missing", "key_000000000000", ""])
async def test_an_unknown_ref_is_not_found_everywhere(admin: admin_pb2_grpc.AdminServiceStub, ref: str) -> None:
    calls = [
        admin.GetKey(admin_pb2.GetKeyRequest(ref=ref)),
        admin.UpdateKey(admin_pb2.UpdateKeyRequest(ref=ref, state=admin_pb2.KEY_STATE_DISABLED)),
        admin.UpdateKey(admin_pb2.UpdateKeyRequest(ref=ref, key=admin_pb2.KeySpec(owner="x"),
                                                   update_mask=mask("owner"))),
        admin.RotateKey(admin_pb2.RotateKeyRequest(ref=ref)),
        admin.DeleteKey(admin_pb2.DeleteKeyRequest(ref=ref)),
    ]
    for call in calls:
        code, details = await status_of(call)
        assert code is grpc.StatusCode.NOT_FOUND and "no key named or with key_id" in details


async def test_disable_then_enable(admin: admin_pb2_grpc.AdminServiceStub, harness: Harness) -> None:
    issued = await create(admin, "toggled")
    assert (await harness.authenticate(issued.key)).decision == ALLOW
    disabled = await admin.UpdateKey(admin_pb2.UpdateKeyRequest(ref="toggled", state=admin_pb2.KEY_STATE_DISABLED))
    assert json.loads(disabled.json)["state"] == "disabled"
    harness.expire_cache()
    refused = await harness.authenticate(issued.key)
    assert (refused.decision, refused.reason) == (DENY, auth_pb2.REASON_KEY_DISABLED)
    enabled = await admin.UpdateKey(admin_pb2.UpdateKeyRequest(ref=issued.view.key_id,
                                                               state=admin_pb2.KEY_STATE_ACTIVE))
    assert json.loads(enabled.json)["state"] == "active"
    harness.expire_cache()
    assert (await harness.authenticate(issued.key)).decision == ALLOW


async def test_update_changes_only_the_masked_fields(admin: admin_pb2_grpc.AdminServiceStub,
                                                     harness: Harness) -> None:
    issued = await create(admin, "edited", owner="before", tags=["x"], allowed_models=["gpt-*"],
                          limits=admin_pb2.KeyLimitsSpec(requests_per_minute=10, tokens_per_day=1000),
                          policy=admin_pb2.KeyPolicySpec(denied_models=["gpt-4o"]))
    update = admin_pb2.UpdateKeyRequest(
        ref="edited",
        key=admin_pb2.KeySpec(owner="after", tags=["ignored"], allowed_models=["claude-*"],
                              limits=admin_pb2.KeyLimitsSpec(concurrency=2),
                              policy=admin_pb2.KeyPolicySpec(allowed_clients=["codex-cli"])),
        update_mask=mask("owner", "allowed_models", "limits.requests_per_minute", "limits.concurrency",
                         "policy.allowed_clients"))
    view = json.loads((await admin.UpdateKey(update, timeout=5)).json)
    assert (view["owner"], view["tags"], view["allowed_models"]) == ("after", ["x"], ["claude-*"])
    assert view["limits"] == {"tokens_per_day": 1000, "concurrency": 2}  # requests_per_minute: unset, so removed
    assert view["policy"]["denied_models"] == ["gpt-4o"] and view["policy"]["allowed_clients"] == ["codex-cli"]
    assert view["key_prefix"] == issued.key[:12]  # the secret stays
    harness.expire_cache()
    assert (await harness.authenticate(issued.key)).decision == ALLOW
    (stored,) = (await harness.keys.list_all())
    assert stored.limits.requests_per_minute is None and stored.limits.concurrency == 2


async def test_update_can_replace_a_whole_block_and_state_at_once(admin: admin_pb2_grpc.AdminServiceStub) -> None:
    expires = timestamp_pb2.Timestamp()
    expires.FromDatetime(datetime(2099, 1, 1, tzinfo=UTC))
    await create(admin, "blocks", expires_at=expires, limits=admin_pb2.KeyLimitsSpec(requests_per_minute=10))
    update = admin_pb2.UpdateKeyRequest(ref="blocks", state=admin_pb2.KEY_STATE_DISABLED,
                                        key=admin_pb2.KeySpec(limits=admin_pb2.KeyLimitsSpec(tokens_per_minute=5)),
                                        update_mask=mask("limits", "expires_at"))
    view = json.loads((await admin.UpdateKey(update, timeout=5)).json)
    assert (view["state"], view["limits"], view["expires_at"]) == ("disabled", {"tokens_per_minute": 5}, None)


@pytest.mark.parametrize("request_, words", [
    pytest.param(admin_pb2.UpdateKeyRequest(ref="u"), "nothing to update", id="nothing"),
    pytest.param(admin_pb2.UpdateKeyRequest(ref="u", key=admin_pb2.KeySpec(name="v"), update_mask=mask("name")),
                 "name cannot change", id="rename"),
    pytest.param(admin_pb2.UpdateKeyRequest(ref="u", update_mask=mask("key_hash")), "unknown field 'key_hash'",
                 id="unknown-field"),
    pytest.param(admin_pb2.UpdateKeyRequest(ref="u", update_mask=mask("limits.nope")), "unknown field",
                 id="unknown-limit"),
    pytest.param(admin_pb2.UpdateKeyRequest(ref="u", key=admin_pb2.KeySpec(allowed_platforms=["nope"]),
                                            update_mask=mask("allowed_platforms")), "unknown platform",
                 id="bad-value"),
    pytest.param(admin_pb2.UpdateKeyRequest(ref="u", state=7), "unknown key state", id="bad-state"),
])
async def test_a_bad_update_is_invalid_argument_and_changes_nothing(
        admin: admin_pb2_grpc.AdminServiceStub, harness: Harness, request_: admin_pb2.UpdateKeyRequest,
        words: str) -> None:
    await create(admin, "u")
    before = await harness.keys.get("u")
    code, details = await status_of(admin.UpdateKey(request_))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and words in details
    assert await harness.keys.get("u") == before


async def test_rotate_with_grace_keeps_the_old_secret_for_a_while(admin: admin_pb2_grpc.AdminServiceStub,
                                                                  harness: Harness) -> None:
    old = await create(admin, "rotated")
    rotated = await admin.RotateKey(admin_pb2.RotateKeyRequest(ref="rotated", grace=duration_pb2.Duration(seconds=60)))
    assert KEY.fullmatch(rotated.key) and rotated.key != old.key
    view = json.loads(rotated.view.json)
    assert view["key_id"] == old.view.key_id and view["key_prefix"] == rotated.key[:12]
    assert view["previous_secret_valid_until"] is not None
    harness.expire_cache()
    assert (await harness.authenticate(rotated.key)).decision == ALLOW
    assert (await harness.authenticate(old.key)).decision == ALLOW
    harness.wall_clock.advance(61)
    harness.expire_cache()
    assert (await harness.authenticate(old.key)).reason == auth_pb2.REASON_KEY_INVALID


async def test_rotate_without_grace_stops_the_old_secret_now(admin: admin_pb2_grpc.AdminServiceStub,
                                                             harness: Harness) -> None:
    old = await create(admin, "now")
    rotated = await admin.RotateKey(admin_pb2.RotateKeyRequest(ref="now"))
    assert json.loads(rotated.view.json)["previous_secret_valid_until"] is None
    harness.expire_cache()
    assert (await harness.authenticate(old.key)).reason == auth_pb2.REASON_KEY_INVALID
    assert (await harness.authenticate(rotated.key)).decision == ALLOW


@pytest.mark.parametrize("seconds", [0, -5])
async def test_a_grace_that_is_not_positive_is_invalid_argument(admin: admin_pb2_grpc.AdminServiceStub,
                                                                seconds: int) -> None:
    await create(admin, "graceless")
    code, details = await status_of(admin.RotateKey(
        admin_pb2.RotateKeyRequest(ref="graceless", grace=duration_pb2.Duration(seconds=seconds))))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "grace period must be positive" in details


async def test_delete_returns_the_record_and_the_key_stops(admin: admin_pb2_grpc.AdminServiceStub,
                                                           harness: Harness) -> None:
    issued = await create(admin, "doomed")
    deleted = await admin.DeleteKey(admin_pb2.DeleteKeyRequest(ref=issued.view.key_id), timeout=5)
    assert deleted.name == "doomed" and json.loads(deleted.json)["key_id"] == issued.view.key_id
    code, _ = await status_of(admin.GetKey(admin_pb2.GetKeyRequest(ref="doomed")))
    assert code is grpc.StatusCode.NOT_FOUND
    harness.expire_cache()
    assert (await harness.authenticate(issued.key)).reason == auth_pb2.REASON_KEY_INVALID


async def test_a_store_failure_is_unavailable_without_its_detail(admin: admin_pb2_grpc.AdminServiceStub,
                                                                 harness: Harness,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    await harness.keys.close()
    with caplog.at_level(logging.ERROR, logger="switchboard_auth.admin"):
        code, details = await status_of(admin.ListKeys(admin_pb2.ListKeysRequest()))
    assert code is grpc.StatusCode.UNAVAILABLE and details == "the key store is unavailable; try again shortly"
    assert "key store is closed" in caplog.text  # the detail is in the log


async def test_no_log_line_holds_a_key_or_a_hash(admin: admin_pb2_grpc.AdminServiceStub, harness: Harness,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        issued = await create(admin, "logged")
        rotated = await admin.RotateKey(admin_pb2.RotateKeyRequest(ref="logged",
                                                                   grace=duration_pb2.Duration(seconds=9)))
        await admin.UpdateKey(admin_pb2.UpdateKeyRequest(ref="logged", state=admin_pb2.KEY_STATE_DISABLED))
        hashes = stored_hashes(harness.db_path)
        await admin.DeleteKey(admin_pb2.DeleteKeyRequest(ref="logged"))
    assert "logged" in caplog.text and issued.view.key_id in caplog.text  # keys are named by name and key_id
    for secret in (issued.key, rotated.key, *hashes):
        assert secret not in caplog.text


def at(day: int, hour: int = 12, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(moment)
    return value


async def with_usage(harness: Harness, key_id: str) -> None:
    """Records of the key on April 30th, May 1st, 2nd and 15th (2026), and one of another key."""
    def used(request_id: str, started_at: datetime, owner: str = key_id, **fields: object) -> UsageEntry:
        return UsageEntry(request_id=request_id, key_id=owner, platform="openai", model="gpt-4o",
                          started_at=started_at, recorded_at=started_at, **fields)  # type: ignore[arg-type]

    await harness.ledger.append([
        used("april", at(30, month=4), input_tokens=5, account_id="openai/a", cost_micro_usd=100),
        used("r1", at(1), input_tokens=1_000, output_tokens=200, reasoning_tokens=50, account_id="openai/a",
             upstream_model="gpt-4o-2024-08-06", cost_micro_usd=4_050),
        used("r2", at(2, 23), input_tokens=10, account_id="openai/b", cost_micro_usd=None),
        used("r3", at(2, 0), input_tokens=3, status_code=502, end_reason="error", failed=True, cost_micro_usd=0,
             account_id="openai/a"),
        used("today", at(15, 9), input_tokens=300, output_tokens=20, cache_read_input_tokens=80,
             cache_creation_input_tokens=100, account_id="openai/a", cost_micro_usd=2_000),
        used("other", at(15), owner="key_0123456789ab", input_tokens=7, cost_micro_usd=7),
    ])


@pytest.mark.parametrize("by, flag", [
    pytest.param(admin_pb2.USAGE_GROUPING_UNSPECIFIED, "day", id="default-day"),
    pytest.param(admin_pb2.USAGE_GROUPING_DAY, "day", id="day"),
    pytest.param(admin_pb2.USAGE_GROUPING_MODEL, "model", id="model"),
    pytest.param(admin_pb2.USAGE_GROUPING_ACCOUNT, "account", id="account"),
])
async def test_key_usage_is_what_the_cli_prints(admin: admin_pb2_grpc.AdminServiceStub, harness: Harness,
                                                by: int, flag: str) -> None:
    issued = await create(admin, "team-a")
    await with_usage(harness, issued.view.key_id)
    reply = await admin.KeyUsage(admin_pb2.KeyUsageRequest(
        ref="team-a", since=timestamp(at(1, 0)), until=timestamp(at(16, 0)), by=by), timeout=5)  # type: ignore[arg-type]
    printed = await run_cli("keys", "usage", "team-a", "--json", "--by", flag, "--since", "2026-05-01",
                            "--until", "2026-05-15", db=harness.db_path)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(reply.json) == json.loads(printed.stdout)
    assert (reply.key_id, reply.name) == (issued.view.key_id, "team-a")
    usage = json.loads(reply.json)
    assert usage["since"] == "2026-05-01T00:00:00Z" and usage["until"] == "2026-05-16T00:00:00Z"
    assert usage["total"]["requests"] == 4 and usage["total"]["failed_requests"] == 1  # not April, not the other key
    assert usage["total"]["cost_micro_usd"] == 6_050 and usage["total"]["cost_usd"] == "0.006050"
    assert usage["total"]["unpriced_requests"] == 1


async def test_key_usage_by_day_of_all_time(admin: admin_pb2_grpc.AdminServiceStub, harness: Harness) -> None:
    issued = await create(admin, "all-time")
    await with_usage(harness, issued.view.key_id)
    usage = json.loads((await admin.KeyUsage(admin_pb2.KeyUsageRequest(ref=issued.view.key_id))).json)
    assert (usage["since"], usage["until"], usage["by"]) == (None, None, "day")
    assert [row["day"] for row in usage["rows"]] == ["2026-04-30", "2026-05-01", "2026-05-02", "2026-05-15"]
    assert [row["requests"] for row in usage["rows"]] == [1, 1, 2, 1]


async def test_a_deleted_keys_usage_by_its_key_id(admin: admin_pb2_grpc.AdminServiceStub, harness: Harness) -> None:
    issued = await create(admin, "gone")
    await with_usage(harness, issued.view.key_id)
    await admin.DeleteKey(admin_pb2.DeleteKeyRequest(ref="gone"))
    reply = await admin.KeyUsage(admin_pb2.KeyUsageRequest(ref=issued.view.key_id), timeout=5)
    usage = json.loads(reply.json)
    assert (reply.name, usage["name"], usage["total"]["requests"]) == ("", None, 5)
    code, _ = await status_of(admin.KeyUsage(admin_pb2.KeyUsageRequest(ref="gone")))
    assert code is grpc.StatusCode.NOT_FOUND  # by name, a deleted key is no key


async def test_key_usage_refuses_an_empty_range_and_an_unknown_grouping(
        admin: admin_pb2_grpc.AdminServiceStub) -> None:
    await create(admin, "ranged")
    code, details = await status_of(admin.KeyUsage(admin_pb2.KeyUsageRequest(
        ref="ranged", since=timestamp(at(2)), until=timestamp(at(2)))))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "until must be after since" in details
    code, details = await status_of(admin.KeyUsage(admin_pb2.KeyUsageRequest(ref="ranged", by=9)))  # type: ignore[arg-type]
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "unknown usage grouping" in details


async def test_key_status_shows_the_holder_its_key_limits_and_usage(admin: admin_pb2_grpc.AdminServiceStub,
                                                                    harness: Harness) -> None:
    harness.wall_clock.value = at(15, 18).timestamp()
    issued = await create(admin, "holder", limits=admin_pb2.KeyLimitsSpec(
        requests_per_minute=60, tokens_per_day=1_000, daily_budget_micro_usd=1_500,
        monthly_budget_micro_usd=1_000_000, total_budget_micro_usd=10_000))
    await with_usage(harness, issued.view.key_id)
    reply = await admin.KeyStatus(admin_pb2.KeyStatusRequest(credential=issued.key), timeout=5)
    assert reply.authentication.decision == ALLOW and reply.authentication.identity.name == "holder"
    status = json.loads(reply.json)
    key = await admin.GetKey(admin_pb2.GetKeyRequest(ref="holder"))
    assert status["key"] == json.loads(key.json)
    assert issued.key not in reply.json and "hash" not in reply.json
    limits = {limit["name"]: limit for limit in status["limits"]}
    assert list(limits) == ["requests_per_minute", "tokens_per_day", "daily_budget_micro_usd",
                            "monthly_budget_micro_usd", "total_budget_micro_usd"]
    assert limits["requests_per_minute"] == {"name": "requests_per_minute", "limit": 60, "period": "minute",
                                             "used": None, "remaining": None, "resets_at": None}
    assert limits["tokens_per_day"] == {"name": "tokens_per_day", "limit": 1_000, "period": "day", "used": 500,
                                        "remaining": 500, "resets_at": "2026-05-16T00:00:00Z"}
    assert (limits["daily_budget_micro_usd"]["used"], limits["daily_budget_micro_usd"]["remaining"]) == (2_000, 0)
    assert limits["monthly_budget_micro_usd"] == {
        "name": "monthly_budget_micro_usd", "limit": 1_000_000, "period": "month", "used": 6_050,
        "remaining": 993_950, "resets_at": "2026-06-01T00:00:00Z"}
    assert limits["total_budget_micro_usd"] == {"name": "total_budget_micro_usd", "limit": 10_000, "period": "total",
                                                "used": 6_150, "remaining": 3_850, "resets_at": None}
    today, month = status["today"], status["this_month"]
    assert (today["since"], today["requests"], today["cost_micro_usd"]) == ("2026-05-15T00:00:00Z", 1, 2_000)
    assert (month["since"], month["requests"], month["cost_usd"]) == ("2026-05-01T00:00:00Z", 4, "0.006050")


async def test_key_status_works_with_the_previous_secret_in_its_grace(admin: admin_pb2_grpc.AdminServiceStub) -> None:
    old = await create(admin, "rotating")
    await admin.RotateKey(admin_pb2.RotateKeyRequest(ref="rotating", grace=duration_pb2.Duration(seconds=60)))
    reply = await admin.KeyStatus(admin_pb2.KeyStatusRequest(credential=old.key), timeout=5)
    assert reply.authentication.decision == ALLOW and json.loads(reply.json)["limits"] == []


@pytest.mark.parametrize("credential, reason", [
    pytest.param("", auth_pb2.REASON_KEY_MISSING, id="missing"),
    pytest.param("sk-sb-" + "x" * 40, auth_pb2.REASON_KEY_INVALID, id="unknown"),
    pytest.param("sk-" + "y" * 5000, auth_pb2.REASON_KEY_INVALID, id="oversized"),
    pytest.param("DISABLED", auth_pb2.REASON_KEY_DISABLED, id="disabled"),
])
async def test_key_status_refuses_what_authenticate_refuses(admin: admin_pb2_grpc.AdminServiceStub,
                                                            credential: str, reason: int) -> None:
    issued = await create(admin, "off")
    await admin.UpdateKey(admin_pb2.UpdateKeyRequest(ref="off", state=admin_pb2.KEY_STATE_DISABLED))
    credential = issued.key if credential == "DISABLED" else credential
    reply = await admin.KeyStatus(admin_pb2.KeyStatusRequest(credential=credential), timeout=5)
    assert (reply.authentication.decision, reply.authentication.reason) == (DENY, reason)
    assert reply.json == "" and (not credential or credential not in reply.authentication.message)


async def test_key_status_reads_the_rolling_minute_and_requests_in_flight_from_the_limiter(
        harness: Harness) -> None:
    limiter = MemoryLimiter()
    server = grpc.aio.server()
    AdminServicer(harness.keys, harness.ledger, pepper=PEPPER, now=harness.wall_clock, limiter=limiter).register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        issued = await create(admin, "live", limits=admin_pb2.KeyLimitsSpec(requests_per_minute=60, concurrency=3))
        limits = KeyLimits(requests_per_minute=60, concurrency=3)
        now = harness.wall_clock()
        held = [await limiter.admit(issued.view.key_id, limits, now) for _ in range(2)]
        reply = await admin.KeyStatus(admin_pb2.KeyStatusRequest(credential=issued.key), timeout=5)
        shown = {limit["name"]: limit for limit in json.loads(reply.json)["limits"]}
        assert (shown["requests_per_minute"]["used"], shown["requests_per_minute"]["remaining"]) == (2, 58)
        assert (shown["concurrency"]["used"], shown["concurrency"]["remaining"]) == (2, 1)
        await limiter.settle(issued.view.key_id, limits, held[0].admission_id, 0, 0, now)
        again = {limit["name"]: limit
                 for limit in json.loads((await admin.KeyStatus(admin_pb2.KeyStatusRequest(credential=issued.key),
                                                                 timeout=5)).json)["limits"]}
        assert again["concurrency"]["remaining"] == 2  # the status itself took nothing
    await server.stop(None)
