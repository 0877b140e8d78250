"""OAuth access tokens of claude-official accounts: refreshed before expiry and after a 401, one refresh per
account however many requests wait, rotated refresh tokens never reused, failures reported."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from switchboard.router.v1 import router_pb2
from switchboard_edge.oauth import OAuthTokens, RefreshFailed
from switchboard_edge.upstream.base import Call
from switchboard_edge.upstream.claude_official import ClaudeOfficial
from switchboard_edge.upstream_http import Upstreams


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
    def __init__(self) -> None:
        self.stored: list[tuple[str, router_pb2.Credential | None, str]] = []

    def store_credential(self, account_id: str, *, credential: router_pb2.Credential | None = None,
                         error: str = "") -> None:
        self.stored.append((account_id, credential, error))


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
                         client_id="client-x", margin_seconds=60)
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


def test_the_oauth_beta_joins_the_clients_own() -> None:
    account = _account("access-1", "r", time.time() + 3600)
    call = Call(account, "claude-sonnet-4-5", {"model": "claude-sonnet-4-5"}, b"{}", False, "",
                {"anthropic-beta": "interleaved-thinking-2025-05-14", "user-agent": "claude-cli/2.0"})
    headers = ClaudeOfficial().build(call).headers
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert headers["authorization"] == "Bearer access-1" and headers["user-agent"] == "claude-cli/2.0"
    assert "x-api-key" not in headers
