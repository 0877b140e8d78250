"""openai-responses accounts signed in with ChatGPT, through the whole stack to the simulator's Codex backend,
with the official openai SDK as the client: what the backend requires arrives (store:false, instructions, the
account id) and what it refuses does not; an expired sign-in is renewed once however many requests wait and
the rotated refresh token is persisted by the router; a usage-limited account fails over and is reported."""

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from switchboard_simulator import defaults
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

EXPIRED = 1_000_000_000  # 2001: an access token long expired
LATER = 4_102_444_800  # 2100
LIMITED_TOKEN = "sim-codex-usage-limited"  # valid at the backend, and always answered 429 usage_limit_reached
SECOND_REFRESH = "sim-codex-refresh-second"


def _codex(name: str, simulator: str, models: list[str], **oauth: Any) -> dict[str, Any]:
    return {"name": name, "platform": "openai-responses", "base_url": f"{simulator}/backend-api/codex",
            "oauth": {"account_id": defaults.CODEX_ACCOUNT_ID, **oauth}, "models": models}


@pytest.fixture(scope="module")
def codex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    workdir = tmp_path_factory.mktemp("codex")
    ports = Ports.free()
    simulator = f"http://127.0.0.1:{ports.simulator}"
    accounts = [
        # An expired access token: the first requests must renew it (and the refresh token rotates).
        _codex("codex", simulator, ["gpt-5*", "codex-*"], access_token="sim-codex-long-expired",
               expires_at=EXPIRED, refresh_token=defaults.CODEX_OAUTH_REFRESH_TOKEN),
        # Preferred for gpt-5-limited, whose window is used up: the request moves on to "codex".
        {**_codex("limited", simulator, ["gpt-5-limited"], access_token=LIMITED_TOKEN, expires_at=LATER),
         "priority": 1},
        # The only account for "exhausted", its window used up: the client sees the vendor's 429.
        {**_codex("exhausted", simulator, ["exhausted"], access_token=LIMITED_TOKEN, expires_at=LATER),
         "model_mapping": {"exhausted": "gpt-5"}},
        # A token the backend does not know although it has not expired: refused (401), renewed, retried.
        _codex("revoked", simulator, ["gpt-5-revoked"], access_token="sim-codex-revoked", expires_at=LATER,
               refresh_token=SECOND_REFRESH),
    ]
    simulator_args = ["--key-fault", f"{LIMITED_TOKEN}=429", "--codex-refresh-token", SECOND_REFRESH]
    stack = Stack(workdir, ports, accounts=accounts, simulator_args=simulator_args,
                  env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.1"})
    with stack:
        yield stack, create_demo_key(stack.db_path)


def _seen(stack: Stack, api: str) -> list[dict[str, Any]]:
    entries = httpx.get(f"{stack.simulator_url}/_simulator/requests", timeout=10).json()["requests"]
    return [entry for entry in entries if entry["api"] == api]


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0)


def test_a_signed_in_account_is_renewed_once_for_concurrent_requests_and_persisted(codex: tuple[Stack, str]) -> None:
    stack, key = codex
    answers: list[str] = []

    def ask() -> None:
        with _client(stack, key) as client:
            answers.append(client.responses.create(model="openai-responses,gpt-5", input="Hi").output_text)

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 12 and all(answers)
    refreshes = _seen(stack, "codex_oauth")
    assert len(refreshes) == 1
    assert refreshes[0]["body"]["refresh_token"] == defaults.CODEX_OAUTH_REFRESH_TOKEN
    assert refreshes[0]["body"]["client_id"] == defaults.CODEX_OAUTH_CLIENT_ID
    log = (stack.workdir / "edge.log").read_text()
    assert log.count("OAuth access token of account openai-responses/codex refreshed") == 1
    assert defaults.CODEX_OAUTH_REFRESH_TOKEN not in log

    stored = _stored(stack, "openai-responses/codex")
    assert stored["chatgpt_account_id"] == defaults.CODEX_ACCOUNT_ID
    assert stored["refresh_token"].startswith("rt_") and stored["refresh_token"] != defaults.CODEX_OAUTH_REFRESH_TOKEN
    assert int(stored["expires_at"]) > time.time() + 3600


def _stored(stack: Stack, account_id: str) -> dict[str, str]:
    path = Path(f"{stack.accounts_path}.credentials.json")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists():
            accounts = json.loads(path.read_text())["accounts"]
            if account_id in accounts:
                secrets: dict[str, str] = accounts[account_id]["credential"]["secrets"]
                return secrets
        time.sleep(0.05)
    raise AssertionError(f"the router stored no credential for {account_id}")


def test_the_sdk_gets_whole_and_streamed_answers_and_the_backend_what_it_requires(codex: tuple[Stack, str]) -> None:
    stack, key = codex
    httpx.delete(f"{stack.simulator_url}/_simulator/requests", timeout=10)
    with _client(stack, key) as client:
        whole = client.responses.create(model="openai-responses,gpt-5", input="Hello", max_output_tokens=256,
                                        metadata={"ticket": "42"}, temperature=0.2)
        assert whole.object == "response" and whole.status == "completed" and whole.output_text
        assert whole.usage is not None and whole.usage.output_tokens > 0

        events = list(client.responses.create(model="openai-responses,gpt-5", input="Hello", stream=True,
                                              max_output_tokens=256, instructions="Answer briefly."))
        assert events[-1].type == "response.completed"
        text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
        assert text == events[-1].response.output_text

        raw = client.responses.with_raw_response.create(model="openai-responses,gpt-5", input="Hello")
        assert raw.parse().output_text
    assert re.fullmatch(r"\d+(\.\d+)?", raw.headers["x-codex-primary-used-percent"])
    assert raw.headers["x-codex-primary-window-minutes"] == "300" and "x-codex-plan-type" not in raw.headers

    sent = _seen(stack, "codex_responses")
    assert len(sent) == 3 and all(entry["status"] == 200 for entry in sent)
    for entry in sent:
        body, headers = entry["body"], entry["headers"]
        assert body["store"] is False and body["stream"] is True and body["instructions"].strip()
        assert not {"max_output_tokens", "metadata", "temperature"} & set(body)
        assert isinstance(body["input"], list)
        assert headers["chatgpt-account-id"] == defaults.CODEX_ACCOUNT_ID
        assert headers["authorization"].startswith("Bearer ey") and headers["originator"] == "codex_cli_rs"
    assert sent[1]["body"]["instructions"] == "Answer briefly."


def test_compact_reaches_the_backends_compact(codex: tuple[Stack, str]) -> None:
    stack, key = codex
    httpx.delete(f"{stack.simulator_url}/_simulator/requests", timeout=10)
    body = {"model": "openai-responses,gpt-5", "instructions": "You are Codex.",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]}
    reply = httpx.post(f"{stack.base_url}/v1/responses/compact", json=body, timeout=30,
                       headers={"authorization": f"Bearer {key}", "originator": "codex_exec"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"]
    (entry,) = _seen(stack, "codex_responses_compact")
    assert "store" not in entry["body"] and "stream" not in entry["body"]
    assert entry["headers"]["originator"] == "codex_exec"


def test_a_refused_token_is_renewed_and_the_request_retried(codex: tuple[Stack, str]) -> None:
    stack, key = codex
    httpx.delete(f"{stack.simulator_url}/_simulator/requests", timeout=10)
    with _client(stack, key) as client:
        # An opening of its own: an earlier conversation's binding would send it past the revoked account.
        assert client.responses.create(model="openai-responses,gpt-5-revoked", input="Hi, renew").output_text
    statuses = [entry["status"] for entry in _seen(stack, "codex_responses")]
    assert statuses == [401, 200]
    assert _stored(stack, "openai-responses/revoked")["refresh_token"] != SECOND_REFRESH


def test_a_used_up_usage_window_fails_over_and_is_reported(codex: tuple[Stack, str]) -> None:
    stack, key = codex
    httpx.delete(f"{stack.simulator_url}/_simulator/requests", timeout=10)
    with _client(stack, key) as client:
        answer = client.responses.create(model="openai-responses,gpt-5-limited", input="Hi, past the window")
    assert answer.output_text
    first, second = _seen(stack, "codex_responses")
    assert first["status"] == 429 and first["headers"]["authorization"] == f"Bearer {LIMITED_TOKEN}"
    assert second["status"] == 200 and second["headers"]["authorization"] != f"Bearer {LIMITED_TOKEN}"
    metrics = httpx.get(f"http://127.0.0.1:{stack.ports.edge_metrics}/metrics", timeout=10).text
    assert 'switchboard_upstream_failovers_total{platform="openai-responses",reason="http_429"} 1.0' in metrics
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with sqlite3.connect(stack.db_path) as db:
            served = db.execute("SELECT account_id, status_code FROM usage_records WHERE model = ?",
                                ("gpt-5-limited",)).fetchall()
        if served:
            break
        time.sleep(0.1)
    assert served == [("openai-responses/codex", 200)]


def test_with_no_account_left_the_client_sees_the_usage_limit(codex: tuple[Stack, str]) -> None:
    stack, key = codex
    reply = httpx.post(f"{stack.base_url}/v1/responses", timeout=30, headers={"authorization": f"Bearer {key}"},
                       json={"model": "openai-responses,exhausted", "input": "Hi", "stream": True})
    assert reply.status_code == 429 and reply.json()["error"]["type"] == "usage_limit_reached"
    assert reply.json()["error"]["resets_in_seconds"] > 0
    assert float(reply.headers["x-codex-primary-used-percent"]) == 100
