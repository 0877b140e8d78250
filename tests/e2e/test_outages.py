"""Auth or router unreachable: the edge rides on their last answers for a bounded time (`switchboard_edge.outage`).

A real stack; the service is SIGKILLed, so nothing answers its port. Requests like those served just before keep
being served (and counted as degraded answers); one the edge has no answer for is refused with 503 in the
endpoint's format, with Retry-After; usage recorded meanwhile reaches the ledger once auth is back."""

import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

OPENAI = "/openai/v1/chat/completions"
CLAUDE = "/claude/v1/messages"


def _chat(client: httpx.Client, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return client.post(OPENAI, json={"model": model, "messages": [{"role": "user", "content": "Hi"}]},
                       headers={"authorization": f"Bearer {key}"})


def _degraded(stack: Stack, service: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.ports.edge_metrics}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "switchboard_edge_degraded_answers":
            return sum(s.value for s in family.samples
                       if s.name.endswith("_total") and s.labels.get("service") == service)
    return 0.0


def _kill(stack: Stack, name: str) -> None:
    process = next(p for p in stack.processes if p.name == name)
    process.popen.send_signal(signal.SIGKILL)
    process.popen.wait()
    stack.processes.remove(process)


def _usage_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0])


@pytest.fixture()
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, Ports.free(), env={"SWITCHBOARD_EDGE_RPC_TIMEOUT_SECONDS": "1",
                                               "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.2"})
    with stack:
        yield stack


def test_router_down_the_accounts_it_chose_keep_serving_and_an_unseen_model_gets_503(stack: Stack) -> None:
    key = create_demo_key(stack.db_path)
    with httpx.Client(base_url=stack.base_url, timeout=15) as client:
        assert _chat(client, key).status_code == 200
        _kill(stack, "router")
        served = [_chat(client, key) for _ in range(5)]
        assert [r.status_code for r in served] == [200] * 5
        assert served[0].json()["object"] == "chat.completion"
        assert _degraded(stack, "router") >= 5
        unseen = _chat(client, key, "gpt-4.1")  # never chosen before the router went away
        assert unseen.status_code == 503
        assert unseen.json()["error"]["type"]  # OpenAI's error shape on /openai
        assert "retry-after" in unseen.headers
        claude = client.post(CLAUDE, json={"model": "claude-sonnet-4-20250514", "max_tokens": 8,
                                           "messages": [{"role": "user", "content": "Hi"}]},
                             headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
        assert claude.status_code == 503 and claude.json()["type"] == "error"  # Anthropic's shape on /claude


def test_auth_down_a_key_allowed_before_keeps_working_an_unseen_key_gets_503_and_usage_arrives_later(
        stack: Stack) -> None:
    key = create_demo_key(stack.db_path)
    other = create_demo_key(stack.db_path, "never-used")
    # The keys' creation reaches the edge as key changes (auth follows its change log every 250 ms), which void
    # what the edge remembers of them: the ALLOW to ride on must come after.
    time.sleep(1.0)
    with httpx.Client(base_url=stack.base_url, timeout=15) as client:
        assert _chat(client, key).status_code == 200
        deadline = time.monotonic() + 10
        while _usage_rows(stack.db_path) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _usage_rows(stack.db_path) == 1
        _kill(stack, "auth")
        served = [_chat(client, key) for _ in range(4)]
        assert [r.status_code for r in served] == [200] * 4
        assert _degraded(stack, "auth") >= 4
        refused = _chat(client, other)  # a valid key, but this edge never saw auth allow it
        assert refused.status_code == 503 and "retry-after" in refused.headers
        assert refused.json()["error"]["type"]
        stack._spawn("auth", ["-m", "switchboard_auth"], stack.environment())
        deadline = time.monotonic() + 30
        while _usage_rows(stack.db_path) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _usage_rows(stack.db_path) == 5  # the four served meanwhile, spooled and replayed, once each
        assert _chat(client, other).status_code == 200  # auth answers again
