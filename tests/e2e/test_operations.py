"""What operators see: health, readiness, Prometheus metrics on every service, the usage ledger."""

import sqlite3
import time

import httpx

from switchboard_stack.launcher import Stack


def test_healthz_and_readyz(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"auth": True, "router": True}


def _metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def test_metrics_on_every_service(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    assert http.post("/openai/v1/chat/completions", json=body,
                     headers={"authorization": f"Bearer {keys.full}"}).status_code == 200
    edge = _metrics(stack.ports.edge_metrics)
    assert ('switchboard_edge_requests_total{client_format="openai",route="/openai/v1/chat/completions",'
            'status_code="200",upstream_platform="openai"}') in edge
    for family in ("switchboard_edge_overhead_seconds_bucket", "gen_ai_server_request_duration_seconds_bucket",
                   "gen_ai_client_token_usage_bucket"):
        assert family in edge
    assert keys.full not in edge
    auth = _metrics(stack.ports.auth_metrics)
    # Authorize travels on the edge's AuthorizeBatches stream; a key new to the edge is first checked with a unary call.
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="Authenticate"' in auth
    assert "switchboard_auth_decisions_total" in auth
    router = _metrics(stack.ports.router_metrics)
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="Heartbeat"' in router
    assert 'switchboard_router_picks_total{account="' in router  # picks travel on the edge's PickBatches stream


def test_stream_first_token_metric(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    http.post("/claude/v1/messages", json=body, headers={"x-api-key": keys.full, "anthropic-version": "2023-06-01"})
    assert "gen_ai_server_time_to_first_token_seconds_count" in _metrics(stack.ports.edge_metrics)


def test_usage_reaches_the_ledger(stack: Stack, http: httpx.Client, keys) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "ledger check"}]}
    response = http.post("/claude/v1/messages", json=body,
                         headers={"x-api-key": keys.full, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    rows: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and not rows:
        with sqlite3.connect(stack.db_path) as db:
            rows = db.execute(
                "SELECT platform, model, input_tokens, output_tokens, stream, status_code FROM usage_records "
                "WHERE model = 'claude-sonnet-4-20250514' AND stream = 1"
            ).fetchall()
        time.sleep(0.1)
    assert rows, "no usage record arrived"
    platform, model, input_tokens, output_tokens, stream, status = rows[-1]
    assert (platform, model, stream, status) == ("claude-console", "claude-sonnet-4-20250514", 1, 200)
    assert int(input_tokens) > 0 and int(output_tokens) > 0  # type: ignore[call-overload]
