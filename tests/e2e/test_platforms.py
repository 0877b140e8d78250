"""Every platform through the whole stack, with the official SDKs as clients (anthropic, openai, google-genai):
`platform,model` reaches that platform's simulator vendor, stream and non-stream, and usage is billed.
The stack is `make run`'s own: one demo account per platform."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from switchboard_simulator import defaults
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

CLAUDE_PLATFORMS = ["claude-official", "claude-console", "claude-ccr", "bedrock"]
OPENAI_PLATFORMS = ["openai", "azure-openai"]
OTHER_PLATFORMS = ["gemini", "openai-responses"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    stack = Stack(tmp_path_factory.mktemp("platforms"), Ports.free(),
                  env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.1"})
    with stack:
        yield stack, create_demo_key(stack.db_path)


@pytest.mark.parametrize("platform", CLAUDE_PLATFORMS)
def test_anthropic_sdk_reaches_each_anthropic_platform(demo: tuple[Stack, str], platform: str) -> None:
    stack, key = demo
    with anthropic.Anthropic(base_url=f"{stack.base_url}/claude", api_key=key, max_retries=0) as client:
        _claude_turns(client, platform)


def _claude_turns(client: anthropic.Anthropic, platform: str) -> None:
    message = client.messages.create(model=f"{platform},claude-sonnet-4-20250514", max_tokens=32,
                                      messages=[{"role": "user", "content": "Hello"}])
    assert message.type == "message" and message.content and message.usage.output_tokens > 0
    with client.messages.stream(model=f"{platform},claude-sonnet-4-20250514", max_tokens=32,
                                messages=[{"role": "user", "content": "Hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.stop_reason and final.usage.output_tokens > 0


@pytest.mark.parametrize("platform", OPENAI_PLATFORMS)
def test_openai_sdk_reaches_each_openai_platform(demo: tuple[Stack, str], platform: str) -> None:
    stack, key = demo
    with openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=key, max_retries=0) as client:
        _openai_turns(client, platform)


def _openai_turns(client: openai.OpenAI, platform: str) -> None:
    completion = client.chat.completions.create(model=f"{platform},gpt-4o-mini",
                                                messages=[{"role": "user", "content": "Hello"}])
    assert completion.object == "chat.completion" and completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=f"{platform},gpt-4o-mini", stream=True,
                                                 messages=[{"role": "user", "content": "Hello"}]))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


@pytest.mark.parametrize("prefix", ["/openai/v1", "/v1"])
def test_openai_sdk_responses_reach_the_responses_platform(demo: tuple[Stack, str], prefix: str) -> None:
    stack, key = demo
    with openai.OpenAI(base_url=f"{stack.base_url}{prefix}", api_key=key, max_retries=0) as client:
        response = client.responses.create(model="openai-responses,gpt-5", input="Hello",
                                           reasoning={"effort": "low"})
        assert response.status == "completed" and response.output_text
        assert response.usage is not None and response.usage.output_tokens > 0
        with client.responses.stream(model="openai-responses,gpt-5", input="Hello") as stream:
            deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and final.status == "completed"


def test_google_genai_sdk_reaches_the_gemini_platform(demo: tuple[Stack, str]) -> None:
    stack, key = demo
    client = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=f"{stack.base_url}/gemini"))
    try:
        answer = client.models.generate_content(model="gemini-2.5-flash", contents="Hello")
        assert answer.text and answer.usage_metadata is not None
        assert answer.usage_metadata.candidates_token_count
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hello"))
        assert "".join(chunk.text or "" for chunk in chunks) == answer.text
        assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
        counted = client.models.count_tokens(model="gemini-2.5-flash", contents="Hello")
        assert counted.total_tokens and counted.total_tokens > 0
        listed = [model.name for model in client.models.list()]
        # Only exact names are listed (the demo's Gemini account serves the pattern gemini-*): here the Azure
        # deployments, which a Gemini client reaches through the OpenAI translator.
        assert listed == [f"models/{name}" for name in sorted(defaults.AZURE_OPENAI_DEPLOYMENTS)]
    finally:
        client.close()
    stranger = genai.Client(api_key="not-a-key",
                            http_options=genai_types.HttpOptions(base_url=f"{stack.base_url}/gemini"))
    try:
        with pytest.raises(genai.errors.ClientError) as refused:
            stranger.models.generate_content(model="gemini-2.5-flash", contents="Hello")
    finally:
        stranger.close()
    assert refused.value.code == 401 and refused.value.status == "UNAUTHENTICATED"


def test_every_platform_is_billed(demo: tuple[Stack, str]) -> None:
    stack, _ = demo
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with sqlite3.connect(stack.db_path) as db:
            billed = {row[0] for row in db.execute("SELECT platform FROM usage_records WHERE output_tokens > 0")}
        if billed >= set(CLAUDE_PLATFORMS + OPENAI_PLATFORMS + OTHER_PLATFORMS):
            break
        time.sleep(0.1)
    assert billed >= set(CLAUDE_PLATFORMS + OPENAI_PLATFORMS + OTHER_PLATFORMS)


def test_claude_official_refreshes_once_under_twenty_concurrent_requests(tmp_path: Path) -> None:
    # A fresh stack: the demo account has only a refresh token, so the first requests must sign in.
    stack = Stack(tmp_path, Ports.free())
    with stack:
        key = create_demo_key(stack.db_path)
        statuses: list[int] = []

        def ask() -> None:
            response = httpx.post(f"{stack.base_url}/claude/v1/messages", timeout=30,
                                  headers={"authorization": f"Bearer {key}"},
                                  json={"model": "claude-official,claude-sonnet-4-20250514", "max_tokens": 8,
                                        "messages": [{"role": "user", "content": "Hi"}]})
            statuses.append(response.status_code)

        threads = [threading.Thread(target=ask) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [200] * 20
        log = (tmp_path / "edge.log").read_text()
        assert log.count("OAuth access token of account claude-official/simulator-claude-official refreshed") == 1


def test_each_platforms_own_failures(tmp_path: Path) -> None:
    ports = Ports.free()
    simulator = f"http://127.0.0.1:{ports.simulator}"
    accounts = [
        {"name": "bad-signature", "platform": "bedrock", "base_url": simulator, "region": "us-east-1",
         "models": ["claude-badsig"], "model_mapping": {"claude-badsig": "anthropic.claude-sonnet-4-20250514-v1:0"},
         "aws": {"access_key_id": "AKIASIMULATOR0000000", "secret_access_key": "not-the-secret"}},
        {"name": "faulty-stream", "platform": "bedrock", "base_url": simulator, "region": "us-east-1",
         "models": ["claude-faulty"], "model_mapping": {"claude-faulty": "anthropic.claude-sonnet-4-20250514-v1:0"},
         "aws": {"access_key_id": "AKIAFAULTY0000000000", "secret_access_key": "faulty-secret"}},
        {"name": "no-deployment", "platform": "azure-openai", "base_url": simulator, "api_key": "sk-sim-azure",
         "models": ["gpt-missing"], "deployments": {"gpt-missing": "nobody-deployed-this"}},
        {"name": "signed-out", "platform": "claude-official", "base_url": simulator, "models": ["claude-signed-out"],
         "oauth": {"refresh_token": "a-refresh-token-the-vendor-never-issued"}},
    ]
    faults = ["--bedrock-credential", "AKIAFAULTY0000000000=faulty-secret",
              "--key-fault", "AKIAFAULTY0000000000=stream_error:3"]
    with Stack(tmp_path, ports, accounts=accounts, simulator_args=faults) as stack:
        key = create_demo_key(stack.db_path)
        with httpx.Client(base_url=stack.base_url, timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
            def claude(model: str, stream: bool = False) -> httpx.Response:
                return client.post("/claude/v1/messages", json={
                    "model": model, "max_tokens": 16, "stream": stream,
                    "messages": [{"role": "user", "content": "Hi"}]})

            # A wrong AWS secret: the account's credential is refused, the client gets a clear 502.
            response = claude("claude-badsig")
            assert response.status_code == 502 and response.json()["error"]["type"] == "api_error"
            assert "403" in response.json()["error"]["message"]
            # Bedrock's in-stream exception becomes one Anthropic error event.
            response = claude("claude-faulty", stream=True)
            assert response.text.startswith("event: message_start") and response.text.count("event: error") == 1
            # Azure's own DeploymentNotFound reaches the client as Azure said it.
            response = client.post("/openai/v1/chat/completions", json={
                "model": "gpt-missing", "messages": [{"role": "user", "content": "Hi"}]})
            assert response.status_code == 404 and response.json()["error"]["code"] == "DeploymentNotFound"
            # A refresh token the vendor refuses: the account is put in error and the request fails cleanly.
            response = claude("claude-signed-out")
            assert response.status_code == 502 and "sign-in" in response.json()["error"]["message"]
        log = (tmp_path / "edge.log").read_text()
        assert "a-refresh-token-the-vendor-never-issued" not in log and "not-the-secret" not in log
