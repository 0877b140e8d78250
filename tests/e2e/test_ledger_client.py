"""The ledger records which client program sent each request, as the edge recognised it."""

import sqlite3
import time

import httpx

from switchboard_edge.sessions import openai_session
from switchboard_stack.launcher import Stack

OPENAI = "/openai/v1/chat/completions"


def test_the_ledger_names_the_client_program(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    expected: dict[str, str] = {}  # the request's session hint (its opening's hash) → the program recorded
    for agent, app in (("codex_cli_rs/0.169.0 (Ubuntu 24.4.0; x86_64)", "codex-cli"),
                       ("GeminiCLI/0.61.0/gemini-2.5-flash (linux; x64; terminal)", "gemini-cli"),
                       ("OpenAI/Python 2.34.0", "")):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"ledger client {agent}"}]}
        response = http.post(OPENAI, json=body, headers={"authorization": f"Bearer {keys.full}", "user-agent": agent})
        assert response.status_code == 200, response.text
        expected[openai_session(body, {})] = app
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(stack.db_path) as db:
            recorded = dict(db.execute(
                f"SELECT session_id, client_app FROM usage_records WHERE session_id IN ({','.join('?' * 3)})",
                list(expected)).fetchall())
        if len(recorded) == len(expected):
            break
        assert time.monotonic() < deadline, recorded
        time.sleep(0.1)
    assert recorded == expected
