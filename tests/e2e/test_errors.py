"""Every error the gateway makes, with its status and the endpoint's own body format."""

import httpx
import pytest

from switchboard_stack.launcher import Stack

from .conftest import MAX_BODY

CLAUDE = "/claude/v1/messages"
OPENAI = "/openai/v1/chat/completions"
CLAUDE_BODY = {"model": "claude-sonnet-4-20250514", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
OPENAI_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def claude_headers(key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": "2023-06-01"}
    if key is not None:
        headers["x-api-key"] = key
    return headers


def openai_headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key is not None else {}


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error" and set(body) == {"type", "error"}
    assert body["error"]["type"] == error_type and set(body["error"]) == {"type", "message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


def assert_openai_error(response: httpx.Response, status: int, error_type: str, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == error_type and body["error"]["code"] == code
    return str(body["error"]["message"])


@pytest.mark.parametrize("which", ["missing", "unknown", "disabled", "expired"])
def test_401_on_claude(http: httpx.Client, keys, which: str) -> None:  # type: ignore[no-untyped-def]
    key = {"missing": None, "unknown": "sk-sb-not-a-real-key", "disabled": keys.disabled,
           "expired": keys.expired}[which]
    response = http.post(CLAUDE, json=CLAUDE_BODY, headers=claude_headers(key))
    message = assert_anthropic_error(response, 401, "authentication_error")
    if key:
        assert key not in message


@pytest.mark.parametrize("which", ["missing", "unknown", "disabled", "expired"])
def test_401_on_openai(http: httpx.Client, keys, which: str) -> None:  # type: ignore[no-untyped-def]
    key = {"missing": None, "unknown": "sk-sb-not-a-real-key", "disabled": keys.disabled,
           "expired": keys.expired}[which]
    response = http.post(OPENAI, json=OPENAI_BODY, headers=openai_headers(key))
    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_403_platform_not_allowed(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(CLAUDE, json=CLAUDE_BODY, headers=claude_headers(keys.openai_only))
    assert_anthropic_error(response, 403, "permission_error")


def test_403_model_not_allowed(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {**OPENAI_BODY, "model": "gpt-3.5-turbo"}
    response = http.post(OPENAI, json=body, headers=openai_headers(keys.openai_only))
    assert_openai_error(response, 403, "permission_error", "permission_denied")


def test_restricted_key_works_within_its_permissions(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(OPENAI, json=OPENAI_BODY, headers=openai_headers(keys.openai_only))
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"


def test_502_when_upstream_unreachable(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(CLAUDE, json={**CLAUDE_BODY, "model": "dead-model"}, headers=claude_headers(keys.full))
    assert_anthropic_error(response, 502, "api_error")


def test_502_when_upstream_fails(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(OPENAI, json={**OPENAI_BODY, "model": "broken-model"}, headers=openai_headers(keys.full))
    message = assert_openai_error(response, 502, "upstream_error", "upstream_unavailable")
    assert "500" in message


def test_502_when_upstream_refuses_the_account(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    response = http.post(CLAUDE, json={**CLAUDE_BODY, "model": "revoked-model"}, headers=claude_headers(keys.full))
    message = assert_anthropic_error(response, 502, "api_error")
    assert "sk-not-valid" not in response.text and "401" in message


def test_404_when_no_account_serves_the_model(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    # Not a passing shortage: no retry hints, so the SDKs do not retry it.
    response = http.post(CLAUDE, json={**CLAUDE_BODY, "model": "llama-3-70b"}, headers=claude_headers(keys.full))
    assert "llama-3-70b" in assert_anthropic_error(response, 404, "not_found_error")
    assert "retry-after" not in response.headers and "x-should-retry" not in response.headers
    response = http.post(OPENAI, json={**OPENAI_BODY, "model": "llama-3-70b"}, headers=openai_headers(keys.full))
    assert_openai_error(response, 404, "invalid_request_error", "model_not_found")
    assert "retry-after" not in response.headers


def test_a_long_model_name_is_cut_short_in_the_error(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    model = "llama-" + "x" * 5000
    response = http.post(CLAUDE, json={**CLAUDE_BODY, "model": model}, headers=claude_headers(keys.full))
    assert response.status_code == 404 and len(response.text) < 600
    response = http.post(CLAUDE, json={**CLAUDE_BODY, "model": "nope," + "y" * 5000},
                         headers=claude_headers(keys.full))
    assert response.status_code == 400 and len(response.text) < 600


def test_400_bad_json(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    headers = {**claude_headers(keys.full), "content-type": "application/json"}
    message = assert_anthropic_error(http.post(CLAUDE, content=b"{nope", headers=headers), 400,
                                     "invalid_request_error")
    assert "JSON" in message
    headers = {**openai_headers(keys.full), "content-type": "application/json"}
    assert_openai_error(http.post(OPENAI, content=b"{nope", headers=headers), 400, "invalid_request_error",
                        "invalid_request")


def test_400_missing_model(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"max_tokens": 16, "messages": []}
    message = assert_anthropic_error(http.post(CLAUDE, json=body, headers=claude_headers(keys.full)), 400,
                                     "invalid_request_error")
    assert "model" in message
    assert_openai_error(http.post(OPENAI, json={"messages": []}, headers=openai_headers(keys.full)), 400,
                        "invalid_request_error", "invalid_request")


def test_400_unknown_platform_prefix(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {**OPENAI_BODY, "model": "nosuch,gpt-4o"}
    message = assert_openai_error(http.post(OPENAI, json=body, headers=openai_headers(keys.full)), 400,
                                  "invalid_request_error", "invalid_request")
    assert "nosuch" in message


def test_415_wrong_content_type(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    headers = {**claude_headers(keys.full), "content-type": "text/plain"}
    assert_anthropic_error(http.post(CLAUDE, content=b"hello", headers=headers), 415, "invalid_request_error")


def test_413_body_over_limit(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    big = {**OPENAI_BODY, "messages": [{"role": "user", "content": "x" * (MAX_BODY + 1)}]}
    assert_openai_error(http.post(OPENAI, json=big, headers=openai_headers(keys.full)), 413,
                        "invalid_request_error", "request_too_large")


def test_413_chunked_body_over_limit(http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "'
        for _ in range(MAX_BODY // 8192 + 2):
            yield b"y" * 8192
        yield b'"}]}'

    headers = {**claude_headers(keys.full), "content-type": "application/json"}
    assert_anthropic_error(http.post(CLAUDE, content=chunks(), headers=headers), 413, "request_too_large")


def test_unknown_route_uses_endpoint_format(http: httpx.Client) -> None:
    assert_anthropic_error(http.post("/claude/v1/nothing", json={}), 404, "not_found_error")
    assert_openai_error(http.get("/openai/v1/nothing"), 404, "invalid_request_error", "not_found")


def test_upstream_4xx_passes_through(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "Hi"}]}  # no max_tokens
    via_gateway = http.post(CLAUDE, json=body, headers=claude_headers(keys.full))
    direct = httpx.post(f"{stack.simulator_url}/v1/messages", json=body,
                        headers=claude_headers("sk-sim-anthropic"))
    assert via_gateway.status_code == direct.status_code == 400
    gateway_body, direct_body = via_gateway.json(), direct.json()
    assert gateway_body["error"] == direct_body["error"]
    assert gateway_body["type"] == "error"
