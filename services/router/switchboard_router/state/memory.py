"""The router's shared state in this process's memory: the embedded single-machine default.

`StateTables` also serves the Redis backend as its local mirror, so `health()`
and `in_flight()` read alike from both: plain dicts, filtered of what has
expired when read, the filtered view cached until its first entry expires, so
a pick costs one clock read while nothing changes.

Nothing here awaits between reading and writing, so every operation is atomic
on the event loop without a lock.
"""

import asyncio
import heapq
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence

from switchboard_router.state.base import FAILURE_STREAK_SECONDS, Health, Hold, HoldKind, Window

Clock = Callable[[], float]


class StateTables:
    """Holds, windows and leases by account; the views the selector reads."""

    def __init__(self) -> None:
        self._holds: dict[str, dict[tuple[str, HoldKind], Hold]] = {}
        self._windows: dict[str, dict[tuple[str, str], Window]] = {}
        self._leases: dict[str, dict[str, float]] = {}  # account → lease id → expires at
        self._health: Health | None = None
        self._health_until = 0.0  # the cached view is right until then
        # Live leases per account, kept up to date by acquire and release; `_lease_expiry` (a heap, with
        # entries a later extension or release outdated) says when the next lease may run out.
        self._counts: dict[str, int] = {}
        self._lease_expiry: list[tuple[float, str, str]] = []
        self._total = 0

    def put_hold(self, account_id: str, family: str, hold: Hold) -> None:
        self._holds.setdefault(account_id, {})[(family, hold.kind)] = hold
        self._health = None

    def clear_holds(self, account_id: str, kinds: frozenset[HoldKind] | None) -> bool:
        """Returns whether any hold was there to clear."""
        held = self._holds.get(account_id, {})
        doomed = [key for key in held if kinds is None or key[1] in kinds]
        for key in doomed:
            del held[key]
        if not held:
            self._holds.pop(account_id, None)
        if doomed:
            self._health = None
        return bool(doomed)

    def half_open(self, account_id: str, now: float) -> bool:
        """The breaker opened, its open period is over, and no success has closed it yet."""
        held = self._holds.get(account_id, {})
        tripped, breaker = held.get(("", HoldKind.TRIPPED)), held.get(("", HoldKind.BREAKER))
        return tripped is not None and tripped.live(now) and (breaker is None or not breaker.live(now))

    def put_window(self, account_id: str, family: str, window: Window) -> None:
        self._windows.setdefault(account_id, {})[(family, window.name)] = window
        self._health = None

    def acquire(self, account_id: str, lease_id: str, limit: int, expires_at: float, now: float) -> bool:
        self._expire_leases(now)
        leases = self._leases.setdefault(account_id, {})
        if lease_id not in leases:
            if 0 < limit <= len(leases):
                return False
            self._counts[account_id] = self._counts.get(account_id, 0) + 1
            self._total += 1
        leases[lease_id] = expires_at
        heapq.heappush(self._lease_expiry, (expires_at, account_id, lease_id))
        if len(self._lease_expiry) > max(4096, 4 * self._total):
            # Released leases leave their entries behind until their time: rebuild from the live ones.
            self._lease_expiry = [(until, a, lid) for a, held in self._leases.items() for lid, until in held.items()]
            heapq.heapify(self._lease_expiry)
        return True

    def extend(self, account_id: str, lease_id: str, expires_at: float, now: float) -> bool:
        self._expire_leases(now)
        leases = self._leases.get(account_id, {})
        if lease_id not in leases:
            return False
        leases[lease_id] = expires_at
        heapq.heappush(self._lease_expiry, (expires_at, account_id, lease_id))
        return True

    def release(self, account_id: str, lease_id: str) -> None:
        leases = self._leases.get(account_id)
        if leases is not None and leases.pop(lease_id, None) is not None:
            self._drop_lease(account_id, leases)

    def health(self, now: float) -> Health:
        if self._health is None or now >= self._health_until:
            self._health, self._health_until = self._build_health(now)
        return self._health

    def in_flight(self, now: float) -> Mapping[str, int]:
        """Live leases per account; a view kept up to date, not a copy (amortised O(1) per lease)."""
        self._expire_leases(now)
        return self._counts

    def _build_health(self, now: float) -> tuple[Health, float]:
        """Drops what has expired; the view is right until the first live entry ends."""
        first_end = math.inf
        holds: dict[tuple[str, str], tuple[Hold, ...]] = {}
        tripped: set[str] = set()
        for account_id, held in list(self._holds.items()):
            for (family, kind), hold in list(held.items()):
                if not hold.live(now):
                    del held[(family, kind)]
                    continue
                if hold.until is not None:
                    first_end = min(first_end, hold.until)
                if kind is HoldKind.TRIPPED:
                    tripped.add(account_id)
                    continue
                holds[(account_id, family)] = holds.get((account_id, family), ()) + (hold,)
            if not held:
                del self._holds[account_id]
        half_open = frozenset(account_id for account_id in tripped
                              if not any(h.kind is HoldKind.BREAKER for h in holds.get((account_id, ""), ())))
        windows: dict[tuple[str, str], tuple[Window, ...]] = {}
        for account_id, seen in list(self._windows.items()):
            for (family, name), window in list(seen.items()):
                if not window.live(now):
                    del seen[(family, name)]
                    continue
                windows[(account_id, family)] = windows.get((account_id, family), ()) + (window,)
                if window.resets_at is not None:
                    first_end = min(first_end, window.resets_at)
            if not seen:
                del self._windows[account_id]
        return Health(holds, windows, half_open), first_end

    def _expire_leases(self, now: float) -> None:
        heap = self._lease_expiry
        while heap and heap[0][0] <= now:
            expires_at, account_id, lease_id = heapq.heappop(heap)
            leases = self._leases.get(account_id)
            # Outdated entries (the lease was extended or released since) are only dropped.
            if leases is not None and leases.get(lease_id) == expires_at:
                del leases[lease_id]
                self._drop_lease(account_id, leases)

    def _drop_lease(self, account_id: str, leases: dict[str, float]) -> None:
        self._total -= 1
        left = self._counts[account_id] - 1
        if left:
            self._counts[account_id] = left
        else:
            del self._counts[account_id]
            del self._leases[account_id]


class ChangeCounter:
    """A version number that tasks can wait to see move."""

    def __init__(self) -> None:
        self.version = 0
        self._next = asyncio.Event()  # set, and replaced, by the next bump

    def bump(self) -> None:
        self.version += 1
        self._next.set()
        self._next = asyncio.Event()

    async def wait(self, since: int) -> int:
        while self.version == since:
            await self._next.wait()
        return self.version


class MemoryState:
    """`RouterState` for one process; `clock` is injectable for tests."""

    def __init__(self, clock: Clock = time.time, failure_streak_seconds: float = FAILURE_STREAK_SECONDS) -> None:
        self._clock = clock
        self._failure_streak_seconds = failure_streak_seconds
        self._tables = StateTables()
        self._failures: dict[str, tuple[int, float]] = {}  # account → (streak, forgotten at)
        self._sessions: dict[str, tuple[str, float]] = {}  # key → (account, expires at)
        self._session_expiry: list[tuple[float, str]] = []  # heap; stale entries are skipped
        self._accounts: dict[str, bytes] = {}
        self._credentials: dict[str, bytes] = {}
        self._accounts_changes = ChangeCounter()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def refusing(self) -> bool:
        return False

    async def put_hold(self, account_id: str, family: str, hold: Hold) -> None:
        self._tables.put_hold(account_id, family, hold)

    async def clear_holds(self, account_id: str, kinds: frozenset[HoldKind] | None = None) -> None:
        self._tables.clear_holds(account_id, kinds)

    async def put_window(self, account_id: str, family: str, window: Window) -> None:
        self._tables.put_window(account_id, family, window)

    def health(self) -> Health:
        return self._tables.health(self._clock())

    async def record_failure(self, account_id: str, threshold: int, open_seconds: float) -> Hold | None:
        if threshold < 1:
            raise ValueError("the breaker threshold must be at least 1")
        now = self._clock()
        if not self._tables.half_open(account_id, now):
            streak, forgotten_at = self._failures.get(account_id, (0, now))
            streak = streak + 1 if forgotten_at > now else 1
            if streak < threshold:
                self._failures[account_id] = (streak, now + self._failure_streak_seconds)
                return None
        self._failures.pop(account_id, None)
        hold = breaker_hold(threshold, now + open_seconds)
        self._tables.put_hold(account_id, "", hold)
        self._tables.put_hold(account_id, "", tripped_mark(now + open_seconds + self._failure_streak_seconds))
        return hold

    async def record_success(self, account_id: str) -> None:
        self._failures.pop(account_id, None)
        self._tables.clear_holds(account_id, BREAKER_KINDS)

    async def session(self, key: str, ttl: float) -> str | None:
        now = self._clock()
        self._forget_sessions(now)
        bound = self._sessions.get(key)
        if bound is None or bound[1] <= now:
            return None
        if ttl > 0:
            self._bind(key, bound[0], now + ttl)
        return bound[0]

    async def bind(self, key: str, account_id: str, ttl: float) -> None:
        now = self._clock()
        self._forget_sessions(now)
        self._bind(key, account_id, now + ttl)

    async def unbind(self, key: str) -> None:
        self._sessions.pop(key, None)

    async def acquire(self, account_id: str, lease_id: str, limit: int, expires_at: float) -> bool:
        now = self._clock()
        if expires_at <= now:
            return False
        return self._tables.acquire(account_id, lease_id, limit, expires_at, now)

    async def extend(self, account_id: str, lease_id: str, expires_at: float) -> bool:
        return self._tables.extend(account_id, lease_id, expires_at, self._clock())

    async def extend_all(self, leases: Sequence[tuple[str, str]], expires_at: float) -> None:
        now = self._clock()
        for account_id, lease_id in leases:
            self._tables.extend(account_id, lease_id, expires_at, now)

    async def release(self, account_id: str, lease_id: str) -> None:
        self._tables.release(account_id, lease_id)

    def in_flight(self) -> Mapping[str, int]:
        return self._tables.in_flight(self._clock())

    async def put_account(self, account_id: str, record: bytes) -> None:
        self._accounts[account_id] = record
        self._accounts_changes.bump()

    async def delete_account(self, account_id: str) -> None:
        if self._accounts.pop(account_id, None) is not None:
            self._accounts_changes.bump()

    async def accounts(self) -> dict[str, bytes]:
        return dict(self._accounts)

    async def put_credential(self, account_id: str, record: bytes) -> bool:
        held = self._credentials.get(account_id)
        if held is not None and credential_arrived_late(record, held):
            return False
        self._credentials[account_id] = record
        self._accounts_changes.bump()
        return True

    async def credentials(self) -> dict[str, bytes]:
        return dict(self._credentials)

    def accounts_version(self) -> int:
        return self._accounts_changes.version

    async def wait_accounts_changed(self, since: int) -> int:
        return await self._accounts_changes.wait(since)

    def _bind(self, key: str, account_id: str, expires_at: float) -> None:
        self._sessions[key] = (account_id, expires_at)
        heapq.heappush(self._session_expiry, (expires_at, key))

    def _forget_sessions(self, now: float) -> None:
        """Frees expired sessions; a heap entry a later renewal outdated is only dropped."""
        while self._session_expiry and self._session_expiry[0][0] <= now:
            _, key = heapq.heappop(self._session_expiry)
            bound = self._sessions.get(key)
            if bound is not None and bound[1] <= now:
                del self._sessions[key]


def credential_arrived_late(record: bytes, held: bytes) -> bool:
    """A stored-credential record (`credential_overlay` entry JSON) for the same file credential as the one
    held, expiring before it: another replica stored a newer one first (`redis_scripts.PUT_CREDENTIAL` is the
    same rule in Redis)."""
    try:
        new, old = json.loads(record), json.loads(held)
        if new["replaces"] != old["replaces"]:
            return False
        a, b = new["credential"]["secrets"].get("expires_at", ""), old["credential"]["secrets"].get("expires_at", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return isinstance(a, str) and isinstance(b, str) and a.isdigit() and b.isdigit() and int(a) < int(b)


def breaker_hold(threshold: int, until: float) -> Hold:
    return Hold(HoldKind.BREAKER, until, f"circuit breaker open after {threshold} consecutive failures")


# What a success clears: an open breaker, and the mark that makes its next failure reopen it at once.
BREAKER_KINDS = frozenset({HoldKind.BREAKER, HoldKind.TRIPPED})


def tripped_mark(until: float) -> Hold:
    """Kept past the breaker's open period: while it lives the account is half-open (one probe at a time, and
    a failure reopens the breaker); forgotten a failure streak later if no request comes."""
    return Hold(HoldKind.TRIPPED, until, "circuit breaker half-open: the next outcome decides")
