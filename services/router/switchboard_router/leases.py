"""In-flight leases: who holds which account right now (in memory, this process).

Pick takes a lease; ReportOutcome or Release returns it, idempotently (an unknown
or already returned lease is fine). A lease nobody returns (an edge that crashed
mid-request) expires after the TTL, so in-flight counts cannot leak for ever.
The TTL is the same for every lease, so insertion order is expiry order and
expiry is an amortised O(1) pop from the front.
"""

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from itertools import count


class LeaseTable:
    """Lease id → (account id, deadline), plus a live count per account."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._leases: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._in_flight: dict[str, int] = {}
        # A random prefix per process: a lease id from before a restart never matches a new one.
        self._prefix = secrets.token_hex(6)
        self._ids = count(1)

    def acquire(self, account_id: str) -> str:
        now = self._clock()
        self.expire(now)
        lease_id = f"{self._prefix}-{next(self._ids):x}"
        self._leases[lease_id] = (account_id, now + self.ttl_seconds)
        self._in_flight[account_id] = self._in_flight.get(account_id, 0) + 1
        return lease_id

    def release(self, lease_id: str) -> str | None:
        """Returns the lease; the account id it held, or None if it was unknown or expired."""
        held = self._leases.pop(lease_id, None)
        if held is None:
            return None
        self._drop(held[0])
        return held[0]

    def in_flight(self, account_id: str) -> int:
        self.expire(self._clock())
        return self._in_flight.get(account_id, 0)

    def expire(self, now: float) -> None:
        while self._leases:
            lease_id, (account_id, deadline) = next(iter(self._leases.items()))
            if deadline > now:
                return
            del self._leases[lease_id]
            self._drop(account_id)

    def _drop(self, account_id: str) -> None:
        left = self._in_flight[account_id] - 1
        if left:
            self._in_flight[account_id] = left
        else:
            del self._in_flight[account_id]

    def __len__(self) -> int:
        return len(self._leases)
