"""An UpstreamAccount through the real operator into the real stack, against kmock or (KUBECONFIG) a cluster."""

import httpx
import pytest

from switchboard.router.v1 import router_pb2
from switchboard_operator.builder import decode_secret
from switchboard_operator.handlers import Operator
from switchboard_operator.router_client import RouterClient
from switchboard_simulator import defaults
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, Stack

from .conftest import Cluster
from .operator_testing import eventually, secret, secret_path, ua_path, upstream_account

RATE_LIMITED_KEY = "sk-sim-ratelimited"  # a key the simulator accepts and always answers 429 for


def conditions(body: dict | None) -> dict[str, dict]:
    return {c["type"]: c for c in ((body or {}).get("status") or {}).get("conditions") or []}


async def ask(stack: Stack, key: str, model: str = "claude-sonnet-4-20250514") -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        return await http.post("/claude/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                               json={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})


async def upstream_key(stack: Stack) -> str:
    async with httpx.AsyncClient(base_url=stack.simulator_url, timeout=10) as http:
        entries = (await http.get("/_simulator/requests")).json()["requests"]
    assert entries, "the simulator received nothing"
    return str(entries[-1]["headers"].get("x-api-key", ""))


async def test_apply_serve_rotate_rate_limit_delete(cluster: Cluster, stack: Stack, client_key: str, operator: Operator,
                                                     router: RouterClient, caplog: pytest.LogCaptureFixture) -> None:
    ns, api = cluster.namespace, cluster.api
    account_id = f"claude-console/{ns}.claude"
    await api.create(secret_path(ns), secret("anthropic", ns, {"api_key": SIMULATOR_ANTHROPIC_KEY}))
    await api.create(ua_path(ns), upstream_account("claude", ns, {
        "platform": "claude-console", "baseUrl": stack.simulator_url, "credentialsSecretRef": {"name": "anthropic"},
        "models": ["claude-*"], "priority": 5, "maxConcurrency": 8}))

    # Applied -> the router serves it (managed) -> a request through the edge reaches it with its key.
    async def served() -> router_pb2.AccountStatus:
        listed = await _router_accounts(router)
        assert account_id in listed
        return listed[account_id]

    status = await eventually(served, what="the router serves the account")
    assert status.source == "managed" and status.account.priority == 5

    async def ready() -> None:
        got = conditions(await api.get(ua_path(ns, "claude")))
        assert got.get("Ready", {}).get("status") == "True", got
        assert got["RateLimited"]["status"] == "False" and got["Error"]["status"] == "False"

    await eventually(ready, what="status says Ready")
    body = await api.get(ua_path(ns, "claude")) or {}
    assert body["status"]["accountId"] == account_id
    assert "switchboard.dev/router-account" in body["metadata"].get("finalizers", [])
    async def reached() -> None:  # once the edge's model catalog (refreshed every 2 s) has the account's models
        answer = await ask(stack, client_key)
        assert answer.status_code == 200, answer.text
        assert await upstream_key(stack) == SIMULATOR_ANTHROPIC_KEY

    await eventually(reached, what="a request through the edge reaches the account")

    # The Secret rotated -> the next request carries the new key (one the simulator rate-limits) ...
    await api.patch(secret_path(ns, "anthropic"), secret("anthropic", ns, {"api_key": RATE_LIMITED_KEY}))

    async def rotated() -> None:
        await ask(stack, client_key)
        assert await upstream_key(stack) == RATE_LIMITED_KEY

    await eventually(rotated, what="the edge uses the rotated key")

    # ... and the account rate-limited -> status.conditions says so.
    async def rate_limited() -> None:
        got = await api.get(ua_path(ns, "claude")) or {}
        limited = conditions(got).get("RateLimited", {})
        assert limited.get("status") == "True", conditions(got)
        assert limited["reason"] == "Throttled" and got["status"].get("cooldownUntil")

    await eventually(rate_limited, what="status says RateLimited")

    # Rotated back: served again once the (1 s) hold ends.
    await api.patch(secret_path(ns, "anthropic"), secret("anthropic", ns, {"api_key": SIMULATOR_ANTHROPIC_KEY}))

    async def healthy_again() -> None:
        answer = await ask(stack, client_key)
        assert answer.status_code == 200
        assert await upstream_key(stack) == SIMULATOR_ANTHROPIC_KEY

    await eventually(healthy_again, what="the original key serves again")

    # Deleted -> gone from the router, and the finalizer lets the object go.
    await api.delete(ua_path(ns, "claude"))

    async def gone() -> None:
        assert account_id not in await _router_accounts(router)
        assert await api.get(ua_path(ns, "claude")) is None

    await eventually(gone, what="the account is gone from the router and the API")

    async def not_served() -> None:
        assert (await ask(stack, client_key)).status_code == 404

    await eventually(not_served, what="the edge no longer finds the model")

    for value in (SIMULATOR_ANTHROPIC_KEY, RATE_LIMITED_KEY):
        assert value not in caplog.text


async def _router_accounts(router: RouterClient) -> dict[str, router_pb2.AccountStatus]:
    reply = await router._router().ListAccounts(router_pb2.ListAccountsRequest(), timeout=5)
    return {a.account.id: a for a in reply.accounts}


async def test_refreshed_oauth_tokens_are_written_back_to_the_secret(
        cluster: Cluster, stack: Stack, client_key: str, operator: Operator, router: RouterClient,
        caplog: pytest.LogCaptureFixture) -> None:
    ns, api = cluster.namespace, cluster.api
    refresh_token = defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN
    await api.create(secret_path(ns), secret("claude-max", ns, {"refresh_token": refresh_token}))
    await api.create(ua_path(ns), upstream_account("max", ns, {
        "platform": "claude-official", "baseUrl": stack.simulator_url, "credentialsSecretRef": {"name": "claude-max"},
        "models": ["claude-*"]}))
    await eventually(lambda: _assert_in(f"claude-official/{ns}.max", router), what="the router serves it")

    # The edge signs in with the refresh token (the simulator rotates it) and stores the new tokens in the router;
    # the operator writes them back to the Secret, so a restart of everything does not bring back a spent token.
    async def answered() -> None:  # once the edge's model catalog (refreshed every 2 s) has caught up
        answer = await ask(stack, client_key)
        assert answer.status_code == 200, answer.text

    await eventually(answered, what="a request through the edge is answered")

    async def written_back() -> dict[str, str]:
        got = await api.get(secret_path(ns, "claude-max")) or {}
        data = decode_secret(got.get("data"))
        assert data.get("refresh_token") and data["refresh_token"] != defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN, \
            sorted(data)
        assert data.get("access_token") and data.get("expires_at", "").isdigit()
        return data

    data = await eventually(written_back, what="refreshed tokens written back to the Secret")

    # The Secret's change is pushed again: the router serves the written-back tokens as the account's own.
    async def own_credential() -> None:
        listed = await router.list("claude-official")
        entry = listed[f"claude-official/{ns}.max"]
        assert entry.stored is None  # the upserted credential is the refreshed one now

    await eventually(own_credential, what="the router serves the written-back credential as its own")
    assert (await ask(stack, client_key)).status_code == 200
    for value in (data["refresh_token"], data["access_token"], defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN):
        assert value not in caplog.text
    await api.delete(ua_path(ns, "max"))
    await eventually(lambda: _assert_not_in(f"claude-official/{ns}.max", router), what="deleted")


async def _assert_in(account_id: str, router: RouterClient) -> None:
    assert account_id in await _router_accounts(router)


async def _assert_not_in(account_id: str, router: RouterClient) -> None:
    assert account_id not in await _router_accounts(router)


async def test_a_missing_secret_then_an_incomplete_one_are_reported_and_the_account_served_once_fixed(
        cluster: Cluster, stack: Stack, operator: Operator, router: RouterClient,
        caplog: pytest.LogCaptureFixture) -> None:
    ns, api = cluster.namespace, cluster.api
    account_id = f"openai/{ns}.late"
    await api.create(ua_path(ns), upstream_account("late", ns, {
        "platform": "openai", "baseUrl": stack.simulator_url, "credentialsSecretRef": {"name": "late-key"},
        "models": ["gpt-*"]}))

    async def error(reason: str) -> None:
        got = conditions(await api.get(ua_path(ns, "late")))
        assert got.get("Error", {}).get("status") == "True" and got["Error"]["reason"] == reason, got
        assert got["Ready"]["status"] == "False"

    await eventually(lambda: error("SecretMissing"), what="status says the Secret is missing")
    assert account_id not in await _router_accounts(router)

    # The Secret appears without the key the platform needs: the spec cannot become an account.
    await api.create(secret_path(ns), secret("late-key", ns, {"apikey": "sk-sim-typo-in-the-key-name"}))
    await eventually(lambda: error("InvalidSpec"), what="status says what the Secret lacks")
    body = await api.get(ua_path(ns, "late")) or {}
    assert "'api_key'" in body["status"]["lastError"] and "sk-sim-typo" not in str(body)

    # Fixed: the Secret's change pushes it, and status follows the router.
    await api.patch(secret_path(ns, "late-key"), secret("late-key", ns, {"api_key": "sk-sim-openai"}))

    async def ready() -> None:
        assert account_id in await _router_accounts(router)
        got = conditions(await api.get(ua_path(ns, "late")))
        assert got["Ready"]["status"] == "True" and got["Error"]["status"] == "False", got

    await eventually(ready, what="served and Ready once the Secret is right")
    assert "sk-sim-openai" not in caplog.text and "sk-sim-typo" not in caplog.text
    await api.delete(ua_path(ns, "late"))
    await eventually(lambda: _assert_not_in(account_id, router), what="deleted")
