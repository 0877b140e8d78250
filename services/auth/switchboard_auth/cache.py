"""The in-memory key cache in front of the store, keyed by key hash.

Rules owned here:
- Found and not-found answers are both cached, each for `ttl_seconds`, so a
  change made through the CLI (disable, delete, create) reaches Authorize
  within the TTL; a TTL of 0 disables caching.
- Each kind holds at most `max_entries`; the oldest entry goes first, so a
  flood of made-up keys cannot push real keys out of the found side.
- Concurrent misses for one hash share a single store lookup.
- Store failures are never cached.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from switchboard_auth.policy import CompiledKey

Loader = Callable[[str], Awaitable[CompiledKey | None]]
_MISS = object()


class _ExpiringMap:
    """dict with per-entry deadlines and a size bound (insertion order = age)."""

    __slots__ = ("_entries", "_max")

    def __init__(self, max_entries: int) -> None:
        self._entries: dict[str, tuple[float, CompiledKey | None]] = {}
        self._max = max_entries

    def get(self, key: str, now: float) -> object:
        entry = self._entries.get(key)
        if entry is None:
            return _MISS
        if entry[0] <= now:
            del self._entries[key]
            return _MISS
        return entry[1]

    def put(self, key: str, value: CompiledKey | None, deadline: float) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (deadline, value)

    def __len__(self) -> int:
        return len(self._entries)


class KeyCache:
    def __init__(
        self,
        load: Loader,
        *,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._load = load
        self._ttl = ttl_seconds
        self._clock = clock
        self._found = _ExpiringMap(max_entries)
        self._missing = _ExpiringMap(max_entries)
        self._inflight: dict[str, asyncio.Future[CompiledKey | None]] = {}

    def __len__(self) -> int:
        return len(self._found) + len(self._missing)

    async def get(self, key_hash: str) -> CompiledKey | None:
        now = self._clock()
        hit = self._found.get(key_hash, now)
        if hit is _MISS:
            hit = self._missing.get(key_hash, now)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        pending = self._inflight.get(key_hash)
        if pending is None:
            pending = asyncio.ensure_future(self._fill(key_hash))
            self._inflight[key_hash] = pending
            pending.add_done_callback(lambda done: self._settled(key_hash, done))
        # shield: one caller giving up (RPC cancelled) must not cancel the lookup others wait on
        return await asyncio.shield(pending)

    def _settled(self, key_hash: str, done: asyncio.Future[CompiledKey | None]) -> None:
        self._inflight.pop(key_hash, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter that is still there re-raises it

    async def _fill(self, key_hash: str) -> CompiledKey | None:
        value = await self._load(key_hash)
        if self._ttl > 0:
            side = self._missing if value is None else self._found
            side.put(key_hash, value, self._clock() + self._ttl)
        return value
