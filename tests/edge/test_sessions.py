"""The session hint the edge gives the router for sticky account choice (`switchboard_edge.sessions`): each
client's own session id where it sends one, else a hash of the conversation's opening; and, through the app,
the hint the router receives for Claude Code, Codex (HTTP and WebSocket), Gemini CLI and a plain SDK request."""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from aiohttp import web
from websockets.asyncio.client import connect

from switchboard.router.v1 import router_pb2
from switchboard_edge import sessions
from switchboard_edge.sessions import (
    anthropic_session,
    gemini_session,
    openai_session,
    responses_session,
)

from .control_fakes import FakeAuth, FakeRouter
from .upstream_fakes import edge_client, edge_on_fakes, serve_upstream

SESSION = "9b0c2a4e-5f1d-4c8e-a7b3-1e2d3c4b5a69"
# Claude Code's system: a per-request billing line (unmarked), then the cached prompt.
CLAUDE_SYSTEM: list[dict[str, Any]] = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331; cch=41a7f"},
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
     "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    {"type": "text", "text": "You are an interactive CLI tool. " * 900, "cache_control": {"type": "ephemeral"}},
]


def _is_hash(hint: str) -> bool:
    return hint.startswith("h:") and len(hint) == 34 and all(c in "0123456789abcdef" for c in hint[2:])


# -- Claude -------------------------------------------------------------------------------------------------------


def _claude(first: str, *later: dict[str, Any], system: Any = CLAUDE_SYSTEM, **fields: Any) -> dict[str, Any]:
    opening = {"role": "user", "content": [{"type": "text", "text": first}]}
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": system, "messages": [opening, *later],
            **fields}


def test_claude_code_header_comes_first() -> None:
    user_id = orjson.dumps({"device_id": "d", "account_uuid": "a", "session_id": "from-metadata"}).decode()
    body = _claude("hi", metadata={"user_id": user_id})
    assert anthropic_session(body, {"x-claude-code-session-id": SESSION}) == SESSION


def test_claude_code_json_user_id() -> None:
    user_id = orjson.dumps({"device_id": "d", "account_uuid": "a", "session_id": SESSION}).decode()
    assert anthropic_session(_claude("hi", metadata={"user_id": user_id}), {}) == SESSION


def test_claude_code_legacy_user_id() -> None:
    user_id = f"user_3f9a0c_account_1111-2222_session_{SESSION}"
    assert anthropic_session(_claude("hi", metadata={"user_id": user_id}), {}) == SESSION


@pytest.mark.parametrize("user_id", [
    pytest.param("alice@example.com", id="an-end-user"),
    pytest.param("alice_session_7", id="not-the-legacy-form"),
    pytest.param('{"session_id": 7}', id="json-without-a-string-id"),
    pytest.param('{"session_id": ', id="broken-json"),
    pytest.param(12345, id="not-a-string"),
])
def test_other_user_ids_are_not_sessions(user_id: Any) -> None:
    hint = anthropic_session(_claude("hi", metadata={"user_id": user_id}), {})
    assert hint == anthropic_session(_claude("hi"), {}) and _is_hash(hint)


def test_claude_hash_ignores_later_turns_the_billing_line_and_moved_cache_markers() -> None:
    first = _claude("fix the bug")
    first["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}  # the newest turn is marked
    billing = [{**CLAUDE_SYSTEM[0], "text": "x-anthropic-billing-header: cc_version=2.1.331; cch=99c01"},
               *CLAUDE_SYSTEM[1:]]
    later = _claude("fix the bug", {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
                    {"role": "user", "content": [{"type": "text", "text": "thanks",
                                                  "cache_control": {"type": "ephemeral"}}]}, system=billing)
    assert _is_hash(anthropic_session(first, {}))
    assert anthropic_session(first, {}) == anthropic_session(later, {})


def test_claude_hash_differs_by_first_message_and_by_cached_system() -> None:
    base = anthropic_session(_claude("fix the bug"), {})
    assert anthropic_session(_claude("write the docs"), {}) != base
    other_prompt = [CLAUDE_SYSTEM[0], {**CLAUDE_SYSTEM[1], "text": "You are a different agent."}, CLAUDE_SYSTEM[2]]
    assert anthropic_session(_claude("fix the bug", system=other_prompt), {}) != base


def test_claude_hash_uses_the_whole_system_when_none_is_marked() -> None:
    plain = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}]
    changed = [plain[0], {"type": "text", "text": "Answer in German."}]
    assert anthropic_session(_claude("hi", system=plain), {}) != anthropic_session(_claude("hi", system=changed), {})
    # A string system and the one text block it stands for are the same system.
    assert (anthropic_session(_claude("hi", system="Be brief."), {})
            == anthropic_session(_claude("hi", system=[plain[0]]), {}))


def test_claude_string_and_block_content_hash_alike() -> None:
    as_string = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert anthropic_session(as_string, {}) == anthropic_session(_claude("hi", system=None), {})


def test_no_system_and_no_user_message_is_no_session() -> None:
    assert anthropic_session({"model": "m", "messages": []}, {}) == ""
    assert anthropic_session({"model": "m", "system": [], "messages": [{"role": "assistant", "content": "x"}]},
                             {}) == ""
    assert _is_hash(anthropic_session({"model": "m", "system": "Be brief.", "messages": []}, {}))


# -- OpenAI chat and Responses -----------------------------------------------------------------------------------


def _chat(first: str, *later: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "system", "content": "You are terse."},
                                            {"role": "user", "content": first}, *later], **fields}


@pytest.mark.parametrize("headers, body, expected", [
    pytest.param({"session_id": "a", "session-id": "b"}, {"prompt_cache_key": "c"}, "a", id="session_id-header"),
    pytest.param({"session-id": "b"}, {"prompt_cache_key": "c", "conversation_id": "d"}, "b", id="session-id-header"),
    pytest.param({"conversation_id": "d"}, {"prompt_cache_key": "c"}, "c", id="prompt_cache_key"),
    pytest.param({"conversation_id": "d"}, {}, "d", id="conversation_id-header"),
    pytest.param({}, {"conversation_id": "e"}, "e", id="conversation_id-body"),
    pytest.param({"session_id": "  "}, {"prompt_cache_key": 7, "conversation_id": "e"}, "e", id="blank-and-non-string"),
])
def test_openai_explicit_ids_in_order(headers: dict[str, str], body: dict[str, Any], expected: str) -> None:
    assert openai_session(_chat("hi", **body), headers) == expected
    assert responses_session({"model": "gpt-5.5", "input": "hi", **body}, headers) == expected


def test_openai_user_is_never_a_session() -> None:
    alice_one, alice_two = _chat("fix the bug", user="alice"), _chat("write the docs", user="alice")
    assert openai_session(alice_one, {}) == openai_session(_chat("fix the bug"), {})
    assert openai_session(alice_one, {}) != openai_session(alice_two, {})
    assert "alice" not in openai_session(alice_one, {})
    assert responses_session({"model": "gpt-5.5", "input": "hi", "user": "alice"}, {}) != "alice"


def test_explicit_ids_are_capped() -> None:
    hint = openai_session(_chat("hi"), {"session_id": "s" * 5000})
    assert hint == "s" * sessions.MAX_ID_CHARS


def test_chat_hash_is_system_and_developer_messages_and_the_first_user_message() -> None:
    first = _chat("fix the bug")
    later = _chat("fix the bug", {"role": "assistant", "content": "Done."}, {"role": "user", "content": "thanks"})
    parts = _chat("x")
    parts["messages"][1]["content"] = [{"type": "text", "text": "fix the bug"}]
    assert _is_hash(openai_session(first, {}))
    assert openai_session(first, {}) == openai_session(later, {}) == openai_session(parts, {})
    assert openai_session(_chat("write the docs"), {}) != openai_session(first, {})
    developer = _chat("fix the bug")
    developer["messages"].insert(1, {"role": "developer", "content": "Use tabs."})
    assert openai_session(developer, {}) != openai_session(first, {})
    assert openai_session({"model": "gpt-4o", "messages": [{"role": "assistant", "content": "x"}]}, {}) == ""


def test_responses_conversation_field() -> None:
    assert responses_session({"input": "hi", "conversation": "conv_1"}, {}) == "conv_1"
    assert responses_session({"input": "hi", "conversation": {"id": "conv_2"}}, {}) == "conv_2"
    assert responses_session({"input": "hi", "conversation": {"other": 1}}, {}) == responses_session({"input": "hi"},
                                                                                                       {})
    assert responses_session({"input": "hi", "conversation": "c", "prompt_cache_key": "p"}, {}) == "p"


def test_responses_hash_is_instructions_and_the_first_user_item_in_any_spelling() -> None:
    spellings = [
        {"instructions": "Be terse.", "input": "fix the bug"},
        {"instructions": "Be terse.", "input": [{"role": "user", "content": "fix the bug"}]},
        # How the WebSocket expands a continued turn: the earlier items first, the first as typed blocks.
        {"instructions": "Be terse.", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]}]},
    ]
    hints = {responses_session(body, {}) for body in spellings}
    assert len(hints) == 1 and _is_hash(hints.pop())
    assert (responses_session({"instructions": "Be verbose.", "input": "fix the bug"}, {})
            != responses_session(spellings[0], {}))
    assert responses_session({"input": []}, {}) == ""


def test_responses_and_chat_openings_do_not_share_a_hint() -> None:
    assert (responses_session({"input": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, {})
            != openai_session({"messages": [{"role": "user", "content": "hi"}]}, {}))


# -- Gemini --------------------------------------------------------------------------------------------------------


def _gemini(first: str, *later: dict[str, Any], system: str = "You are Gemini CLI.") -> dict[str, Any]:
    return {"systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": first}]}, *later]}


def test_gemini_hash_is_the_system_instruction_and_the_first_user_content() -> None:
    first = _gemini("This is the Gemini CLI. Today is Monday.")
    later = _gemini("This is the Gemini CLI. Today is Monday.",
                    {"role": "model", "parts": [{"text": "Got it."}]}, {"role": "user", "parts": [{"text": "hi"}]})
    assert _is_hash(gemini_session(first, {})) and gemini_session(first, {}) == gemini_session(later, {})
    assert gemini_session(_gemini("Another session"), {}) != gemini_session(first, {})
    assert gemini_session(_gemini("This is the Gemini CLI. Today is Monday.", system="Other"),
                          {}) != gemini_session(first, {})
    snake = {"system_instruction": first["systemInstruction"], "contents": first["contents"]}
    assert gemini_session(snake, {}) == gemini_session(first, {})


def test_gemini_clis_workspace_context_turn_does_not_make_sessions_of_a_project_one() -> None:
    context = "<session_context>\nToday's date is Sunday.\nMy operating system is: linux\n</session_context>"
    one = _gemini(context, {"role": "user", "parts": [{"text": "fix the tests"}]})
    two = _gemini(context, {"role": "user", "parts": [{"text": "write the docs"}]})
    later = _gemini(context, {"role": "user", "parts": [{"text": "fix the tests"}]},
                    {"role": "model", "parts": [{"text": "Done."}]}, {"role": "user", "parts": [{"text": "thanks"}]})
    assert gemini_session(one, {}) != gemini_session(two, {})
    assert gemini_session(one, {}) == gemini_session(later, {})
    hooks = _gemini("<hook_context>x</hook_context>", {"role": "user", "parts": [{"text": "fix the tests"}]})
    assert gemini_session(hooks, {}) == gemini_session(one, {})


def test_gemini_ignores_ids_it_is_not_sent() -> None:
    # Only a per-installation id (with usage statistics on): not a session, so the opening decides.
    headers = {"x-gemini-api-privileged-user-id": "install-1", "session_id": "x"}
    assert gemini_session(_gemini("hi"), headers) == gemini_session(_gemini("hi"), {})


def test_gemini_count_tokens_and_empty_requests() -> None:
    wrapped = {"generateContentRequest": {"model": "models/gemini-2.5-flash", **_gemini("hi")}}
    assert gemini_session(wrapped, {}) == gemini_session(_gemini("hi"), {})
    assert gemini_session({"contents": [{"parts": [{"text": "hi"}]}]}, {}) == gemini_session(
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, {})
    assert gemini_session({"contents": []}, {}) == ""


# -- the hash itself ----------------------------------------------------------------------------------------------


def test_the_hash_is_canonical() -> None:
    one = {"contents": [{"role": "user", "parts": [{"text": "hi", "thought": False}]}]}
    two = {"contents": [{"parts": [{"thought": False, "text": "hi"}], "role": "user"}]}
    assert gemini_session(one, {}) == gemini_session(two, {})


def test_the_hash_reads_a_bounded_prefix_of_each_part() -> None:
    limit = sessions.MAX_HASHED_BYTES
    long = "x" * (2 * limit)
    assert (anthropic_session(_claude(long + "tail one", system="s"), {})
            == anthropic_session(_claude(long + "tail two", system="s"), {}))
    assert (anthropic_session(_claude("x" * 100 + "one" + long, system="s"), {})
            != anthropic_session(_claude("x" * 100 + "two" + long, system="s"), {}))
    # The bound is per part: a huge system does not hide the first message.
    assert (anthropic_session(_claude("one", system=long), {}) != anthropic_session(_claude("two", system=long), {}))


def test_moving_text_between_the_parts_changes_the_hash() -> None:
    assert sessions.opening_hash("k", "ab", "c") != sessions.opening_hash("k", "a", "bc")
    assert sessions.opening_hash("k", None, None) == ""


# -- through the app: what the router receives ---------------------------------------------------------------


class RecordingRouter(FakeRouter):
    """The router fake, keeping every Pick's session hint."""

    def __init__(self) -> None:
        super().__init__()
        self.hints: list[str] = []

    async def Pick(self, request: router_pb2.PickRequest, context: Any) -> router_pb2.PickResponse:
        self.hints.append(request.session_hint)
        return await super().Pick(request, context)


USAGE = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
RESPONSE = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.5",
            "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Hi", "annotations": []}]}], "usage": USAGE}


async def _anthropic(request: web.Request) -> web.Response:
    return web.json_response({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                              "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                              "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}})


async def _chat_completion(request: web.Request) -> web.Response:
    return web.json_response({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                                           "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


async def _responses(request: web.Request) -> web.StreamResponse:
    if not (await request.json()).get("stream"):
        return web.json_response(RESPONSE)
    events = [("response.created", {**RESPONSE, "status": "in_progress", "output": [], "usage": None}),
              ("response.completed", RESPONSE)]
    return web.Response(body=b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, "sequence_number": n,
                                                                 "response": response}) + b"\n\n"
        for n, (name, response) in enumerate(events)), content_type="text/event-stream")


async def _gemini_answer(request: web.Request) -> web.Response:
    return web.json_response({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]},
                                              "finishReason": "STOP", "index": 0}],
                              "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1,
                                                "totalTokenCount": 4}, "modelVersion": "gemini-2.5-flash"})


@dataclass
class Stack:
    url: str
    router: RecordingRouter
    edge: Any

    def serve_as(self, platform: str) -> None:
        """The one account the router hands out, on `platform`."""
        self.router.account = router_pb2.Account(id=f"{platform}/a", platform=platform, base_url=self.url,
                                                 credential=router_pb2.Credential(api_key="upstream-key"))


@pytest.fixture()
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    routes = {"/v1/messages": _anthropic, "/v1/chat/completions": _chat_completion, "/v1/responses": _responses,
              "/v1beta/models/{target}": _gemini_answer}
    async with serve_upstream(routes) as url:
        router = RecordingRouter()
        async with edge_on_fakes(FakeAuth(), router, tmp_path, "edge-sessions") as edge:
            yield Stack(url, router, edge)


@pytest.fixture()
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client(stack.edge) as client:
        yield client


async def _hints(client: httpx.AsyncClient, stack: Stack, platform: str,
                 calls: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[str]:
    """The session hint of each call (path, body, headers), one account on `platform` serving them."""
    stack.serve_as(platform)
    stack.router.hints.clear()
    for path, body, headers in calls:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 200, response.text
    return list(stack.router.hints)


CLAUDE = {"x-api-key": "good", "anthropic-version": "2023-06-01"}
BEARER = {"authorization": "Bearer good"}


async def test_router_gets_claude_codes_session_id(client: httpx.AsyncClient, stack: Stack) -> None:
    user_id = orjson.dumps({"device_id": "dev", "account_uuid": "", "session_id": SESSION}).decode()
    with_header = ("/claude/v1/messages?beta=true", _claude("hi", metadata={"user_id": user_id}),
                   {**CLAUDE, "x-app": "cli", "x-claude-code-session-id": SESSION})
    metadata_only = ("/claude/v1/messages", _claude("hi", metadata={"user_id": user_id}), CLAUDE)
    assert await _hints(client, stack, "claude-console", [with_header, metadata_only]) == [SESSION, SESSION]


async def test_router_gets_codexs_session_id(client: httpx.AsyncClient, stack: Stack) -> None:
    body = {"model": "gpt-5.5", "store": False, "stream": True, "prompt_cache_key": SESSION,
            "include": ["reasoning.encrypted_content"],
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
    codex = {**BEARER, "session-id": SESSION, "thread-id": SESSION, "originator": "codex_exec"}
    calls = [("/openai/v1/responses", body, codex), ("/v1/responses", body, BEARER),
             ("/responses", {**body, "prompt_cache_key": None, "user": "alice"}, BEARER)]
    hints = await _hints(client, stack, "openai-responses", calls)
    assert hints[:2] == [SESSION, SESSION]
    assert _is_hash(hints[2])  # neither id: the opening's hash, never `user`


async def test_router_gets_gemini_clis_opening_hash(client: httpx.AsyncClient, stack: Stack) -> None:
    path = "/gemini/v1beta/models/gemini-2.5-flash:generateContent"
    headers = {"x-goog-api-key": "good", "user-agent": "GeminiCLI/0.61.0/gemini-2.5-flash (linux; x64; terminal)"}
    context = "This is the Gemini CLI. We are setting up the context for our chat. Today's date is Monday."
    turn_one = _gemini(context, {"role": "model", "parts": [{"text": "Got it."}]},
                       {"role": "user", "parts": [{"text": "say hi"}]})
    turn_two = _gemini(context, *turn_one["contents"][1:], {"role": "model", "parts": [{"text": "Hi"}]},
                       {"role": "user", "parts": [{"text": "and bye"}]})
    elsewhere = _gemini(context.replace("Monday", "Tuesday"))
    hints = await _hints(client, stack, "gemini", [(path, turn_one, headers), (path, turn_two, headers),
                                           (path.replace("v1beta", "v1"), elsewhere, headers)])
    assert _is_hash(hints[0]) and hints[0] == hints[1] and hints[2] != hints[0]


async def test_router_gets_one_hint_per_opening_without_ids(client: httpx.AsyncClient, stack: Stack) -> None:
    def chat(first: str, *later: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, str]]:
        return ("/openai/v1/chat/completions", _chat(first, *later, user="alice"), BEARER)

    hints = await _hints(client, stack, "openai", [
        chat("fix the bug"),
        chat("fix the bug", {"role": "assistant", "content": "Done."}, {"role": "user", "content": "thanks"}),
        chat("write the docs"),
    ])
    assert _is_hash(hints[0]) and hints[0] == hints[1] and hints[2] != hints[0]
    claude = await _hints(client, stack, "claude-console", [("/claude/v1/messages", _claude("fix the bug"), CLAUDE),
                                                    ("/claude/v1/messages", _claude("write the docs"), CLAUDE)])
    assert len(set(claude)) == 2 and all(_is_hash(hint) for hint in claude)


async def test_codex_over_websocket_keeps_one_hint_across_a_continued_chain(stack: Stack) -> None:
    stack.serve_as("openai-responses")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(stack.edge, log_config=None, ws="websockets-sansio", lifespan="on"))
    serving = asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/responses"
        async with connect(url, additional_headers={**BEARER, "session_id": SESSION}) as ws:
            await _turn(ws, input="hi")
        async with connect(url, additional_headers=BEARER) as ws:  # no id: the opening's hash, turn after turn
            await _turn(ws, input="fix the bug")
            await _turn(ws, input="thanks", previous_response_id="resp_1")  # expanded by the gateway
    finally:
        server.should_exit = True
        await serving
    assert stack.router.hints[0] == SESSION
    assert _is_hash(stack.router.hints[1]) and stack.router.hints[1:] == [stack.router.hints[1]] * 2
    assert stack.router.hints[1] == responses_session({"input": "fix the bug"}, {})


async def _turn(ws: Any, **fields: Any) -> None:
    """One response.create, read until its response.completed."""
    await ws.send(orjson.dumps({"type": "response.create", "model": "gpt-5.5", **fields}).decode())
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] != "error", message
        if message["type"] == "response.completed":
            return


def test_every_route_has_its_formats_reader() -> None:
    from switchboard_edge import app

    readers = {endpoint.route: endpoint.session for endpoint in (
        app.CLAUDE_MESSAGES, app.CLAUDE_COUNT_TOKENS, app.OPENAI_CHAT, app.GEMINI_CHAT, *app.GEMINI_ENDPOINTS,
        *app.RESPONSES_ENDPOINTS, *app.RESPONSES_COMPACT_ENDPOINTS)}
    assert readers["/claude/v1/messages/count_tokens"] is anthropic_session
    assert readers["/gemini/v1/chat"] is openai_session  # OpenAI messages in
    assert readers["/gemini/v1/models/{model}:countTokens"] is gemini_session
    assert readers["/openai/responses/compact"] is responses_session
    assert {readers[route] for route in readers if route.startswith("/gemini/v1beta/")} == {gemini_session}
