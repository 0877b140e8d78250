"""The fuzzing end to end: random request bodies (the golden requests of each format, changed anywhere, and bytes
that are not JSON at all) POSTed to each chat endpoint of a running edge app (httpx.ASGITransport; real auth, the
simulator as an OpenAI chat upstream, so the other formats go through their translators). No answer is a 5xx;
every refusal is a 4xx in the endpoint's own error format.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.router.v1 import router_pb2
from switchboard_edge.errors import ClientFormat

from .edge_testing import SecuredEdge, secured_edge
from .fuzzing import JSON, mutated_object, requests_in

FUZZ = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
MODEL = "openai,gpt-4o"  # the simulator's platform, named: the body reaches the translators, not a 404


def _anthropic(error: Any) -> bool:
    return (isinstance(error, dict) and error.get("type") == "error" and isinstance(error.get("error"), dict)
            and isinstance(error["error"].get("type"), str) and isinstance(error["error"].get("message"), str))


def _openai(error: Any) -> bool:
    inner = error.get("error") if isinstance(error, dict) else None
    return isinstance(inner, dict) and {"message", "type", "param", "code"} <= set(inner)


def _gemini(error: Any) -> bool:
    inner = error.get("error") if isinstance(error, dict) else None
    return isinstance(inner, dict) and isinstance(inner.get("code"), int) and isinstance(inner.get("status"), str)


ENDPOINTS: dict[str, tuple[ClientFormat, Callable[[Any], bool], dict[str, str]]] = {
    "/claude/v1/messages": (ClientFormat.ANTHROPIC, _anthropic, {"anthropic-version": "2023-06-01"}),
    "/openai/v1/chat/completions": (ClientFormat.OPENAI, _openai, {}),
    "/openai/v1/responses": (ClientFormat.RESPONSES, _openai, {}),
    f"/gemini/v1beta/models/{MODEL}:generateContent": (ClientFormat.GEMINI, _gemini, {}),
}


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[SecuredEdge]:
    async with secured_edge(tmp_path) as running:
        yield running


@st.composite
def bodies(draw: st.DrawFn, client_format: ClientFormat) -> bytes:
    """A changed golden request (named for the simulator's platform, mostly), or other bytes."""
    kind = draw(st.sampled_from(["request", "request", "request", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "json":
        return orjson.dumps(draw(JSON))
    body = draw(mutated_object(requests_in(client_format)))
    if client_format is not ClientFormat.GEMINI and draw(st.integers(0, 3)):
        body["model"] = MODEL
    if "stream" in body and draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    return orjson.dumps(body)


@pytest.mark.parametrize("path", list(ENDPOINTS))
@FUZZ
@given(data=st.data())
async def test_no_body_gets_a_5xx_and_every_refusal_is_in_the_endpoints_format(edge: SecuredEdge, path: str,
                                                                               data: st.DataObject) -> None:
    client_format, in_format, headers = ENDPOINTS[path]
    content = data.draw(bodies(client_format), label="body")
    async with edge.client() as client:
        response = await client.post(path, content=content, headers={
            **headers, "authorization": f"Bearer {edge.key}", "content-type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert in_format(response.json()), response.text


async def test_a_request_a_translator_refuses_gives_its_lease_back(edge: SecuredEdge) -> None:
    """The refusal comes after an account was picked: its lease is reported back, not left to expire."""
    async with edge.client() as client:
        response = await client.post("/claude/v1/messages", headers={
            "authorization": f"Bearer {edge.key}", "anthropic-version": "2023-06-01"}, json={
            "model": MODEL, "max_tokens": 8, "top_k": 3, "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 400 and "top_k" in response.json()["error"]["message"]
    assert edge.router.issued == 1
    for _ in range(100):
        if not edge.router.held:
            break
        await asyncio.sleep(0.02)
    assert edge.router.held == set()
    assert [outcome.outcome for outcome in edge.router.outcomes] == [router_pb2.OUTCOME_CANCELLED]
