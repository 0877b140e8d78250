"""An upstream answer a translator cannot read (found by the fuzzing: a `finish_reason` that is a list, for a
Responses client served by an OpenAI chat upstream) is the upstream's failure in the client's format: a whole
answer a 502, a stream its error event, never a 500 or a stream cut without one."""

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from .edge_testing import SecuredEdge, secured_edge

REQUEST = {"model": "openai,gpt-4o", "input": "Hi"}
CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.json_response({**CHUNK, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": []}]})
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for choice in ({"index": 0, "delta": {"role": "assistant", "content": "Hello"}},
                   {"index": 0, "delta": {}, "finish_reason": []}):
        await response.write(b"data: " + orjson.dumps({**CHUNK, "choices": [choice]}) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    return response


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[SecuredEdge]:
    upstream = web.Application()
    upstream.router.add_post("/v1/chat/completions", _chat)
    async with secured_edge(tmp_path, upstream) as running:
        yield running


async def test_a_whole_answer_that_cannot_be_translated_is_a_502(edge: SecuredEdge,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    async with edge.client() as client:
        response = await client.post("/openai/v1/responses", json=REQUEST,
                                     headers={"authorization": f"Bearer {edge.key}"})
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert "could not be translated (responses from openai): TypeError at " in caplog.text
    assert "Hello" not in caplog.text  # where it failed is logged, never the answer


async def test_a_stream_event_that_cannot_be_translated_ends_the_stream_with_its_error_event(
        edge: SecuredEdge) -> None:
    async with edge.client() as client:
        response = await client.post("/openai/v1/responses", json={**REQUEST, "stream": True},
                                     headers={"authorization": f"Bearer {edge.key}"})
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block]
    assert events[-1].startswith("event: error\n")
    error = orjson.loads(events[-1].split("data: ", 1)[1])
    assert error["code"] == "upstream_unavailable" and "could not be translated" in error["message"]
