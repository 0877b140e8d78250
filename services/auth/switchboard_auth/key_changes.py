"""Key changes, pushed: a disabled, deleted, rotated or edited key is refused by every auth replica and every
edge within a second, not after cache TTLs.

Every key store logs its changes with a rising sequence number (`KeyStore.changes_since`), whoever made them
(the CLI, the admin API, another replica). Each auth replica follows that log (`follow`, every
`POLL_SECONDS`), drops the changed keys from its own caches and tells every edge watching it
(`WatchKeyChanges`), which drops what it remembers of them. A watcher that falls behind, or reconnects, is told
"everything": forgetting too much costs a lookup, forgetting too little would let a disabled key through.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
# A watcher this many batches behind is told to forget everything instead.
_BACKLOG = 64
# None: every key.
Change = frozenset[str] | None
ChangesSince = Callable[[int], Awaitable[tuple[int, list[str]]]]


class KeyChanges:
    """Fans key changes out to this replica's caches (`on_change`) and to every watching edge."""

    def __init__(self, on_change: Callable[[Change], None]) -> None:
        self._on_change = on_change
        self._watchers: set[asyncio.Queue[Change]] = set()

    def publish(self, key_ids: Collection[str] | None) -> None:
        change = None if key_ids is None else frozenset(key_ids)
        self._on_change(change)
        for queue in self._watchers:
            if queue.qsize() >= _BACKLOG:
                while not queue.empty():
                    queue.get_nowait()
                change_for_it: Change = None
            else:
                change_for_it = change
            queue.put_nowait(change_for_it)

    async def watch(self) -> AsyncIterator[Change]:
        """Changes from now on; first a "forget everything", as the watcher cannot know what it missed before."""
        queue: asyncio.Queue[Change] = asyncio.Queue()
        queue.put_nowait(None)
        self._watchers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)

    async def follow(self, changes_since: ChangesSince, poll_seconds: float = POLL_SECONDS) -> None:
        """Runs until cancelled: publishes what the store's change log gains."""
        seq: int | None = None
        failing = False
        while True:
            try:
                latest, key_ids = await changes_since(-1 if seq is None else seq)
                if seq is not None and key_ids:
                    self.publish(key_ids)
                seq = latest
                if failing:
                    log.warning("key change log readable again")
                failing = False
            except Exception as exc:  # a store hiccup must not end the following for good
                # Once per outage: it is polled several times a second.
                log.log(logging.DEBUG if failing else logging.WARNING, "key change log unreadable, retrying: %s", exc)
                failing = True
            await asyncio.sleep(poll_seconds)
