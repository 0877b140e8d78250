"""GET/DELETE /_simulator/requests: what the simulator received, for gateway tests to assert on."""

import httpx

from .conftest import Start
from .sim_testing import ANTHROPIC_HEADERS, CLAUDE_BODY, OPENAI_BODY, OPENAI_HEADERS


async def test_records_method_path_query_headers_and_parsed_body(client: httpx.AsyncClient) -> None:
    await client.post("/v1/messages?beta=true&x=1", json=CLAUDE_BODY,
                      headers={**ANTHROPIC_HEADERS, "Anthropic-Beta": "a", "X-Custom": "kept"})
    await client.post("/v1/chat/completions", json=OPENAI_BODY,
                      headers={**OPENAI_HEADERS, "x-simulator-fault": "429"})
    entries = (await client.get("/_simulator/requests")).json()["requests"]
    assert [e["seq"] for e in entries] == [1, 2]
    first, second = entries
    assert (first["api"], first["method"], first["path"]) == ("anthropic", "POST", "/v1/messages")
    assert first["query"] == {"beta": "true", "x": "1"} and first["query_string"] == "beta=true&x=1"
    assert first["headers"]["anthropic-beta"] == "a" and first["headers"]["x-custom"] == "kept"
    assert first["headers"]["x-api-key"] == "sk-sim-anthropic"
    assert first["body"] == CLAUDE_BODY and "body_text" not in first
    assert (first["status"], first["fault"]) == (200, None)
    assert (second["api"], second["status"], second["fault"]) == ("openai_chat", 429, "429")
    assert second["headers"]["authorization"] == "Bearer sk-sim-openai"


async def test_repeated_headers_are_joined(client: httpx.AsyncClient) -> None:
    headers = [*ANTHROPIC_HEADERS.items(), ("x-multi", "a"), ("x-multi", "b")]
    await client.post("/v1/messages", json=CLAUDE_BODY, headers=headers)
    entry = (await client.get("/_simulator/requests")).json()["requests"][0]
    assert entry["headers"]["x-multi"] == "a, b"


async def test_unparsable_body_is_kept_as_text(client: httpx.AsyncClient) -> None:
    await client.post("/v1/messages", content=b"not json", headers=ANTHROPIC_HEADERS)
    entry = (await client.get("/_simulator/requests")).json()["requests"][0]
    assert entry["body"] is None and entry["body_text"] == "not json" and entry["status"] == 400


async def test_failed_auth_is_recorded_too(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json=OPENAI_BODY)
    entry = (await client.get("/_simulator/requests")).json()["requests"][0]
    assert entry["status"] == 401 and "authorization" not in entry["headers"]


async def test_delete_clears_and_limit_returns_the_newest(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
    newest = (await client.get("/_simulator/requests", params={"limit": 2})).json()["requests"]
    assert [e["seq"] for e in newest] == [2, 3]
    assert (await client.delete("/_simulator/requests")).json() == {"cleared": 3}
    assert (await client.get("/_simulator/requests")).json() == {"requests": []}


async def test_the_log_is_bounded(start: Start) -> None:
    url = await start(record_limit=2)
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(5):
            await http.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
        entries = (await http.get("/_simulator/requests")).json()["requests"]
    assert [e["seq"] for e in entries] == [4, 5]


async def test_recording_can_be_turned_off(start: Start) -> None:
    url = await start(record_requests=False)
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
        assert response.status_code == 200
        assert (await http.get("/_simulator/requests")).json() == {"requests": []}


async def test_healthz_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
    await client.post("/v1/chat/completions", json=OPENAI_BODY)
    text = (await client.get("/metrics")).text
    assert 'switchboard_simulator_requests_total{api="anthropic",status_code="200"} 1' in text
    assert 'switchboard_simulator_requests_total{api="openai_chat",status_code="401"} 1' in text
