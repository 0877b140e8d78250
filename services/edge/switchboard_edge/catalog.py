"""Which platforms serve a model: the pool's model patterns, held by the edge and refreshed in the background.

A bare model name (`gpt-4o`, not `openai,gpt-4o`) is resolved here, with no RPC on the request path, to
the platforms a route reaches whose usable accounts serve it, in the route's order (its own format's
platforms first). None of them → the client gets 404 before any account is asked for; a key that may not
use the platforms it resolved to gets auth's 403. The router decides the account among those platforms.

The snapshot is at most `refresh_seconds` old; until the first one arrives every reachable platform is
offered and the router alone says whether the model exists.
"""

import asyncio
import fnmatch
import logging
import re
from collections.abc import Awaitable, Callable, Iterable

from switchboard.router.v1 import router_pb2
from switchboard_edge.errors import SwitchboardError

log = logging.getLogger(__name__)

# Accounts held or in error still serve their models: a request for one is the router's to refuse (503 naming
# why, with Retry-After where known), not a model nobody serves (404). Only disabled accounts serve nothing.
_USABLE = (router_pb2.ACCOUNT_STATE_READY, router_pb2.ACCOUNT_STATE_COOLING, router_pb2.ACCOUNT_STATE_ERROR)
# Model names come from clients: the resolution cache is bounded.
_CACHE_SIZE = 4096

Matcher = Callable[[str], object]


class ModelCatalog:
    def __init__(self) -> None:
        # Platform id -> the model patterns of its usable accounts (the router's matching: case-sensitive globs).
        self._patterns: dict[str, tuple[Matcher, ...]] | None = None
        self._names: dict[str, set[str]] = {}
        self._resolved: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}

    @property
    def loaded(self) -> bool:
        return self._patterns is not None

    def load(self, accounts: Iterable[router_pb2.AccountStatus]) -> None:
        patterns: dict[str, set[str]] = {}
        for status in accounts:
            if status.state in _USABLE:
                patterns.setdefault(status.account.platform, set()).update(status.models or ("*",))
        if self._patterns is not None and patterns == self._names:
            return
        self._names = patterns
        self._patterns = {platform: tuple(re.compile(fnmatch.translate(p)).match for p in sorted(names))
                          for platform, names in patterns.items()}
        self._resolved = {}

    def platforms_for(self, model: str, reachable: tuple[str, ...]) -> tuple[str, ...]:
        """The reachable platforms (in their order) with a usable account serving `model`; all of them
        while the catalog is not loaded."""
        patterns = self._patterns
        if patterns is None:
            return reachable
        key = (model, reachable)
        found = self._resolved.get(key)
        if found is None:
            found = tuple(platform for platform in reachable
                          if any(match(model) for match in patterns.get(platform, ())))
            if len(self._resolved) >= _CACHE_SIZE:
                self._resolved = {}
            self._resolved[key] = found
        return found

    async def follow(self, fetch: Callable[[], Awaitable[list[router_pb2.AccountStatus]]],
                     refresh_seconds: float) -> None:
        """Reloads the snapshot every `refresh_seconds` until cancelled; a failed fetch keeps the last one."""
        while True:
            try:
                self.load(await fetch())
            except SwitchboardError:
                log.debug("model catalog not refreshed: router unavailable")
            await asyncio.sleep(refresh_seconds)
