"""The admin API and /v1/usage on a real stack (simulator, auth, router, edge as processes): a key made, used,
disabled, enabled, rotated and deleted over HTTP, its holder reading its usage, and the admin token's gate."""

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from switchboard_stack.launcher import SIMULATOR_OPENAI_KEY, Ports, Stack

from .conftest import cli

TOKEN = "e2e-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
CHAT = "/openai/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "admin e2e"}]}
ROUTES = [("GET", "/admin/v1/keys"), ("POST", "/admin/v1/keys"), ("GET", "/admin/v1/keys/e2e-admin"),
          ("PATCH", "/admin/v1/keys/e2e-admin"), ("POST", "/admin/v1/keys/e2e-admin/rotate"),
          ("DELETE", "/admin/v1/keys/e2e-admin"), ("GET", "/admin/v1/keys/e2e-admin/usage"),
          ("GET", "/admin/v1/unknown"), ("PUT", "/admin/v1/keys")]


@pytest.fixture(scope="module")
def admin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("admin-stack")
    simulator = "http://127.0.0.1:{port}"
    ports = Ports.free()
    accounts = [{"name": "sim-openai", "platform": "openai", "base_url": simulator.format(port=ports.simulator),
                 "api_key": SIMULATOR_OPENAI_KEY, "models": ["gpt-*"]}]
    env = {"SWITCHBOARD_EDGE_ADMIN_TOKEN": TOKEN, "SWITCHBOARD_AUTH_CACHE_TTL_SECONDS": "0.5",
           "SWITCHBOARD_AUTH_DECISION_REUSE_SECONDS": "0.5", "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.2",
           # Every refusal here comes from one address: more than the default budget of failures.
           "SWITCHBOARD_EDGE_ADMIN_FAILURES_PER_MINUTE": "1000"}
    with Stack(workdir, ports, accounts=accounts, env=env) as running:
        yield running


@pytest.fixture()
def admin_http(admin_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_stack.base_url, timeout=10) as client:
        yield client


def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Polls: a key change reaches the edge within auth's cache TTL and decision reuse (0.5 s each here)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.1)


def chat(http: httpx.Client, key: str) -> int:
    return http.post(CHAT, json=BODY, headers={"authorization": f"Bearer {key}"}).status_code


def test_a_key_made_used_and_ended_over_http(admin_stack: Stack, admin_http: httpx.Client) -> None:
    created = admin_http.post("/admin/v1/keys", headers=ADMIN, json={
        "name": "e2e-admin", "allowed_platforms": ["openai"], "owner": "e2e",
        "limits": {"daily_budget_micro_usd": 5_000_000, "requests_per_minute": 600}})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    view = {name: value for name, value in created.json().items() if name != "key"}
    shown = cli(admin_stack, "keys", "show", "e2e-admin", "--json")
    assert json.loads(shown.stdout) == view  # the CLI and the API show one record alike

    assert chat(admin_http, key) == 200

    def usage_seen() -> bool:
        usage = admin_http.get("/v1/usage", headers={"authorization": f"Bearer {key}"})
        assert usage.status_code == 200, usage.text
        return bool(usage.json()["today"]["requests"] >= 1)

    eventually(usage_seen)  # the edge reports usage in batches
    status = admin_http.get("/claude/v1/usage", headers={"x-api-key": key}).json()
    assert status["key"]["name"] == "e2e-admin" and key not in json.dumps(status)
    budget = next(limit for limit in status["limits"] if limit["name"] == "daily_budget_micro_usd")
    assert budget["used"] == status["today"]["cost_micro_usd"] > 0
    assert budget["remaining"] == 5_000_000 - budget["used"]
    usage = admin_http.get("/admin/v1/keys/e2e-admin/usage", params={"by": "model"}, headers=ADMIN).json()
    assert usage["rows"][0]["platform"] == "openai" and usage["total"]["requests"] >= 1

    disabled = admin_http.patch("/admin/v1/keys/e2e-admin", json={"state": "disabled"}, headers=ADMIN)
    assert disabled.status_code == 200 and disabled.json()["state"] == "disabled"
    eventually(lambda: chat(admin_http, key) == 401)
    admin_http.patch("/admin/v1/keys/e2e-admin", json={"state": "active"}, headers=ADMIN)
    eventually(lambda: chat(admin_http, key) == 200)

    graced = admin_http.post("/admin/v1/keys/e2e-admin/rotate", json={"grace_seconds": 300}, headers=ADMIN)
    assert graced.status_code == 200, graced.text
    second = graced.json()["key"]
    assert chat(admin_http, second) == 200 and chat(admin_http, key) == 200  # both, during the grace
    third = admin_http.post("/admin/v1/keys/e2e-admin/rotate", headers=ADMIN).json()["key"]
    eventually(lambda: chat(admin_http, second) == 401 and chat(admin_http, key) == 401)
    assert chat(admin_http, third) == 200

    deleted = admin_http.delete("/admin/v1/keys/e2e-admin", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    eventually(lambda: chat(admin_http, third) == 401)
    assert admin_http.get("/admin/v1/keys/e2e-admin", headers=ADMIN).status_code == 404
    assert admin_http.get("/v1/usage", headers={"authorization": f"Bearer {third}"}).status_code == 401

    for log in ("edge.log", "auth.log"):
        text = Path(admin_stack.workdir, log).read_text()
        for secret in (TOKEN, key, second, third):
            assert secret not in text, log


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-the-token"}, {"x-api-key": TOKEN}],
                         ids=["no-token", "wrong-token", "token-as-api-key"])
def test_every_admin_route_is_refused_without_the_token(admin_http: httpx.Client, headers: dict[str, str]) -> None:
    for method, path in ROUTES:
        response = admin_http.request(method, path, headers=headers, json={"name": "e2e-intruder"})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "invalid_api_key"
    listed = admin_http.get("/admin/v1/keys", headers=ADMIN).json()["data"]
    assert "e2e-intruder" not in [view["name"] for view in listed]


def test_the_admin_api_is_off_without_the_setting(http: httpx.Client) -> None:
    """The shared stack sets no SWITCHBOARD_EDGE_ADMIN_TOKEN: every admin path is 404, whatever is sent."""
    for method, path in ROUTES:
        for headers in ({}, ADMIN, {"authorization": "Bearer"}):
            response = http.request(method, path, headers=headers, json={})
            assert response.status_code == 404, (method, path, headers)
            assert response.json()["error"]["code"] == "not_found"
