"""openai-responses accounts signed in with ChatGPT (the Codex backend): the request the backend accepts (its
URL, headers, required and refused fields), whole answers collected from its stream, the compact routes,
its usage-window headers, its usage limit failing over, and its sign-in kept fresh through auth.openai.com's
token endpoint (one refresh per account, the rotated refresh token stored with the ChatGPT account id)."""

import asyncio
import base64
import gzip
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiohttp import web

from switchboard.router.v1 import router_pb2
from switchboard_edge.oauth import OAuthTokens, jwt_expiry, openai_endpoint
from switchboard_edge.upstream import codex_backend
from switchboard_edge.upstream.base import Call, IncompleteAnswer, response_headers
from switchboard_edge.upstream.openai_responses import OpenAIResponses
from switchboard_edge.upstream_http import Upstreams

from .control_fakes import FakeAuth, FakePool
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings" / "openai-responses"
ACCOUNT_ID = "5e1a7c3b-0000-4000-8000-00c0dec0de00"
CODEX_HEADERS = {"authorization": "Bearer good", "session_id": "codex-session-1", "version": "0.169.0",
                 "x-codex-turn-metadata": "t1", "chatgpt-account-id": "the-clients-own"}
BODY = {"model": "gpt-5", "input": [{"type": "message", "role": "user", "content": "ping"}]}


def _stream() -> bytes:
    recorded = yaml.safe_load((RECORDINGS / "stream-text.yaml").read_text())
    body = recorded["interactions"][0]["response"]["body"]["string"]
    body = body if isinstance(body, bytes) else body.encode()
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def chatgpt_account(base_url: str, *, name: str = "codex", access: str = "", expires_at: float = 0,
                    refresh: str = "rt-0") -> router_pb2.Account:
    secrets = {"refresh_token": refresh, "chatgpt_account_id": ACCOUNT_ID}
    if access:
        secrets |= {"access_token": access, "expires_at": str(int(expires_at))}
    return router_pb2.Account(id=f"openai-responses/{name}", name=name, platform="openai-responses",
                              base_url=base_url, credential=router_pb2.Credential(secrets=secrets))


def call(account: router_pb2.Account, body: dict[str, Any], *, stream: bool = True, operation: str = "chat",
         headers: dict[str, str] | None = None) -> Call:
    return Call(account, "gpt-5", body, orjson.dumps(body), stream, "", headers or {}, operation,
                "Default instructions.")


# -- the request -----------------------------------------------------------------------------------------


def test_a_chatgpt_request_carries_the_token_the_account_id_and_codexs_own_headers() -> None:
    account = chatgpt_account("https://chatgpt.com/backend-api/codex", access="at-1", expires_at=2e9)
    request = OpenAIResponses().build(call(account, BODY, headers=CODEX_HEADERS))
    assert request.url == "https://chatgpt.com/backend-api/codex/responses"
    headers = request.headers
    assert headers["authorization"] == "Bearer at-1" and headers["chatgpt-account-id"] == ACCOUNT_ID
    assert headers["originator"] == "codex_cli_rs"  # the client sent none
    assert (headers["session_id"], headers["version"], headers["x-codex-turn-metadata"]) == (
        "codex-session-1", "0.169.0", "t1")
    assert headers["accept"] == "text/event-stream"
    own = OpenAIResponses().build(call(account, BODY, headers={"originator": "codex_exec"})).headers
    assert own["originator"] == "codex_exec"


def test_the_backend_gets_what_it_requires_and_nothing_it_refuses() -> None:
    account = chatgpt_account("https://chatgpt.com/backend-api/codex", access="at-1", expires_at=2e9)
    refused = {name: 1 for name in codex_backend.REFUSED}
    client = {**BODY, **refused, "store": True, "stream": False, "service_tier": "auto", "reasoning": {"effort": "low"},
              "include": ["reasoning.encrypted_content"], "prompt_cache_key": "codex-session-1"}
    sent = orjson.loads(OpenAIResponses().build(call(account, client, stream=False)).body)
    assert sent["store"] is False and sent["stream"] is True
    assert sent["instructions"] == "Default instructions."
    assert not set(sent) & (codex_backend.REFUSED | {"service_tier"})
    assert sent["reasoning"] == {"effort": "low"} and sent["prompt_cache_key"] == "codex-session-1"
    assert sent["include"] == ["reasoning.encrypted_content"] and sent["input"] == BODY["input"]

    own = {**BODY, "instructions": "You are Codex.", "service_tier": "priority", "model": "codex-alias"}
    sent = orjson.loads(OpenAIResponses().build(call(account, own)).body)
    assert sent["instructions"] == "You are Codex." and sent["service_tier"] == "priority"
    assert sent["model"] == "gpt-5"


def test_input_becomes_a_list_without_system_roles() -> None:
    account = chatgpt_account("http://up", access="at-1", expires_at=2e9)
    sent = orjson.loads(OpenAIResponses().build(call(account, {"model": "gpt-5", "input": "hello"})).body)
    assert sent["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "hello"}]}]
    items = [{"role": "system", "content": "be brief"}, {"type": "message", "role": "user", "content": "hi"}]
    sent = orjson.loads(OpenAIResponses().build(call(account, {"model": "gpt-5", "input": items})).body)
    assert [item["role"] for item in sent["input"]] == ["developer", "user"]


def test_compact_goes_to_its_own_path_without_store_or_stream() -> None:
    account = chatgpt_account("http://up/backend-api/codex", access="at-1", expires_at=2e9)
    request = OpenAIResponses().build(call(account, {**BODY, "store": False, "metadata": {}}, stream=False,
                                           operation="compact"))
    assert request.url == "http://up/backend-api/codex/responses/compact"
    assert request.headers["accept"] == "application/json"
    sent = orjson.loads(request.body)
    assert "store" not in sent and "stream" not in sent and "metadata" not in sent and sent["instructions"]

    keyed = router_pb2.Account(base_url="https://api.openai.com", credential=router_pb2.Credential(api_key="sk-1"))
    request = OpenAIResponses().build(call(keyed, BODY, stream=False, operation="compact"))
    assert request.url == "https://api.openai.com/v1/responses/compact"
    assert request.headers["authorization"] == "Bearer sk-1" and "chatgpt-account-id" not in request.headers


def test_only_chatgpt_accounts_sign_in() -> None:
    platform = OpenAIResponses()
    assert platform.sign_in(chatgpt_account("http://up")) == "chatgpt"
    assert platform.sign_in(router_pb2.Account(credential=router_pb2.Credential(api_key="sk-1"))) is None
    assert "compact" in platform.operations


def test_a_whole_answer_is_collected_from_the_stream() -> None:
    payload, content_type = OpenAIResponses().whole_body(_stream(), "text/event-stream; charset=utf-8")
    answer = orjson.loads(payload)
    assert content_type == "application/json" and answer["object"] == "response"
    assert answer["status"] == "completed" and answer["output"][0]["content"][0]["text"] == "pong"
    assert OpenAIResponses().usage(answer).output_tokens == 5
    assert OpenAIResponses().whole_body(b'{"a": 1}', "application/json") == (b'{"a": 1}', "application/json")


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        pytest.param(b"\n\n".join(_stream().split(b"\n\n")[:3]) + b"\n\n", "ended before", id="cut"),
        pytest.param(b'event: response.failed\ndata: {"type":"response.failed","response":{"error":'
                     b'{"code":"server_error","message":"boom"}}}\n\n', "(server_error)", id="failed"),
        pytest.param(b'data: {"type":"error","code":"rate_limit_exceeded","message":"slow down"}\n\n',
                     "(rate_limit_exceeded)", id="error-without-event-line"),
    ],
)
def test_a_stream_without_its_result_is_no_whole_answer(stream: bytes, message: str) -> None:
    with pytest.raises(IncompleteAnswer, match=message.replace("(", r"\(").replace(")", r"\)")):
        codex_backend.collect(stream)


def test_the_usage_windows_reach_the_client_and_nothing_else_of_the_account() -> None:
    passed = response_headers([("x-codex-primary-used-percent", "12"), ("x-codex-secondary-reset-after-seconds", "9"),
                               ("x-codex-plan-type", "plus"), ("x-codex-credits-balance", "0"),
                               ("Content-Type", "text/event-stream")])
    assert passed == {"x-codex-primary-used-percent": "12", "x-codex-secondary-reset-after-seconds": "9",
                      "content-type": "text/event-stream"}


# -- OpenAI's token endpoint ------------------------------------------------------------------------------


def test_the_expiry_of_an_answer_without_expires_in_is_the_access_tokens_exp() -> None:
    endpoint = openai_endpoint("http://auth", "app_x")
    assert endpoint.request("rt-1") == {"grant_type": "refresh_token", "refresh_token": "rt-1",
                                        "client_id": "app_x", "scope": "openid profile email"}
    assert endpoint.expires_at({"expires_in": 600}, _jwt({"exp": 5}), now=1000.0) == 1600.0
    assert endpoint.expires_at({}, _jwt({"exp": 1_900_000_000}), now=1000.0) == 1_900_000_000.0
    assert endpoint.expires_at({}, "not-a-jwt", now=1000.0) == 4600.0  # a conservative hour
    assert jwt_expiry(_jwt({"exp": True})) is None and jwt_expiry("a.%%%.c") is None
    assert jwt_expiry(_jwt({"sub": "x"})) is None


@dataclass
class AuthOpenAI:
    """auth.openai.com's token endpoint: rotating refresh tokens, JWT access tokens, no expires_in."""

    valid_refresh: str = "rt-0"
    issued: int = 0
    fail: bool = False
    seen: list[dict[str, Any]] = field(default_factory=list)
    access_tokens: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(body)
        await asyncio.sleep(0.05)  # every waiter piles up behind one refresh
        if self.fail or body.get("refresh_token") != self.valid_refresh:
            error = {"message": "Your refresh token has already been used", "type": "invalid_request_error",
                     "code": "refresh_token_reused", "param": None}
            return web.json_response({"error": error}, status=401)
        self.issued += 1
        self.valid_refresh = f"rt-{self.issued}"
        access = _jwt({"exp": int(time.time()) + 864000, "n": self.issued})
        self.access_tokens.add(access)
        return web.json_response({"id_token": _jwt({"email": "a@example.com"}), "access_token": access,
                                  "refresh_token": self.valid_refresh})


class Reports:
    def __init__(self) -> None:
        self.stored: list[tuple[str, router_pb2.Credential | None, str]] = []

    def store_credential(self, account_id: str, *, credential: router_pb2.Credential | None = None,
                         error: str = "") -> None:
        self.stored.append((account_id, credential, error))

    async def current_credential(self, account_id: str) -> router_pb2.Credential | None:
        return None  # the router cannot say: a refused refresh is an error


async def test_an_expired_chatgpt_token_is_refreshed_once_and_stored_with_the_account_id() -> None:
    auth = AuthOpenAI()
    reports, upstreams = Reports(), Upstreams()
    tokens = OAuthTokens(reports, upstreams, token_url="http://unused", client_id="unused",  # type: ignore[arg-type]
                         margin_seconds=60)
    async with serve_upstream({"/oauth/token": auth.handle}) as url:
        try:
            account = chatgpt_account("http://up", access="at-old", expires_at=time.time() - 10)
            endpoint = openai_endpoint(f"{url}/oauth/token", "app_EMoamEEZ73f0CkXaXp7hrann")
            fresh = await asyncio.gather(*(tokens.fresh(account, endpoint=endpoint) for _ in range(10)))
            assert auth.issued == 1 and len(auth.seen) == 1
            assert auth.seen[0] == {"grant_type": "refresh_token", "refresh_token": "rt-0",
                                    "client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "scope": "openid profile email"}
            secrets = fresh[0].credential.secrets
            assert secrets["refresh_token"] == "rt-1" and secrets["chatgpt_account_id"] == ACCOUNT_ID
            assert abs(int(secrets["expires_at"]) - (time.time() + 864000)) < 5  # from the JWT's exp
            ((account_id, credential, error),) = reports.stored
            assert account_id == "openai-responses/codex" and not error and credential is not None
            assert dict(credential.secrets) == dict(secrets)

            auth.fail = True
            revoked = chatgpt_account("http://up", name="other", access="at-x", expires_at=time.time() - 10)
            with pytest.raises(Exception, match="HTTP 401 \\(refresh_token_reused\\)"):
                await tokens.fresh(revoked, endpoint=endpoint)
        finally:
            await upstreams.close()


# -- through the edge ---------------------------------------------------------------------------------------


@dataclass
class Backend:
    """The Codex backend: a valid access token and the account header, else 401/403; always a stream."""

    auth: AuthOpenAI = field(default_factory=AuthOpenAI)
    limit_reached: bool = False
    # What the backend streams instead of the recorded answer (a stream that fails after its 200).
    failing: bytes = b""
    seen: list[tuple[web.Request, dict[str, Any]]] = field(default_factory=list)
    usage = {"x-codex-primary-used-percent": "12", "x-codex-primary-window-minutes": "300",
             "x-codex-secondary-used-percent": "3", "x-codex-plan-type": "plus"}

    def _gate(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("authorization", "")[7:]
        if token not in self.auth.access_tokens:
            error = {"message": "Provided authentication token is expired.", "code": "token_expired"}
            return web.json_response({"error": error, "status": 401}, status=401)
        if request.headers.get("chatgpt-account-id") != ACCOUNT_ID:
            return web.json_response({"detail": "You do not have access to this account."}, status=403)
        if self.limit_reached:
            error = {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                     "resets_in_seconds": 600}
            return web.json_response({"error": error}, status=429, headers=self.usage)
        return None

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append((request, body))
        refused = self._gate(request)
        if refused is not None:
            return refused
        return web.Response(body=self.failing or _stream(), content_type="text/event-stream", headers=self.usage)

    async def compact(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append((request, body))
        refused = self._gate(request)
        if refused is not None:
            return refused
        answer = {"id": "resp_c", "object": "response.compaction", "output": [{"type": "compaction"}],
                  "usage": {"input_tokens": 40, "output_tokens": 7}}
        return web.json_response(answer, headers=self.usage)


@dataclass
class Stack:
    client: httpx.AsyncClient
    backend: Backend
    auth: AuthOpenAI
    usage: FakeAuth
    router: FakePool
    keyed: list[dict[str, Any]]


@pytest.fixture()
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    auth = AuthOpenAI()
    backend, keyed = Backend(auth), []

    async def api_key_responses(request: web.Request) -> web.StreamResponse:
        keyed.append(await request.json())
        return web.Response(body=_stream(), content_type="text/event-stream")

    routes = {"/backend-api/codex/responses": backend.responses,
              "/backend-api/codex/responses/compact": backend.compact,
              "/oauth/token": auth.handle, "/v1/responses": api_key_responses}
    async with serve_upstream(routes) as url:
        codex = chatgpt_account(f"{url}/backend-api/codex", access="at-expired", expires_at=time.time() - 60)
        spare = router_pb2.Account(id="openai-responses/key", name="key", platform="openai-responses", base_url=url,
                                   credential=router_pb2.Credential(api_key="sk-spare"))
        usage, router = FakeAuth(), FakePool([codex, spare])
        token_url = f"{url}/oauth/token"
        async with edge_on_fakes(usage, router, tmp_path, "edge-codex", codex_oauth_token_url=token_url) as edge:
            async with edge_client(edge) as client:
                yield Stack(client, backend, auth, usage, router, keyed)


async def _eventually(check: Any) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()


async def test_a_stream_through_the_edge_signs_in_once_for_concurrent_requests(stack: Stack) -> None:
    replies = await asyncio.gather(*(
        stack.client.post("/v1/responses", json={**BODY, "stream": True, "max_output_tokens": 64, "metadata": {}},
                          headers=CODEX_HEADERS) for _ in range(8)))
    assert {reply.status_code for reply in replies} == {200}
    assert replies[0].text == _stream().decode()
    assert replies[0].headers["x-codex-primary-used-percent"] == "12"
    assert "x-codex-plan-type" not in replies[0].headers
    assert stack.auth.issued == 1 and len(stack.auth.seen) == 1  # one refresh for eight requests
    request, sent = stack.backend.seen[-1]
    assert request.headers["chatgpt-account-id"] == ACCOUNT_ID and request.headers["session_id"] == "codex-session-1"
    assert sent["store"] is False and sent["stream"] is True and sent["instructions"]
    assert "max_output_tokens" not in sent and "metadata" not in sent
    await _eventually(lambda: stack.router.stored)
    (stored,) = stack.router.stored
    assert stored.account_id == "openai-responses/codex" and not stored.error
    assert stored.credential.secrets["refresh_token"] == "rt-1"
    assert stored.credential.secrets["chatgpt_account_id"] == ACCOUNT_ID


async def test_a_non_stream_client_gets_the_collected_answer_and_is_billed(stack: Stack) -> None:
    reply = await stack.client.post("/responses", json=BODY, headers=CODEX_HEADERS)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    answer = reply.json()
    assert answer["object"] == "response" and answer["output"][0]["content"][0]["text"] == "pong"
    assert reply.headers["x-codex-secondary-used-percent"] == "3"
    assert stack.backend.seen[-1][1]["stream"] is True
    await _eventually(lambda: stack.usage.records)
    (record,) = stack.usage.records
    assert (record.usage.input_tokens, record.usage.output_tokens) == (11, 5) and not record.stream
    assert record.account_id == "openai-responses/codex" and record.end_reason == "complete"


async def test_a_token_refused_before_its_time_is_renewed_and_the_request_retried(stack: Stack) -> None:
    stack.router.accounts[0].credential.secrets["expires_at"] = str(int(time.time()) + 3600)  # "valid", revoked
    reply = await stack.client.post("/v1/responses", json=BODY, headers=CODEX_HEADERS)
    assert reply.status_code == 200 and stack.auth.issued == 1
    assert [request.headers["authorization"] for request, _ in stack.backend.seen][0] == "Bearer at-expired"
    assert len(stack.backend.seen) == 2


async def test_a_usage_limit_fails_over_to_another_account_and_is_reported(stack: Stack) -> None:
    stack.backend.limit_reached = True
    reply = await stack.client.post("/v1/responses", json={**BODY, "stream": True}, headers=CODEX_HEADERS)
    assert reply.status_code == 200 and reply.text == _stream().decode()
    assert len(stack.keyed) == 1  # the API-key account served it
    await _eventually(lambda: len(stack.router.outcomes) == 2)
    limited, served = stack.router.outcomes
    assert (limited.account_id, limited.outcome, limited.status_code) == (
        "openai-responses/codex", router_pb2.OUTCOME_RATE_LIMITED, 429)
    assert (served.account_id, served.outcome) == ("openai-responses/key", router_pb2.OUTCOME_SUCCESS)


async def test_a_whole_answer_whose_stream_failed_fails_over_and_reports_the_vendors_error(stack: Stack) -> None:
    stack.backend.failing = (b'event: response.created\ndata: {"type":"response.created","response":{"id":"r"}}\n\n'
                             b'event: response.failed\ndata: {"type":"response.failed","response":{"id":"r","error":'
                             b'{"code":"usage_limit_reached","message":"The usage limit has been reached"}}}\n\n')
    reply = await stack.client.post("/v1/responses", json=BODY, headers=CODEX_HEADERS)
    assert reply.status_code == 200 and reply.json()["object"] == "response"
    assert len(stack.keyed) == 1  # the API-key account served it
    await _eventually(lambda: len(stack.router.outcomes) == 2)
    failed, served = stack.router.outcomes
    assert (failed.account_id, failed.outcome, failed.status_code, failed.upstream_error) == (
        "openai-responses/codex", router_pb2.OUTCOME_RATE_LIMITED, 200,
        "usage_limit_reached: The usage limit has been reached")
    assert (served.account_id, served.outcome) == ("openai-responses/key", router_pb2.OUTCOME_SUCCESS)


async def test_a_usage_limit_with_no_account_left_passes_the_vendors_answer(stack: Stack) -> None:
    stack.backend.limit_reached = True
    stack.router.accounts.pop()
    reply = await stack.client.post("/v1/responses", json=BODY, headers=CODEX_HEADERS)
    assert reply.status_code == 429 and reply.json()["error"]["type"] == "usage_limit_reached"
    assert reply.headers["x-codex-primary-used-percent"] == "12"


@pytest.mark.parametrize("path", ["/responses/compact", "/v1/responses/compact", "/openai/v1/responses/compact",
                                  "/openai/responses/compact"])
async def test_compact_routes_reach_the_backend(stack: Stack, path: str) -> None:
    reply = await stack.client.post(path, json={**BODY, "instructions": "You are Codex."}, headers=CODEX_HEADERS)
    assert reply.status_code == 200 and reply.json()["object"] == "response.compaction"
    request, sent = stack.backend.seen[-1]
    assert request.path == "/backend-api/codex/responses/compact" and "store" not in sent and "stream" not in sent
    assert request.headers["chatgpt-account-id"] == ACCOUNT_ID
    await _eventually(lambda: stack.usage.records)
    assert stack.usage.records[-1].usage.output_tokens == 7
