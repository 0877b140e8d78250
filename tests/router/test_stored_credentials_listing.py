"""ListAccounts(stored_credentials): a managed account's refreshed credential, for its manager to write back."""

import json

from switchboard.router.v1 import router_pb2

from .router_testing import Router, account


async def test_only_managed_accounts_show_a_stored_credential_and_only_when_asked(router: Router) -> None:
    router.set_accounts([account("file-oauth", platform="claude-official")])
    await router.stub.UpsertAccount(router_pb2.UpsertAccountRequest(
        spec_json=json.dumps(account("managed-oauth", platform="claude-official"))), timeout=5)
    listed = await router.stub.ListAccounts(router_pb2.ListAccountsRequest(stored_credentials=True), timeout=5)
    assert all(not s.HasField("stored_credential") for s in listed.accounts)  # nothing stored yet

    refreshed = router_pb2.Credential(secrets={"access_token": "at-new", "refresh_token": "rt-new",
                                               "expires_at": "4102444800"})
    for account_id in ("claude-official/file-oauth", "claude-official/managed-oauth"):
        await router.stub.StoreCredential(router_pb2.StoreCredentialRequest(
            account_id=account_id, credential=refreshed), timeout=5)

    plain = await router.stub.ListAccounts(router_pb2.ListAccountsRequest(), timeout=5)
    assert all(not s.HasField("stored_credential") for s in plain.accounts)
    asked = await router.stub.ListAccounts(router_pb2.ListAccountsRequest(stored_credentials=True), timeout=5)
    by_id = {s.account.id: s for s in asked.accounts}
    assert not by_id["claude-official/file-oauth"].HasField("stored_credential")
    assert dict(by_id["claude-official/managed-oauth"].stored_credential.secrets) == dict(refreshed.secrets)

    # The manager writes it back: the upserted credential is now the stored one, which is no longer reported.
    spec = account("managed-oauth", platform="claude-official")
    spec["oauth"] = {"access_token": "at-new", "refresh_token": "rt-new", "expires_at": 4102444800}
    await router.stub.UpsertAccount(router_pb2.UpsertAccountRequest(spec_json=json.dumps(spec)), timeout=5)
    again = await router.stub.ListAccounts(router_pb2.ListAccountsRequest(stored_credentials=True), timeout=5)
    assert all(not s.HasField("stored_credential") for s in again.accounts)
    pick = await router.pick(model="claude-x", platforms=("claude-official",),
                             exclude_account_ids=["claude-official/file-oauth"])
    assert pick.account.credential.secrets["refresh_token"] == "rt-new"
