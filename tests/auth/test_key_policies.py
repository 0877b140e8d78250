"""Key policies beyond allow lists (deny lists, client programs, source addresses) and rotation with a grace
period, through the real service on SQLite (what the stores keep of a key: test_auth_stores.py, both backends)."""

import json
from datetime import timedelta

from switchboard.auth.v1 import auth_pb2
from switchboard_auth.keys import KeyPolicy, rotate_key

from .auth_testing import PEPPER, Harness, run_cli

ALLOW, DENY = auth_pb2.DECISION_ALLOW, auth_pb2.DECISION_DENY


def caller(address: str = "", app: str = "", client_format: str = "openai") -> auth_pb2.ClientMetadata:
    return auth_pb2.ClientMetadata(remote_addr=address, client_app=app, client_format=client_format)


async def test_deny_lists_win_over_allow_lists(harness: Harness) -> None:
    key, _ = await harness.create("denied", models=["gpt-*"],
                                  policy=KeyPolicy(denied_platforms=("azure-openai",), denied_models=("gpt-4o*",)))
    allowed = await harness.authorize(key, ["azure-openai", "openai"], "gpt-4.1")
    assert allowed.decision == ALLOW and list(allowed.allowed_platforms) == ["openai"]
    refused = await harness.authorize(key, ["azure-openai"], "gpt-4.1")
    assert (refused.reason, refused.message) == (
        auth_pb2.REASON_PLATFORM_NOT_ALLOWED, "This API key may not use platform 'azure-openai'.")
    model = await harness.authorize(key, ["openai"], "gpt-4o-mini")
    assert (model.reason, model.message) == (
        auth_pb2.REASON_MODEL_NOT_ALLOWED, "This API key may not use the model 'gpt-4o-mini'.")


async def test_a_key_for_one_client_program_works_only_from_it_and_on_its_routes(harness: Harness) -> None:
    key, _ = await harness.create("codex-only", policy=KeyPolicy(allowed_clients=("codex-cli",)))
    ok = await harness.authorize(key, client=caller(app="codex-cli", client_format="responses"))
    assert ok.decision == ALLOW
    for app, route in (("", "responses"), ("claude-code", "responses"), ("codex-cli", "openai")):
        refused = await harness.authorize(key, client=caller(app=app, client_format=route))
        assert refused.decision == DENY and refused.reason == auth_pb2.REASON_CLIENT_NOT_ALLOWED, (app, route)
        assert "codex-cli" in refused.message


async def test_an_ip_allowlist_admits_its_networks_only(harness: Harness) -> None:
    key, record = await harness.create("office", policy=KeyPolicy(allowed_ips=("203.0.113.7/24", "2001:db8::1")))
    assert record.policy.allowed_ips == ("203.0.113.0/24", "2001:db8::1/128")  # normalised
    for address, decision in (("203.0.113.200", ALLOW), ("2001:db8::1", ALLOW), ("198.51.100.1", DENY),
                              ("", DENY), ("not-an-address", DENY)):
        response = await harness.authorize(key, client=caller(address))
        assert response.decision == decision, address
        if decision == DENY:
            assert response.reason == auth_pb2.REASON_SOURCE_NOT_ALLOWED
            assert response.message.startswith("This API key may not be used from")


async def test_rotation_keeps_the_identity_and_the_old_secret_works_only_for_its_grace(harness: Harness) -> None:
    old, record = await harness.create("rotating", groups=["g1"])
    new, rotated = await rotate_key(harness.keys, "rotating", pepper=PEPPER, grace=timedelta(hours=1))
    assert (rotated.key_id, rotated.name, rotated.groups) == (record.key_id, record.name, record.groups)
    assert rotated.key_prefix == new[:12] != record.key_prefix
    harness.expire_cache()
    for secret in (old, new):
        response = await harness.authorize(secret)
        assert response.decision == ALLOW and response.identity.key_id == record.key_id
    harness.wall_clock.advance(3601)
    harness.expire_cache()
    assert (await harness.authorize(new)).decision == ALLOW
    assert (await harness.authorize(old)).reason == auth_pb2.REASON_KEY_INVALID

    newest, _ = await rotate_key(harness.keys, "rotating", pepper=PEPPER)  # no grace: the old one stops now
    harness.expire_cache()
    assert (await harness.authorize(new)).reason == auth_pb2.REASON_KEY_INVALID
    assert (await harness.authorize(newest)).decision == ALLOW


async def test_cli_creates_with_policies_and_limits_shows_and_rotates(harness: Harness) -> None:
    created = await run_cli("keys", "create", "ops", "--owner", "ops-team", "--tag", "ci", "--deny-model", "o1*",
                            "--allow-client", "claude-code", "--allow-ip", "10.0.0.0/8", "--rpm", "120",
                            "--daily-budget", "12.50", "--json", db=harness.db_path)
    assert created.returncode == 0, created.stderr
    first = json.loads(created.stdout)
    shown = await run_cli("keys", "show", "ops", "--json", db=harness.db_path)
    record = json.loads(shown.stdout)
    assert "key" not in record and first["key"] not in shown.stdout
    assert record["owner"] == "ops-team" and record["tags"] == ["ci"] and record["key_prefix"] == first["key"][:12]
    assert record["policy"]["denied_models"] == ["o1*"] and record["policy"]["allowed_clients"] == ["claude-code"]
    assert record["limits"] == {"requests_per_minute": 120, "daily_budget_micro_usd": 12_500_000}

    rotated = await run_cli("keys", "rotate", "ops", "--grace", "1h", db=harness.db_path)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.splitlines()[0].startswith("sk-sb-") and "valid until" in rotated.stdout
    for bad in (("--allow-ip", "10.0.0.300"), ("--daily-budget", "-3"), ("--rpm", "0")):
        refused = await run_cli("keys", "create", "bad", *bad, db=harness.db_path)
        assert refused.returncode == 2, bad
