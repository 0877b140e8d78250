"""StoreCredential: a refreshed credential is live at once, outlives reloads and restarts until the
accounts file's own credential changes, and a failed refresh holds the account in error."""

import json
import stat
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from switchboard.router.v1 import router_pb2
from switchboard_router.credential_overlay import CredentialOverlay
from switchboard_router.errors import CredentialsFileInvalid

from .router_testing import Router, account, write_text

OFFICIAL = "claude-official/sub"
CANARY = "SECRET-canary-51d0e2"
NEW = {"access_token": "at-new", "refresh_token": "rt-new", "expires_at": "1900000000"}


def subscription(**fields: Any) -> dict[str, Any]:
    return account("sub", platform="claude-official", **fields)


async def picked_secrets(router: Router) -> dict[str, str]:
    reply = await router.pick(platforms=("claude-official",))
    assert reply.status == router_pb2.PICK_STATUS_OK, reply.message
    return dict(reply.account.credential.secrets)


async def state(router: Router, account_id: str = OFFICIAL) -> int:
    return (await router.list_accounts())[account_id].state


def stored_file(router: Router) -> dict[str, Any]:
    return json.loads(router.credentials_path.read_text())["accounts"]


async def test_stored_credential_is_handed_out_by_later_picks_and_persisted_0600(router: Router) -> None:
    router.set_accounts([subscription()])
    assert await picked_secrets(router) == {"refresh_token": "rt-test-sub-secret"}

    await router.store_credential(OFFICIAL, **NEW)

    assert await picked_secrets(router) == NEW
    assert stat.S_IMODE(router.credentials_path.stat().st_mode) == 0o600
    assert stored_file(router)[OFFICIAL]["credential"]["secrets"] == NEW
    listed = (await router.list_accounts())[OFFICIAL]
    assert listed.state == router_pb2.ACCOUNT_STATE_READY
    assert listed.account.credential == router_pb2.Credential()  # listings never carry it


async def test_stored_credential_survives_a_reload_that_keeps_the_file_credential(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, **NEW)

    router.set_accounts([subscription(priority=7), account("other")])  # the same credential in the file

    assert await picked_secrets(router) == NEW


async def test_a_new_credential_in_the_file_wins_and_drops_the_stored_one(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, **NEW)

    router.set_accounts([subscription(oauth={"refresh_token": "rt-from-operator"})])

    assert await picked_secrets(router) == {"refresh_token": "rt-from-operator"}
    assert stored_file(router) == {}


async def test_stored_credential_survives_a_restart(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, **NEW)

    router.restart()

    assert await picked_secrets(router) == NEW
    router.set_accounts([subscription(oauth={"refresh_token": "rt-from-operator"})])
    router.restart()
    assert await picked_secrets(router) == {"refresh_token": "rt-from-operator"}


async def test_stored_credential_outlives_an_unreadable_or_removed_file_credential(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, **NEW)

    router.set_accounts([subscription(oauth={"refresh_token_env": "NOT_SET"})])  # the file's cannot be read
    assert await state(router) == router_pb2.ACCOUNT_STATE_ERROR
    router.set_accounts([account("other")])  # the account is gone for a while
    router.set_accounts([subscription()])  # and back with the spent refresh token

    assert await picked_secrets(router) == NEW


async def test_failed_refresh_holds_the_account_in_error_until_a_credential_is_stored(router: Router) -> None:
    router.set_accounts([subscription()])

    await router.store_credential(OFFICIAL, error="OAuth refresh failed: token endpoint answered HTTP 400 "
                                                   "(invalid_grant)")

    assert await state(router) == router_pb2.ACCOUNT_STATE_ERROR
    refused = await router.pick(platforms=("claude-official",))
    assert refused.status == router_pb2.PICK_STATUS_NO_ACCOUNT and "in error" in refused.message
    error_gauge = {"platform": "claude-official", "state": "error"}
    assert REGISTRY.get_sample_value("switchboard_router_accounts", error_gauge) == 1
    router.set_accounts([subscription(priority=3)])  # a reload that keeps the file's credential keeps the error
    assert await state(router) == router_pb2.ACCOUNT_STATE_ERROR

    await router.store_credential(OFFICIAL, **NEW)

    assert await state(router) == router_pb2.ACCOUNT_STATE_READY
    assert await picked_secrets(router) == NEW
    assert REGISTRY.get_sample_value("switchboard_router_accounts", error_gauge) == 0


async def test_a_restart_clears_the_error_so_the_refresh_is_tried_again(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, **NEW)
    await router.store_credential(OFFICIAL, error="OAuth refresh failed: token endpoint unreachable")
    assert await state(router) == router_pb2.ACCOUNT_STATE_ERROR

    router.restart()

    assert await state(router) == router_pb2.ACCOUNT_STATE_READY
    assert await picked_secrets(router) == NEW  # the stored credential, not the spent one in the file


async def test_error_ends_when_the_file_credential_changes(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, error="OAuth refresh failed")

    router.set_accounts([subscription(oauth={"refresh_token": "rt-from-operator"})])

    assert await state(router) == router_pb2.ACCOUNT_STATE_READY
    assert await picked_secrets(router) == {"refresh_token": "rt-from-operator"}


async def test_a_late_credential_that_expires_sooner_is_ignored(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, **NEW)

    await router.store_credential(OFFICIAL, access_token="at-old", refresh_token="rt-old", expires_at="1800000000")

    assert await picked_secrets(router) == NEW


async def test_an_api_key_platform_takes_a_stored_key_too(router: Router) -> None:
    router.set_accounts([account("a")])
    await router.store_credential("claude-console/a", api_key="sk-rotated")
    assert (await router.pick()).account.credential.api_key == "sk-rotated"


CHATGPT_ACCOUNT = "5e1a7c3b-0000-4000-8000-00c0dec0de00"


def codex(**fields: Any) -> dict[str, Any]:
    oauth = {"refresh_token": "rt-codex-0", "account_id": CHATGPT_ACCOUNT}
    return {"name": "codex", "platform": "openai-responses", "oauth": oauth, **fields}


async def test_a_chatgpt_account_stores_its_refreshed_tokens_with_its_account_id(router: Router) -> None:
    router.set_accounts([codex()])
    renewed = {**NEW, "chatgpt_account_id": CHATGPT_ACCOUNT}

    await router.store_credential("openai-responses/codex", **renewed)

    reply = await router.pick(platforms=("openai-responses",))
    assert dict(reply.account.credential.secrets) == renewed and not reply.account.credential.api_key
    assert reply.account.base_url == "https://chatgpt.com/backend-api/codex"


async def test_an_openai_responses_key_account_takes_a_stored_key(router: Router) -> None:
    router.set_accounts([account("r", platform="openai-responses")])
    await router.store_credential("openai-responses/r", api_key="sk-rotated")
    assert (await router.pick(platforms=("openai-responses",))).account.credential.api_key == "sk-rotated"


async def test_unknown_account_is_not_found(router: Router) -> None:
    router.set_accounts([subscription()])
    for request in ({"access_token": "a", "refresh_token": "r"}, {"error": "refresh failed"}):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.store_credential("claude-official/nobody", **request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "claude-official/nobody" in (caught.value.details() or "")
    assert not router.credentials_path.exists()


@pytest.mark.parametrize(
    ("account_id", "credential", "expected"),
    [
        pytest.param(OFFICIAL, {"access_token": CANARY}, "credential.secrets.refresh_token: is required",
                     id="official-no-refresh-token"),
        pytest.param(OFFICIAL, {"api_key": CANARY, "refresh_token": CANARY}, "credential.api_key: not used",
                     id="official-api-key"),
        pytest.param(OFFICIAL, {"refresh_token": CANARY, "expires_at": CANARY}, "expires_at: expected POSIX seconds",
                     id="official-expiry-not-digits"),
        pytest.param(OFFICIAL, {"refresh_token": CANARY, "cookie": CANARY}, "unknown name 'cookie'",
                     id="official-unknown-secret"),
        pytest.param(OFFICIAL, {"refresh_token": CANARY, "access_token": ""}, "access_token: must not be empty",
                     id="official-empty-secret"),
        pytest.param("claude-console/a", {"refresh_token": CANARY}, "credential.api_key: is required",
                     id="console-no-key"),
        pytest.param("openai-responses/codex", {"refresh_token": CANARY}, "chatgpt_account_id: is required",
                     id="chatgpt-no-account-id"),
        pytest.param("openai-responses/codex", {"refresh_token": CANARY, "chatgpt_account_id": CANARY},
                     "chatgpt_account_id: expected a UUID", id="chatgpt-account-id-format"),
        pytest.param("openai-responses/codex", {"access_token": CANARY, "chatgpt_account_id": CHATGPT_ACCOUNT},
                     "credential.secrets.refresh_token: is required", id="chatgpt-no-refresh-token"),
        pytest.param("openai-responses/codex", {"api_key": CANARY, "refresh_token": CANARY,
                                                "chatgpt_account_id": CHATGPT_ACCOUNT}, "not both",
                     id="chatgpt-and-key"),
        pytest.param("openai-responses/codex", {"refresh_token": CANARY, "chatgpt_account_id": CHATGPT_ACCOUNT,
                                                "aws_access_key_id": CANARY}, "unknown name 'aws_access_key_id'",
                     id="chatgpt-unknown-secret"),
        pytest.param("bedrock/b", {"api_key": CANARY, "aws_access_key_id": CANARY,
                                   "aws_secret_access_key": CANARY}, "not both", id="bedrock-both"),
        pytest.param("bedrock/b", {"aws_access_key_id": CANARY},
                     "or the secrets aws_access_key_id and aws_secret_access_key", id="bedrock-half-keys"),
    ],
)
async def test_an_unusable_credential_is_refused_naming_fields_never_values(
    router: Router, account_id: str, credential: dict[str, str], expected: str
) -> None:
    router.set_accounts([subscription(), account("a"), account("b", platform="bedrock"), codex()])
    before = await picked_secrets(router)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.store_credential(account_id, **credential)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert details.startswith(f"account {account_id}: ") and expected in details, details
    assert CANARY not in details
    assert await picked_secrets(router) == before


async def test_an_unwritable_file_still_applies_the_credential_and_says_so(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    router.set_accounts([subscription()])
    router.pool.overlay.path = router.path.parent / "missing-dir" / "credentials.json"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.store_credential(OFFICIAL, **{**NEW, "refresh_token": CANARY})

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "not written" in (caught.value.details() or "")
    assert (await picked_secrets(router))["refresh_token"] == CANARY
    assert CANARY not in caplog.text and "not written" in caplog.text


async def test_error_reasons_are_kept_on_one_bounded_line(router: Router) -> None:
    router.set_accounts([subscription()])
    await router.store_credential(OFFICIAL, error="line one\nline two" + "x" * 1000)
    reason = router.pool.snapshot.by_id[OFFICIAL].error
    assert reason is not None and "\n" not in reason and len(reason) <= 501


async def test_credential_values_are_never_logged(router: Router, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    router.set_accounts([subscription(oauth={"refresh_token": CANARY})])
    await router.store_credential(OFFICIAL, access_token=CANARY, refresh_token=CANARY + "2", expires_at="1")
    await router.store_credential(OFFICIAL, error="OAuth refresh failed")
    router.set_accounts([subscription(oauth={"refresh_token": CANARY + "3"})])
    router.restart()
    assert caplog.records and CANARY not in caplog.text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f'{{"version": 1, "accounts": {{"x": "{CANARY}"', id="truncated-json"),
        pytest.param(f'{{"version": 2, "accounts": {{"x": "{CANARY}"}}}}', id="other-version"),
        pytest.param(f'{{"version": 1, "accounts": {{"x": {{"replaces": 1, "credential": "{CANARY}"}}}}}}',
                     id="malformed-entry"),
        pytest.param(f'{{"version": 1, "accounts": {{"x": {{"replaces": "h", "credential": '
                     f'{{"secrets": {{"a": 1, "b": "{CANARY}"}}}}}}}}}}', id="malformed-secrets"),
    ],
)
def test_an_unusable_credentials_file_is_refused_at_start_without_values(tmp_path: Any, text: str) -> None:
    path = tmp_path / "credentials.json"
    write_text(path, text)
    with pytest.raises(CredentialsFileInvalid) as caught:
        CredentialOverlay(path)
    assert caught.value.source == str(path)
    assert CANARY not in str(caught.value)


def test_a_missing_credentials_file_is_empty(tmp_path: Any) -> None:
    overlay = CredentialOverlay(tmp_path / "none.json")
    assert len(overlay) == 0
    assert not (tmp_path / "none.json").exists()  # nothing is written until something is stored
