"""The in-memory key cache in front of the store, keyed by key hash.

Rules owned here:
- Found and not-found answers are both cached, each for `ttl_seconds`, so a
  change made through the CLI (disable, delete, create) reaches Authorize
  within the TTL; a TTL of 0 disables caching.
- Each kind holds at most `max_entries`; the oldest entry goes first, so a
  flood of made-up keys cannot push real keys out of the found side.
- Concurrent misses for one hash share a single store lookup.
- Store failures are never cached.
- A key's change (`forget`, pushed by `key_changes`) drops its entries at once, whatever their TTL.
- While the store fails (StoreError), an entry past its TTL by less than `stale_seconds` is still answered,
  as it was when last read; so is one whose lookup takes longer than `stale_wait_seconds` (a store that
  stalls), the lookup going on to refresh it. A warning is logged when stale answers start and when the
  store answers again; each stale answer calls `on_stale` (a metric).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection

from switchboard_auth.errors import StoreError
from switchboard_auth.policy import CompiledKey

log = logging.getLogger(__name__)

Loader = Callable[[str], Awaitable[CompiledKey | None]]
_MISS = object()


class _ExpiringMap:
    """dict with per-entry deadlines and a size bound (insertion order = age)."""

    __slots__ = ("_entries", "_max", "_kept")

    def __init__(self, max_entries: int, kept_seconds: float = 0.0) -> None:
        self._entries: dict[str, tuple[float, CompiledKey | None]] = {}
        self._max = max_entries
        self._kept = kept_seconds  # past its deadline an entry stays this long, for `stale`

    def get(self, key: str, now: float) -> object:
        entry = self._entries.get(key)
        if entry is None:
            return _MISS
        if entry[0] <= now:
            if entry[0] + self._kept <= now:
                del self._entries[key]
            return _MISS
        return entry[1]

    def stale(self, key: str, now: float) -> object:
        """The entry, expired or not, unless it is more than `kept_seconds` past its deadline."""
        entry = self._entries.get(key)
        if entry is None or entry[0] + self._kept <= now:
            return _MISS
        return entry[1]

    def put(self, key: str, value: CompiledKey | None, deadline: float) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (deadline, value)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def drop(self, doomed: Callable[[CompiledKey | None], bool]) -> None:
        for key in [key for key, (_, value) in self._entries.items() if doomed(value)]:
            del self._entries[key]


class KeyCache:
    def __init__(
        self,
        load: Loader,
        *,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        stale_seconds: float = 0.0,
        stale_wait_seconds: float = 1.0,
        on_stale: Callable[[], None] = lambda: None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._load = load
        self._ttl = ttl_seconds
        self._clock = clock
        self._stale_wait = stale_wait_seconds
        self._on_stale = on_stale
        self._serving_stale = False
        self._found = _ExpiringMap(max_entries, stale_seconds)
        self._missing = _ExpiringMap(max_entries, stale_seconds)
        self._inflight: dict[str, asyncio.Future[CompiledKey | None]] = {}
        self._generation = 0  # moves on every `forget`

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
            pending = asyncio.ensure_future(self._fill(key_hash, self._generation))
            self._inflight[key_hash] = pending
            pending.add_done_callback(lambda done: self._settled(key_hash, done))
        stale = self._found.stale(key_hash, now)
        if stale is _MISS:
            stale = self._missing.stale(key_hash, now)
        # shield: one caller giving up (RPC cancelled, or a stale answer) must not cancel the lookup others wait on
        if stale is _MISS:
            return await asyncio.shield(pending)
        try:
            return await asyncio.wait_for(asyncio.shield(pending), self._stale_wait)
        except (StoreError, TimeoutError) as exc:
            if not self._serving_stale:
                self._serving_stale = True
                log.warning("key store unavailable, answering from cached keys as last read: %s",
                            exc if isinstance(exc, StoreError) else "no answer in time")
            self._on_stale()
            return stale  # type: ignore[return-value]

    def _settled(self, key_hash: str, done: asyncio.Future[CompiledKey | None]) -> None:
        if self._inflight.get(key_hash) is done:
            del self._inflight[key_hash]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter that is still there re-raises it

    def forget(self, key_ids: Collection[str] | None) -> None:
        """Drops what is cached of these keys (None: of every key) and every not-found answer (a new or
        rotated key may have been one); lookups already under way do not store what they find."""
        self._generation += 1
        self._inflight.clear()  # later callers look again rather than share an answer from before the change
        self._missing.clear()
        if key_ids is None:
            self._found.clear()
        else:
            self._found.drop(lambda value: value is not None and value.record.key_id in key_ids)

    async def _fill(self, key_hash: str, generation: int) -> CompiledKey | None:
        value = await self._load(key_hash)
        if self._serving_stale:
            self._serving_stale = False
            log.warning("key store answering again: cached keys fresh from it")
        if self._ttl > 0 and generation == self._generation:
            side = self._missing if value is None else self._found
            side.put(key_hash, value, self._clock() + self._ttl)
        return value
