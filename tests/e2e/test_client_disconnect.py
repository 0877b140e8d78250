"""A client that leaves mid-stream: the lease is returned and the partial usage kept, marked truncated."""

import asyncio
import sqlite3
import time
from pathlib import Path

import grpc
import httpx

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack


async def _in_flight(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await router_pb2_grpc.RouterServiceStub(channel).ListAccounts(
            router_pb2.ListAccountsRequest(), timeout=5)
    return sum(status.in_flight for status in reply.accounts)


def test_client_leaving_mid_stream_is_settled_as_truncated(tmp_path: Path) -> None:
    # 20 tokens a second and 200 tokens to say: the stream lasts ten seconds unless someone leaves.
    stack = Stack(tmp_path, Ports.free(), simulator_args=["--tokens-per-second", "20", "--reply-tokens", "200"],
                  env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.1"})
    with stack:
        key = create_demo_key(stack.db_path)
        body = {"model": "claude-sonnet-4-20250514", "max_tokens": 1000, "stream": True,
                "messages": [{"role": "user", "content": "Tell me a long story"}]}
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        with httpx.stream("POST", f"{stack.base_url}/claude/v1/messages", json=body, headers=headers,
                          timeout=10) as response:
            lines = response.iter_lines()
            seen = [next(lines) for _ in range(12)]
        assert seen[0] == "event: message_start"

        deadline = time.monotonic() + 5
        rows: list[tuple[int, int]] = []
        while not rows and time.monotonic() < deadline:
            with sqlite3.connect(stack.db_path) as db:
                rows = db.execute("SELECT truncated, input_tokens FROM usage_records").fetchall()
            time.sleep(0.1)
        assert rows == [(1, rows[0][1])] and rows[0][1] > 0
        while asyncio.run(_in_flight(stack.ports.router)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert asyncio.run(_in_flight(stack.ports.router)) == 0
        edge_metrics = httpx.get(f"http://127.0.0.1:{stack.ports.edge_metrics}/metrics").text
        # The demo pool tries claude-official first for a bare Claude model.
        assert 'switchboard_stream_truncations_total{platform="claude-official"} 1.0' in edge_metrics
