"""The edge's admin API and /v1/usage through httpx.ASGITransport, against the real AuthServicer and
AdminServicer on SQLite (in-process gRPC; the router is the fake): the token gate, each route, its errors in
OpenAI's format (Anthropic's on /claude)."""

import dataclasses
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2_grpc
from switchboard_auth.admin import AdminServicer
from switchboard_auth.keys import KeyHasher
from switchboard_auth.service import AuthServicer
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger
from switchboard_auth.usage import UsageEntry
from switchboard_edge.app import create_app
from switchboard_edge.settings import EdgeSettings

from .control_fakes import FakeRouter

TOKEN = "admin-token-for-tests"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
KEY = re.compile(r"sk-sb-[A-Za-z0-9_-]{40}")
PEPPER = "edge-admin-pepper"


@dataclasses.dataclass
class Edge:
    client: httpx.AsyncClient
    auth: auth_pb2_grpc.AuthServiceStub
    ledger: SqliteLedger

    async def authenticates(self, key: str) -> bool:
        reply = await self.auth.Authenticate(auth_pb2.AuthenticateRequest(credential=key), timeout=5)
        return bool(reply.decision == auth_pb2.DECISION_ALLOW)


EdgeFactory = Callable[..., AbstractAsyncContextManager[Edge]]


@pytest.fixture
async def make_edge(tmp_path: Path) -> AsyncIterator[EdgeFactory]:
    db = str(tmp_path / "auth.db")
    keys, ledger = await SqliteKeyStore.open(db), await SqliteLedger.open(db)
    server = grpc.aio.server()
    AuthServicer(keys, ledger, hasher=KeyHasher(PEPPER), cache_ttl_seconds=0, cache_max_entries=10).register(server)
    AdminServicer(keys, ledger, pepper=PEPPER).register(server)
    router_pb2_grpc.add_RouterServiceServicer_to_server(FakeRouter(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    target = f"127.0.0.1:{port}"

    spools = iter(range(100))

    @asynccontextmanager
    async def edge(token: str = TOKEN, auth_target: str = target) -> AsyncIterator[Edge]:
        settings = EdgeSettings(auth_target=auth_target, router_target=target, admin_token=token,
                                rpc_timeout_seconds=2, spool_dir=str(tmp_path / f"spool-{next(spools)}"),
                                instance_id="edge-admin")
        app = create_app(settings)
        async with app.router.lifespan_context(app), grpc.aio.insecure_channel(target) as channel:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
                yield Edge(client, auth_pb2_grpc.AuthServiceStub(channel), ledger)

    try:
        yield edge
    finally:
        await server.stop(None)
        await ledger.close()
        await keys.close()


@pytest.fixture
async def edge(make_edge: EdgeFactory) -> AsyncIterator[Edge]:
    async with make_edge() as running:
        yield running


ROUTES = [
    pytest.param("GET", "/admin/v1/keys", None, id="list"),
    pytest.param("POST", "/admin/v1/keys", {"name": "sneaky"}, id="create"),
    pytest.param("GET", "/admin/v1/keys/victim", None, id="get"),
    pytest.param("PATCH", "/admin/v1/keys/victim", {"state": "active"}, id="update"),
    pytest.param("POST", "/admin/v1/keys/victim/rotate", {}, id="rotate"),
    pytest.param("DELETE", "/admin/v1/keys/victim", None, id="delete"),
    pytest.param("GET", "/admin/v1/keys/victim/usage", None, id="usage"),
    pytest.param("GET", "/admin/v1/nothing-here", None, id="unknown-path"),
    pytest.param("PUT", "/admin/v1/keys", {}, id="wrong-method"),
]


def openai_error(response: httpx.Response, code: str | None = None) -> str:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code
    return str(error["message"])


async def create(edge: Edge, name: str, **fields: object) -> dict[str, object]:
    response = await edge.client.post("/admin/v1/keys", json={"name": name, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


@pytest.mark.parametrize("method, path, body", ROUTES)
async def test_without_the_setting_every_admin_route_is_404(make_edge: EdgeFactory, method: str, path: str,
                                                             body: object) -> None:
    async with make_edge(token="") as edge:
        for headers in ({}, ADMIN, {"authorization": "Bearer "}):
            response = await edge.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 404
            assert f"No route for {method} {path}" in openai_error(response, "not_found")


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-token"),
    pytest.param({"authorization": "Bearer wrong"}, id="wrong-token"),
    pytest.param({"authorization": f"Bearer {TOKEN}x"}, id="longer-token"),
    pytest.param({"authorization": f"Basic {TOKEN}"}, id="other-scheme"),
    pytest.param({"x-api-key": TOKEN}, id="token-as-api-key"),
])
async def test_no_admin_route_answers_without_the_token(edge: Edge, method: str, path: str, body: object,
                                                        headers: dict[str, str]) -> None:
    await create(edge, "victim")
    response = await edge.client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert "admin token" in openai_error(response, "invalid_api_key")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert (await edge.client.get("/admin/v1/keys/victim", headers=ADMIN)).json()["state"] == "active"


async def test_with_the_token_unknown_paths_and_methods_get_404_and_405(edge: Edge) -> None:
    await create(edge, "listed")
    head = await edge.client.head("/admin/v1/keys", headers=ADMIN)  # a read, never a create
    assert head.status_code == 200
    assert [view["name"] for view in (await edge.client.get("/admin/v1/keys", headers=ADMIN)).json()["data"]] == [
        "listed"]
    missing = await edge.client.get("/admin/v1/nothing-here", headers=ADMIN)
    assert missing.status_code == 404 and "/admin/v1/nothing-here" in openai_error(missing, "not_found")
    wrong = await edge.client.put("/admin/v1/keys", json={}, headers=ADMIN)
    assert wrong.status_code == 405 and set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    openai_error(wrong, "method_not_allowed")


async def test_create_shows_the_key_once_and_it_works(edge: Edge) -> None:
    response = await edge.client.post("/admin/v1/keys", headers=ADMIN, json={
        "name": "team-a", "allowed_platforms": ["openai"], "allowed_models": ["gpt-*"], "groups": ["g1"],
        "expires_at": "2099-01-01T00:00:00Z", "owner": "team a", "description": "demo", "tags": ["t"],
        "policy": {"denied_models": ["gpt-4o"], "allowed_ips": ["10.0.0.7/8"]},
        "limits": {"requests_per_minute": 60, "monthly_budget_micro_usd": 25_000_000}})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    key = created.pop("key")
    assert KEY.fullmatch(key) and await edge.authenticates(key)
    assert response.headers["location"] == f"/admin/v1/keys/{created['key_id']}"
    assert created["key_prefix"] == key[:12] and created["state"] == "active"
    assert created["expires_at"] == "2099-01-01T00:00:00Z" and created["policy"]["allowed_ips"] == ["10.0.0.0/8"]
    assert created["limits"] == {"requests_per_minute": 60, "monthly_budget_micro_usd": 25_000_000}
    shown = await edge.client.get(f"/admin/v1/keys/{created['key_id']}", headers=ADMIN)
    assert shown.status_code == 200 and shown.json() == created  # the same view, without the key
    assert key not in shown.text and "cache-control" not in shown.headers


@pytest.mark.parametrize("body, status, words", [
    pytest.param({"name": "p", "allowed_platforms": ["nope"]}, 400, "unknown platform", id="platform"),
    pytest.param({"name": "key_0123456789ab"}, 400, "looks like a key_id", id="name"),
    pytest.param({"name": "l", "limits": {"concurrency": 0}}, 400, "positive whole number", id="zero-limit"),
    pytest.param({"name": "l", "limits": {"concurrency": 1.5}}, 400, "Couldn't parse integer", id="fraction"),
    pytest.param({"name": "l", "limits": {"rpm": 5}}, 400, "Unknown field 'limits.rpm'", id="unknown-limit"),
    pytest.param({"name": "x", "key_hash": "00"}, 400, "Unknown field 'key_hash'", id="unknown-field"),
    pytest.param({"name": "x", "expires_at": "soon"}, 400, "expires_at", id="bad-time"),
    pytest.param({"name": "x", "tags": "one"}, 400, "tags", id="not-a-list"),
])
async def test_create_refuses_bad_settings(edge: Edge, body: dict[str, object], status: int, words: str) -> None:
    response = await edge.client.post("/admin/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == status
    assert words in openai_error(response, "invalid_request")


async def test_create_refuses_a_taken_name_with_409(edge: Edge) -> None:
    await create(edge, "twice")
    response = await edge.client.post("/admin/v1/keys", json={"name": "twice"}, headers=ADMIN)
    assert response.status_code == 409 and "'twice' already exists" in openai_error(response, "conflict")


@pytest.mark.parametrize("content, headers, status", [
    pytest.param(b"{nope", {"content-type": "application/json"}, 400, id="not-json"),
    pytest.param(b"[1]", {"content-type": "application/json"}, 400, id="not-an-object"),
    pytest.param(b'{"name": "x"}', {"content-type": "text/plain"}, 415, id="not-json-type"),
    pytest.param(b'{"name": "' + b"x" * 70_000 + b'"}', {"content-type": "application/json"}, 413, id="too-big"),
])
async def test_a_body_that_is_not_a_json_object_is_refused(edge: Edge, content: bytes, headers: dict[str, str],
                                                           status: int) -> None:
    response = await edge.client.post("/admin/v1/keys", content=content, headers={**ADMIN, **headers})
    assert response.status_code == status
    openai_error(response)


async def test_list_gives_every_view_never_a_key(edge: Edge) -> None:
    keys = [(await create(edge, name))["key"] for name in ("zeta", "alpha")]
    response = await edge.client.get("/admin/v1/keys", headers=ADMIN)
    assert response.status_code == 200
    assert [view["name"] for view in response.json()["data"]] == ["alpha", "zeta"]
    for key in keys:
        assert str(key) not in response.text
    assert "hash" not in response.text


async def test_an_unknown_key_is_404_on_each_route(edge: Edge) -> None:
    for method, path, body in (("GET", "/admin/v1/keys/ghost", None), ("DELETE", "/admin/v1/keys/ghost", None),
                               ("PATCH", "/admin/v1/keys/ghost", {"state": "disabled"}),
                               ("POST", "/admin/v1/keys/ghost/rotate", None)):
        response = await edge.client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 404, (method, path)
        assert "no key named or with key_id 'ghost'" in openai_error(response, "not_found")


async def test_patch_disables_and_enables(edge: Edge) -> None:
    created = await create(edge, "toggled")
    disabled = await edge.client.patch("/admin/v1/keys/toggled", json={"state": "disabled"}, headers=ADMIN)
    assert disabled.status_code == 200 and disabled.json()["state"] == "disabled"
    assert not await edge.authenticates(str(created["key"]))
    models = await edge.client.get("/openai/v1/models", headers={"authorization": f"Bearer {created['key']}"})
    assert models.status_code == 401  # refused by the gateway too
    enabled = await edge.client.patch(f"/admin/v1/keys/{created['key_id']}", json={"state": "active"}, headers=ADMIN)
    assert enabled.json()["state"] == "active" and await edge.authenticates(str(created["key"]))


async def test_patch_is_a_merge_patch(edge: Edge) -> None:
    await create(edge, "merged", owner="before", tags=["keep"], expires_at="2099-01-01T00:00:00Z",
                 limits={"requests_per_minute": 10, "tokens_per_day": 1000},
                 policy={"denied_models": ["gpt-4o"]})
    response = await edge.client.patch("/admin/v1/keys/merged", headers=ADMIN, json={
        "owner": "after", "expires_at": None, "limits": {"requests_per_minute": None, "concurrency": 2},
        "policy": {"allowed_clients": ["codex-cli"]}})
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["owner"], view["tags"], view["expires_at"]) == ("after", ["keep"], None)
    assert view["limits"] == {"tokens_per_day": 1000, "concurrency": 2}
    assert view["policy"]["denied_models"] == ["gpt-4o"] and view["policy"]["allowed_clients"] == ["codex-cli"]
    cleared = await edge.client.patch("/admin/v1/keys/merged", headers=ADMIN, json={"limits": None})
    assert cleared.json()["limits"] == {}


@pytest.mark.parametrize("body, words", [
    pytest.param({}, "nothing to update", id="empty"),
    pytest.param({"state": "paused"}, "state must be one of active, disabled", id="bad-state"),
    pytest.param({"name": "renamed"}, "name cannot change", id="rename"),
    pytest.param({"key_id": "key_000000000000"}, "Unknown field 'key_id'", id="read-only"),
    pytest.param({"allowed_platforms": ["nope"]}, "unknown platform", id="bad-value"),
])
async def test_a_bad_patch_is_400_and_changes_nothing(edge: Edge, body: dict[str, object], words: str) -> None:
    before = (await create(edge, "steady"))
    response = await edge.client.patch("/admin/v1/keys/steady", json=body, headers=ADMIN)
    assert response.status_code == 400 and words in openai_error(response, "invalid_request")
    after = (await edge.client.get("/admin/v1/keys/steady", headers=ADMIN)).json()
    assert after == {name: value for name, value in before.items() if name != "key"}


async def test_rotate_with_and_without_grace(edge: Edge) -> None:
    first = await create(edge, "rotated")
    graced = await edge.client.post("/admin/v1/keys/rotated/rotate", json={"grace_seconds": 3600}, headers=ADMIN)
    assert graced.status_code == 200 and graced.headers["cache-control"] == "no-store"
    second = graced.json()
    assert second["key_id"] == first["key_id"] and second["key"] != first["key"]
    assert second["previous_secret_valid_until"] is not None
    assert await edge.authenticates(str(first["key"])) and await edge.authenticates(str(second["key"]))
    now = await edge.client.post("/admin/v1/keys/rotated/rotate", headers=ADMIN)  # no body: no grace
    third = now.json()
    assert now.status_code == 200 and third["previous_secret_valid_until"] is None
    assert not await edge.authenticates(str(second["key"])) and await edge.authenticates(str(third["key"]))


@pytest.mark.parametrize("body, words", [
    pytest.param({"grace_seconds": 0}, "grace period must be positive", id="zero"),
    pytest.param({"grace_seconds": "1h"}, "must be a number", id="text"),
    pytest.param({"grace_seconds": True}, "must be a number", id="bool"),
    pytest.param({"grace_seconds": 1e300}, "out of range", id="huge"),
    pytest.param({"grace": 5}, "Unknown field 'grace'", id="unknown"),
])
async def test_a_bad_grace_is_400(edge: Edge, body: dict[str, object], words: str) -> None:
    await create(edge, "graceless")
    response = await edge.client.post("/admin/v1/keys/graceless/rotate", json=body, headers=ADMIN)
    assert response.status_code == 400 and words in openai_error(response, "invalid_request")


async def test_delete(edge: Edge) -> None:
    created = await create(edge, "doomed")
    response = await edge.client.delete("/admin/v1/keys/doomed", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"key_id": created["key_id"], "name": "doomed", "deleted": True}
    assert (await edge.client.get("/admin/v1/keys/doomed", headers=ADMIN)).status_code == 404
    assert not await edge.authenticates(str(created["key"]))


async def test_auth_unreachable_is_503_with_retry_after(make_edge: EdgeFactory) -> None:
    with socket_bound() as port:  # a port nothing answers on
        async with make_edge(auth_target=f"127.0.0.1:{port}") as edge:
            response = await edge.client.get("/admin/v1/keys", headers=ADMIN)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "cannot be reached" in openai_error(response, "service_unavailable")


async def test_neither_the_token_nor_a_key_is_logged(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        created = await create(edge, "logged")
        rotated = (await edge.client.post("/admin/v1/keys/logged/rotate", headers=ADMIN)).json()
        await edge.client.get("/admin/v1/keys", headers={"authorization": "Bearer not-the-token"})
        await edge.client.delete("/admin/v1/keys/logged", headers=ADMIN)
    assert "key logged (" in caplog.text and "without a valid admin token" in caplog.text
    for secret in (TOKEN, "not-the-token", str(created["key"]), str(rotated["key"])):
        assert secret not in caplog.text


@contextmanager
def socket_bound() -> Iterator[int]:
    """A port bound but never listened on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def record_usage(edge: Edge, key_id: str) -> None:
    """Two requests on May 1st 2026 (two models) and one today."""
    def used(request_id: str, started_at: datetime, model: str, **fields: object) -> UsageEntry:
        return UsageEntry(request_id=request_id, key_id=key_id, platform="openai", model=model, account_id="openai/a",
                          started_at=started_at, recorded_at=started_at, **fields)  # type: ignore[arg-type]

    may = datetime(2026, 5, 1, 12, tzinfo=UTC)
    await edge.ledger.append([
        used("a", may, "gpt-4o", input_tokens=100, output_tokens=10, cost_micro_usd=1_000),
        used("b", may, "gpt-4o-mini", input_tokens=50, cost_micro_usd=None),
        used("c", datetime.now(UTC), "gpt-4o", input_tokens=7, output_tokens=3, cost_micro_usd=250),
    ])


async def test_admin_usage_by_model_over_a_range(edge: Edge) -> None:
    created = await create(edge, "spender")
    await record_usage(edge, str(created["key_id"]))
    response = await edge.client.get("/admin/v1/keys/spender/usage",
                                     params={"since": "2026-05-01", "until": "2026-05-01", "by": "model"},
                                     headers=ADMIN)
    assert response.status_code == 200, response.text
    usage = response.json()
    assert (usage["key_id"], usage["name"], usage["by"]) == (created["key_id"], "spender", "model")
    assert (usage["since"], usage["until"]) == ("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")  # the day whole
    assert [(row["platform"], row["model"], row["requests"]) for row in usage["rows"]] == [
        ("openai", "gpt-4o", 1), ("openai", "gpt-4o-mini", 1)]
    assert usage["total"]["cost_micro_usd"] == 1_000 and usage["total"]["unpriced_requests"] == 1
    everything = (await edge.client.get(f"/admin/v1/keys/{created['key_id']}/usage", headers=ADMIN)).json()
    assert everything["by"] == "day" and everything["total"]["requests"] == 3


@pytest.mark.parametrize("params, status, words", [
    pytest.param({"by": "week"}, 400, "by must be one of day, model, account", id="by"),
    pytest.param({"since": "yesterday"}, 400, "since: invalid day or time", id="since"),
    pytest.param({"until": "9999-12-31"}, 400, "until: invalid day or time", id="out-of-range"),
    pytest.param({"from": "2026-05-01"}, 400, "Unknown query parameter 'from'", id="unknown"),
    pytest.param({"since": "2026-05-02", "until": "2026-05-01T00:00:00Z"}, 400, "until must be after since",
                 id="empty-range"),
])
async def test_admin_usage_refuses_a_bad_query(edge: Edge, params: dict[str, str], status: int, words: str) -> None:
    await create(edge, "queried")
    response = await edge.client.get("/admin/v1/keys/queried/usage", params=params, headers=ADMIN)
    assert response.status_code == status and words in openai_error(response, "invalid_request")


async def test_admin_usage_of_an_unknown_key_is_404(edge: Edge) -> None:
    response = await edge.client.get("/admin/v1/keys/ghost/usage", headers=ADMIN)
    assert response.status_code == 404 and "'ghost'" in openai_error(response, "not_found")


@pytest.mark.parametrize("path, headers", [
    pytest.param("/v1/usage", "authorization", id="v1"),
    pytest.param("/openai/v1/usage/", "authorization", id="openai-slash"),
    pytest.param("/claude/v1/usage", "x-api-key", id="claude"),
    pytest.param("/v1/usage", "x-api-key", id="v1-x-api-key"),
    pytest.param("/gemini/v1/usage", "x-goog-api-key", id="gemini"),
    pytest.param("/gemini/v1/usage", "?key=", id="gemini-query-key"),
])
async def test_a_key_holder_reads_its_own_usage(make_edge: EdgeFactory, path: str, headers: str) -> None:
    async with make_edge(token="") as edge:  # needs no admin API
        async with make_edge() as admin:
            created = await create(admin, "holder", limits={"tokens_per_day": 100, "monthly_budget_micro_usd": 5_000,
                                                            "concurrency": 2})
        key = str(created.pop("key"))
        await record_usage(edge, str(created["key_id"]))
        sent = {"authorization": f"Bearer {key}"} if headers == "authorization" else {headers: key}
        if headers == "?key=":
            path, sent = f"{path}?key={key}", {}
        response = await edge.client.get(path, headers=sent)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    status = response.json()
    assert status["key"] == created and key not in response.text
    limits = {limit["name"]: limit for limit in status["limits"]}
    assert (limits["tokens_per_day"]["used"], limits["tokens_per_day"]["remaining"]) == (10, 90)
    assert limits["concurrency"]["used"] is None and limits["concurrency"]["period"] == "in_flight"
    assert status["today"]["requests"] == 1 and status["today"]["cost_micro_usd"] == 250
    assert status["this_month"]["requests"] >= 1


@pytest.mark.parametrize("path, headers, shape", [
    pytest.param("/v1/usage", {}, "openai", id="no-key"),
    pytest.param("/openai/v1/usage", {"authorization": "Bearer sk-sb-unknown"}, "openai", id="unknown-key"),
    pytest.param("/v1/usage", ADMIN, "openai", id="admin-token-is-no-key"),
    pytest.param("/claude/v1/usage", {}, "anthropic", id="claude-no-key"),
    pytest.param("/claude/v1/usage", {"x-api-key": "sk-sb-unknown"}, "anthropic", id="claude-unknown-key"),
    pytest.param("/gemini/v1/usage", {"x-goog-api-key": "sk-sb-unknown"}, "gemini", id="gemini-unknown-key"),
])
async def test_usage_without_a_valid_key_is_401_in_the_routes_format(edge: Edge, path: str,
                                                                     headers: dict[str, str], shape: str) -> None:
    response = await edge.client.get(path, headers=headers)
    assert response.status_code == 401
    if shape == "anthropic":
        assert response.json()["error"]["type"] == "authentication_error"
    elif shape == "gemini":
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    else:
        openai_error(response, "invalid_api_key")


async def test_a_disabled_key_reads_no_usage(edge: Edge) -> None:
    created = await create(edge, "off")
    await edge.client.patch("/admin/v1/keys/off", json={"state": "disabled"}, headers=ADMIN)
    response = await edge.client.get("/v1/usage", headers={"authorization": f"Bearer {created['key']}"})
    assert response.status_code == 401 and "disabled" in openai_error(response, "invalid_api_key")


async def test_usage_with_auth_unreachable_is_503(make_edge: EdgeFactory) -> None:
    with socket_bound() as port:
        async with make_edge(auth_target=f"127.0.0.1:{port}") as edge:
            response = await edge.client.get("/v1/usage", headers={"authorization": "Bearer sk-sb-any"})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
