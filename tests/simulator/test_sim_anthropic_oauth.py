"""Anthropic OAuth (claude-official accounts): the token endpoint, rotation, expiry, and Bearer access tokens."""

import asyncio
from typing import Any

import anthropic
import httpx
import pytest

from switchboard_simulator import defaults

from .conftest import Start
from .sim_testing import ANTHROPIC_REQUEST_ID, CLAUDE_BODY

TOKEN = "/v1/oauth/token"
CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
OAUTH_BETA = "oauth-2025-04-20"
REFRESH = {"grant_type": "refresh_token", "refresh_token": defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN,
           "client_id": CLIENT_ID}


def oauth_headers(token: str, betas: str = f"claude-code-20250219,{OAUTH_BETA}") -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01", "anthropic-beta": betas}


async def refresh(http: httpx.AsyncClient, refresh_token: str = defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN,
                  **extra: Any) -> httpx.Response:
    return await http.post(TOKEN, json={**REFRESH, "refresh_token": refresh_token, **extra})


def _auth_error(response: httpx.Response, message: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body == {"type": "error", "error": {"type": "authentication_error", "message": message},
                    "request_id": response.headers["request-id"]}
    assert ANTHROPIC_REQUEST_ID.match(body["request_id"])


async def test_refresh_answers_the_vendors_token_fields(client: httpx.AsyncClient) -> None:
    response = await refresh(client)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert list(tokens) == ["token_type", "access_token", "expires_in", "refresh_token", "scope", "organization",
                            "account"]
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "user:inference user:profile"
    assert tokens["access_token"].startswith("sk-ant-oat01-") and tokens["refresh_token"].startswith("sk-ant-ort01-")
    assert tokens["expires_in"] == defaults.ANTHROPIC_OAUTH_TOKEN_LIFETIME_SECONDS
    assert set(tokens["organization"]) == {"uuid", "name"} and set(tokens["account"]) == {"uuid", "email_address"}
    message = await client.post("/v1/messages", json=CLAUDE_BODY, headers=oauth_headers(tokens["access_token"]))
    assert message.status_code == 200


async def test_refresh_tokens_rotate(client: httpx.AsyncClient) -> None:
    first = (await refresh(client)).json()
    reused = await refresh(client)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "Refresh token not found or invalid"}
    second = await refresh(client, first["refresh_token"])
    assert second.status_code == 200 and second.json()["access_token"] != first["access_token"]
    assert (await refresh(client, first["refresh_token"])).status_code == 400
    # Access tokens stay valid until they expire, whatever happened to their refresh token.
    assert (await client.post("/v1/messages", json=CLAUDE_BODY,
                              headers=oauth_headers(first["access_token"]))).status_code == 200


async def test_concurrent_refreshes_with_one_token_succeed_once(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(refresh(client) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [200] + [400] * 9


async def test_access_token_needs_the_oauth_beta(client: httpx.AsyncClient) -> None:
    access = (await refresh(client)).json()["access_token"]
    response = await client.post("/v1/messages", json=CLAUDE_BODY,
                                 headers=oauth_headers(access, betas="claude-code-20250219"))
    _auth_error(response, "OAuth authentication is currently not supported.")
    forged = await client.post("/v1/messages", json=CLAUDE_BODY, headers=oauth_headers(access[:-4] + "0000"))
    _auth_error(forged, "Invalid bearer token")


async def test_expired_access_token(start: Start) -> None:
    url = await start(anthropic={"oauth_token_lifetime_seconds": 0.3})
    async with httpx.AsyncClient(base_url=url) as http:
        tokens = (await refresh(http)).json()
        assert tokens["expires_in"] == 0
        assert (await http.post("/v1/messages", json=CLAUDE_BODY,
                                headers=oauth_headers(tokens["access_token"]))).status_code == 200
        await asyncio.sleep(0.35)
        expired = await http.post("/v1/messages", json=CLAUDE_BODY, headers=oauth_headers(tokens["access_token"]))
        renewed = (await refresh(http, tokens["refresh_token"])).json()["access_token"]
        fresh = await http.post("/v1/messages", json=CLAUDE_BODY, headers=oauth_headers(renewed))
    _auth_error(expired, "OAuth token has expired. Please obtain a new token or refresh your existing token.")
    assert fresh.status_code == 200


async def test_initial_access_tokens_and_extra_refresh_tokens(start: Start) -> None:
    url = await start(anthropic={"oauth_access_tokens": ["sim-access"], "oauth_refresh_tokens": ["r1", "r2"]})
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/v1/messages", json=CLAUDE_BODY, headers=oauth_headers("sim-access"))).is_success
        assert (await refresh(http, "r1")).is_success and (await refresh(http, "r2")).is_success
        # The list replaced the default refresh token.
        assert (await refresh(http)).status_code == 400


async def test_tokens_survive_a_simulator_restart(start: Start) -> None:
    first, second = await start(), await start()
    async with httpx.AsyncClient() as http:
        tokens = (await http.post(f"{first}{TOKEN}", json=REFRESH)).json()
        used_elsewhere = await http.post(f"{second}/v1/messages", json=CLAUDE_BODY,
                                         headers=oauth_headers(tokens["access_token"]))
        refreshed_elsewhere = await http.post(f"{second}{TOKEN}",
                                              json={**REFRESH, "refresh_token": tokens["refresh_token"]})
    assert used_elsewhere.status_code == 200 and refreshed_elsewhere.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param({**REFRESH, "grant_type": "authorization_code"}, 400, "unsupported_grant_type", id="grant"),
        pytest.param({"grant_type": "refresh_token"}, 400, "invalid_request", id="no-refresh-token"),
        pytest.param({"refresh_token": "x"}, 400, "invalid_request", id="no-grant-type"),
        pytest.param({**REFRESH, "refresh_token": "sk-ant-ort01-forged-0000"}, 400, "invalid_grant", id="forged"),
    ],
)
async def test_token_endpoint_refusals(client: httpx.AsyncClient, body: dict[str, str], status: int,
                                       error: str) -> None:
    response = await client.post(TOKEN, json=body)
    assert response.status_code == status and response.json()["error"] == error
    assert list(response.json()) == ["error", "error_description"]


async def test_form_encoded_refresh(client: httpx.AsyncClient) -> None:
    assert (await client.post(TOKEN, data=REFRESH)).status_code == 200


async def test_client_ids_can_be_required(start: Start) -> None:
    url = await start(anthropic={"oauth_client_ids": [CLIENT_ID]})
    async with httpx.AsyncClient(base_url=url) as http:
        wrong = await refresh(http, client_id="someone-else")
        right = await refresh(http)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "check"),
    [
        pytest.param("400", 400, {"error": "invalid_grant", "error_description": "Refresh token not found or invalid"},
                     id="invalid_grant"),
        pytest.param("500", 500, "api_error", id="500"),
        pytest.param("overloaded", 529, "overloaded_error", id="overloaded"),
    ],
)
async def test_token_endpoint_fault(start: Start, fault: str, status: int, check: Any) -> None:
    url = await start(anthropic={"oauth_token_fault": fault}, faults=["503"])
    async with httpx.AsyncClient(base_url=url) as http:
        failing = await refresh(http)
    assert failing.status_code == status
    if isinstance(check, dict):
        assert failing.json() == check
    else:
        assert failing.json()["error"]["type"] == check


async def test_global_faults_spare_the_token_endpoint_but_the_header_does_not(start: Start) -> None:
    url = await start(faults=["500"])
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await refresh(http)).status_code == 200
        limited = await http.post(TOKEN, json=REFRESH, headers={"x-simulator-fault": "429:4"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "4"


async def test_anthropic_sdk_with_an_oauth_token(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    async with httpx.AsyncClient() as http:
        access = (await http.post(f"{base_url}{TOKEN}", json=REFRESH)).json()["access_token"]
    async with anthropic.AsyncAnthropic(auth_token=access, api_key=None, base_url=base_url, max_retries=0,
                                        default_headers={"anthropic-beta": OAUTH_BETA}) as claude:
        message = await claude.messages.create(model="claude-sonnet-4-6", max_tokens=8,
                                               messages=[{"role": "user", "content": "hi"}])
    assert message.usage.output_tokens == 8
