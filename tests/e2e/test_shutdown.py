"""Stopping the stack loses no usage: the edge hands over what it holds before auth goes away."""

import sqlite3
from pathlib import Path

import httpx

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack


def test_usage_held_by_the_edge_is_recorded_on_shutdown(tmp_path: Path) -> None:
    # Usage would only be flushed after an hour: only the shutdown flush can deliver it.
    stack = Stack(tmp_path, Ports.free(), env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "3600"})
    with stack:
        key = create_demo_key(stack.db_path)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
        for _ in range(3):
            response = httpx.post(f"{stack.base_url}/openai/v1/chat/completions", json=body,
                                  headers={"authorization": f"Bearer {key}"}, timeout=10)
            assert response.status_code == 200
        with sqlite3.connect(stack.db_path) as db:
            assert db.execute("SELECT COUNT(*) FROM usage_records").fetchone() == (0,)
    with sqlite3.connect(stack.db_path) as db:
        rows = db.execute("SELECT output_tokens FROM usage_records").fetchall()
    assert len(rows) == 3 and all(tokens > 0 for (tokens,) in rows)
