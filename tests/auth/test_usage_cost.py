"""Cost in the ledger: each usage record is priced as it arrives (service.RecordUsage with pricing), a request
the upstream failed is recorded as failed and never charged, and a bad price file stops auth at start."""

import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from switchboard.auth.v1 import auth_pb2
from switchboard_auth.keys import KeyHasher
from switchboard_auth.pricing import default_prices, parse_prices
from switchboard_auth.service import AuthServicer
from switchboard_auth.usage import upstream_failed

from .auth_testing import PEPPER, Harness, free_port, subprocess_env

# $2 input, $10 output, $1 cache read per million tokens: a token count times the price is micro-dollars.
PRICES = parse_prices(
    """
prices:
  - platforms: [openai]
    models: [gpt-billed, "gpt-glob-*"]
    input: 2
    output: 10
    cache_read: 1
""",
    "test-prices.yaml",
)


@pytest.mark.parametrize(
    ("status", "end_reason", "has_tokens", "failed"),
    [
        pytest.param(200, "complete", True, False, id="complete"),
        pytest.param(200, "upstream_broke", True, False, id="broken-stream-billed-for-what-streamed"),
        pytest.param(200, "upstream_error", True, False, id="in-stream-error-after-tokens"),
        pytest.param(200, "upstream_error", False, True, id="in-stream-error-before-any-token"),
        pytest.param(0, "error", False, True, id="gateway-error-no-tokens"),
        pytest.param(502, "error", False, True, id="upstream-5xx"),
        pytest.param(429, "error", True, True, id="upstream-429-with-reported-tokens"),
        pytest.param(504, "timeout", False, True, id="upstream-timeout"),
        pytest.param(499, "client_closed", True, False, id="client-left-the-vendor-bills-the-prompt"),
        pytest.param(503, "shutdown", True, False, id="edge-stopping"),
        pytest.param(200, "", True, False, id="edge-older-than-end-reason"),
    ],
)
def test_which_requests_the_upstream_failed(status: int, end_reason: str, has_tokens: bool, failed: bool) -> None:
    assert upstream_failed(status, end_reason, has_tokens) is failed


def record(request_id: str, model: str = "gpt-billed", **fields: object) -> auth_pb2.UsageRecord:
    fields.setdefault("usage", auth_pb2.TokenUsage(input_tokens=1_000, output_tokens=200, cache_read_input_tokens=50))
    fields.setdefault("status_code", 200)
    fields.setdefault("end_reason", "complete")
    return auth_pb2.UsageRecord(request_id=request_id, key_id="key_0123456789ab", platform="openai", model=model,
                                **fields)  # type: ignore[arg-type]


def stored(db_path: Path) -> dict[str, tuple]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT request_id, input_tokens, output_tokens, failed, cost_micro_usd FROM usage_records").fetchall()
    return {row[0]: row[1:] for row in rows}


async def record_usage(harness: Harness, *records: auth_pb2.UsageRecord) -> int:
    servicer = AuthServicer(harness.keys, harness.ledger, hasher=KeyHasher(PEPPER), cache_ttl_seconds=1,
                            cache_max_entries=10, prices=PRICES)
    response = await servicer.RecordUsage(auth_pb2.RecordUsageRequest(records=records), None)  # type: ignore[arg-type]
    return response.accepted


async def test_records_are_priced_at_the_model_the_vendor_billed(harness: Harness) -> None:
    accepted = await record_usage(
        harness,
        record("plain"),
        record("mapped", model="gpt-alias", upstream_model="gpt-glob-2026"),  # the vendor billed the mapped name
        record("unpriced", model="gpt-billed", upstream_model="gpt-unknown"),
    )
    assert accepted == 3
    # 1,000 × $2 + 200 × $10 + 50 × $1 = 4,050 µ$
    assert stored(harness.db_path) == {
        "plain": (1_000, 200, 0, 4_050),
        "mapped": (1_000, 200, 0, 4_050),
        "unpriced": (1_000, 200, 0, None),
    }


async def test_a_request_the_upstream_failed_is_recorded_as_failed_and_costs_nothing(harness: Harness) -> None:
    accepted = await record_usage(
        harness,
        record("failed-5xx", status_code=502, end_reason="error"),  # the vendor reported tokens: they stay
        record("failed-empty", status_code=200, end_reason="upstream_error", usage=auth_pb2.TokenUsage()),
        record("client-left", status_code=499, end_reason="client_closed", usage_estimated=True,
               usage=auth_pb2.TokenUsage(input_tokens=1_000)),
        record("failed-unpriced", model="gpt-unknown", status_code=500, end_reason="error"),
    )
    assert accepted == 4
    assert stored(harness.db_path) == {
        "failed-5xx": (1_000, 200, 1, 0),
        "failed-empty": (0, 0, 1, 0),
        "client-left": (1_000, 0, 0, 2_000),  # the vendor bills a prompt it began on
        "failed-unpriced": (1_000, 200, 1, 0),  # never charged, whether or not a price is known
    }


async def test_counts_no_price_can_apply_to_keep_the_record_without_a_cost(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    inconsistent = auth_pb2.TokenUsage(input_tokens=10, output_tokens=5, reasoning_tokens=9)  # reasoning > output
    with caplog.at_level(logging.WARNING, logger="switchboard_auth.service"):
        accepted = await record_usage(harness, record("odd", usage=inconsistent), record("fine"))
    assert accepted == 2
    assert stored(harness.db_path) == {"odd": (10, 5, 0, None), "fine": (1_000, 200, 0, 4_050)}
    assert any("'odd'" in r.getMessage() and "without a cost" in r.getMessage() for r in caplog.records)


async def test_the_servicer_prices_with_the_packaged_table_by_default(harness: Harness) -> None:
    request = auth_pb2.RecordUsageRequest(records=[
        auth_pb2.UsageRecord(request_id="default-priced", key_id="key_0123456789ab", platform="openai",
                             model="gpt-4o", status_code=200, end_reason="complete",
                             usage=auth_pb2.TokenUsage(input_tokens=1_000_000))])
    assert (await harness.stub.RecordUsage(request, timeout=5)).accepted == 1
    listed = default_prices().lookup("openai", "gpt-4o")
    assert listed is not None and listed.input > 0
    assert stored(harness.db_path)["default-priced"][3] == listed.input * 1_000_000  # a million input tokens


async def test_a_bad_price_file_stops_auth_at_start_with_every_problem_logged(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("prices:\n  - platforms: [nowhere]\n    models: [m]\n    input: -1\n    output: 1\n")
    env = subprocess_env(
        SWITCHBOARD_AUTH_LISTEN=f"127.0.0.1:{free_port()}",
        SWITCHBOARD_AUTH_METRICS_PORT="-1",
        SWITCHBOARD_AUTH_DB_PATH=str(tmp_path / "auth.db"),
        SWITCHBOARD_AUTH_PRICES_FILE=str(prices),
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard_auth", env=env,
                                                stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    text = stderr.decode()
    assert "'nowhere' is not one of" in text
    assert "a price cannot be negative" in text
    assert not (tmp_path / "auth.db").exists()  # stopped before opening the stores


async def test_the_cost_metric_counts_new_priced_records_once_in_usd(harness: Harness) -> None:
    def cost() -> float:
        return REGISTRY.get_sample_value("switchboard_usage_cost_total",
                                         {"platform": "openai", "model": "gpt-metric"}) or 0.0

    before = cost()
    await record_usage(harness, record("metric-1", model="gpt-metric", upstream_model="gpt-glob-2026"))
    await record_usage(harness, record("metric-1", model="gpt-metric", upstream_model="gpt-glob-2026"))  # again
    assert cost() - before == pytest.approx(0.00405)  # 4,050 µ$, counted once
