"""Model routing: a bare model name resolved to the platforms whose accounts serve it (the edge's catalog),
a route's own platforms ranked first, 404 in the route's format for a model nobody serves."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.router.v1 import router_pb2
from switchboard_edge.catalog import ModelCatalog
from switchboard_edge.errors import ClientFormat
from switchboard_edge.upstream.registry import natives, reachable

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_client, edge_on_fakes

READY, DISABLED = router_pb2.ACCOUNT_STATE_READY, router_pb2.ACCOUNT_STATE_DISABLED


def status(platform: str, *models: str, state: int = READY) -> router_pb2.AccountStatus:
    return router_pb2.AccountStatus(account=router_pb2.Account(id=f"{platform}/a", platform=platform),
                                    models=models, state=state)


POOL = [status("claude-console", "claude-*"), status("openai", "gpt-*", "o3"),
        status("gemini", "gemini-*"), status("bedrock", "claude-*", state=DISABLED)]


def test_catalog_keeps_the_route_order_and_only_usable_accounts() -> None:
    catalog = ModelCatalog()
    everything = ("openai", "azure-openai", "claude-console", "bedrock", "gemini")
    assert catalog.platforms_for("anything", everything) == everything  # not loaded yet: the router decides
    catalog.load(POOL)
    assert catalog.platforms_for("gpt-4o", everything) == ("openai",)
    # The disabled Bedrock account serves nothing.
    assert catalog.platforms_for("claude-sonnet-4", everything) == ("claude-console",)
    assert catalog.platforms_for("o3", everything) == ("openai",)
    assert catalog.platforms_for("o3-mini", everything) == ()
    # Patterns match case-sensitively, as the router's do.
    assert catalog.platforms_for("GPT-4o", everything) == ()
    # Only the platforms the route reaches are considered.
    assert catalog.platforms_for("gemini-2.5-pro", ("openai", "azure-openai")) == ()


def test_catalog_reload_replaces_what_it_resolved() -> None:
    catalog = ModelCatalog()
    catalog.load(POOL)
    assert catalog.platforms_for("llama-3", ("openai",)) == ()
    catalog.load([*POOL, status("openai", "llama-*")])
    assert catalog.platforms_for("llama-3", ("openai",)) == ("openai",)
    catalog.load([])
    assert catalog.platforms_for("gpt-4o", ("openai",)) == ()


def test_an_account_in_error_still_serves_its_models_so_the_router_refuses_with_503_not_404() -> None:
    catalog = ModelCatalog()
    catalog.load([status("claude-official", "claude-*", state=router_pb2.ACCOUNT_STATE_ERROR),
                  status("openai", "gpt-*", state=router_pb2.ACCOUNT_STATE_COOLING)])
    assert catalog.platforms_for("claude-sonnet-4", ("claude-official", "openai")) == ("claude-official",)
    assert catalog.platforms_for("gpt-4o", ("claude-official", "openai")) == ("openai",)


def test_natives_come_first_and_are_named() -> None:
    for client_format in ClientFormat:
        platforms = reachable(client_format)
        own = natives(platforms, client_format)
        assert own and set(platforms[:len(own)]) == own, client_format


@pytest.fixture()
async def routed(tmp_path: Path) -> AsyncIterator[tuple[object, FakeRouter]]:
    auth, router = FakeAuth(), FakeRouter(router_pb2.Account(id="openai/a", platform="openai",
                                                              base_url="http://127.0.0.1:9"))
    router.statuses = POOL
    async with edge_on_fakes(auth, router, tmp_path, "edge-routing") as edge, edge_client(edge) as client:
        for _ in range(200):  # the catalog's first load happens as the edge starts
            if router.listed:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        yield client, router


async def test_a_model_no_account_serves_is_404_in_each_routes_format(routed) -> None:  # type: ignore[no-untyped-def]
    client, router = routed
    openai = await client.post("/openai/v1/chat/completions", headers={"authorization": "Bearer good"},
                               json={"model": "llama-3", "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == 404
    assert openai.json()["error"]["code"] == "model_not_found" and "llama-3" in openai.json()["error"]["message"]
    claude = await client.post("/claude/v1/messages", headers={"x-api-key": "good"},
                               json={"model": "llama-3", "max_tokens": 5,
                                     "messages": [{"role": "user", "content": "hi"}]})
    assert claude.status_code == 404 and claude.json()["error"]["type"] == "not_found_error"
    gemini = await client.post("/gemini/v1beta/models/llama-3:generateContent", headers={"x-goog-api-key": "good"},
                               json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert gemini.status_code == 404 and gemini.json()["error"]["status"] == "NOT_FOUND"
    assert router.last_pick is None  # refused before any account was asked for


async def test_pick_gets_only_the_serving_platforms_with_the_routes_own_first(routed) -> None:  # type: ignore[no-untyped-def]
    client, router = routed
    await client.post("/openai/v1/chat/completions", headers={"authorization": "Bearer good"},
                      json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert router.last_pick is not None
    assert tuple(router.last_pick.platforms) == ("openai",) and router.last_pick.preferred == 1


async def test_a_pinned_platform_skips_the_catalog(routed) -> None:  # type: ignore[no-untyped-def]
    client, router = routed
    await client.post("/openai/v1/chat/completions", headers={"authorization": "Bearer good"},
                      json={"model": "openai,llama-3", "messages": [{"role": "user", "content": "hi"}]})
    assert router.last_pick is not None and tuple(router.last_pick.platforms) == ("openai",)
    unknown = await client.post("/openai/v1/chat/completions", headers={"authorization": "Bearer good"},
                                json={"model": "mistral,llama-3", "messages": [{"role": "user", "content": "hi"}]})
    assert unknown.status_code == 400
    message = unknown.json()["error"]["message"]
    assert "mistral" in message and all(platform in message for platform in ("claude-console", "openai-responses"))
