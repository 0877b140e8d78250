"""A key's limits through the whole stack: 429s in the endpoint's own format naming the limit, retry-after,
and x-ratelimit-* headers telling what is left."""

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from switchboard_stack.launcher import Ports, Stack

from .conftest import cli

# A simulator that streams slowly (100 tokens at 20 a second): a stream stays open while the test looks.
SLOW = ["--tokens-per-second", "20", "--reply-tokens", "100"]
OPENAI = "/openai/v1/chat/completions"
CLAUDE = "/claude/v1/messages"
OPENAI_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "limits"}]}
CLAUDE_BODY = {"model": "claude-sonnet-4-20250514", "max_tokens": 16,
               "messages": [{"role": "user", "content": "limits"}]}


def limited_key(stack: Stack, name: str, *flags: str) -> str:
    created = cli(stack, "keys", "create", name, "--replace", "--json", *flags)
    return str(json.loads(created.stdout)["key"])


def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.1)


def test_requests_per_minute(stack: Stack, http: httpx.Client) -> None:
    key = limited_key(stack, "e2e-rpm", "--rpm", "2")
    headers = {"authorization": f"Bearer {key}"}
    for left in ("1", "0"):
        ok = http.post(OPENAI, json=OPENAI_BODY, headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-ratelimit-limit-requests"] == "2" and ok.headers["x-ratelimit-remaining-requests"] == left
    refused = http.post(OPENAI, json=OPENAI_BODY, headers=headers)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "2 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 30 and refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_spent_total_budget_is_insufficient_quota_without_retry(stack: Stack, http: httpx.Client) -> None:
    key = limited_key(stack, "e2e-budget", "--total-budget", "0.000001")
    headers = {"authorization": f"Bearer {key}"}
    first = http.post(OPENAI, json=OPENAI_BODY, headers=headers)  # under budget when it starts: it completes
    assert first.status_code == 200, first.text
    responses: list[httpx.Response] = []

    def refused() -> bool:
        responses.append(http.post(OPENAI, json=OPENAI_BODY, headers=headers))
        return responses[-1].status_code == 429

    eventually(refused)  # once the first request's usage is settled
    error = responses[-1].json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "total budget of 0.00 USD" in error["message"]
    assert "retry-after" not in responses[-1].headers and responses[-1].headers["x-should-retry"] == "false"
    claude = http.post(CLAUDE, json=CLAUDE_BODY, headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    assert claude.status_code == 429 and claude.json()["error"]["type"] == "rate_limit_error"


def test_concurrency_admits_one_stream_at_a_time(tmp_path: Path) -> None:
    with Stack(tmp_path, Ports.free(), simulator_args=SLOW) as stack, httpx.Client(
            base_url=stack.base_url, timeout=30) as http:
        _one_stream_at_a_time(stack, http)


def _one_stream_at_a_time(stack: Stack, http: httpx.Client) -> None:
    key = limited_key(stack, "e2e-concurrency", "--concurrency", "1")
    headers = {"authorization": f"Bearer {key}"}
    started, release = threading.Event(), threading.Event()

    def hold_a_stream() -> None:
        with httpx.Client(base_url=stack.base_url, timeout=30) as own, own.stream(
                "POST", OPENAI, json={**OPENAI_BODY, "stream": True}, headers=headers) as stream:
            assert stream.status_code == 200
            started.set()
            release.wait(10)

    holder = threading.Thread(target=hold_a_stream)
    holder.start()
    assert started.wait(10)
    refused = http.post(OPENAI, json=OPENAI_BODY, headers=headers)
    assert refused.status_code == 429 and "1 requests at once" in refused.json()["error"]["message"]
    release.set()
    holder.join(10)
    eventually(lambda: http.post(OPENAI, json=OPENAI_BODY, headers=headers).status_code == 200)
