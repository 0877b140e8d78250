"""The router's shared state in Redis, for many router replicas.

Keys (all under `{namespace}:router:`; every key that can expire has a TTL):

```
hold:{account}      hash  ["family","kind"]   → [until|null, reason]      expires with its last dated hold
window:{account}    hash  ["family","name"]   → [resets_at|null, util]    expires with its last dated window
slots:{account}     zset  lease id            → expires at (s)            expires with its last lease
breaker:{account}   int   consecutive failures                            expires a failure streak later
live                zset  account             → when its keys above expire (ms, +inf)   expires with its last account
session:{key}       str   account id                                      the session TTL, renewed on read
accounts            hash  account id          → record (bytes)
accounts:version    int   bumped on every change to `accounts` or `credentials`
credentials         hash  account id          → stored credential (`credential_overlay` entry JSON: a secret)
changed             pub/sub channel: "health" or "accounts" after a change
```

Every multi-step write is one Lua script (registered once, run by EVALSHA),
so a crashed router never leaves half a change and slot counting is atomic
across replicas. Fields of a hash carry their own expiry; scripts drop the
expired ones, and readers ignore them anyway.

`health()` and `in_flight()` read a local mirror (`StateTables`). This
replica's own writes reach it at once; other replicas' within a round trip of
their publish on `changed`, or at the next periodic reload (every
`reload_interval`, the safety net for a lost message or connection); reloads
are at least `reload_gap` apart, so a burst of changes costs a few reloads.
Leases do not publish: other replicas' counts arrive with the periodic reload.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from switchboard_common.redis_outage import fast_client
from switchboard_router.state import redis_scripts as scripts
from switchboard_router.state.base import FAILURE_STREAK_SECONDS, Health, Hold, HoldKind, StateUnavailable, Window
from switchboard_router.state.memory import BREAKER_KINDS, ChangeCounter, Clock, StateTables, breaker_hold, tripped_mark

log = logging.getLogger(__name__)

Change = Callable[[StateTables], object]


@contextlib.contextmanager
def _reaching_redis() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StateUnavailable(f"redis: {exc}") from exc


class RedisState:
    """`RouterState` in Redis, shared by every replica on the same URL and namespace."""

    def __init__(
        self,
        url: str,
        namespace: str = "switchboard",
        *,
        reload_interval: float = 1.0,
        reload_gap: float = 0.05,
        failure_streak_seconds: float = FAILURE_STREAK_SECONDS,
        clock: Clock = time.time,
        timeout_seconds: float = 0.5,
    ) -> None:
        self._redis = fast_client(url, timeout_seconds)
        self._prefix = f"{namespace}:router:"
        self._channel = self._prefix + "changed"
        self._reload_interval = reload_interval
        self._reload_gap = reload_gap
        self._failure_streak_ms = round(failure_streak_seconds * 1000)
        self._clock = clock
        script = self._redis.register_script
        self._put = script(scripts.PRELUDE + scripts.PUT)
        self._clear_holds = script(scripts.PRELUDE + scripts.CLEAR_HOLDS)
        self._record_failure = script(scripts.PRELUDE + scripts.RECORD_FAILURE)
        self._record_success = script(scripts.PRELUDE + scripts.RECORD_SUCCESS)
        self._acquire = script(scripts.PRELUDE + scripts.ACQUIRE)
        self._extend = script(scripts.PRELUDE + scripts.EXTEND)
        self._release = script(scripts.PRELUDE + scripts.RELEASE)
        self._snapshot = script(scripts.SNAPSHOT)
        self._put_account = script(scripts.PUT_ACCOUNT)
        self._delete_account = script(scripts.DELETE_ACCOUNT)
        self._put_credential = script(scripts.PUT_CREDENTIAL)
        self._tables = StateTables()
        self._journal: list[Change] | None = None  # this replica's changes while a reload is out
        self._accounts_remote: int | None = None
        self._accounts_changes = ChangeCounter()
        self._stale = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False  # the last reload failed (logged once until one succeeds)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)

    async def start(self) -> None:
        with _reaching_redis():
            await self._pubsub.subscribe(self._channel)
            await self._reload()
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._refresh())]

    async def close(self) -> None:
        # redis-py can swallow a cancellation that lands as a command completes (Python 3.11's
        # asyncio.wait_for), so the loops also check `_closing`, and cancelling repeats until they end.
        self._closing = True
        self._stale.set()
        while not all(task.done() for task in self._tasks):
            for task in self._tasks:
                task.cancel()
            await asyncio.wait(self._tasks, timeout=0.1)
        self._tasks = []
        await self._pubsub.aclose()
        await self._redis.aclose()

    def refusing(self) -> bool:
        return False

    async def ping(self) -> None:
        """Raises StateUnavailable when Redis does not answer."""
        with _reaching_redis():
            await self._redis.ping()

    async def put_hold(self, account_id: str, family: str, hold: Hold) -> None:
        field, value = _hold_entry(family, hold)
        await self._run(self._put, account_id, [self._key("hold:", account_id)], [field, value])
        self._apply(lambda tables: tables.put_hold(account_id, family, hold))

    async def clear_holds(self, account_id: str, kinds: frozenset[HoldKind] | None = None) -> None:
        if kinds is not None and not kinds:
            return
        await self._run(self._clear_holds, account_id, [], sorted(kinds or ()))
        self._apply(lambda tables: tables.clear_holds(account_id, kinds))

    async def put_window(self, account_id: str, family: str, window: Window) -> None:
        field = json.dumps([family, window.name])
        value = json.dumps([window.resets_at, window.utilization])
        await self._run(self._put, account_id, [self._key("window:", account_id)], [field, value])
        self._apply(lambda tables: tables.put_window(account_id, family, window))

    def health(self) -> Health:
        return self._tables.health(self._clock())

    async def record_failure(self, account_id: str, threshold: int, open_seconds: float) -> Hold | None:
        if threshold < 1:
            raise ValueError("the breaker threshold must be at least 1")
        now = self._clock()
        hold = breaker_hold(threshold, now + open_seconds)
        mark = tripped_mark(now + open_seconds + self._failure_streak_ms / 1000)
        args = [threshold, self._failure_streak_ms, *_hold_entry("", hold), *_hold_entry("", mark)]
        if not await self._run(self._record_failure, account_id, [self._key("breaker:", account_id)], args):
            return None

        def opened(tables: StateTables) -> None:
            tables.put_hold(account_id, "", hold)
            tables.put_hold(account_id, "", mark)

        self._apply(opened)
        return hold

    async def record_success(self, account_id: str) -> None:
        keys = [self._key("breaker:", account_id)]
        if await self._run(self._record_success, account_id, keys, sorted(kind.value for kind in BREAKER_KINDS)):
            self._apply(lambda tables: tables.clear_holds(account_id, BREAKER_KINDS))

    async def session(self, key: str, ttl: float) -> str | None:
        name = self._key("session:", key)
        with _reaching_redis():
            bound = await (self._redis.getex(name, px=_milliseconds(ttl)) if ttl > 0 else self._redis.get(name))
        return None if bound is None else _text(bound)

    async def bind(self, key: str, account_id: str, ttl: float) -> None:
        with _reaching_redis():
            await self._redis.set(self._key("session:", key), account_id, px=_milliseconds(ttl))

    async def unbind(self, key: str) -> None:
        with _reaching_redis():
            await self._redis.delete(self._key("session:", key))

    async def acquire(self, account_id: str, lease_id: str, limit: int, expires_at: float) -> bool:
        if expires_at <= self._clock():
            return False
        if not await self._run(self._acquire, account_id, [], [lease_id, limit, repr(expires_at)]):
            return False
        self._apply(lambda tables: tables.acquire(account_id, lease_id, 0, expires_at, self._clock()))
        return True

    async def extend(self, account_id: str, lease_id: str, expires_at: float) -> bool:
        if not await self._run(self._extend, account_id, [], [lease_id, repr(expires_at)]):
            return False
        self._apply(lambda tables: tables.acquire(account_id, lease_id, 0, expires_at, self._clock()))
        return True

    async def extend_all(self, leases: Sequence[tuple[str, str]], expires_at: float) -> None:
        if not leases:
            return
        now = repr(self._clock())
        with _reaching_redis():
            async with self._redis.pipeline(transaction=False) as pipe:
                for account_id, lease_id in leases:
                    await self._extend(self._script_keys(account_id), [account_id, now, self._channel, lease_id,
                                                                        repr(expires_at)], client=pipe)
                extended = await pipe.execute()
        live = [lease for lease, ok in zip(leases, extended, strict=True) if ok]

        def extend_mirror(tables: StateTables) -> None:
            for account_id, lease_id in live:
                tables.acquire(account_id, lease_id, 0, expires_at, self._clock())

        self._apply(extend_mirror)

    async def release(self, account_id: str, lease_id: str) -> None:
        await self._run(self._release, account_id, [], [lease_id])
        self._apply(lambda tables: tables.release(account_id, lease_id))

    def in_flight(self) -> Mapping[str, int]:
        return self._tables.in_flight(self._clock())

    async def put_account(self, account_id: str, record: bytes) -> None:
        with _reaching_redis():
            version = await self._put_account(self._account_keys(), [account_id, record, self._channel])
        self._saw_accounts_version(int(version))

    async def delete_account(self, account_id: str) -> None:
        with _reaching_redis():
            version = await self._delete_account(self._account_keys(), [account_id, self._channel])
        if version:
            self._saw_accounts_version(int(version))

    async def accounts(self) -> dict[str, bytes]:
        return await self._records("accounts")

    async def put_credential(self, account_id: str, record: bytes) -> bool:
        keys = [self._prefix + "credentials", self._prefix + "accounts:version"]
        with _reaching_redis():
            version = await self._put_credential(keys, [account_id, record, self._channel])
        if not version:
            return False
        self._saw_accounts_version(int(version))
        return True

    async def credentials(self) -> dict[str, bytes]:
        return await self._records("credentials")

    async def _records(self, table: str) -> dict[str, bytes]:
        """Account id → stored record, of one of the per-account hashes ("accounts", "credentials")."""
        with _reaching_redis():
            records = await self._redis.hgetall(self._prefix + table)
        return {
            _text(account_id): record.encode() if isinstance(record, str) else record
            for account_id, record in records.items()
        }

    def accounts_version(self) -> int:
        return self._accounts_changes.version

    async def wait_accounts_changed(self, since: int) -> int:
        return await self._accounts_changes.wait(since)

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}{name}"

    def _account_keys(self) -> list[str]:
        return [self._prefix + "accounts", self._prefix + "accounts:version"]

    async def _run(self, script: Any, account_id: str, extra_keys: Sequence[str], extra_args: Sequence[Any]) -> Any:
        """Runs a per-account script with its standard keys and arguments."""
        keys = self._script_keys(account_id) + list(extra_keys)
        with _reaching_redis():
            return await script(keys, [account_id, repr(self._clock()), self._channel, *extra_args])

    def _script_keys(self, account_id: str) -> list[str]:
        """The keys every per-account script takes first (`redis_scripts.PRELUDE`)."""
        return [self._key(kind, account_id) for kind in ("hold:", "window:", "slots:")] + [self._prefix + "live"]

    def _apply(self, change: Change) -> None:
        """Applies a change this replica made in Redis to the mirror, now and after a reload in flight."""
        change(self._tables)
        if self._journal is not None:
            self._journal.append(change)

    def _saw_accounts_version(self, version: int) -> None:
        if version != self._accounts_remote:
            first = self._accounts_remote is None
            self._accounts_remote = version
            if not first:
                self._accounts_changes.bump()

    async def _reload(self) -> None:
        """Replaces the mirror with what Redis holds now."""
        self._journal = []
        try:
            keys = [self._prefix + "live", self._prefix + "accounts:version"]
            version, accounts = await self._snapshot(keys, [self._prefix, repr(self._clock())])
            tables = _tables_from(accounts, self._clock())
            for change in self._journal:
                change(tables)
            self._tables = tables
        finally:
            self._journal = None
        self._saw_accounts_version(int(version))

    async def _listen(self) -> None:
        """Marks the mirror stale on every change another replica publishes."""
        while not self._closing:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except RedisError as exc:
                self._log_failure("lost the change channel, retrying", exc)
                self._stale.set()  # messages may have been missed
                await asyncio.sleep(self._reload_interval)
                continue
            if message is not None and message.get("type") == "message":
                self._stale.set()

    async def _refresh(self) -> None:
        """Reloads when marked stale, and every `reload_interval` in any case."""
        while not self._closing:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (close would hang).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._reload_interval):
                    await self._stale.wait()
            self._stale.clear()
            if self._closing:
                return
            try:
                await self._reload()
            except RedisError as exc:
                self._log_failure("reload failed, serving the last snapshot", exc)
            else:
                if self._failing:
                    log.info("router state: reloaded from Redis again")
                self._failing = False
            # Windows change on every response: a burst of changes costs one reload per gap, not one each.
            await asyncio.sleep(self._reload_gap)


    def _log_failure(self, what: str, exc: RedisError) -> None:
        """A warning for the first failure of an outage; the ones after it (every second) only at debug."""
        log.log(logging.DEBUG if self._failing else logging.WARNING, "router state: %s: %s", what, exc)
        self._failing = True


def _hold_entry(family: str, hold: Hold) -> tuple[str, str]:
    return json.dumps([family, hold.kind.value]), json.dumps([hold.until, hold.reason])


def _text(value: bytes | str) -> str:
    """The client returns bytes (it is not asked to decode, as account records are bytes)."""
    return value if isinstance(value, str) else value.decode()


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _pairs(flat: Sequence[bytes]) -> Iterator[tuple[Any, Any]]:
    """(field, value) from a flat HGETALL or WITHSCORES reply, JSON-decoded."""
    for i in range(0, len(flat) - 1, 2):
        yield json.loads(flat[i]), json.loads(flat[i + 1])


def _tables_from(accounts: Sequence[Sequence[Any]], now: float) -> StateTables:
    tables = StateTables()
    for account, holds, windows, leases in accounts:
        account_id = _text(account)
        for (family, kind), (until, reason) in _pairs(holds):
            try:
                tables.put_hold(account_id, family, Hold(HoldKind(kind), until, reason))
            except ValueError:
                log.warning("router state: ignoring a hold of unknown kind %r on %s", kind, account_id)
        for (family, name), (resets_at, utilization) in _pairs(windows):
            tables.put_window(account_id, family, Window(name, utilization, resets_at))
        for i in range(0, len(leases) - 1, 2):
            tables.acquire(account_id, _text(leases[i]), 0, float(leases[i + 1]), now)
    return tables
