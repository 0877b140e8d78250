"""What the gateway sends upstream: credentials swapped, headers filtered, model rewritten, stream untouched."""

import httpx

from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Stack

CLAUDE = "/claude/v1/messages"
OPENAI = "/openai/v1/chat/completions"


def _last(upstream: httpx.Client) -> dict:  # type: ignore[type-arg]
    entries = upstream.get("/_simulator/requests").json()["requests"]
    assert entries, "the simulator received nothing"
    return entries[-1]  # type: ignore[no-any-return]


def test_claude_headers_and_credentials(http: httpx.Client, upstream: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(
        f"{CLAUDE}?beta=true",
        json={"model": "claude-sonnet-4-20250514", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]},
        headers={
            "x-api-key": keys.full,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "future-flag-2027-01-01,interleaved-thinking-2025-05-14",
            "x-stainless-lang": "python",
            "cookie": "session=secret",
            "x-custom-secret": "do-not-forward",
            "proxy-authorization": "Basic abc",
        },
    )
    assert response.status_code == 200, response.text
    seen = _last(upstream)
    headers = seen["headers"]
    assert seen["path"] == "/v1/messages" and seen["query"] == {"beta": "true"}
    assert headers["x-api-key"] == SIMULATOR_ANTHROPIC_KEY
    assert keys.full not in str(seen)
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "future-flag-2027-01-01,interleaved-thinking-2025-05-14"
    assert headers["x-stainless-lang"] == "python"
    for dropped in ("cookie", "x-custom-secret", "proxy-authorization", "authorization"):
        assert dropped not in headers
    assert response.headers.get("request-id", "").startswith("req_")
    assert not any(name.startswith("anthropic-ratelimit") for name in response.headers)


def test_bearer_key_is_replaced_upstream(http: httpx.Client, upstream: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(OPENAI, json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
                         headers={"authorization": f"Bearer {keys.full}"})
    assert response.status_code == 200
    seen = _last(upstream)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {SIMULATOR_OPENAI_KEY}"
    assert keys.full not in str(seen)


def test_platform_prefix_is_stripped_and_rest_of_body_kept(http: httpx.Client, upstream: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-console,claude-sonnet-4-20250514", "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}], "metadata": {"user_id": "u-1"},
            "unknown_future_field": {"kept": True}}
    response = http.post(CLAUDE, json=body, headers={"x-api-key": keys.full, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    sent = _last(upstream)["body"]
    assert sent == {**body, "model": "claude-sonnet-4-20250514"}


def test_account_model_mapping(http: httpx.Client, upstream: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-alias", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    response = http.post(CLAUDE, json=body, headers={"x-api-key": keys.full, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert _last(upstream)["body"]["model"] == "claude-sonnet-4-20250514"


def test_claude_stream_bytes_are_relayed_untouched(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 32, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    via_gateway = http.post(CLAUDE, json=body, headers={"x-api-key": keys.full, "anthropic-version": "2023-06-01"})
    direct = httpx.post(f"{stack.simulator_url}/v1/messages", json=body,
                        headers={"x-api-key": SIMULATOR_ANTHROPIC_KEY, "anthropic-version": "2023-06-01"})
    assert via_gateway.headers["content-type"].startswith("text/event-stream")
    names = [line for line in via_gateway.text.splitlines() if line.startswith("event:")]
    assert names == [line for line in direct.text.splitlines() if line.startswith("event:")]
    assert names[0] == "event: message_start" and names[-1] == "event: message_stop"
    # Same framing byte for byte once the per-message ids are set aside.
    assert len(via_gateway.content) == len(direct.content)


def test_openai_stream_gets_usage_upstream_even_when_client_did_not_ask(
    http: httpx.Client, upstream: httpx.Client, keys  # type: ignore[no-untyped-def]
) -> None:
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    response = http.post(OPENAI, json=body, headers={"authorization": f"Bearer {keys.full}"})
    assert response.status_code == 200
    assert _last(upstream)["body"]["stream_options"] == {"include_usage": True}
    data = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert data[-1] == "data: [DONE]"
    assert not any('"choices":[]' in line for line in data)


def test_the_contracts_claude_example_works_without_anthropic_version(
    http: httpx.Client, upstream: httpx.Client, keys  # type: ignore[no-untyped-def]
) -> None:
    # Exactly as the contract writes it: key as a bearer token, no anthropic-version.
    response = http.post(CLAUDE, headers={"Authorization": f"Bearer {keys.full}", "Content-Type": "application/json"},
                         json={"model": "claude-sonnet-4-20250514", "max_tokens": 1024,
                               "messages": [{"role": "user", "content": "Hello, Claude"}]})
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"
    assert _last(upstream)["headers"]["anthropic-version"] == "2023-06-01"
