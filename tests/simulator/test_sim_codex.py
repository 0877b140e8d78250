"""The ChatGPT/Codex backend (POST /backend-api/codex/responses, .../compact) and ChatGPT sign-in
(POST /oauth/token): the backend's requirements, its usage headers and usage limit, token rotation."""

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from switchboard_simulator import defaults, textgen
from switchboard_simulator.config import load
from switchboard_simulator.vendors import codex, openai
from switchboard_simulator.vendors.codex_oauth import AUTH_CLAIM, jwt
from switchboard_simulator.vendors.responses_format import encrypted_content, encrypted_for

from .conftest import Start
from .sim_testing import anthropic_events

PATH = "/backend-api/codex/responses"
TOKEN = "/oauth/token"
ACCOUNT = defaults.CODEX_ACCOUNT_ID
REFRESH = {"client_id": defaults.CODEX_OAUTH_CLIENT_ID, "grant_type": "refresh_token",
           "refresh_token": defaults.CODEX_OAUTH_REFRESH_TOKEN, "scope": "openid profile email"}
#: What Codex CLI sends (codex-rs ResponsesApiRequest), unknown item types included.
CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.1-codex",
    "instructions": "You are Codex, based on GPT-5. You are running as a coding agent in the Codex CLI.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions/>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]},
    ],
    "tools": [
        {"type": "function", "name": "shell", "description": "Runs a shell command", "strict": False,
         "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}},
                                                         "workdir": {"type": "string"}}, "required": ["command"]}},
        {"type": "custom", "name": "apply_patch", "description": "Patch files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "019a0000-0000-7000-8000-000000000001",
    "text": {"verbosity": "low"},
}
USAGE_HEADERS = [
    "x-codex-active-limit", "x-codex-plan-type", "x-codex-primary-used-percent", "x-codex-secondary-used-percent",
    "x-codex-primary-window-minutes", "x-codex-primary-over-secondary-limit-percent",
    "x-codex-secondary-window-minutes", "x-codex-primary-reset-after-seconds", "x-codex-secondary-reset-after-seconds",
    "x-codex-primary-reset-at", "x-codex-secondary-reset-at", "x-codex-credits-has-credits", "x-codex-credits-balance",
    "x-codex-credits-unlimited",
]


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def _tokens(http: httpx.AsyncClient, refresh_token: str = defaults.CODEX_OAUTH_REFRESH_TOKEN) -> dict[str, Any]:
    response = await http.post(TOKEN, json={**REFRESH, "refresh_token": refresh_token})
    assert response.status_code == 200, response.text
    return response.json()


def _headers(access: str, account: str | None = ACCOUNT, **extra: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {access}", "originator": "codex_cli_rs", **extra}
    if account is not None:
        headers["chatgpt-account-id"] = account
    return headers


@pytest.fixture
async def access(client: httpx.AsyncClient) -> str:
    return str((await _tokens(client))["access_token"])


# ------------------------------------------------------------------------------------------- sign-in


async def test_refresh_answers_the_token_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, json=REFRESH)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    tokens = response.json()
    assert list(tokens) == ["access_token", "expires_in", "id_token", "refresh_token", "scope", "token_type"]
    assert tokens["expires_in"] == defaults.CODEX_OAUTH_TOKEN_LIFETIME_SECONDS
    assert tokens["token_type"] == "bearer" and tokens["scope"] == "openid profile email offline_access"
    assert tokens["refresh_token"].startswith("rt_") and tokens["refresh_token"] != REFRESH["refresh_token"]
    id_claims = _claims(tokens["id_token"])
    auth = id_claims[AUTH_CLAIM]
    assert auth["chatgpt_account_id"] == ACCOUNT and auth["chatgpt_plan_type"] == defaults.CODEX_PLAN_TYPE
    assert str(uuid.UUID(auth["chatgpt_account_id"])) == ACCOUNT
    assert id_claims["email"] and id_claims["aud"] == [defaults.CODEX_OAUTH_CLIENT_ID]
    access_claims = _claims(tokens["access_token"])
    assert access_claims[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    assert access_claims["exp"] - time.time() == pytest.approx(defaults.CODEX_OAUTH_TOKEN_LIFETIME_SECONDS, abs=5)
    answer = await client.post(PATH, json=CODEX_BODY, headers=_headers(tokens["access_token"]))
    assert answer.status_code == 200


async def test_refresh_tokens_rotate_and_reuse_is_refused(client: httpx.AsyncClient) -> None:
    first = await _tokens(client)
    reused = await client.post(TOKEN, json=REFRESH)
    assert reused.status_code == 401
    assert reused.text == (
        '{\n  "error": {\n    "message": "Your refresh token has already been used to generate a new access token. '
        'Please try signing in again.",\n    "type": "invalid_request_error",\n    "param": null,\n    "code": '
        '"refresh_token_reused"\n  }\n}'
    )
    second = await _tokens(client, first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    again = await client.post(TOKEN, json={**REFRESH, "refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and again.json()["error"]["code"] == "refresh_token_reused"
    unknown = await client.post(TOKEN, json={**REFRESH, "refresh_token": "rt_forged.0000"})
    assert unknown.status_code == 401
    assert unknown.json()["error"] == {"message": "Could not validate your token. Please try signing in again.",
                                       "type": "invalid_request_error", "param": None, "code": "token_expired"}
    # An access token stays valid until it expires, whatever happened to its refresh token.
    assert (await client.post(PATH, json=CODEX_BODY, headers=_headers(first["access_token"]))).status_code == 200


async def test_concurrent_refreshes_with_one_token_succeed_once(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(client.post(TOKEN, json=REFRESH) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] + [401] * 7


async def test_refresh_form_encoded_and_its_errors(client: httpx.AsyncClient) -> None:
    form = await client.post(TOKEN, data=REFRESH)
    assert form.status_code == 200 and form.json()["refresh_token"].startswith("rt_")
    wrong_client = await client.post(TOKEN, json={**REFRESH, "client_id": "app_other"})
    assert wrong_client.status_code == 401 and wrong_client.json()["error"]["code"] == "invalid_client"
    no_token = await client.post(TOKEN, json={"grant_type": "refresh_token", "client_id": REFRESH["client_id"]})
    assert no_token.status_code == 400 and no_token.json()["error"]["param"] == "refresh_token"
    other_grant = await client.post(TOKEN, json={**REFRESH, "grant_type": "password"})
    assert other_grant.status_code == 400 and other_grant.json()["error"]["code"] == "unsupported_grant_type"


async def test_tokens_survive_a_restart(start: Start) -> None:
    first = await start(codex={"oauth_refresh_tokens": ["boot-1"]})
    async with httpx.AsyncClient(base_url=first) as http:
        tokens = await _tokens(http, "boot-1")
    second = await start(codex={"oauth_refresh_tokens": ["boot-2"]})
    async with httpx.AsyncClient(base_url=second) as http:
        assert (await http.post(PATH, json=CODEX_BODY, headers=_headers(tokens["access_token"]))).status_code == 200
        assert (await http.post(TOKEN, json={**REFRESH, "refresh_token": tokens["refresh_token"]})).status_code == 200


async def test_oauth_token_fault(start: Start) -> None:
    base_url = await start(codex={"oauth_token_fault": "401"})
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(TOKEN, json=REFRESH)
        assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"
        assert (await http.post(TOKEN, json=REFRESH, headers={"x-simulator-fault": "500"})).status_code == 500


# ------------------------------------------------------------------------------------- authentication


async def test_access_token_and_account_are_required(client: httpx.AsyncClient, access: str) -> None:
    bad = {"detail": "Could not parse your authentication token. Please try signing in again."}
    none = await client.post(PATH, json=CODEX_BODY)
    assert none.status_code == 401 and none.json() == bad
    forged = await client.post(PATH, json=CODEX_BODY, headers=_headers(access[:-6] + "AAAAAA"))
    assert forged.status_code == 401 and forged.json() == bad
    api_key = await client.post(PATH, json=CODEX_BODY, headers=_headers(defaults.OPENAI_KEY))
    assert api_key.status_code == 401
    no_account = await client.post(PATH, json=CODEX_BODY, headers=_headers(access, account=None))
    assert no_account.status_code == 403 and no_account.json() == {"detail": "You do not have access to this account."}
    other = await client.post(PATH, json=CODEX_BODY, headers=_headers(access, account=str(uuid.uuid4())))
    assert other.status_code == 403
    for response in (none, no_account):
        assert all(name in response.headers for name in USAGE_HEADERS)


async def test_expired_access_token(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    expired = jwt({"exp": now - 10, "iat": now - 100, AUTH_CLAIM: {"chatgpt_account_id": ACCOUNT}})
    response = await client.post(PATH, json=CODEX_BODY, headers=_headers(expired))
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Provided authentication token is expired. Please try signing "
                                                    "in again.", "type": None, "code": "token_expired", "param": None},
                               "status": 401}


async def test_static_keys_and_accept_any_key(start: Start) -> None:
    base_url = await start(codex={"keys": ["sim-codex-static"]})
    async with httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.post(PATH, json=CODEX_BODY, headers=_headers("sim-codex-static"))).status_code == 200
        assert (await http.post(PATH, json=CODEX_BODY, headers=_headers("sim-codex-static", str(uuid.uuid4())))
                ).status_code == 403
    anything = await start(codex={"accept_any_key": True})
    async with httpx.AsyncClient(base_url=anything) as http:
        assert (await http.post(PATH, json=CODEX_BODY, headers=_headers("whatever", str(uuid.uuid4())))
                ).status_code == 200


# ----------------------------------------------------------------------------------- the requirements


@pytest.mark.parametrize(("change", "detail"), [
    ({"max_output_tokens": 100}, "Unsupported parameter: max_output_tokens"),
    ({"temperature": 0.2}, "Unsupported parameter: temperature"),
    ({"metadata": {"a": "b"}}, "Unsupported parameter: metadata"),
    ({"instructions": ""}, "Instructions are required"),
    ({"instructions": None}, "Instructions are required"),
    ({"store": True}, "Store must be set to false"),
    ({"store": None}, "Store must be set to false"),
    ({"stream": False}, "Stream must be set to true"),
    ({"stream": None}, "Stream must be set to true"),
    ({"input": "hi"}, "Input must be a list"),
    ({"model": "gpt-4o"}, "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."),
])
async def test_backend_requirements(client: httpx.AsyncClient, access: str, change: dict[str, Any],
                                    detail: str) -> None:
    body = {k: v for k, v in {**CODEX_BODY, **change}.items() if v is not None}
    response = await client.post(PATH, json=body, headers=_headers(access))
    assert response.status_code == 400
    assert response.json() == {"detail": detail}
    assert response.headers["content-type"] == "application/json" and "x-codex-plan-type" in response.headers


async def test_instructions_are_checked_before_the_input(client: httpx.AsyncClient, access: str) -> None:
    body = {k: v for k, v in CODEX_BODY.items() if k != "instructions"}
    response = await client.post(PATH, json={**body, "input": "hi"}, headers=_headers(access))
    assert response.json() == {"detail": "Instructions are required"}


# ------------------------------------------------------------------------------------------ the answer


async def test_codex_request_streams_the_responses_events(client: httpx.AsyncClient, access: str) -> None:
    response = await client.post(PATH, json=CODEX_BODY, headers=_headers(access))
    assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
    assert [name for name in response.headers if name.startswith("x-codex-")] == USAGE_HEADERS
    assert uuid.UUID(response.headers["x-oai-request-id"])
    headers = response.headers
    assert headers["x-codex-primary-window-minutes"] == "300" and headers["x-codex-secondary-window-minutes"] == "10080"
    assert headers["x-codex-plan-type"] == "plus" and headers["x-codex-credits-has-credits"] == "False"
    reset_after = int(headers["x-codex-primary-reset-after-seconds"])
    assert 0 < reset_after <= 300 * 60
    assert int(headers["x-codex-primary-reset-at"]) == pytest.approx(time.time() + reset_after, abs=2)
    events = anthropic_events(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-1] == "response.completed" and "response.reasoning_summary_text.delta" in names
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    completed = events[-1][1]["response"]
    assert completed["store"] is False and completed["instructions"] == CODEX_BODY["instructions"]
    assert completed["tools"][1] == CODEX_BODY["tools"][1] and completed["tools"][0]["strict"] is False
    reasoning, message = completed["output"]
    assert reasoning["encrypted_content"].startswith("gAAAAAB")
    assert message["content"][0]["text"] == textgen.reply(35).text
    usage = completed["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0 and usage["input_tokens"] > 0


async def test_the_model_calls_a_tool_it_is_asked_to_use(client: httpx.AsyncClient, access: str) -> None:
    body = {**CODEX_BODY, "input": [{"type": "message", "role": "user",
                                     "content": [{"type": "input_text", "text": "use shell to list files"}]}]}
    events = anthropic_events((await client.post(PATH, json=body, headers=_headers(access))).text)
    call = events[-1][1]["response"]["output"][-1]
    assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"command": ["sim"]}
    replay = {"type": "function_call", "call_id": call["call_id"], "name": "shell", "arguments": call["arguments"]}
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "a.txt"}
    follow_up = {**body, "input": [*body["input"], replay, output]}
    events = anthropic_events((await client.post(PATH, json=follow_up, headers=_headers(access))).text)
    assert events[-1][1]["response"]["output"][-1]["type"] == "message"


async def test_prompt_cache_key_reports_cached_tokens(client: httpx.AsyncClient, access: str) -> None:
    first = anthropic_events((await client.post(PATH, json=CODEX_BODY, headers=_headers(access))).text)
    longer = {**CODEX_BODY, "input": [*CODEX_BODY["input"], {"type": "message", "role": "user",
                                                             "content": [{"type": "input_text", "text": "more"}]}]}
    second = anthropic_events((await client.post(PATH, json=longer, headers=_headers(access))).text)
    assert first[-1][1]["response"]["usage"]["input_tokens_details"]["cached_tokens"] == 0
    assert second[-1][1]["response"]["usage"]["input_tokens_details"]["cached_tokens"] > 0


async def test_compact(client: httpx.AsyncClient, access: str) -> None:
    body = {key: CODEX_BODY[key] for key in ("model", "instructions", "input", "tools", "parallel_tool_calls",
                                             "reasoning", "text", "prompt_cache_key")}
    response = await client.post(f"{PATH}/compact", json=body, headers=_headers(access))
    assert response.status_code == 200 and "x-codex-primary-used-percent" in response.headers
    answer = response.json()
    assert answer["object"] == "response.compaction"
    assert [item["type"] for item in answer["output"]] == ["message", "message", "compaction"]
    assert answer["output"][-1]["encrypted_content"].startswith("gAAAAAB")
    assert (await client.post(f"{PATH}/compact", json=body, headers=_headers(access, account=None))).status_code == 403


# ------------------------------------------------------------------------------------ encrypted content


UNVERIFIED = "Encrypted content could not be decrypted or parsed."


def _refusal(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": "invalid_encrypted_content"}}


def _unverified(blob: str) -> dict[str, Any]:
    return _refusal(f"The encrypted content {blob[:4]}...{blob[-4:]} could not be verified. Reason: {UNVERIFIED}")


def _assert_refused(response: httpx.Response, expected: dict[str, Any]) -> None:
    assert response.status_code == 400
    assert response.json() == expected and response.text == json.dumps(expected, indent=2)
    assert response.headers["content-type"] == "application/json" and "x-codex-plan-type" in response.headers


def _with(*items: dict[str, Any]) -> dict[str, Any]:
    return {**CODEX_BODY, "input": [*CODEX_BODY["input"], *items, {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "go on"}]}]}


async def _reasoning(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await http.post(PATH, json=CODEX_BODY, headers=headers)
    assert response.status_code == 200, response.text
    item = anthropic_events(response.text)[-1][1]["response"]["output"][0]
    assert item["type"] == "reasoning" and item["encrypted_content"].startswith("gAAAAAB")
    return dict(item)


async def test_reasoning_is_bound_to_the_organisation_of_the_token(start: Start) -> None:
    base_url = await start(codex={"keys": ["codex-a", "codex-b", "codex-c"], "organizations": {"codex-b": "org-b"}})
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        made = await _reasoning(http, _headers("codex-a"))
        blob = made["encrypted_content"]
        assert encrypted_for(blob, codex.ORGANIZATION)
        assert (await http.post(PATH, json=_with(made), headers=_headers("codex-a"))).status_code == 200
        # Unlisted callers share one organisation: another static key, an issued access token.
        assert (await http.post(PATH, json=_with(made), headers=_headers("codex-c"))).status_code == 200
        access = str((await _tokens(http))["access_token"])
        assert (await http.post(PATH, json=_with(made), headers=_headers(access))).status_code == 200
        # A caller of another organisation is refused with the vendor's body (and the usage headers).
        _assert_refused(await http.post(PATH, json=_with(made), headers=_headers("codex-b")), _unverified(blob))
        theirs = await _reasoning(http, _headers("codex-b"))
        assert encrypted_for(theirs["encrypted_content"], "org-b")
        assert (await http.post(PATH, json=_with(theirs), headers=_headers("codex-b"))).status_code == 200
        _assert_refused(await http.post(PATH, json=_with(theirs), headers=_headers(access)),
                        _unverified(theirs["encrypted_content"]))
        # The API platform's organisations and the backend's do not accept each other's content.
        api_made = {"type": "reasoning", "encrypted_content": encrypted_content(256, openai.ORGANIZATION),
                    "summary": []}
        _assert_refused(await http.post(PATH, json=_with(api_made), headers=_headers("codex-a")),
                        _unverified(api_made["encrypted_content"]))
        # Forged content is refused too.
        forged = {"type": "reasoning", "encrypted_content": "gAAAAABforged==", "summary": []}
        _assert_refused(await http.post(PATH, json=_with(forged), headers=_headers("codex-a")),
                        _unverified("gAAAAABforged=="))


async def test_reasoning_is_bound_to_the_organisation_of_the_account(start: Start) -> None:
    base_url = await start(codex={"accept_any_key": True, "organizations": {"acct-b": "org-b"}})
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        made = await _reasoning(http, _headers("any", "acct-a"))
        assert (await http.post(PATH, json=_with(made), headers=_headers("other", "acct-c"))).status_code == 200
        _assert_refused(await http.post(PATH, json=_with(made), headers=_headers("any", "acct-b")),
                        _unverified(made["encrypted_content"]))


def test_organisations_from_the_command_line() -> None:
    vendor = load(["--codex-organization", "codex-x=org-x", "--codex-organization", f"{ACCOUNT}=org-y"], {}).codex
    assert vendor.organization("codex-x", ACCOUNT) == "org-x" and vendor.organization("other", ACCOUNT) == "org-y"
    assert vendor.organization("other", "acct-z") == codex.ORGANIZATION


async def test_compaction_is_bound_to_the_organisation(start: Start) -> None:
    base_url = await start(codex={"keys": ["codex-a", "codex-b"], "organizations": {"codex-b": "org-b"}})
    body = {key: CODEX_BODY[key] for key in ("model", "instructions", "input", "tools", "reasoning")}
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        compacted = await http.post(f"{PATH}/compact", json=body, headers=_headers("codex-a"))
        assert compacted.status_code == 200
        item = compacted.json()["output"][-1]
        assert item["type"] == "compaction" and item["id"].startswith("cmp_")
        for path, turn in ((PATH, _with(item)), (f"{PATH}/compact", {**body, "input": [item, *body["input"]]})):
            assert (await http.post(path, json=turn, headers=_headers("codex-a"))).status_code == 200
            _assert_refused(await http.post(path, json=turn, headers=_headers("codex-b")), _refusal(
                f"The encrypted content for item {item['id']} could not be verified. Reason: {UNVERIFIED}"))
        made = await _reasoning(http, _headers("codex-a"))
        _assert_refused(await http.post(f"{PATH}/compact", json={**body, "input": [*body["input"], made]},
                                        headers=_headers("codex-b")), _unverified(made["encrypted_content"]))


# ------------------------------------------------------------------------------------- usage and faults


def _limit_body(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert list(error) == ["type", "message", "plan_type", "resets_at", "eligible_promo", "resets_in_seconds"]
    assert error["type"] == "usage_limit_reached" and error["message"] == "The usage limit has been reached"
    assert error["resets_at"] == pytest.approx(time.time() + error["resets_in_seconds"], abs=2)
    return dict(error)


async def test_usage_limit_reached(start: Start) -> None:
    base_url = await start(codex={"usage_limit_reached": True, "plan_type": "pro", "secondary_used_percent": 80})
    async with httpx.AsyncClient(base_url=base_url) as http:
        access = (await _tokens(http))["access_token"]
        response = await http.post(PATH, json=CODEX_BODY, headers=_headers(access))
        error = _limit_body(response)
        assert error["plan_type"] == "pro" and 0 < error["resets_in_seconds"] <= 300 * 60
        assert response.headers["x-codex-primary-used-percent"] == "100"
        assert response.headers["x-codex-secondary-used-percent"] == "80"
    weekly = await start(codex={"secondary_used_percent": 100})
    async with httpx.AsyncClient(base_url=weekly) as http:
        access = (await _tokens(http))["access_token"]
        error = _limit_body(await http.post(PATH, json=CODEX_BODY, headers=_headers(access)))
        assert error["resets_in_seconds"] > 0 and error["plan_type"] == "plus"


async def test_used_percent_is_reported(start: Start) -> None:
    base_url = await start(codex={"primary_used_percent": 42.5, "secondary_used_percent": 7})
    async with httpx.AsyncClient(base_url=base_url) as http:
        access = (await _tokens(http))["access_token"]
        response = await http.post(PATH, json=CODEX_BODY, headers=_headers(access))
    assert response.status_code == 200
    assert response.headers["x-codex-primary-used-percent"] == "42.5"
    assert response.headers["x-codex-secondary-used-percent"] == "7"


async def test_faults(client: httpx.AsyncClient, access: str) -> None:
    limited = await client.post(PATH, json=CODEX_BODY, headers=_headers(access, **{"x-simulator-fault": "429"}))
    _limit_body(limited)
    assert limited.headers["x-codex-primary-used-percent"] == "100"
    broken = await client.post(PATH, json=CODEX_BODY, headers=_headers(access, **{"x-simulator-fault": "500"}))
    assert broken.status_code == 500 and broken.json()["error"]["type"] == "server_error"
    assert "x-codex-plan-type" in broken.headers
    failing = await client.post(PATH, json=CODEX_BODY,
                                headers=_headers(access, **{"x-simulator-fault": "stream_error:2"}))
    names = [name for name, _ in anthropic_events(failing.text)]
    assert names[-2:] == ["error", "response.failed"]
    assert names.count("response.reasoning_summary_text.delta") == 2
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(PATH, json=CODEX_BODY, headers=_headers(access, **{"x-simulator-fault": "disconnect:4"}))
    with pytest.raises(httpx.ReadTimeout):
        await client.post(PATH, json=CODEX_BODY, timeout=0.3, headers=_headers(access, **{"x-simulator-fault": "hang"}))
