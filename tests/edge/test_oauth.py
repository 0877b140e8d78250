"""OAuth access tokens of claude-official accounts: refreshed before expiry and after a 401, one refresh per
account however many requests wait, rotated refresh tokens never reused, failures reported."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from switchboard.auth.v1 import auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.oauth import OAuthTokens, RefreshFailed
from switchboard_edge.reports import Reports
from switchboard_edge.upstream.base import Call
from switchboard_edge.upstream.claude_official import ClaudeOfficial
from switchboard_edge.upstream_http import Upstreams
from switchboard_router.state import RedisState

from ..redis_testing import REDIS_URL, fresh_namespace
from ..router.router_testing import Replica, account, serving, write_accounts


@dataclass
class TokenEndpoint:
    valid_refresh: str = "refresh-0"
    issued: int = 0
    fail_with: int = 0
    seen: list[dict] = field(default_factory=list)  # type: ignore[type-arg]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(body)
        await asyncio.sleep(0.05)  # long enough for every waiter to pile up behind one refresh
        if self.fail_with:
            return web.json_response({"error": "invalid_grant", "error_description": "no"}, status=self.fail_with)
        if body.get("refresh_token") != self.valid_refresh or body.get("grant_type") != "refresh_token":
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.issued += 1
        self.valid_refresh = f"refresh-{self.issued}"
        return web.json_response({"access_token": f"access-{self.issued}", "refresh_token": self.valid_refresh,
                                  "expires_in": 3600, "token_type": "Bearer"})


class Control:
    """The edge's reports to the router: what it stored, and what the router answers for the credential now
    (`current`; None: the router cannot be asked)."""

    def __init__(self) -> None:
        self.stored: list[tuple[str, router_pb2.Credential | None, str]] = []
        self.current: router_pb2.Credential | None = None
        self.asked = 0

    def store_credential(self, account_id: str, *, credential: router_pb2.Credential | None = None,
                         error: str = "") -> None:
        self.stored.append((account_id, credential, error))

    async def current_credential(self, account_id: str) -> router_pb2.Credential | None:
        self.asked += 1
        return self.current


@pytest.fixture()
async def setup() -> AsyncIterator[tuple[OAuthTokens, TokenEndpoint, Control]]:
    endpoint = TokenEndpoint()
    app = web.Application()
    app.router.add_post("/v1/oauth/token", endpoint.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    control, upstreams = Control(), Upstreams()
    tokens = OAuthTokens(control, upstreams, token_url=f"http://127.0.0.1:{runner.addresses[0][1]}/v1/oauth/token",
                         client_id="client-x", margin_seconds=60, reread_delays=(0.0, 0.05))
    try:
        yield tokens, endpoint, control
    finally:
        await upstreams.close()
        await runner.cleanup()


def _account(access: str, refresh: str, expires_at: float) -> router_pb2.Account:
    return router_pb2.Account(id="claude-official/sub", platform="claude-official", base_url="http://up",
                              credential=router_pb2.Credential(secrets={
                                  "access_token": access, "refresh_token": refresh,
                                  "expires_at": str(int(expires_at))}))


async def test_an_expired_token_is_refreshed_once_for_twenty_waiting_requests(setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, control = setup
    account = _account("access-old", "refresh-0", time.time() - 10)
    results = await asyncio.gather(*(tokens.fresh(account) for _ in range(20)))
    assert endpoint.issued == 1 and len(endpoint.seen) == 1
    assert endpoint.seen[0] == {"grant_type": "refresh_token", "refresh_token": "refresh-0", "client_id": "client-x"}
    assert {result.credential.secrets["access_token"] for result in results} == {"access-1"}
    (account_id, credential, error), = control.stored
    assert account_id == "claude-official/sub" and not error and credential is not None
    assert credential.secrets["refresh_token"] == "refresh-1"
    # A pick still carrying the old credential does not bring the spent refresh token back.
    again = await tokens.fresh(account)
    assert again.credential.secrets["access_token"] == "access-1" and endpoint.issued == 1


async def test_a_valid_token_is_used_as_it_is(setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, _ = setup
    account = _account("access-live", "refresh-0", time.time() + 3600)
    assert await tokens.fresh(account) is account and endpoint.issued == 0


async def test_a_refused_token_is_renewed_once(setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, _ = setup
    account = _account("access-revoked", "refresh-0", time.time() + 3600)
    renewed = await asyncio.gather(*(tokens.fresh(account, refused="access-revoked") for _ in range(5)))
    assert endpoint.issued == 1 and renewed[0].credential.secrets["access_token"] == "access-1"
    # A later 401 for the token already replaced does not refresh again.
    await tokens.fresh(account, refused="access-revoked")
    assert endpoint.issued == 1


async def test_a_failed_refresh_is_reported_without_secrets(setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, control = setup
    endpoint.fail_with = 400
    account = _account("access-old", "refresh-0", time.time() - 10)
    with pytest.raises(RefreshFailed, match="invalid_grant"):
        await tokens.fresh(account)
    (_, credential, error), = control.stored
    assert credential is None and "HTTP 400" in error and "refresh-0" not in error and "access-old" not in error


def _rotated_elsewhere(endpoint: TokenEndpoint, expires_in: float) -> router_pb2.Credential:
    """Another edge refreshed first: the token endpoint rotated "refresh-0" to "refresh-9", and the router holds
    that edge's credential."""
    endpoint.valid_refresh = "refresh-9"
    return router_pb2.Credential(secrets={"access_token": "access-9", "refresh_token": "refresh-9",
                                          "expires_at": str(int(time.time() + expires_in))})


async def test_a_refresh_refused_because_another_edge_rotated_the_token_uses_the_routers_credential(
        setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, control = setup
    control.current = _rotated_elsewhere(endpoint, 3600)
    account = _account("access-old", "refresh-0", time.time() - 10)

    used = await asyncio.gather(*(tokens.fresh(account) for _ in range(5)))

    assert {u.credential.secrets["access_token"] for u in used} == {"access-9"}
    assert [seen["refresh_token"] for seen in endpoint.seen] == ["refresh-0"]  # refused once, not again
    assert control.stored == []  # no error reported: the account stays usable
    # Later picks still carrying the spent token use the newer one without asking anyone.
    again = await tokens.fresh(account)
    assert again.credential.secrets["refresh_token"] == "refresh-9" and len(endpoint.seen) == 1


async def test_the_routers_newer_credential_is_refreshed_when_its_access_token_is_spent(
        setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, control = setup
    control.current = _rotated_elsewhere(endpoint, 10)  # within the refresh margin
    account = _account("access-old", "refresh-0", time.time() - 10)

    used = await tokens.fresh(account)

    assert [seen["refresh_token"] for seen in endpoint.seen] == ["refresh-0", "refresh-9"]
    assert used.credential.secrets["access_token"] == "access-1"
    (_, credential, error), = control.stored
    assert not error and credential is not None and credential.secrets["refresh_token"] == "refresh-1"


async def test_a_refused_refresh_is_an_error_when_the_router_has_nothing_newer(
        setup) -> None:  # type: ignore[no-untyped-def]
    tokens, endpoint, control = setup
    endpoint.valid_refresh = "refresh-revoked-by-the-vendor"
    control.current = _account("access-old", "refresh-0", time.time() - 10).credential  # what was tried
    with pytest.raises(RefreshFailed, match="invalid_grant"):
        await tokens.fresh(_account("access-old", "refresh-0", time.time() - 10))
    assert control.asked == 2  # asked again after a moment, in case the other edge's store was on its way
    (_, credential, error), = control.stored
    assert credential is None and "invalid_grant" in error


def test_the_oauth_beta_joins_the_clients_own() -> None:
    account = _account("access-1", "r", time.time() + 3600)
    call = Call(account, "claude-sonnet-4-5", {"model": "claude-sonnet-4-5"}, b"{}", False, "",
                {"anthropic-beta": "interleaved-thinking-2025-05-14", "user-agent": "claude-cli/2.0"})
    headers = ClaudeOfficial().build(call).headers
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert headers["authorization"] == "Bearer access-1" and headers["user-agent"] == "claude-cli/2.0"
    assert "x-api-key" not in headers


async def test_two_edges_on_two_routers_sharing_redis_both_serve_after_one_rotates_the_token(
        setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The chaos suite's finding: edge A refreshes through router 1, edge B (with the same, now spent, refresh
    token) through router 2 gets invalid_grant, and yet serves with A's credential; the account is never in
    error on either router."""
    tokens_a, endpoint, _ = setup
    endpoint.valid_refresh = "rt-test-sub-secret"  # the accounts file's
    accounts_file = tmp_path / "accounts.yaml"
    write_accounts(accounts_file, [account("sub", platform="claude-official")])
    async with fresh_namespace() as namespace, contextlib.AsyncExitStack() as stack:
        routers = [await stack.enter_async_context(serving(Replica(
            accounts_file, tmp_path / f"router-{i}.json", RedisState(REDIS_URL, namespace)))) for i in (1, 2)]
        edges = []
        for router in routers:
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(router.target))
            reports = Reports(auth_pb2_grpc.AuthServiceStub(channel), router_pb2_grpc.RouterServiceStub(channel),
                              rpc_timeout=5, usage_flush_seconds=1, usage_batch_size=100)
            stack.push_async_callback(reports.close)
            upstreams = Upstreams()
            stack.push_async_callback(upstreams.close)
            edges.append(OAuthTokens(reports, upstreams, token_url=tokens_a._default.url, client_id="client-x",
                                     margin_seconds=60))
        one, two = routers
        picked = (await one.stub.Pick(router_pb2.PickRequest(platforms=["claude-official"], model="claude-sonnet-4"),
                                      timeout=5)).account
        assert picked.credential.secrets["refresh_token"] == "rt-test-sub-secret"

        used_a = await edges[0].fresh(picked)  # edge A rotates the refresh token
        assert used_a.credential.secrets["refresh_token"] == "refresh-1"
        used_b = await edges[1].fresh(picked)  # edge B, with the same pick, is refused: and takes A's

        assert used_b.credential.secrets["access_token"] == "access-1"
        assert [seen["refresh_token"] for seen in endpoint.seen] == ["rt-test-sub-secret"] * 2
        for router in routers:
            listed = await router.stub.ListAccounts(router_pb2.ListAccountsRequest(), timeout=5)
            assert [status.state for status in listed.accounts] == [router_pb2.ACCOUNT_STATE_READY]
            assert (await router.current())["refresh_token"] == "refresh-1"
