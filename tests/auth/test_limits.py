"""Per-key limits: one behavioural suite for the memory and the Redis limiter, and two Redis replicas
enforcing one limit together. Time is the `now` each call is given (no sleeping)."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from switchboard_auth.keys import KeyLimits
from switchboard_auth.limits import (
    BUDGETS,
    CONCURRENCY,
    DAILY,
    MONTHLY,
    RPM,
    TOTAL,
    TPD,
    TPM,
    Limiter,
    MemoryLimiter,
    RedisLimiter,
    Spent,
    day_end,
)

from ..redis_testing import REDIS_URL, fresh_namespace

NOTHING_SPENT = Spent()
# A fixed moment a few hours into a UTC day, so a test's minutes never cross midnight.
NOW = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0).timestamp()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    async with limiter_of(request.param) as made:
        yield made


@contextlib.asynccontextmanager
async def limiter_of(kind: str, spent: Spent = NOTHING_SPENT) -> AsyncIterator[Limiter]:
    """A fresh limiter whose ledger says `spent` of every key."""
    async def ledger(key_id: str, now: float) -> Spent:
        return spent

    if kind == "memory":
        yield MemoryLimiter(ledger)
        return
    async with fresh_namespace() as name:
        backend = RedisLimiter(REDIS_URL, name, ledger)
        yield backend
        await backend.close()


async def test_requests_per_minute_and_when_to_retry(limiter: Limiter) -> None:
    limits = KeyLimits(requests_per_minute=3)
    for left in (2, 1, 0):
        check = await limiter.admit("k", limits, NOW)
        assert check.allowed and [(s.name, s.remaining) for s in check.statuses] == [(RPM, left)]
    refused = await limiter.admit("k", limits, NOW + 1)
    assert not refused.allowed and refused.refused_by == RPM
    assert refused.retry_after is not None and 18.9 < refused.retry_after <= 20.0  # one request per 20 s refills
    assert (await limiter.admit("k", limits, NOW + 20)).allowed
    assert (await limiter.admit("other-key", limits, NOW + 1)).allowed  # limits are per key


async def test_concurrency_admissions_end_with_their_usage(limiter: Limiter) -> None:
    limits = KeyLimits(concurrency=2)
    first, second = [await limiter.admit("k", limits, NOW) for _ in range(2)]
    assert first.admission_id and second.admission_id and first.admission_id != second.admission_id
    refused = await limiter.admit("k", limits, NOW)
    assert refused.refused_by == CONCURRENCY and refused.retry_after is not None and refused.retry_after > 0
    await limiter.settle("k", limits, first.admission_id, 10, 0, NOW + 1)
    assert (await limiter.admit("k", limits, NOW + 1)).allowed


async def test_an_admission_nobody_settles_expires(limiter: Limiter) -> None:
    limits = KeyLimits(concurrency=1)
    assert (await limiter.admit("k", limits, NOW)).allowed
    assert not (await limiter.admit("k", limits, NOW + 60)).allowed
    assert (await limiter.admit("k", limits, NOW + 901)).allowed


async def test_tokens_per_minute_are_charged_after_and_a_debt_delays_the_next(limiter: Limiter) -> None:
    limits = KeyLimits(tokens_per_minute=1000)
    assert (await limiter.admit("k", limits, NOW)).allowed
    await limiter.settle("k", limits, "", 1500, 0, NOW)  # one request spent more than the minute holds: it completed
    refused = await limiter.admit("k", limits, NOW + 1)
    assert refused.refused_by == TPM and refused.retry_after is not None and 29 <= refused.retry_after <= 31
    assert (await limiter.admit("k", limits, NOW + 31)).allowed


async def test_tokens_per_day_turn_with_the_utc_day(limiter: Limiter) -> None:
    limits = KeyLimits(tokens_per_day=100)
    assert (await limiter.admit("k", limits, NOW)).allowed
    await limiter.settle("k", limits, "", 60, 0, NOW)
    check = await limiter.admit("k", limits, NOW)
    assert check.allowed and [(s.name, s.remaining) for s in check.statuses] == [(TPD, 40)]
    await limiter.settle("k", limits, "", 40, 0, NOW)
    refused = await limiter.admit("k", limits, NOW + 5)
    assert refused.refused_by == TPD and refused.retry_after == pytest.approx(day_end(NOW) - NOW - 5)
    assert (await limiter.admit("k", limits, day_end(NOW) + 1)).allowed


@pytest.mark.parametrize(("limits", "name"), [
    (KeyLimits(daily_budget_micro_usd=5_000_000), DAILY),
    (KeyLimits(monthly_budget_micro_usd=5_000_000), MONTHLY),
    (KeyLimits(total_budget_micro_usd=5_000_000), TOTAL),
])
async def test_a_spent_budget_refuses_the_next_request_not_the_one_that_crossed_it(
        limiter: Limiter, limits: KeyLimits, name: str) -> None:
    assert (await limiter.admit("k", limits, NOW)).allowed
    await limiter.settle("k", limits, "", 0, 4_000_000, NOW)
    assert (await limiter.admit("k", limits, NOW)).allowed  # $1 left: admitted
    await limiter.settle("k", limits, "", 0, 3_000_000, NOW)  # it crossed the budget and completed
    refused = await limiter.admit("k", limits, NOW + 1)
    assert not refused.allowed and refused.refused_by == name and name in BUDGETS
    if name == TOTAL:
        assert refused.retry_after is None  # waiting does not bring a total budget back
    else:
        assert refused.retry_after is not None and refused.retry_after > 0


async def test_the_first_spent_limit_refuses_and_statuses_cover_every_limit(limiter: Limiter) -> None:
    limits = KeyLimits(requests_per_minute=100, tokens_per_minute=10_000, daily_budget_micro_usd=1_000_000)
    check = await limiter.admit("k", limits, NOW)
    assert [s.name for s in check.statuses] == [RPM, TPM, DAILY]
    assert [s.remaining for s in check.statuses] == [99, 10_000, 1_000_000]


async def test_two_redis_replicas_enforce_one_limit_together() -> None:
    async with fresh_namespace() as name:
        one, two = RedisLimiter(REDIS_URL, name), RedisLimiter(REDIS_URL, name)
        limits = KeyLimits(requests_per_minute=5, concurrency=3)
        now = time.time()
        checks = await asyncio.gather(*(replica.admit("shared", limits, now) for replica in (one, two) * 6))
        assert sum(check.allowed for check in checks) == 3  # concurrency 3 binds first
        held = [check for check in checks if check.allowed]
        await two.settle("shared", limits, held[0].admission_id, 1, 0, now)
        assert (await one.admit("shared", limits, now)).allowed
        await one.close()
        await two.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_counters_start_from_the_ledger_so_a_restart_hands_out_no_fresh_budget(kind: str) -> None:
    limits = KeyLimits(total_budget_micro_usd=5_000_000, tokens_per_day=1000)
    async with limiter_of(kind, Spent(tokens_today=900, cost_total=4_000_000)) as fresh:
        check = await fresh.admit("k", limits, NOW)
        assert check.allowed and {s.name: s.remaining for s in check.statuses} == {TPD: 100, TOTAL: 1_000_000}
        await fresh.settle("k", limits, "", 100, 1_500_000, NOW)
        refused = await fresh.admit("k", limits, NOW)
        assert refused.refused_by in (TPD, TOTAL) and not refused.allowed


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_a_first_settlement_is_not_counted_twice(kind: str) -> None:
    limits = KeyLimits(total_budget_micro_usd=5_000_000)
    # The ledger already holds the request being settled (records are appended before they are settled).
    async with limiter_of(kind, Spent(cost_total=3_000_000)) as fresh:
        await fresh.settle("k", limits, "", 10, 3_000_000, NOW)
        check = await fresh.admit("k", limits, NOW)
        assert [(s.name, s.remaining) for s in check.statuses] == [(TOTAL, 2_000_000)]


async def test_peek_says_what_is_left_and_takes_nothing(limiter: Limiter) -> None:
    limits = KeyLimits(requests_per_minute=3, concurrency=2)
    held = await limiter.admit("k", limits, NOW)
    for _ in range(5):
        peeked = await limiter.peek("k", limits, NOW)
        assert peeked.allowed and not peeked.admission_id
        assert {s.name: s.remaining for s in peeked.statuses} == {RPM: 2, CONCURRENCY: 1}
    assert (await limiter.admit("k", limits, NOW)).allowed
    assert (await limiter.admit("k", limits, NOW)).refused_by == CONCURRENCY  # the peeks took no slot
    await limiter.settle("k", limits, held.admission_id, 0, 0, NOW)
    assert (await limiter.peek("k", limits, NOW)).refused_by == ""  # allowed: one request of the three left
