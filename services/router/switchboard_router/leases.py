"""In-flight leases: who holds which account right now (in memory, this process).

Pick takes a lease; ReportOutcome or Release returns it, idempotently (an unknown
or already returned lease is fine). A lease nobody returns must not count as in
flight for ever, so every lease ends one of two ways:

- **With a holder** (the edge instance that picked it): the lease lives while its
  holder is alive, i.e. while a heartbeat (`Heartbeat`, or a `Pick` naming the
  holder) arrived within `holder_ttl_seconds`. A holder silent for longer loses
  all its leases at once. `release_held` returns every lease of a holder (an
  edge that has just started holds nothing, whatever its previous life held).
- **Without a holder**: the lease expires `ttl_seconds` after it was taken.

Expiry runs on every acquire and in-flight read, so it is amortised O(1):
holderless leases share one TTL, so insertion order is expiry order; holders are
kept in the order they were last seen, so the silent ones are at the front.
"""

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from itertools import count
from typing import NamedTuple

log = logging.getLogger(__name__)


class _Lease(NamedTuple):
    account_id: str
    holder: str  # "" for a holderless lease
    taken_at: float


class LeaseTable:
    """Lease id → (account id, holder); per-account live counts; holder liveness."""

    def __init__(
        self,
        ttl_seconds: float,
        holder_ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl_seconds > 0 or not holder_ttl_seconds > 0:
            raise ValueError("lease and holder TTLs must be positive")
        self.ttl_seconds = ttl_seconds
        self.holder_ttl_seconds = holder_ttl_seconds
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._in_flight: dict[str, int] = {}
        # Holderless leases only: lease id → deadline, in expiry order.
        self._deadlines: OrderedDict[str, float] = OrderedDict()
        # Holder → when it was last seen, least recently seen first.
        self._last_seen: OrderedDict[str, float] = OrderedDict()
        # Holder → ids of the leases it holds (dict as an ordered set).
        self._held: dict[str, dict[str, None]] = {}
        # A random prefix per process: a lease id from before a restart never matches a new one.
        self._prefix = secrets.token_hex(6)
        self._ids = count(1)

    def acquire(self, account_id: str, holder: str = "") -> str:
        now = self._clock()
        self.expire(now)
        lease_id = f"{self._prefix}-{next(self._ids):x}"
        self._leases[lease_id] = _Lease(account_id, holder, now)
        if holder:
            self._touch(holder, now)
            self._held.setdefault(holder, {})[lease_id] = None
        else:
            self._deadlines[lease_id] = now + self.ttl_seconds
        self._in_flight[account_id] = self._in_flight.get(account_id, 0) + 1
        return lease_id

    def release(self, lease_id: str) -> str | None:
        """Returns the lease; the account id it held, or None if it was unknown or expired."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            return None
        if lease.holder:
            held = self._held.get(lease.holder)
            if held is not None:
                held.pop(lease_id, None)
        else:
            self._deadlines.pop(lease_id, None)
        self._drop(lease.account_id)
        return lease.account_id

    def heartbeat(self, holder: str, *, release_held: bool = False) -> int:
        """Marks `holder` alive now; with `release_held`, first returns all its leases.

        Returns how many leases were returned (always 0 without `release_held`).
        """
        now = self._clock()
        self.expire(now)
        released = self._release_holder(holder) if release_held else 0
        self._touch(holder, now)
        return released

    def reconcile(self, holder: str, holds: Collection[str], older_than: float) -> list[tuple[str, str]]:
        """Returns the leases of `holder` it no longer `holds` that were taken more than `older_than` seconds
        ago (younger ones may be answers on their way to it); (account id, lease id) of each."""
        now = self._clock()
        self.expire(now)
        gone = [(lease.account_id, lease_id) for lease_id in self._held.get(holder, ())
                if lease_id not in holds and (lease := self._leases[lease_id]).taken_at + older_than <= now]
        for _, lease_id in gone:
            self.release(lease_id)
        return gone

    def in_flight(self, account_id: str) -> int:
        self.expire(self._clock())
        return self._in_flight.get(account_id, 0)

    def counts(self) -> Mapping[str, int]:
        """Live leases per account (after expiry); a view, read by every pick without copying."""
        self.expire(self._clock())
        return self._in_flight

    def leases_of(self, holder: str) -> list[tuple[str, str]]:
        """(account id, lease id) of every lease `holder` holds (after expiry)."""
        self.expire(self._clock())
        return [(self._leases[lease_id].account_id, lease_id) for lease_id in self._held.get(holder, ())]

    def ttl_for(self, holder: str) -> float:
        """How long a lease taken now lives without news: a holder's until its heartbeat is overdue."""
        return self.holder_ttl_seconds if holder else self.ttl_seconds

    def held_by(self, holder: str) -> int:
        """How many leases `holder` holds (after expiry)."""
        self.expire(self._clock())
        return len(self._held.get(holder, ()))

    def expire(self, now: float) -> None:
        """Drops holderless leases past their deadline and every lease of a silent holder."""
        deadlines = self._deadlines
        while deadlines:
            lease_id, deadline = next(iter(deadlines.items()))
            if deadline > now:
                break
            del deadlines[lease_id]
            self._drop(self._leases.pop(lease_id).account_id)
        last_seen = self._last_seen
        while last_seen:
            holder, seen = next(iter(last_seen.items()))
            if seen + self.holder_ttl_seconds > now:
                break
            released = self._release_holder(holder)
            if released:
                log.warning("lease holder %r silent for %.0f s: returned its %d leases",
                            holder, now - seen, released)

    def _touch(self, holder: str, now: float) -> None:
        self._last_seen[holder] = now
        self._last_seen.move_to_end(holder)

    def _release_holder(self, holder: str) -> int:
        """Returns every lease `holder` holds and forgets the holder."""
        self._last_seen.pop(holder, None)
        held = self._held.pop(holder, {})
        for lease_id in held:
            self._drop(self._leases.pop(lease_id).account_id)
        return len(held)

    def _drop(self, account_id: str) -> None:
        left = self._in_flight[account_id] - 1
        if left:
            self._in_flight[account_id] = left
        else:
            del self._in_flight[account_id]

    def __len__(self) -> int:
        return len(self._leases)
