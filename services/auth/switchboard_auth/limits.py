"""Per-key limits, admitted before the upstream call and settled from the real usage after it.

Two backends behind `Limiter`: `MemoryLimiter` (one auth process, the embedded default) and `RedisLimiter`
(many auth replicas: each admission and each settlement is one Lua script, so replicas enforce one limit
together), the latter always served through `FallbackLimiter`, which decides what happens while Redis cannot
be reached (SWITCHBOARD_AUTH_REDIS_UNAVAILABLE). Both implement the same rules, written once here:

- **Requests per minute** — GCRA: a key may send `limit` requests in any 60 s, evenly refilled; the state is
  one "theoretical arrival time". Refused → retry when the next request fits.
- **Concurrent requests** — admissions held until the usage record arrives (or `CONCURRENCY_TTL` passes: a
  crashed edge never keeps one).
- **Tokens per minute** — the same GCRA over tokens, charged when usage is settled (the count is not known
  before): a request is admitted while the minute's tokens are not spent, and one that spends more than is
  left still completes; the debt delays the next ones.
- **Tokens per day, cost per day and month (UTC calendar), total cost** — counters charged at settlement;
  a request is refused once the counter has reached the limit (until the day or month turns; a spent total
  budget does not come back).

Money is integer micro-dollars. Time is POSIX seconds from the caller (tests drive it).
"""

import asyncio
import dataclasses
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from redis.exceptions import RedisError

from switchboard_auth.keys import KeyLimits
from switchboard_auth.metrics import REDIS_DEGRADED, REDIS_DEGRADED_OPERATIONS
from switchboard_auth.store import Ledger
from switchboard_auth.usage import UsageSummary
from switchboard_common.redis_outage import LOCAL, REFUSE, RedisOutage, fast_client

log = logging.getLogger(__name__)
_T = TypeVar("_T")

WINDOW = 60.0  # seconds of the per-minute limits
# An admission nobody settles (a crashed edge, a lost record) stops counting after this long; longer than a
# request may run (the edge's upstream timeout, 600 s, plus the drain).
CONCURRENCY_TTL = 900.0

RPM = "requests_per_minute"
TPM = "tokens_per_minute"
TPD = "tokens_per_day"
CONCURRENCY = "concurrency"
DAILY = "daily_budget_micro_usd"
MONTHLY = "monthly_budget_micro_usd"
TOTAL = "total_budget_micro_usd"
BUDGETS = frozenset({DAILY, MONTHLY, TOTAL})


@dataclasses.dataclass(frozen=True, slots=True)
class Spent:
    """What a key has used so far of its calendar limits, as the ledger says."""

    tokens_today: int = 0
    cost_today: int = 0
    cost_this_month: int = 0
    cost_total: int = 0


# (key_id, now) → what the ledger holds of it. Counters start from it the first time a process (memory) or the
# shared store (Redis: after a flush, too) sees the key, so a restart never hands a key a fresh budget.
SpentSource = Callable[[str, float], Awaitable[Spent]]


def spent_in(ledger: Ledger) -> SpentSource:
    async def spent(key_id: str, now: float) -> Spent:
        moment = datetime.fromtimestamp(now, UTC)
        day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        month = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        total = await ledger.summary(key_id=key_id)
        this_month = await ledger.summary(key_id=key_id, since=month)
        today = await ledger.summary(key_id=key_id, since=day)
        t = today[0] if today else UsageSummary()
        return Spent(
            tokens_today=t.input_tokens + t.output_tokens + t.cache_read_input_tokens + t.cache_creation_input_tokens,
            cost_today=t.cost_micro_usd,
            cost_this_month=this_month[0].cost_micro_usd if this_month else 0,
            cost_total=total[0].cost_micro_usd if total else 0)
    return spent


async def _nothing_spent(key_id: str, now: float) -> Spent:
    return Spent()


@dataclasses.dataclass(frozen=True, slots=True)
class LimitStatus:
    """One limit as it stands after an admission: what is left and when it is whole again (for x-ratelimit-*)."""

    name: str
    limit: int
    remaining: int
    reset_seconds: float


@dataclasses.dataclass(frozen=True, slots=True)
class LimitCheck:
    allowed: bool
    # When refused: the limit that refused, and when to try again (None: not by waiting — a spent total budget).
    refused_by: str = ""
    retry_after: float | None = None
    # When admitted with a concurrency limit: the handle the usage record brings back.
    admission_id: str = ""
    statuses: tuple[LimitStatus, ...] = ()


class Limiter(Protocol):
    async def admit(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck: ...

    async def peek(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        """What `admit` would answer now, changing nothing; the statuses say what is left before the request."""
        ...

    async def settle(self, key_id: str, limits: KeyLimits, admission_id: str, tokens: int, cost_micro_usd: int,
                     now: float) -> None:
        """Charges a finished request's tokens and cost and ends its concurrency admission (idempotent per
        admission only for the release: charge each request once — the ledger's new entries)."""
        ...

    async def close(self) -> None: ...


def day_end(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    start = datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp()
    return start + 86_400


def month_end(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def period_ids(now: float) -> tuple[str, str]:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y%m%d"), moment.strftime("%Y%m")


@dataclasses.dataclass
class _KeyState:
    rpm_tat: float = 0.0
    tpm_tat: float = 0.0
    admissions: dict[str, float] = dataclasses.field(default_factory=dict)  # id → expires at
    counters: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)  # name → (period, value)


class MemoryLimiter:
    """`Limiter` in this process's memory. Past a key's first sight (its counters read from the ledger), nothing
    awaits between reading and writing: atomic on the loop."""

    def __init__(self, spent: SpentSource = _nothing_spent) -> None:
        self._keys: dict[str, _KeyState] = {}
        self._spent = spent
        self._seeding: dict[str, asyncio.Task[Spent]] = {}

    async def _state(self, key_id: str, now: float) -> tuple[_KeyState, bool]:
        """The key's state, its counters started from the ledger on first sight; True when that happened now."""
        state = self._keys.get(key_id)
        if state is not None:
            return state, False
        seeding = self._seeding.get(key_id)
        if seeding is None:
            seeding = self._seeding[key_id] = asyncio.ensure_future(self._spent(key_id, now))
        try:
            spent = await asyncio.shield(seeding)
        finally:
            if seeding.done():
                self._seeding.pop(key_id, None)
        state = self._keys.get(key_id)
        if state is not None:  # another caller got there first
            return state, False
        day, month = period_ids(now)
        state = self._keys[key_id] = _KeyState(counters={
            TPD: (day, spent.tokens_today), DAILY: (day, spent.cost_today), MONTHLY: (month, spent.cost_this_month),
            TOTAL: ("all", spent.cost_total)})
        return state, True

    async def admit(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        return await self._check(key_id, limits, now, take=True)

    async def peek(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        return _before_taking(await self._check(key_id, limits, now, take=False))

    async def _check(self, key_id: str, limits: KeyLimits, now: float, *, take: bool) -> LimitCheck:
        state, _ = await self._state(key_id, now)
        day, month = period_ids(now)
        checks: list[Check] = []
        if limits.requests_per_minute:
            checks.append(_gcra_check(RPM, limits.requests_per_minute, state.rpm_tat, now, cost=1))
        if limits.tokens_per_minute:
            checks.append(_gcra_check(TPM, limits.tokens_per_minute, state.tpm_tat, now, cost=0))
        if limits.concurrency:
            live = {a: until for a, until in state.admissions.items() if until > now}
            state.admissions = live
            held = len(live)
            checks.append((CONCURRENCY, held < limits.concurrency,
                           min(live.values()) - now if held >= limits.concurrency and live else None,
                           LimitStatus(CONCURRENCY, limits.concurrency, max(0, limits.concurrency - held - 1), 0.0)))
        for name, limit, period, ends in _counters(limits, day, month, now):
            spent = _counter(state, name, period)
            checks.append((name, spent < limit, None if name == TOTAL else ends - now,
                           LimitStatus(name, limit, max(0, limit - spent), 0.0 if name == TOTAL else ends - now)))
        refused = next((c for c in checks if not c[1]), None)
        if refused is not None:
            return LimitCheck(False, refused[0], refused[2], statuses=tuple(c[3] for c in checks))
        if not take:
            return LimitCheck(True, statuses=tuple(c[3] for c in checks))
        if limits.requests_per_minute:
            state.rpm_tat = max(state.rpm_tat, now) + WINDOW / limits.requests_per_minute
        admission_id = ""
        if limits.concurrency:
            admission_id = new_admission_id()
            state.admissions[admission_id] = now + CONCURRENCY_TTL
        return LimitCheck(True, admission_id=admission_id, statuses=tuple(c[3] for c in checks))

    async def settle(self, key_id: str, limits: KeyLimits, admission_id: str, tokens: int, cost_micro_usd: int,
                     now: float) -> None:
        state, seeded = await self._state(key_id, now)
        if admission_id:
            state.admissions.pop(admission_id, None)
        if limits.tokens_per_minute and tokens:
            state.tpm_tat = max(state.tpm_tat, now) + tokens * WINDOW / limits.tokens_per_minute
        if seeded:
            return  # the ledger the counters started from already holds this request
        day, month = period_ids(now)
        for name, amount, period in ((TPD, tokens, day), (DAILY, cost_micro_usd, day), (MONTHLY, cost_micro_usd, month),
                                     (TOTAL, cost_micro_usd, "all")):
            if amount and getattr(limits, name) is not None:
                state.counters[name] = (period, _counter(state, name, period) + amount)

    async def close(self) -> None:
        pass


def _before_taking(check: LimitCheck) -> LimitCheck:
    """An admission's statuses say what is left after it; a peek's, before: one more request and slot."""
    if not check.allowed:
        return check
    statuses = tuple(dataclasses.replace(s, remaining=s.remaining + 1) if s.name in (RPM, CONCURRENCY) else s
                     for s in check.statuses)
    return dataclasses.replace(check, statuses=statuses)


def new_admission_id() -> str:
    return "adm_" + secrets.token_hex(8)


def _counter(state: _KeyState, name: str, period: str) -> int:
    kept = state.counters.get(name)
    return kept[1] if kept is not None and kept[0] == period else 0


def _counters(limits: KeyLimits, day: str, month: str, now: float) -> list[tuple[str, int, str, float]]:
    """(name, limit, period id, period end) of the configured calendar limits."""
    found = []
    for name, period, ends in ((TPD, day, day_end(now)), (DAILY, day, day_end(now)), (MONTHLY, month, month_end(now)),
                               (TOTAL, "all", math.inf)):
        limit = getattr(limits, name)
        if limit is not None:
            found.append((name, limit, period, ends))
    return found


Check = tuple[str, bool, float | None, LimitStatus]


def _gcra_check(name: str, limit: int, tat: float, now: float, cost: int) -> Check:
    """Would `cost` more units fit now? (cost 0: is anything left at all). Refused: when it would."""
    interval = WINDOW / limit
    start = max(tat, now)
    allow_at = start + interval * cost - WINDOW if cost else start - WINDOW
    if allow_at > now or (not cost and start - now >= WINDOW):
        wait = max(allow_at - now, interval if not cost else 0.0)
        return name, False, wait, LimitStatus(name, limit, 0, start - now)
    after = start + interval * cost
    remaining = max(0, math.floor((now + WINDOW - after) / interval))
    return name, True, None, LimitStatus(name, limit, remaining, max(0.0, after - now))


class LimitsUnavailable(Exception):
    """Redis cannot be reached: auth answers 503 rather than let a limited key through unchecked."""


# KEYS: rpm tat, tpm tat, concurrency zset, tokens-today, cost-today, cost-this-month, cost-total.
# ARGV: now, window, rpm, tpm, concurrency, tokens/day, daily, monthly, total (0: none), admission id,
# concurrency TTL, day end, month end, dry run ("1": take nothing).
# Returns {allowed, {name, ok, wait, limit, remaining, reset, ...}}; times as strings (Lua numbers come back as
# integers).
_ADMIT = """
local now, W = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, conc = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out, allowed, rpm_after = {}, 1, nil
local function add(name, ok, wait, limit, remaining, reset)
  if ok == 0 then allowed = 0 end
  for _, v in ipairs({name, ok, string.format('%.6f', wait), limit, remaining, string.format('%.6f', reset)}) do
    out[#out + 1] = v
  end
end
if rpm > 0 then
  local T = W / rpm
  local start = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
  local allow_at = start + T - W
  if allow_at > now then
    add('requests_per_minute', 0, allow_at - now, rpm, 0, start - now)
  else
    rpm_after = start + T
    add('requests_per_minute', 1, -1, rpm, math.floor((now + W - rpm_after) / T), rpm_after - now)
  end
end
if tpm > 0 then
  local T = W / tpm
  local start = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
  if start - now >= W then
    add('tokens_per_minute', 0, math.max(start - W - now, T), tpm, 0, start - now)
  else
    add('tokens_per_minute', 1, -1, tpm, math.floor((now + W - start) / T), start - now)
  end
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local held = redis.call('ZCARD', KEYS[3])
  if held >= conc then
    local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    add('concurrency', 0, tonumber(first[2]) - now, conc, 0, 0)
  else
    add('concurrency', 1, -1, conc, conc - held - 1, 0)
  end
end
local day_end, month_end = tonumber(ARGV[12]), tonumber(ARGV[13])
local counters = {{'tokens_per_day', 6, 4, day_end}, {'daily_budget_micro_usd', 7, 5, day_end},
                  {'monthly_budget_micro_usd', 8, 6, month_end}, {'total_budget_micro_usd', 9, 7, -1}}
for _, c in ipairs(counters) do
  local limit = tonumber(ARGV[c[2]])
  if limit > 0 then
    local spent = tonumber(redis.call('GET', KEYS[c[3]]) or '0')
    local wait, reset = -1, 0
    if c[4] > 0 then wait, reset = c[4] - now, c[4] - now end
    if spent >= limit then add(c[1], 0, wait, limit, 0, reset) else add(c[1], 1, -1, limit, limit - spent, reset) end
  end
end
if allowed == 1 and ARGV[14] ~= '1' then
  if rpm_after then
    redis.call('SET', KEYS[1], string.format('%.6f', rpm_after), 'PX', math.ceil((rpm_after - now) * 1000) + 1)
  end
  if conc > 0 then
    local ttl = tonumber(ARGV[11])
    redis.call('ZADD', KEYS[3], now + ttl, ARGV[10])
    redis.call('PEXPIRE', KEYS[3], math.ceil(ttl * 1000))
  end
end
return {allowed, out}
"""

# KEYS as _ADMIT. ARGV: now, window, tpm, tokens, cost, admission id, tokens/day?, daily?, monthly?, total? (1/0),
# day end, month end.
_SETTLE = """
local now, W = tonumber(ARGV[1]), tonumber(ARGV[2])
local tpm, tokens, cost = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if ARGV[6] ~= '' then redis.call('ZREM', KEYS[3], ARGV[6]) end
if tpm > 0 and tokens > 0 then
  local start = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
  local after = start + tokens * W / tpm
  redis.call('SET', KEYS[2], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 1)
end
local day_end, month_end = tonumber(ARGV[11]), tonumber(ARGV[12])
local function charge(flag, key, amount, ends)
  if ARGV[flag] == '1' and amount > 0 then
    redis.call('INCRBY', key, amount)
    if ends > 0 then redis.call('PEXPIREAT', key, math.ceil(ends * 1000) + 3600000) end
  end
end
charge(7, KEYS[4], tokens, day_end)
charge(8, KEYS[5], cost, day_end)
charge(9, KEYS[6], cost, month_end)
charge(10, KEYS[7], cost, -1)
return 1
"""


# KEYS as _ADMIT, then the key's "seeded" marker. ARGV: tokens today, cost today, this month, in all, day end,
# month end. Starts the calendar counters from the ledger unless they were started already; returns 1 if now.
_SEED = """
if redis.call('EXISTS', KEYS[8]) == 1 then return 0 end
local day_end, month_end = tonumber(ARGV[5]), tonumber(ARGV[6])
local function start(key, amount, ends)
  if tonumber(amount) > 0 then
    redis.call('INCRBY', key, amount)
    if ends > 0 then redis.call('PEXPIREAT', key, math.ceil(ends * 1000) + 3600000) end
  end
end
start(KEYS[4], ARGV[1], day_end)
start(KEYS[5], ARGV[2], day_end)
start(KEYS[6], ARGV[3], month_end)
start(KEYS[7], ARGV[4], -1)
redis.call('SET', KEYS[8], '1')
return 1
"""


class RedisLimiter:
    """`Limiter` in Redis, shared by every auth replica on the same URL and namespace."""

    def __init__(self, url: str, namespace: str = "switchboard", spent: SpentSource = _nothing_spent,
                 timeout_seconds: float = 0.5) -> None:
        self._redis = fast_client(url, timeout_seconds)
        self.namespace = namespace
        self._prefix = f"{namespace}:auth:limits:"
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)
        self._seed = self._redis.register_script(_SEED)
        self._spent = spent
        self._seeded: set[str] = set()  # keys this process has seen started in Redis

    async def _ensure_seeded(self, key_id: str, now: float) -> bool:
        """Starts the key's counters from the ledger unless Redis has them; True when that happened now."""
        if key_id in self._seeded:
            return False
        keys = self._keys(key_id, now)
        marker = keys[0].rsplit(":", 1)[0] + ":seeded"
        try:
            if not await self._redis.exists(marker):
                spent = await self._spent(key_id, now)
                started = await self._seed([*keys, marker], [
                    spent.tokens_today, spent.cost_today, spent.cost_this_month, spent.cost_total,
                    repr(day_end(now)), repr(month_end(now))])
            else:
                started = 0
        except RedisError as exc:
            raise LimitsUnavailable(f"redis: {exc}") from exc
        if len(self._seeded) >= 100_000:
            self._seeded.clear()
        self._seeded.add(key_id)
        return bool(started)

    def _keys(self, key_id: str, now: float) -> list[str]:
        day, month = period_ids(now)
        base = f"{self._prefix}{{{key_id}}}:"  # one hash slot per key (Redis Cluster)
        return [base + "rpm", base + "tpm", base + "concurrency", base + f"tokens:{day}", base + f"cost:day:{day}",
                base + f"cost:month:{month}", base + "cost:total"]

    async def admit(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        return await self._check(key_id, limits, now, take=True)

    async def peek(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        return _before_taking(await self._check(key_id, limits, now, take=False))

    async def _check(self, key_id: str, limits: KeyLimits, now: float, *, take: bool) -> LimitCheck:
        await self._ensure_seeded(key_id, now)
        admission_id = new_admission_id() if limits.concurrency and take else ""
        configured = [getattr(limits, name) or 0 for name in (RPM, TPM, CONCURRENCY, TPD, DAILY, MONTHLY, TOTAL)]
        args: list[str | int] = [repr(now), repr(WINDOW), *configured, admission_id, repr(CONCURRENCY_TTL),
                                 repr(day_end(now)), repr(month_end(now)), "0" if take else "1"]
        try:
            allowed, flat = await self._admit(self._keys(key_id, now), args)
        except RedisError as exc:
            raise LimitsUnavailable(f"redis: {exc}") from exc
        statuses: list[LimitStatus] = []
        refused: tuple[str, float | None] | None = None
        for i in range(0, len(flat), 6):
            name, ok, wait, limit, remaining, reset = flat[i:i + 6]
            name = name.decode() if isinstance(name, bytes) else name
            statuses.append(LimitStatus(name, int(limit), int(remaining), max(0.0, float(reset))))
            if not int(ok) and refused is None:
                refused = (name, None if float(wait) < 0 else float(wait))
        if refused is not None:
            return LimitCheck(False, refused[0], refused[1], statuses=tuple(statuses))
        return LimitCheck(True, admission_id=admission_id, statuses=tuple(statuses))

    async def settle(self, key_id: str, limits: KeyLimits, admission_id: str, tokens: int, cost_micro_usd: int,
                     now: float) -> None:
        # Counters started from the ledger just now already hold this request.
        seeded = await self._ensure_seeded(key_id, now)
        flags = ["1" if getattr(limits, name) is not None and not seeded else "0"
                 for name in (TPD, DAILY, MONTHLY, TOTAL)]
        args: list[str | int] = [repr(now), repr(WINDOW), limits.tokens_per_minute or 0, tokens, cost_micro_usd,
                                 admission_id, *flags, repr(day_end(now)), repr(month_end(now))]
        try:
            await self._settle(self._keys(key_id, now), args)
        except RedisError as exc:
            raise LimitsUnavailable(f"redis: {exc}") from exc

    async def ping(self) -> None:
        """Raises when Redis does not answer."""
        await self._redis.ping()

    def forget_seen(self) -> None:
        """Checks again, key by key, whether Redis holds the counters (it may have restarted empty)."""
        self._seeded.clear()

    async def close(self) -> None:
        await self._redis.aclose()


_MAX_ENDED = 100_000  # admissions ended during one outage that are remembered to end in Redis


class FallbackLimiter:
    """`RedisLimiter` that keeps answering while Redis cannot be reached, as `policy` says.

    "local": the same rules in this replica's memory, in a `MemoryLimiter` made fresh for each outage (its
    calendar counters start from the ledger). The tokens and cost charged there are charged to Redis once it
    answers again, so its counters miss nothing of the outage, and the concurrency admissions ended there are
    ended in Redis too (an admission Redis gave before the outage does not hold a slot until it expires);
    requests and tokens per minute start over from what Redis held. "refuse": every call raises
    `LimitsUnavailable`.
    """

    def __init__(self, shared: RedisLimiter, *, policy: str = LOCAL, spent: SpentSource = _nothing_spent,
                 probe_interval: float = 1.0) -> None:
        self._shared = shared
        self._refuse = policy == REFUSE
        self._spent = spent
        self._local = MemoryLimiter(spent)
        self._owed: dict[str, tuple[KeyLimits, int, int, float]] = {}  # key_id → charged in memory, not in Redis
        self._ended: dict[str, tuple[str, KeyLimits, float]] = {}  # admission id → (key_id, ...) ended in memory
        self.outage = RedisOutage(shared.ping, what="auth limits", policy=policy, log=log, degraded=REDIS_DEGRADED,
                                  on_recovery=self._recovered, probe_interval=probe_interval)

    async def admit(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        check, _ = await self._either(lambda limiter: limiter.admit(key_id, limits, now))
        return check

    async def peek(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        check, _ = await self._either(lambda limiter: limiter.peek(key_id, limits, now))
        return check

    async def settle(self, key_id: str, limits: KeyLimits, admission_id: str, tokens: int, cost_micro_usd: int,
                     now: float) -> None:
        _, local = await self._either(
            lambda limiter: limiter.settle(key_id, limits, admission_id, tokens, cost_micro_usd, now))
        if local and (tokens or cost_micro_usd):
            self._owe(key_id, limits, tokens, cost_micro_usd, now)
        if local and admission_id and len(self._ended) < _MAX_ENDED:
            self._ended[admission_id] = (key_id, limits, now)

    async def close(self) -> None:
        await self.outage.close()
        await self._shared.close()

    async def _either(self, call: Callable[[Limiter], Awaitable[_T]]) -> tuple[_T, bool]:
        """The call's answer from Redis, or while it is down from memory ("local"); True when from memory."""
        if not self.outage.down:
            try:
                return await call(self._shared), False
            except LimitsUnavailable as exc:
                if not self.outage.down:
                    self._local, self._owed, self._ended = MemoryLimiter(self._spent), {}, {}
                    self.outage.failed(exc)
        if self._refuse:
            raise LimitsUnavailable("redis unreachable, and SWITCHBOARD_AUTH_REDIS_UNAVAILABLE=refuse")
        REDIS_DEGRADED_OPERATIONS.inc()
        return await call(self._local), True

    def _owe(self, key_id: str, limits: KeyLimits, tokens: int, cost: int, now: float) -> None:
        _, owed_tokens, owed_cost, _ = self._owed.get(key_id, (limits, 0, 0, now))
        self._owed[key_id] = (limits, owed_tokens + tokens, owed_cost + cost, now)

    async def _recovered(self) -> None:
        """Redis answers again: what was charged in memory meanwhile goes to its counters (raises if it fails)."""
        self._shared.forget_seen()
        while self._owed:
            key_id, (limits, tokens, cost, now) = self._owed.popitem()
            try:
                # The per-minute token window of the outage is over or nearly; only the calendar counters.
                await self._shared.settle(key_id, dataclasses.replace(limits, tokens_per_minute=None), "", tokens,
                                          cost, now)
            except LimitsUnavailable:
                self._owe(key_id, limits, tokens, cost, now)
                raise
        while self._ended:
            admission_id, (key_id, limits, now) = self._ended.popitem()
            try:
                await self._shared.settle(key_id, dataclasses.replace(limits, tokens_per_minute=None), admission_id,
                                          0, 0, now)
            except LimitsUnavailable:
                self._ended[admission_id] = (key_id, limits, now)
                raise
