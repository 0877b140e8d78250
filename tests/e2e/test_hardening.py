"""The foundation under abuse and faults: keys before bodies, bounded memory and metrics, streams cut short
billed for what was streamed, timeouts honoured, abandoned requests cancelled, one error event per failure.

One stack with a slow simulator (20 tokens a second, 200-token replies: a stream lasts ten seconds unless
something ends it) and accounts whose simulator keys hang, stall, cut or fail mid-stream.
"""

import asyncio
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import orjson
import pytest

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Ports, Stack

CLAUDE = "/claude/v1/messages"
OPENAI = "/openai/v1/chat/completions"
MAX_BODY = 1024 * 1024
BUDGET = 1536 * 1024


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ports = Ports.free()
    simulator = f"http://127.0.0.1:{ports.simulator}"

    def account(name: str, platform: str, key: str, models: list[str]) -> dict[str, object]:
        return {"name": name, "platform": platform, "base_url": simulator, "api_key": key, "models": models}

    accounts = [
        account("claude", "claude-console", SIMULATOR_ANTHROPIC_KEY, ["claude-sonnet-*"]),
        account("openai", "openai", SIMULATOR_OPENAI_KEY, ["gpt-4o*"]),
        account("hung", "claude-console", "sk-sim-hang", ["claude-hung"]),
        account("slow", "openai", "sk-sim-slow", ["gpt-slow"]),
        account("erroring-claude", "claude-console", "sk-sim-stream-error", ["claude-erroring"]),
        account("erroring-openai", "openai", "sk-sim-stream-error", ["gpt-erroring"]),
        account("cut-openai", "openai", "sk-sim-cut", ["gpt-cut"]),
    ]
    faults = ["--tokens-per-second", "20", "--reply-tokens", "200",
              "--key-fault", "sk-sim-hang=hang", "--key-fault", "sk-sim-slow=slow:60000",
              "--key-fault", "sk-sim-stream-error=stream_error:3", "--key-fault", "sk-sim-cut=disconnect:8"]
    env = {
        "SWITCHBOARD_EDGE_UPSTREAM_TIMEOUT_SECONDS": "2",
        "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.1",
        "SWITCHBOARD_EDGE_MAX_BODY_BYTES": str(MAX_BODY),
        "SWITCHBOARD_EDGE_MAX_BUFFERED_BODY_BYTES": str(BUDGET),
    }
    with Stack(tmp_path_factory.mktemp("hardening"), ports, accounts=accounts, simulator_args=faults,
               env=env) as running:
        yield running


@pytest.fixture(scope="module")
def key(slow_stack: Stack) -> str:
    return create_demo_key(slow_stack.db_path, "hardening")


def _ledger(db_path: Path, where: str = "1=1", count: int = 1, timeout: float = 10) -> list[sqlite3.Row]:
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(db_path) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(f"SELECT * FROM usage_records WHERE {where} ORDER BY started_at").fetchall()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


async def _in_flight_async(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await router_pb2_grpc.RouterServiceStub(channel).ListAccounts(
            router_pb2.ListAccountsRequest(), timeout=5)
    return sum(status.in_flight for status in reply.accounts)


def _no_leases_held(stack: Stack, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while asyncio.run(_in_flight_async(stack.ports.router)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return asyncio.run(_in_flight_async(stack.ports.router)) == 0


def _raw_request(port: int, head: str, body: bytes = b"", timeout: float = 5) -> bytes:
    """Sends a request head (and maybe part of a body) and returns what the edge answers before `timeout`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head.encode() + body)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and received.split(b"\r\n\r\n", 1)[1].strip().endswith(b"}"):
                    break
        except TimeoutError:
            pass
    return received


def _head(path: str, key: str, length: int) -> str:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
            f"content-type: application/json\r\ncontent-length: {length}\r\n\r\n")


# -- 1. nobody without a valid key can exhaust the edge --------------------------------------------------------


def test_an_invalid_key_is_refused_before_its_body_is_sent(slow_stack: Stack) -> None:
    # The body is announced and never sent: only a key check before reading it can answer.
    answer = _raw_request(slow_stack.ports.edge, _head(CLAUDE, "not-a-key", MAX_BODY - 10))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    body = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"


def test_bodies_in_flight_share_one_memory_budget(slow_stack: Stack, key: str) -> None:
    # Two uploads that stall after 900 KB: together they pass the 1.5 MiB budget, so the second is refused.
    part = b"x" * (900 * 1024)
    port = slow_stack.ports.edge
    first = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        first.sendall(_head(CLAUDE, key, MAX_BODY - 10).encode() + part)
        time.sleep(0.5)
        answer = _raw_request(port, _head(OPENAI, key, MAX_BODY - 10), part)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"retry-after: 1" in answer.lower()
        error = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["type"] == "service_unavailable" and "retry" in error["message"]
    finally:
        first.close()
    # The budget comes back when the stalled upload goes away.
    body = {"model": "gpt-4o-mini", "max_completion_tokens": 4,
            "messages": [{"role": "user", "content": "y" * (900 * 1024)}]}
    deadline = time.monotonic() + 5
    while True:
        response = httpx.post(slow_stack.base_url + OPENAI, json=body, headers={"authorization": f"Bearer {key}"},
                              timeout=30)
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200


def test_model_label_values_come_from_served_models_only(slow_stack: Stack, key: str) -> None:
    with httpx.Client(base_url=slow_stack.base_url, timeout=10) as client:
        for index in range(30):
            body = {"model": f"refused-model-{index}", "max_tokens": 8, "messages": []}
            assert client.post(CLAUDE, json=body, headers={"x-api-key": "not-a-key"}).status_code == 401
        body = {"model": "unserved-model-zz", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
        assert client.post(CLAUDE, json=body, headers={"x-api-key": key}).status_code == 404
        body = {"model": "gpt-4o-mini", "max_completion_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
        assert client.post(OPENAI, json=body, headers={"authorization": f"Bearer {key}"}).status_code == 200
    text = httpx.get(f"http://127.0.0.1:{slow_stack.ports.edge_metrics}/metrics").text
    assert "refused-model" not in text and "unserved-model" not in text
    assert 'gen_ai_request_model="gpt-4o-mini"' in text and 'gen_ai_request_model="other"' in text


# -- 2. a stream cut short is billed for what was streamed -------------------------------------------------------


@pytest.mark.parametrize("client_format", ["anthropic", "openai"])
def test_a_client_that_reads_some_deltas_and_leaves_is_billed_for_them(
    slow_stack: Stack, key: str, client_format: str
) -> None:
    request_prompt = "Tell me a long story. " * 40
    if client_format == "anthropic":
        path, headers = CLAUDE, {"x-api-key": key, "anthropic-version": "2023-06-01"}
        body = {"model": "claude-sonnet-4-20250514", "max_tokens": 1000, "stream": True,
                "metadata": {"user_id": f"user_1_account_2_session_cut-{client_format}"},
                "messages": [{"role": "user", "content": request_prompt}]}
        marker = "content_block_delta"
    else:
        path, headers = OPENAI, {"authorization": f"Bearer {key}"}
        body = {"model": "gpt-4o-mini", "stream": True, "prompt_cache_key": f"cut-{client_format}",
                "messages": [{"role": "user", "content": request_prompt}]}
        marker = '"content"'
    deltas = 0
    with httpx.stream("POST", slow_stack.base_url + path, json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and marker in line:
                deltas += 1
                if deltas == 15:
                    break
    rows = _ledger(slow_stack.db_path, f"session_id = 'cut-{client_format}'")
    assert len(rows) == 1
    row = rows[0]
    assert row["end_reason"] == "client_closed" and row["truncated"] == 1 and row["usage_estimated"] == 1
    assert row["input_tokens"] >= len(request_prompt) // 8
    assert 15 <= row["output_tokens"] < 200
    assert _no_leases_held(slow_stack)


def test_an_upstream_cut_is_billed_and_ends_with_one_error_event(slow_stack: Stack, key: str) -> None:
    body = {"model": "gpt-cut", "stream": True, "prompt_cache_key": "upstream-cut",
            "messages": [{"role": "user", "content": "Hi there"}]}
    response = httpx.post(slow_stack.base_url + OPENAI, json=body, headers={"authorization": f"Bearer {key}"},
                          timeout=20)
    events = [line for line in response.text.splitlines() if line.startswith("data:")]
    errors = [line for line in events if '"error"' in line]
    assert len(errors) == 1 and events[-1] == errors[0]
    row = _ledger(slow_stack.db_path, "session_id = 'upstream-cut'")[0]
    assert row["end_reason"] == "upstream_broke" and row["usage_estimated"] == 1
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0


# -- 10. one error event per failed stream ----------------------------------------------------------------------


def test_the_vendors_own_error_event_is_the_only_one(slow_stack: Stack, key: str) -> None:
    body = {"model": "claude-erroring", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    response = httpx.post(slow_stack.base_url + CLAUDE, json=body,
                          headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=20)
    assert response.text.count("event: error") == 1
    assert "overloaded_error" in response.text.split("event: error", 1)[1]
    body = {"model": "gpt-erroring", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    response = httpx.post(slow_stack.base_url + OPENAI, json=body, headers={"authorization": f"Bearer {key}"},
                          timeout=20)
    assert [line for line in response.text.splitlines() if '"error"' in line] == [
        line for line in response.text.splitlines() if line.startswith("data: {\"error\"")]
    assert response.text.count('"error"') == 1
    rows = _ledger(slow_stack.db_path, "model IN ('claude-erroring', 'gpt-erroring')", count=2)
    assert [row["end_reason"] for row in rows] == ["upstream_error", "upstream_error"]


# -- 3. the upstream timeout setting takes effect ----------------------------------------------------------------


def test_a_hung_upstream_answers_504_in_the_edge_timeout(slow_stack: Stack, key: str) -> None:
    body = {"model": "claude-hung", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    # The account sets no timeout, so the edge's 2 s applies; the client would wait 15 s.
    response = httpx.post(slow_stack.base_url + CLAUDE, json=body,
                          headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=15)
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout_error"
    assert _no_leases_held(slow_stack)
    assert _ledger(slow_stack.db_path, "model = 'claude-hung'")[0]["end_reason"] == "timeout"


# -- 4. what the client abandons is cancelled ---------------------------------------------------------------------


def test_a_client_leaving_a_non_stream_request_cancels_it(slow_stack: Stack, key: str) -> None:
    # The upstream would answer after 60 s; the edge timeout is 2 s of silence, but the client leaves at 0.5 s.
    body = {"model": "gpt-slow", "prompt_cache_key": "leaves-early",
            "messages": [{"role": "user", "content": "Hi " * 100}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(slow_stack.base_url + OPENAI, json=body, headers={"authorization": f"Bearer {key}"},
                   timeout=httpx.Timeout(5, read=0.5))
    rows = _ledger(slow_stack.db_path, "session_id = 'leaves-early'")
    assert len(rows) == 1 and rows[0]["end_reason"] == "client_closed" and rows[0]["status_code"] == 499
    assert rows[0]["usage_estimated"] == 1 and rows[0]["input_tokens"] > 0 and rows[0]["output_tokens"] == 0
    assert _no_leases_held(slow_stack)
