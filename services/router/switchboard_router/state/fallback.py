"""What the router's state does while its Redis cannot be reached (SWITCHBOARD_ROUTER_REDIS_UNAVAILABLE).

`FallbackState` wraps `RedisState`; every call goes to Redis until one fails, then, until a probe (every
second) finds Redis answering again:

- "local": holds, windows, the breaker, sessions and concurrency slots live in a `MemoryState` of this
  replica, made fresh for each outage. `health()` and `in_flight()` show Redis's last snapshot together with
  it, so a hold Redis had still holds and a slot counted there still counts. Once Redis is back it is the
  state again and the memory is dropped: sessions bound during the outage are forgotten (a conversation may
  move once), holds set during it come back with the next failure, slots taken during it are not counted in
  Redis while their requests finish.
- "refuse": the same calls raise `StateUnavailable`, and `refusing()` tells Pick to refuse (the edge answers
  503 with Retry-After).

Managed accounts and shared stored credentials are never per replica: those calls always go to Redis, and fail
while it is down (a stored credential stays live in the replica that took it, and in its credentials file).
"""

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from switchboard_common.redis_outage import LOCAL, REFUSE, Gauge, RedisOutage
from switchboard_router.state.base import Health, Hold, HoldKind, RouterState, StateUnavailable, Window
from switchboard_router.state.memory import Clock, MemoryState
from switchboard_router.state.redis_state import RedisState

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class Count(Protocol):
    """What `FallbackState` needs of a counter: prometheus_client's Counter fits."""

    def inc(self, amount: float = 1) -> None: ...


class FallbackState:
    """`RouterState` in Redis, or while Redis is down in this replica's memory ("local") or nowhere ("refuse")."""

    def __init__(self, shared: RedisState, *, degraded: Gauge, degraded_operations: Count, policy: str = LOCAL,
                 probe_interval: float = 1.0, clock: Clock = time.time) -> None:
        self._shared = shared
        self._refuse = policy == REFUSE
        self._clock = clock
        self._local = MemoryState(clock)
        # During an outage: the leases taken here, and how many of Redis's last-seen leases have ended since
        # (their slots free again, though Redis cannot be told).
        self._local_leases: set[str] = set()
        self._shared_ended: dict[str, int] = {}
        self._owed_releases: list[tuple[str, str]] = []  # those leases, returned to Redis once it answers
        self._degraded_operations = degraded_operations
        self._merged: tuple[Health, Health, Health] | None = None  # (shared view, local view, both)
        self.outage = RedisOutage(shared.ping, what="router state", policy=policy, log=log, degraded=degraded,
                                  probe_interval=probe_interval, on_recovery=self._recovered)

    def refusing(self) -> bool:
        return self._refuse and self.outage.down

    async def start(self) -> None:
        await self._shared.start()

    async def close(self) -> None:
        await self.outage.close()
        await self._shared.close()

    async def put_hold(self, account_id: str, family: str, hold: Hold) -> None:
        await self._either(lambda state: state.put_hold(account_id, family, hold))

    async def clear_holds(self, account_id: str, kinds: frozenset[HoldKind] | None = None) -> None:
        await self._either(lambda state: state.clear_holds(account_id, kinds))

    async def put_window(self, account_id: str, family: str, window: Window) -> None:
        await self._either(lambda state: state.put_window(account_id, family, window))

    def health(self) -> Health:
        shared = self._shared.health()
        if not self.outage.down:
            return shared
        local = self._local.health()
        if self._merged is None or self._merged[0] is not shared or self._merged[1] is not local:
            self._merged = (shared, local, _merged(shared, local))
        return self._merged[2]

    async def record_failure(self, account_id: str, threshold: int, open_seconds: float) -> Hold | None:
        return await self._either(lambda state: state.record_failure(account_id, threshold, open_seconds))

    async def record_success(self, account_id: str) -> None:
        await self._either(lambda state: state.record_success(account_id))

    async def session(self, key: str, ttl: float) -> str | None:
        return await self._either(lambda state: state.session(key, ttl))

    async def bind(self, key: str, account_id: str, ttl: float) -> None:
        await self._either(lambda state: state.bind(key, account_id, ttl))

    async def unbind(self, key: str) -> None:
        await self._either(lambda state: state.unbind(key))

    async def acquire(self, account_id: str, lease_id: str, limit: int, expires_at: float) -> bool:
        async def take(state: RouterState) -> bool:
            if state is self._shared or limit <= 0:
                return await state.acquire(account_id, lease_id, limit, expires_at)
            held = self._shared_held(account_id)  # Redis's, as last seen, less those ended since: they still run
            taken = held < limit and await state.acquire(account_id, lease_id, limit - held, expires_at)
            if taken:
                self._local_leases.add(lease_id)
            return taken

        return await self._either(take)

    async def extend(self, account_id: str, lease_id: str, expires_at: float) -> bool:
        return await self._either(lambda state: state.extend(account_id, lease_id, expires_at))

    async def extend_all(self, leases: Sequence[tuple[str, str]], expires_at: float) -> None:
        await self._either(lambda state: state.extend_all(leases, expires_at))

    async def release(self, account_id: str, lease_id: str) -> None:
        async def end(state: RouterState) -> None:
            if state is not self._shared:
                if lease_id in self._local_leases:
                    self._local_leases.discard(lease_id)
                else:  # one of Redis's last-seen leases (taken before the outage) has ended
                    self._shared_ended[account_id] = self._shared_ended.get(account_id, 0) + 1
                    self._owed_releases.append((account_id, lease_id))
            await state.release(account_id, lease_id)

        await self._either(end)

    async def _recovered(self) -> None:
        """Redis answers again: the leases it holds that ended during the outage are returned there (else their
        slots would stay taken until the lease TTL)."""
        owed, self._owed_releases = self._owed_releases, []
        for done, (account_id, lease_id) in enumerate(owed):
            try:
                await self._shared.release(account_id, lease_id)
            except StateUnavailable:
                self._owed_releases = owed[done:] + self._owed_releases
                raise
        self._shared_ended = {}

    def _shared_held(self, account_id: str) -> int:
        return max(0, self._shared.in_flight().get(account_id, 0) - self._shared_ended.get(account_id, 0))

    def in_flight(self) -> Mapping[str, int]:
        shared = self._shared.in_flight()
        if not self.outage.down:
            return shared
        both = {account_id: self._shared_held(account_id) for account_id in shared}
        for account_id, count in self._local.in_flight().items():
            both[account_id] = both.get(account_id, 0) + count
        return both

    async def put_account(self, account_id: str, record: bytes) -> None:
        await self._shared.put_account(account_id, record)

    async def delete_account(self, account_id: str) -> None:
        await self._shared.delete_account(account_id)

    async def accounts(self) -> dict[str, bytes]:
        return await self._shared.accounts()

    async def put_credential(self, account_id: str, record: bytes) -> bool:
        return await self._shared.put_credential(account_id, record)

    async def credentials(self) -> dict[str, bytes]:
        return await self._shared.credentials()

    def accounts_version(self) -> int:
        return self._shared.accounts_version()

    async def wait_accounts_changed(self, since: int) -> int:
        return await self._shared.wait_accounts_changed(since)

    async def _either(self, call: Callable[[RouterState], Awaitable[_T]]) -> _T:
        """The call on Redis, or while it is down on this replica's memory ("local")."""
        if not self.outage.down:
            try:
                return await call(self._shared)
            except StateUnavailable as exc:
                if not self.outage.down:
                    self._local, self._merged = MemoryState(self._clock), None
                    self._local_leases, self._shared_ended, self._owed_releases = set(), {}, []
                    self.outage.failed(exc)
        if self._refuse:
            raise StateUnavailable("redis unreachable, and SWITCHBOARD_ROUTER_REDIS_UNAVAILABLE=refuse")
        self._degraded_operations.inc()
        return await call(self._local)


def _merged(one: Health, other: Health) -> Health:
    """Both views' holds and windows together (a key in both: both tuples), and both half-open sets."""
    holds = dict(one.holds)
    for key, held in other.holds.items():
        holds[key] = holds.get(key, ()) + held
    windows = dict(one.windows)
    for key, seen in other.windows.items():
        windows[key] = windows.get(key, ()) + seen
    return Health(holds, windows, one.half_open | other.half_open)
