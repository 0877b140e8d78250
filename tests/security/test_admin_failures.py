"""The admin API refuses without its token and with a wrong one, at a bounded rate per client address: past
`admin_failures_per_minute` failures a source gets 429 with `retry-after` (its token not even compared) until the
bucket refills, while other sources are unaffected. Through httpx.ASGITransport from chosen client addresses."""

import hmac
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import httpx
import pytest

from switchboard_edge.admin_routes import FailedAttempts

from .edge_testing import ADMIN_TOKEN, SecuredEdge, secured_edge

BUDGET = 3
RIGHT = {"authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"authorization": "Bearer guess-0001"}


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[SecuredEdge]:
    async with secured_edge(tmp_path, admin_failures_per_minute=BUDGET) as running:
        yield running


def error_code(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}  # OpenAI-style, like every admin error
    return str(error["code"])


async def test_failures_past_the_budget_are_429_until_it_refills(edge: SecuredEdge) -> None:
    async with edge.client("203.0.113.7") as attacker, edge.client("198.51.100.2") as admin:
        missing = await attacker.get("/admin/v1/keys")
        assert missing.status_code == 401 and error_code(missing) == "invalid_api_key"
        for _ in range(BUDGET - 1):
            wrong = await attacker.get("/admin/v1/keys", headers=WRONG)
            assert wrong.status_code == 401 and error_code(wrong) == "invalid_api_key"

        limited = await attacker.post("/admin/v1/keys", headers=WRONG, json={"name": "intruder"})
        assert limited.status_code == 429 and error_code(limited) == "rate_limit_exceeded"
        # One failure refills in 60 / BUDGET seconds.
        assert 1 <= int(limited.headers["retry-after"]) <= 60 // BUDGET
        assert ADMIN_TOKEN not in limited.text

        with mock.patch.object(hmac, "compare_digest", wraps=hmac.compare_digest) as compared:
            blocked = await attacker.get("/admin/v1/keys", headers=RIGHT)
        assert blocked.status_code == 429 and "retry-after" in blocked.headers
        compared.assert_not_called()  # a blocked source learns nothing, not even from the right token

        listed = await admin.get("/admin/v1/keys", headers=RIGHT)
        assert listed.status_code == 200 and "intruder" not in listed.text
        assert (await admin.get("/admin/v1/keys", headers=WRONG)).status_code == 401  # its own budget


async def test_a_forged_forwarded_for_does_not_buy_more_attempts(edge: SecuredEdge) -> None:
    """Without trusted proxies X-Forwarded-For is anyone's to write: the TCP peer is the source."""
    async with edge.client("203.0.113.8") as attacker:
        statuses = [(await attacker.get("/admin/v1/keys", headers={**WRONG, "x-forwarded-for": f"10.0.0.{n}"}))
                    .status_code for n in range(BUDGET + 2)]
    assert statuses == [401] * BUDGET + [429, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_budget(tmp_path: Path) -> None:
    async with (secured_edge(tmp_path, admin_failures_per_minute=BUDGET, trusted_proxies="10.1.0.0/16") as edge,
                edge.client("10.1.0.5") as proxy):
        first = [(await proxy.get("/admin/v1/keys", headers={**WRONG, "x-forwarded-for": "203.0.113.9"})).status_code
                 for _ in range(BUDGET + 1)]
        other = await proxy.get("/admin/v1/keys", headers={**RIGHT, "x-forwarded-for": "198.51.100.3"})
    assert first == [401] * BUDGET + [429]
    assert other.status_code == 200


async def test_the_block_is_logged_once_without_the_token(edge: SecuredEdge, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="switchboard_edge.admin_routes"):
        async with edge.client("203.0.113.10") as attacker:
            for _ in range(BUDGET + 3):
                await attacker.get("/admin/v1/keys", headers=WRONG)
            await attacker.get("/admin/v1/keys", headers=RIGHT)
    blocks = [record for record in caplog.records if "too many failed attempts from 203.0.113.10" in record.message]
    assert len(blocks) == 1
    for secret in (ADMIN_TOKEN, "guess-0001"):
        assert secret not in caplog.text


async def test_zero_turns_the_limit_off(tmp_path: Path) -> None:
    async with secured_edge(tmp_path, admin_failures_per_minute=0) as edge, edge.client() as client:
        statuses = {(await client.get("/admin/v1/keys", headers=WRONG)).status_code for _ in range(50)}
        assert statuses == {401}
        assert (await client.get("/admin/v1/keys", headers=RIGHT)).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_at_the_budget_per_minute() -> None:
    clock = Clock()
    failures = FailedAttempts(6, clock=clock)  # one failure back every 10 s
    for _ in range(6):
        assert failures.blocked_for("a") == 0
        failures.failed("a")
    assert failures.blocked_for("a") == pytest.approx(10.0)
    assert failures.first_refusal("a") and not failures.first_refusal("a")
    clock.now += 4
    assert failures.blocked_for("a") == pytest.approx(6.0)
    clock.now += 6
    assert failures.blocked_for("a") == 0  # one attempt back, not the whole budget
    failures.failed("a")
    assert failures.blocked_for("a") == pytest.approx(10.0)
    assert failures.first_refusal("a")  # a new block is logged again
    clock.now += 60
    for _ in range(6):  # a full minute refills all of it, and no more
        assert failures.blocked_for("a") == 0
        failures.failed("a")
    assert failures.blocked_for("a") > 0
    assert failures.blocked_for("b") == 0


def test_the_sources_kept_are_bounded() -> None:
    failures = FailedAttempts(1, max_sources=3, clock=Clock())
    for source in ("a", "b", "c", "d"):
        failures.failed(source)
    assert [failures.blocked_for(source) > 0 for source in ("a", "b", "c", "d")] == [False, True, True, True]
