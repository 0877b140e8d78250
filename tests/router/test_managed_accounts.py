"""Accounts managed at run time through UpsertAccount / DeleteAccount, beside the accounts file."""

import json
from typing import Any

import grpc
import pytest

from switchboard.router.v1 import router_pb2

from .router_testing import Router, account

OK = router_pb2.PICK_STATUS_OK
NO_MODEL = router_pb2.PICK_STATUS_NO_MODEL


async def upsert(router: Router, spec: Any) -> router_pb2.UpsertAccountResponse:
    text = spec if isinstance(spec, str) else json.dumps(spec)
    return await router.stub.UpsertAccount(router_pb2.UpsertAccountRequest(spec_json=text), timeout=5)


async def delete(router: Router, account_id: str) -> router_pb2.DeleteAccountResponse:
    return await router.stub.DeleteAccount(router_pb2.DeleteAccountRequest(account_id=account_id), timeout=5)


async def test_an_upserted_account_serves_at_once_and_a_deleted_one_stops(router: Router) -> None:
    router.set_accounts([account("from-file", models=["claude-*"])])
    reply = await upsert(router, account("managed", models=["gpt-*"], platform="openai", max_concurrency=3))
    assert reply.created and reply.status.source == "managed" and reply.status.account.id == "openai/managed"
    assert reply.status.state == router_pb2.ACCOUNT_STATE_READY
    assert not reply.status.account.HasField("credential")  # never handed back

    pick = await router.pick(model="gpt-4o", platforms=("openai",))
    assert pick.status == OK and pick.account.credential.api_key == "sk-test-managed-secret"
    listed = await router.list_accounts()
    assert {i: s.source for i, s in listed.items()} == {"claude-console/from-file": "file", "openai/managed": "managed"}
    assert listed["openai/managed"].in_flight == 1

    replaced = await upsert(router, account("managed", models=["gpt-*"], platform="openai", priority=7))
    assert not replaced.created and replaced.status.account.priority == 7

    assert (await delete(router, "openai/managed")).deleted
    assert not (await delete(router, "openai/managed")).deleted
    assert (await router.pick(model="gpt-4o", platforms=("openai",))).status == NO_MODEL


async def test_a_file_reload_keeps_the_managed_accounts(router: Router) -> None:
    await upsert(router, account("managed"))
    router.set_accounts([account("from-file")])
    assert set(await router.list_accounts()) == {"claude-console/from-file", "claude-console/managed"}


@pytest.mark.parametrize(("spec", "says"), [
    ("{not json", "spec_json is not valid JSON"),
    ('"a string"', "expected a mapping, got str"),
    ({"name": "x", "platform": "nope", "api_key": "sk-never-shown-1"}, "field 'platform': unknown platform 'nope'"),
    ({"name": "x", "platform": "openai", "api_key_env": "HOME"}, "field 'api_key_env': give the secret inline"),
    ({"name": "x", "platform": "openai", "api_key": "sk-never-shown-2", "wieght": 3}, "wieght"),
])
async def test_an_invalid_spec_is_refused_with_what_is_wrong(router: Router, spec: Any, says: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upsert(router, spec)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (refused.value.details() or "") and "never-shown" not in (refused.value.details() or "")
    assert await router.list_accounts() == {}


async def test_an_account_of_the_file_cannot_be_managed(router: Router) -> None:
    router.set_accounts([account("from-file")])
    for call in (upsert(router, account("from-file", priority=1)), delete(router, "claude-console/from-file")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "defined by the accounts file" in (refused.value.details() or "")
    assert (await router.list_accounts())["claude-console/from-file"].account.priority == 50
